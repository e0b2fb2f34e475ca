"""CPU time per kind of process of the benchmarked stack, read from ``/proc`` (used by
``bench/cpu.py`` and ``bench/run.py``'s ``singles`` and ``floor`` scenarios). Processes that
have exited by the second reading are not counted: the load generator (``wrk``) and the
benchmark's own process never are."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
KINDS = (  # the first match names a process
    ("floor app", "bench.floor:app"),
    ("gunicorn", "gunicorn"),
    ("celery worker", "celery -A config worker"),
    ("beat", "celery -A config beat"),
    ("sandbox", "-m sandbox"),
    ("callbacks", "deliver_callbacks"),
    ("redis", "redis-server"),
    ("postgres", "postgres"),
)


def cpu_seconds() -> Counter:
    """CPU seconds so far (user + system), per kind of process."""
    found: Counter = Counter()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        kind = next((k for k, marker in KINDS if marker in command or marker in stat), None)
        if kind is not None:
            fields = stat.rsplit(")", 1)[1].split()
            found[kind] += (int(fields[11]) + int(fields[12])) / TICK
    return found


def per_unit_ms(before: Counter, after: Counter, units: int) -> dict[str, float]:
    """Milliseconds of CPU per unit of work, per kind, between two readings."""
    return {kind: 1000 * (after[kind] - before[kind]) / units for kind in after if units}

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
    ("express worker", "--hostname express-"),  # the Procfile's express entry
    ("celery worker", "celery -A config worker"),
    ("beat", "celery -A config beat"),
    ("sandbox", "-m sandbox"),
    ("callbacks", "deliver_callbacks"),
    ("redis", "redis-server"),
    ("postgres", "postgres"),
    ("load generator", "bench/tenants.py"),
)


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU seconds so far (user + system) of every process of a known kind: pid → (kind,
    seconds)."""
    found: dict[int, tuple[str, float]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        kind = next((k for k, marker in KINDS if marker in command or marker in stat), None)
        if kind is not None:
            fields = stat.rsplit(")", 1)[1].split()
            found[int(pid)] = (kind, (int(fields[11]) + int(fields[12])) / TICK)
    return found


def per_unit_ms(before: dict, after: dict, units: int) -> dict[str, float]:
    """Milliseconds of CPU per unit of work, per kind, between two readings: each process's
    growth (a process started in between counts from zero; one gone by the second reading is
    left out — subtracting its whole life would make the total wrong, e.g. PostgreSQL backends
    that exit with their client)."""
    spent: Counter = Counter()
    for pid, (kind, seconds) in after.items():
        spent[kind] += seconds - before.get(pid, (kind, 0.0))[1]
    return {kind: 1000 * value / units for kind, value in spent.items() if units}

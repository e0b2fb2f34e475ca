"""One settings truth, measured on the deployed stack (issue 18).

The Procfile stack (``devtools.stack``: gunicorn, worker, beat, callback deliverer, and the
sandbox in place of Meta) is started with honcho on PostgreSQL and Redis from
``scripts/with-services.sh``, once per configuration below, each on a fresh database. In each
that starts, a tenant sends 60 single ``POST /api/v1/messages`` at 4 per second (the traffic
that issue 18 found waiting up to 40 s behind a lost wake-up when processes disagreed on where
debounce keys live) and the figures are read from the ledger: messages left behind (not
``accepted`` 30 s after the last request) and p50/p95/max from ``requested`` to ``accepted``.
Every process's start line (``core.startup``) is collected; a configuration that must not run is
expected to refuse, and its message is kept.

Configurations:

1. ``DJANGO_SETTINGS_MODULE=config.settings.production`` exported — what the README used to
   tell a user to do: the baseline of this run;
2. ``DJANGO_SETTINGS_MODULE`` left out — what the README tells a user now (and a PaaS, systemd
   unit or container that missed the line);
3. ``DJANGO_SETTINGS_MODULE=config.settings.local`` with the production services (Redis
   broker): the development settings by mistake (debug on, a published key, callbacks into
   private networks) — must refuse to start;
4. ``WAYPOST_COORDINATION=memory`` beside the Redis broker: must refuse to start;
5. production without ``SECRET_KEY``: must refuse to start, naming it.

Writes ``bench/results/deployment.md``.

    scripts/with-services.sh .venv/bin/python bench/deployment.py
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Bench, pct
from devtools.stack import ROOT, Stack, body

SINGLES, RATE = 60, 4.0
# What the refused configurations change, set back (to migrate the database for their start).
CONSISTENT = {
    "WAYPOST_COORDINATION": "redis",
    "SECRET_KEY": "bench-" + "k" * 40,
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
}
PROCESSES = ("web", "worker", "beat", "callbacks")
CONFIGS = [
    ("exported", "`DJANGO_SETTINGS_MODULE=config.settings.production` (baseline)",
     "config.settings.production", {}),
    ("left out", "`DJANGO_SETTINGS_MODULE` left out (the README now)", None, {}),
    ("local by mistake", "`DJANGO_SETTINGS_MODULE=config.settings.local`, Redis broker",
     "config.settings.local", {}),
    ("memory coordination", "`WAYPOST_COORDINATION=memory`, Redis broker", None,
     {"WAYPOST_COORDINATION": "memory"}),
    ("no secret key", "production without `SECRET_KEY`", None, {"SECRET_KEY": ""}),
]  # fmt: skip


def measure(key: str, module: str | None, env: dict, index: int) -> dict:
    stack = Stack(
        database=f"waypost_deploy_{index}",
        settings_module=module,
        env={
            "LOG_LEVEL": "INFO",
            "CELERY_IMPORTS": "",
            "SANDBOX_DEFAULT_MPS": "0",
            "SANDBOX_WEBHOOK_DROP_RATE": "1",
            **env,
        },
    )
    outcome: dict = {"key": key}
    refusal = re.compile(r"refuses|waypost\.E\d+|needs |HINT")
    try:
        stack.manage("migrate", "-v0")  # the deploy step before the processes start
    except subprocess.CalledProcessError as exc:
        lines = [line.strip() for line in exc.stderr.splitlines() if refusal.search(line)]
        outcome["refused"] = [f"manage.py migrate: {line}" for line in lines[:3]]
        # Migrated anyway (as a deploy script that ignored the failure would), the processes
        # must refuse by themselves.
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=ROOT,
            env=stack.env | CONSISTENT,
            check=True,
            capture_output=True,
        )
    try:
        try:
            stack.start()
        except RuntimeError:
            lines = [line for line in stack.log if refusal.search(line)]
            outcome["refused"] = outcome.get("refused", []) + lines[:4]
            return outcome
        outcome |= singles(stack)
        outcome["start_lines"] = {
            name: sorted(
                {
                    re.sub(r"^.*?(waypost \S+ \(pid \d+\): )", r"\1", line)
                    for line in stack.log
                    if f"waypost {name} (pid" in line
                }
            )
            for name in PROCESSES
        }
    finally:
        stack.stop()
    return outcome


def singles(stack: Stack) -> dict:
    bench = Bench(stack, {})
    tenant = bench.tenant("low")
    began = time.monotonic()
    for i in range(SINGLES):
        due = began + i / RATE
        time.sleep(max(0.0, due - time.monotonic()))
        answer = tenant["session"].post(
            f"{stack.url}/api/v1/messages",
            json=body(f"+4915900{i:06d}", f"L{i}"),
            headers={"Idempotency-Key": f"low-{i}"},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lags = bench.lags_ms(tenant, "accepted")
        if len(lags) >= SINGLES:
            break
        time.sleep(0.5)
    lags = bench.lags_ms(tenant, "accepted")
    return {
        "accepted": len(lags),
        "left_behind": SINGLES - len(lags),
        "p50": pct(lags, 50) if lags else None,
        "p95": pct(lags, 95) if lags else None,
        "max": max(lags) if lags else None,
    }


def report(outcomes: list[dict], elapsed: float) -> str:
    rows, details = [], []
    for (_key, label, _module, _env), o in zip(CONFIGS, outcomes, strict=True):
        if "accepted" not in o:
            rows.append(f"| {label} | refused to start | — | — | — |")
            details.append(f"**{label}** — refused:\n\n```\n" + "\n".join(o["refused"]) + "\n```")
            continue
        rows.append(
            f"| {label} | {o['accepted']} of {SINGLES} accepted | **{o['left_behind']}** | "
            f"{o['p50']:.0f} / **{o['p95']:.0f}** / {o['max']:.0f} ms | "
            f"{'yes' if consistent(o) else '**no**'} |"
        )
        lines = [line for name in PROCESSES for line in o["start_lines"][name]]
        details.append(f"**{label}** — start lines:\n\n```\n" + "\n".join(lines) + "\n```")
    return "\n".join(
        [
            "# One settings truth, measured on the deployed stack",
            "",
            f"`scripts/with-services.sh .venv/bin/python bench/deployment.py` — "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, Python "
            f"{platform.python_version()}, {elapsed / 60:.1f} min. The Procfile stack "
            "(Procfile.sandbox: the production processes and the sandbox) under honcho; "
            f"{SINGLES} single sends at {RATE:.0f}/s per configuration; times from the ledger "
            "(`requested` → `accepted`). Target: 0 left behind and p95 < 250 ms, or a refusal "
            "naming what to set.",
            "",
            "| Configuration | Outcome | Left behind | requested → accepted p50 / p95 / max | "
            "Every process on the same settings and Redis |",
            "|---|---|---|---|---|",
            *rows,
            "",
            *[d + "\n" for d in details],
        ]
    )


def consistent(outcome: dict) -> bool:
    """Every process logged a start line, and all of them name the same settings and store."""
    lines = [line for name in PROCESSES for line in outcome["start_lines"][name]]
    if any(not outcome["start_lines"][name] for name in PROCESSES):
        return False
    tails = {line.split("): ", 1)[1] for line in lines}
    return len(tails) == 1 and "coordination redis" in next(iter(tails))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "deployment.md")
    args = parser.parse_args()
    began = time.monotonic()
    outcomes = []
    for index, (key, label, module, env) in enumerate(CONFIGS):
        print(f"{label} …", flush=True)
        outcome = measure(key, module, env, index)
        shown = {k: v for k, v in outcome.items() if k != "start_lines"}
        print(f"    {shown}", flush=True)
        outcomes.append(outcome)
    text = report(outcomes, time.monotonic() - began)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print("\n" + text + f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()

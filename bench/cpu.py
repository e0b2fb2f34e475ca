"""Where each millisecond goes: CPU time per message of every process of the Procfile stack
(gunicorn, the Celery worker, beat, the callback deliverer, the sandbox, PostgreSQL, Redis)
while N messages go from the API to ``accepted`` — the profile behind ``bench/NOTES.md``'s
"where the time goes" tables (issue 21).

    scripts/with-services.sh .venv/bin/python bench/cpu.py --mode batch --messages 10000
    scripts/with-services.sh .venv/bin/python bench/cpu.py --mode singles --messages 3000
    WAYPOST_BATCH_SIZE=100 scripts/with-services.sh .venv/bin/python bench/cpu.py ...

Each process's user + system time is read from ``/proc/<pid>/stat`` before and after; the
difference over the messages sent is its cost per message. ``batch``: requests of 1,000 from
two clients; ``singles``: ``wrk`` with 8 keep-alive connections, one message per request (the
scenarios of ``bench/run.py``). The machine's whole capacity is printed beside the total: when
they meet, the stack is CPU-bound and the per-process figures are the budget to cut. Extra
environment for the stack (``WAYPOST_BATCH_SIZE``, ``WAYPOST_CHAIN_MIN_BATCH``, …) is passed on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cputime import cpu_seconds, per_unit_ms
from bench.run import Bench
from devtools.stack import Stack

PASSED_ON = ("WAYPOST_BATCH_SIZE", "WAYPOST_CHAIN_MIN_BATCH", "WAYPOST_SUBMIT_CONCURRENCY")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("batch", "singles"), default="batch")
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    count = args.messages
    env = {"SANDBOX_DEFAULT_MPS": "0", "SANDBOX_WEBHOOK_DROP_RATE": "1", "SANDBOX_SEED": "1"}
    env |= {name: os.environ[name] for name in PASSED_ON if name in os.environ}
    with Stack(database="waypost_cpu", env=env) as stack:
        stack.start()
        bench = Bench(stack, {})
        tenant = bench.tenant("cpu")
        before, started = cpu_seconds(), time.monotonic()
        if args.mode == "batch":
            bench.post_batches(tenant, count)
        else:
            bench.post_singles(tenant, count)
        sent = int(
            stack.sql(
                "select count(*) from messaging_message m join tenants_tenant t on "
                "t.id = m.tenant_id where t.slug = %s and m.idempotency_key <> 'warm-up'",
                [tenant["tenant"]],
            )[0][0]
        )
        bench.wait_state(tenant, sent, "accepted")
        elapsed = time.monotonic() - started
        after = cpu_seconds()
    print(f"{args.mode}: {sent:,} messages → accepted at {sent / elapsed:,.0f} msg/s")
    print("CPU per message, ms:")
    spent = per_unit_ms(before, after, sent)
    for kind, ms in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {kind:<14} {ms:6.2f}")
    cores = os.cpu_count() or 1
    print(
        f"  {'total':<14} {sum(spent.values()):6.2f}  (the machine: {cores} cores = "
        f"{1000 * cores * elapsed / sent:.2f} ms per message in this run)"
    )


if __name__ == "__main__":
    main()

"""Dispatch on the Procfile stack, over HTTP: latency at low load, single-send throughput
against a bare sender, and fairness between tenants.

    WAYPOST_PG_DURABLE=1 scripts/with-services.sh \
        .venv/bin/python bench/dispatch_bench.py [--runs 3]      (or: make bench)

Starts the stack as deployed (``bench.stack``: gunicorn 2x4 gthread, a worker with 2 prefork
processes, beat, the sandbox with no throughput limit and its status webhooks off, so what is
measured is dispatch), then for each run:

1. **low load** — 200 single ``POST /api/v1/messages``, one every 50 ms: p50/p95 from the
   ledger's ``requested`` to ``accepted``, and how many messages the re-drive had to move (it
   runs on the beat with ``WAYPOST_REDRIVE_AFTER`` = 60 s, so anything left behind would show);
2. **singles** — 2,000 single POSTs from 8 client threads: messages/s to ``accepted`` (the
   shape of OTP traffic), against the **baseline**: the sender a user would write instead, one
   fire-and-forget Celery task per message posting the same payload to the sandbox
   (``bench.bare_send``), 2,000 of them on the same worker;
3. **fairness** — tenant B's 50 singles (one every 100 ms) alone, then again while tenant A's
   10,000 messages (10 batch requests of 1,000) are being sent: B's p95 to ``accepted`` in both,
   and how long A's backlog took.

Each figure is the median of ``--runs`` runs (min-max beside it). Results are printed and
written to ``bench/results/dispatch.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import ROOT, TEMPLATE, Stack, body


class Bench:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.keys: dict[str, str] = {}
        self.numbers: dict[str, str] = {}
        self.counter = 0

    def tenant(self, slug: str) -> str:
        created = self.stack.create_tenant(slug, mps=1000)
        self.keys[slug] = created["api_key"]
        self.numbers[slug] = created["sender"]["phone_number_id"]
        return created["tenant_id"]

    def add_template(self, slug: str) -> None:
        answer = self.stack.client(self.keys[slug]).post(
            f"{self.stack.url}/api/v1/templates", json=TEMPLATE, timeout=30
        )
        assert answer.json().get("status") == "APPROVED", answer.text

    def recipient(self) -> str:
        self.counter += 1
        return f"+49151{self.counter:08d}"

    def single(self, session, prefix: str) -> str:
        self.counter += 1
        response = session.post(
            f"{self.stack.url}/api/v1/messages",
            json=body(f"+49151{self.counter:08d}", f"{prefix}-{self.counter}"),
            headers={"Idempotency-Key": f"{prefix}-{self.counter}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def batch(self, session, prefix: str, count: int) -> list[str]:
        items = []
        for _ in range(count):
            self.counter += 1
            items.append(
                {
                    "idempotency_key": f"{prefix}-{self.counter}",
                    **body(f"+49151{self.counter:08d}", f"{prefix}-{self.counter}"),
                }
            )
        response = session.post(
            f"{self.stack.url}/api/v1/messages/batch", json={"messages": items}, timeout=300
        )
        data = response.json()
        assert data["rejected"] == 0, data["results"][:2]
        return [r["message"]["id"] for r in data["results"]]

    # --- what the database says ---------------------------------------------------------------

    def wait_accepted(self, ids: list[str], timeout: float = 600) -> float:
        """Wait until every message is accepted; the monotonic time it was first seen so."""
        deadline = time.monotonic() + timeout
        while True:
            [(done,)] = self.stack.sql(
                "select count(*) from messaging_message where id = any(%s) and state = 'accepted'",
                [ids],
            )
            if done == len(ids):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {done} of {len(ids)} accepted")
            time.sleep(0.05)

    def latencies_ms(self, ids: list[str]) -> list[float]:
        rows = self.stack.sql(
            "select extract(epoch from a.recorded_at - r.recorded_at) * 1000 "
            "from messaging_messageevent r join messaging_messageevent a "
            "on a.message_id = r.message_id and a.type = 'accepted' "
            "where r.type = 'requested' and r.message_id = any(%s)",
            [ids],
        )
        return [float(ms) for (ms,) in rows]

    def redriven(self) -> int:
        [(count,)] = self.stack.sql(
            "select count(*) from messaging_messageevent where type = 'redriven'"
        )
        return count

    # --- scenarios ---------------------------------------------------------------------------

    def low_load(self) -> dict:
        session = self.stack.client(self.keys["lowload"])
        ids = []
        for _ in range(200):
            ids.append(self.single(session, "low"))
            time.sleep(0.05)
        self.wait_accepted(ids)
        lat = self.latencies_ms(ids)
        return {"p50": statistics.median(lat), "p95": pct(lat, 95), "max": max(lat)}

    def singles(self, threads: int = 8, count: int = 2000) -> dict:
        ids: list[str] = []
        lock = threading.Lock()
        per_thread = count // threads

        def client():
            session = self.stack.client(self.keys["singles"])
            mine = [self.single(session, "s") for _ in range(per_thread)]
            with lock:
                ids.extend(mine)

        started = time.monotonic()
        workers = [threading.Thread(target=client) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        api_done = time.monotonic()
        done = self.wait_accepted(ids)
        lat = self.latencies_ms(ids)
        return {
            "rate": len(ids) / (done - started),
            "api_rate": len(ids) / (api_done - started),
            "p50": statistics.median(lat),
            "p99": pct(lat, 99),
        }

    def singles_dispatch_only(self, threads: int = 8, count: int = 2000) -> dict:
        """The same 2,000 singles, created by calling ``message_create`` from 8 threads in
        this process instead of over HTTP: each is committed and nudges the dispatch exactly
        as the API does, without gunicorn and DRF. What dispatch alone sustains."""
        from django.db import connection

        from messaging.services import message_create
        from tenants.models import Tenant

        tenant = Tenant.objects.get(slug="singles")
        ids: list[str] = []
        lock = threading.Lock()

        def client(n: int):
            mine = []
            for i in range(count // threads):
                self.counter += 1
                message, _ = message_create(
                    tenant=tenant,
                    idempotency_key=f"d-{n}-{i}-{self.counter}",
                    body=body(f"+49152{n:02d}{i:06d}", f"d-{n}-{i}"),
                )
                mine.append(str(message.pk))
            connection.close()
            with lock:
                ids.extend(mine)

        started = time.monotonic()
        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        created = time.monotonic()
        done = self.wait_accepted(ids)
        return {"rate": len(ids) / (done - started), "create_rate": len(ids) / (created - started)}

    def bare_sender(self, count: int = 2000) -> dict:
        from config.celery_app import app

        before = self.stack.sandbox("GET", "/_sandbox/stats")["accepted"]
        number = self.numbers["singles"]
        started = time.monotonic()
        for _ in range(count):
            template = body(self.recipient(), "bare")  # Waypost's API body …
            payload = {  # … as Meta's payload, which is what a bare sender posts
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": template["to"],
                "type": "template",
                "template": {
                    **template["template"],
                    "language": {"code": template["template"]["language"]},
                },
            }
            app.send_task("bench.bare_send", args=(number, payload), queue="waypost")
        while (stats := self.stack.sandbox("GET", "/_sandbox/stats"))["accepted"] < before + count:
            if stats["rejected"]:
                raise SystemExit(f"the sandbox refused the bare sender's requests: {stats}")
            time.sleep(0.05)
            if time.monotonic() - started > 600:
                raise SystemExit("the bare sender timed out")
        return {"rate": count / (time.monotonic() - started)}

    def fairness(self) -> dict:
        quiet = self.stack.client(self.keys["quiet"])

        def b_singles() -> list[str]:
            ids = []
            for _ in range(50):
                ids.append(self.single(quiet, "b"))
                time.sleep(0.1)
            return ids

        alone = b_singles()
        self.wait_accepted(alone)
        flood = self.stack.client(self.keys["flood"])
        a_ids: list[str] = []
        started = time.monotonic()
        a_ids += self.batch(flood, "a", 1000)

        def rest_of_flood():
            for _ in range(9):
                a_ids.extend(self.batch(flood, "a", 1000))

        poster = threading.Thread(target=rest_of_flood)
        poster.start()
        under = b_singles()
        self.wait_accepted(under)
        poster.join()
        [(a_left,)] = self.stack.sql(
            "select count(*) from messaging_message where id = any(%s) and state <> 'accepted'",
            [a_ids],
        )
        a_done = self.wait_accepted(a_ids)
        return {
            "alone_p95": pct(self.latencies_ms(alone), 95),
            "flood_p95": pct(self.latencies_ms(under), 95),
            "a_seconds": a_done - started,
            "a_left_when_b_done": a_left,
        }


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else values[0]


def summary(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"{fmt.format(statistics.median(values))} ({low}-{high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["fairness"], help="run one scenario")
    args = parser.parse_args()
    env = {
        "SANDBOX_DEFAULT_MPS": "0",
        "SANDBOX_WEBHOOK_DROP_RATE": "1",  # no status webhooks: this measures dispatch
        "SANDBOX_SEED": "1",
        "WAYPOST_REDRIVE_AFTER": "60",
    }
    with Stack(database="waypost_dispatch_bench", env=env) as stack:
        bench = Bench(stack)
        for slug in ("lowload", "singles", "quiet", "flood"):
            bench.tenant(slug)
        stack.start()
        os.environ.update(stack.env)  # publishing the baseline's tasks needs the Celery app
        import django

        django.setup()
        for slug in ("lowload", "singles", "quiet", "flood"):
            bench.add_template(slug)
        results: dict[str, list[float]] = {}
        try:
            for run in range(1, args.runs + 1):
                if args.only == "fairness":
                    fair = bench.fairness()
                    print(f"run {run}: {fair}", flush=True)
                    continue
                print(f"run {run}/{args.runs}: low load …", flush=True)
                low = bench.low_load()
                print(f"run {run}/{args.runs}: 2,000 singles from 8 threads …", flush=True)
                singles = bench.singles()
                print(f"run {run}/{args.runs}: 2,000 singles, dispatch only …", flush=True)
                direct = bench.singles_dispatch_only()
                print(f"run {run}/{args.runs}: the bare sender …", flush=True)
                bare = bench.bare_sender()
                print(f"run {run}/{args.runs}: fairness (B alone, then under A's 10,000) …")
                fair = bench.fairness()
                for key, value in {
                    "low_p50": low["p50"],
                    "low_p95": low["p95"],
                    "singles_rate": singles["rate"],
                    "singles_api_rate": singles["api_rate"],
                    "singles_p50": singles["p50"],
                    "singles_p99": singles["p99"],
                    "bare_rate": bare["rate"],
                    "ratio": singles["rate"] / bare["rate"],
                    "direct_rate": direct["rate"],
                    "direct_create_rate": direct["create_rate"],
                    "direct_ratio": direct["rate"] / bare["rate"],
                    **fair,
                }.items():
                    results.setdefault(key, []).append(value)
            redriven = bench.redriven()
        finally:
            stack.stop()
    if not args.only:
        report(results, redriven, args.runs)


def report(r: dict[str, list[float]], redriven: int, runs: int) -> None:
    import celery
    import django

    lines = [
        "# Dispatch on the Procfile stack",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with "
        "`WAYPOST_PG_DURABLE=1 scripts/with-services.sh .venv/bin/python bench/dispatch_bench.py"
        f" --runs {runs}`: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Django {django.get_version()}, Celery {celery.__version__}; gunicorn 2x4 gthread, "
        "worker prefork x2, beat, sandbox (no throughput limit, status webhooks off), "
        "PostgreSQL durable, all on one machine. Median of "
        f"{runs} run(s), min-max in brackets.",
        "",
        "| Scenario | Figure |",
        "|---|---|",
        f"| low load: 200 singles, one per 50 ms — `requested` → `accepted` | p50 "
        f"{summary(r['low_p50'], '{:.0f}')} ms, p95 {summary(r['low_p95'], '{:.0f}')} ms |",
        f"| messages moved by the re-drive (sweep on the beat, after 60 s) | {redriven} |",
        f"| 2,000 singles from 8 threads → `accepted` | **{summary(r['singles_rate'], '{:.0f}')}"
        f" messages/s** (API answered {summary(r['singles_api_rate'], '{:.0f}')} requests/s; "
        f"p50 {summary(r['singles_p50'], '{:.0f}')} ms, p99 "
        f"{summary(r['singles_p99'], '{:.0f}')} ms) |",
        f"| the same 2,000 singles created in process (8 threads calling `message_create`: "
        f"commit + nudge, no HTTP) → `accepted`: what dispatch sustains | "
        f"**{summary(r['direct_rate'], '{:.0f}')} messages/s** (created at "
        f"{summary(r['direct_create_rate'], '{:.0f}')}/s; ratio to the bare sender "
        f"{summary(r['direct_ratio'], '{:.2f}')}) |",
        f"| baseline: bare fire-and-forget sender, 2,000 tasks, same worker | "
        f"{summary(r['bare_rate'], '{:.0f}')} messages/s |",
        f"| ratio singles / bare sender | {summary(r['ratio'], '{:.2f}')} |",
        f"| fairness: B's 50 singles alone — p95 to `accepted` | "
        f"{summary(r['alone_p95'], '{:.0f}')} ms |",
        f"| fairness: B's 50 singles during A's 10,000 — p95 to `accepted` | "
        f"**{summary(r['flood_p95'], '{:.0f}')} ms** |",
        f"| A's 10,000 (10 batch requests) → all `accepted` | "
        f"{summary(r['a_seconds'], '{:.1f}')} s; A messages still waiting when B was done: "
        f"{summary(r['a_left_when_b_done'], '{:.0f}')} |",
        "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    out = ROOT / "bench" / "results" / "dispatch.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()

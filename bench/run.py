"""``make bench``: Waypost measured as deployed — the Procfile stack over HTTP, each figure
beside a baseline measured in the same run — written to ``bench/RESULTS.md``.

    make bench                       # every scenario, median of 3 runs (~ 90 min on 2 cores)
    make bench ARGS=--quick          # smaller sizes, 1 run, < 3 min (bench/results/quick.md)
    scripts/with-services.sh .venv/bin/python bench/run.py --only send singles --runs 1

The stack (``devtools.stack``): PostgreSQL (durable: fsync on) and Redis from
``scripts/with-services.sh``; honcho starts the Procfile — gunicorn 2 workers x 4 threads,
the Celery worker with 2 prefork processes, beat, the callback deliverer and the sandbox (no
throughput limit; its status webhooks off except where a scenario turns them on). The
load comes from outside: ``wrk`` (C, two threads) where a scenario saturates the server, an
open-loop Python client where it holds a fixed rate. Times to ``accepted``/``read`` are read
from the ledger (``requested`` → ``accepted``/``status_read`` events, both stamped by the
database's clock).

Scenarios (``SCENARIOS``), each with its baseline:

1. ``send`` — N messages posted to ``/api/v1/messages/batch`` in requests of 1,000 (two
   clients) → all ``accepted``. Baseline: the sender a user would write instead — one
   fire-and-forget Celery task per message posting the same payload to the sandbox
   (``bench.tasks.bare_send``), N of them on the same worker.
2. ``singles`` — N single ``POST /api/v1/messages`` from 16 connections → all ``accepted``;
   p50/p99 from request to ``accepted``. Baseline: the bare sender's rate (scenario 1).
3. ``e2e`` — scenario 1 with the sandbox's status webhooks on (sent, delivered, read) → all
   ``read``; messages/s, statuses applied/s, p50/p99 API call → ``accepted`` and → ``read``.
4. ``ingest`` — signed single-status webhooks (unique bodies for real messages) at saturation
   (wrk, 16 connections) and at a fixed 300 requests/s; baseline: the empty view ``/healthz``
   on the same gunicorn; every 200 checked stored.
5. ``fairness`` — tenant B's 50 singles (one per 100 ms) alone, then while tenant A's 10,000
   (batches of 1,000) are sent: B's p95 to ``accepted`` in both.
6. ``scale`` — scenario 1 at 1,000, 10,000 and 100,000 messages: ms per message at each size
   and database bytes per message (every table's growth, ledger and indexes included).
7. ``api`` — single ``POST /api/v1/messages`` at a fixed 200 requests/s for 10 s: p50/p99
   from the scheduled start (no coordinated omission); baseline: ``/healthz`` at the same rate;
   and the same POSTs with the Celery worker stopped (``SIGSTOP``): the API with the cores to
   itself.
8. ``callbacks`` — a local receiver subscribed to ``message.read``: events delivered per second
   and p50/p99 from the state change (the callback row's creation) to the receiver's 200.
   Baseline: the same receiver's rate for plain POSTs from one client.
9. ``floor`` — the machine with no Waypost code in the way (``bench/floor.py``): gunicorn with
   the Procfile's web flags serving an app that does nothing, and one doing a single
   ``INSERT`` per request; Django's empty view; the sandbox alone; the bare sender's CPU per
   message. Their ceiling for single sends: one stored request, then one bare send.

CPU per message, per process (``bench.cputime``), is printed for the singles scenario and
the floor; ``bench/cpu.py`` gives it for any load.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import floor as floor_app
from bench.cputime import cpu_seconds, per_unit_ms
from bench.signed import signed_status
from devtools.stack import ROOT, TEMPLATE, Stack, body, free_port, procfile_entries

FULL = {
    "send": 20_000,
    "singles": 20_000,
    "e2e": 20_000,
    "ingest_seconds": 10,
    "fairness": 10_000,
    "scale": (1_000, 10_000, 100_000),
    "scale_once": (100_000,),
    "api_seconds": 10,
    "callbacks": 2_000,
    "floor_seconds": 10,
    "floor_bare": 5_000,
}
QUICK = {
    "send": 1_000,
    "singles": 500,
    "e2e": 500,
    "ingest_seconds": 2,
    "fairness": 1_000,
    "scale": (300, 1_000),
    "api_seconds": 2,
    "callbacks": 200,
    "floor_seconds": 2,
    "floor_bare": 500,
}
SCENARIOS = ("send", "singles", "e2e", "ingest", "fairness", "scale", "api", "callbacks", "floor")
WRK_THREADS = 2
SINGLES_CONNECTIONS = 8
WARM_UP = "warm-up"
# The messages a scenario measures: a tenant's, less its warm-up message.
MEASURED = (
    "m.tenant_id = (select id from tenants_tenant where slug = %s) "
    f"and m.idempotency_key <> '{WARM_UP}'"
)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def progress(text: str) -> None:
    end = "\r" if sys.stdout.isatty() else "\n"
    print(f"    {text}\033[K" if end == "\r" else f"    {text}", end=end, flush=True)


class Bench:
    """Tenants, clients and what the database says, for the scenarios below."""

    def __init__(self, stack: Stack, sizes: dict) -> None:
        self.stack = stack
        self.sizes = sizes
        self.tenants: dict[str, dict] = {}
        self.serial = 0
        self.scale_runs = 0

    # --- set-up ------------------------------------------------------------------------------

    def tenant(self, prefix: str) -> dict:
        """A fresh tenant (sender, API key) with the approved template."""
        self.serial += 1
        slug = f"{prefix}{self.serial}"
        created = self.stack.create_tenant(slug, mps=1000)
        created["session"] = self.stack.client(created["api_key"])
        answer = created["session"].post(f"{self.stack.url}/api/v1/templates", json=TEMPLATE)
        assert answer.json().get("status") == "APPROVED", answer.text
        # Warm up: a new tenant's first message (its caches in each process are cold); that
        # one-time cost is not what a scenario measures (its figures leave it out).
        answer = created["session"].post(
            f"{self.stack.url}/api/v1/messages",
            json=body("+4915100000000", "warm-up"),
            headers={"Idempotency-Key": WARM_UP},
        )
        assert answer.status_code == 202, answer.text
        self.tenants[slug] = created
        self.wait_state(created, 0, "accepted")
        return created

    # --- load --------------------------------------------------------------------------------

    def post_batches(self, tenant: dict, count: int, *, clients: int = 2) -> float:
        """``count`` messages in batch requests of 1,000 from ``clients`` threads; returns the
        monotonic time the first request left."""
        self.serial += 1
        run = self.serial
        chunks = [range(i, min(i + 1000, count)) for i in range(0, count, 1000)]

        def post(chunk: range) -> None:
            items = [
                {"idempotency_key": f"{run}-{i}", **body(f"+49152{run % 100:02d}{i:06d}", str(i))}
                for i in chunk
            ]
            answer = tenant["session"].post(
                f"{self.stack.url}/api/v1/messages/batch", json={"messages": items}, timeout=600
            )
            data = answer.json()
            assert answer.status_code == 200 and data["rejected"] == 0, answer.text[:500]

        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(post, chunks))
        return started

    def post_singles(self, tenant: dict, count: int) -> dict:
        """``count`` single sends from ``SINGLES_CONNECTIONS`` keep-alive connections (wrk)."""
        return self.wrk(
            f"{self.stack.url}/api/v1/messages",
            script=str(ROOT / "bench" / "singles.lua"),
            seconds=3600,
            connections=SINGLES_CONNECTIONS,
            env={
                "API_KEY": tenant["api_key"],
                "PER_THREAD": str(count // WRK_THREADS),
                "RUN": tenant["tenant"],
            },
            until=lambda: self.created(tenant, count, progress_of="created"),
        )

    def wrk(
        self,
        url: str,
        *,
        script: str | None = None,
        seconds: float = 10,
        env=None,
        until=None,
        connections: int = 16,
    ) -> dict:
        """wrk for ``seconds``, or until ``until()`` is true (wrk cannot stop after a count:
        the script stops sending, and this interrupts wrk, which then reports)."""
        cmd = [shutil.which("wrk") or "wrk", f"-t{WRK_THREADS}", f"-c{connections}"]
        cmd += [f"-d{seconds}s"]
        cmd += ["--latency", *(["-s", script] if script else []), url]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, env=os.environ | (env or {})
        )
        while until is not None and proc.poll() is None and not until():
            time.sleep(0.2)
        if proc.poll() is None and until is not None:
            proc.send_signal(signal.SIGINT)
        out = proc.communicate()[0]
        if proc.returncode:
            raise SystemExit(f"wrk failed: {out}")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}

        def latency(p: str) -> float:
            value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()
            return float(value) * scale[unit]

        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": latency("50"),
            "p99": latency("99"),
            "errors": int(non_2xx.group(1)) if non_2xx else 0,
        }

    def open_loop(self, send: Callable[[requests.Session], int], rate: float, seconds: float):
        """``rate`` requests a second for ``seconds``, each started at its scheduled time
        whatever the earlier ones are doing; latency counts from the scheduled time."""
        total = int(rate * seconds)
        local = threading.local()
        start = time.monotonic() + 0.2
        latencies: list[float] = []
        statuses: list[int] = []

        def one(i: int) -> None:
            due = start + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            if not hasattr(local, "session"):
                local.session = requests.Session()
            code = send(local.session)
            latencies.append((time.monotonic() - due) * 1000)
            statuses.append(code)

        with ThreadPoolExecutor(64) as pool:
            list(pool.map(one, range(total)))
        bad = sum(1 for code in statuses if not 200 <= code < 300)
        return {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "errors": bad}

    # --- what the database says ----------------------------------------------------------------

    def wait_state(self, tenant: dict, count: int, state: str, timeout: float = 1800) -> float:
        """Wait until ``count`` of the tenant's messages are in ``state`` (or past it, for
        ``accepted``); the monotonic time it was first seen."""
        states = ["accepted", "sent", "delivered", "read"] if state == "accepted" else [state]
        deadline = time.monotonic() + timeout
        last: tuple[float, int | None] = (time.monotonic(), None)
        if count == 0:  # the warm-up message
            query = (
                "select count(*) from messaging_message m join tenants_tenant t on "
                "t.id = m.tenant_id where t.slug = %s and m.state = any(%s)"
            )
            count = 1
        else:
            query = (
                f"select count(*) from messaging_message m where {MEASURED} and m.state = any(%s)"
            )
        while True:
            [(done,)] = self.stack.sql(query, [tenant["tenant"], states])
            now = time.monotonic()
            if done >= count:
                return now
            if now > deadline:
                raise SystemExit(f"timed out: {done} of {count} {state}")
            if last[1] is None:  # the first look: rates count from here
                last = (now, done)
            elif now - last[0] >= 1:
                progress(
                    f"{done:,}/{count:,} {state} ({(done - last[1]) / (now - last[0]):,.0f}/s)"
                )
                last = (now, done)
            time.sleep(0.1)

    def created(self, tenant: dict, count: int, progress_of: str = "") -> bool:
        [(done,)] = self.stack.sql(
            f"select count(*) from messaging_message m where {MEASURED}", [tenant["tenant"]]
        )
        if progress_of:
            progress(f"{done:,}/{count:,} {progress_of}")
        return done >= count

    def lags_ms(self, tenant: dict, event: str) -> list[float]:
        rows = self.stack.sql(
            "select extract(epoch from e.recorded_at - r.recorded_at) * 1000 "
            "from messaging_messageevent r "
            "join messaging_messageevent e on e.message_id = r.message_id and e.type = %s "
            "join messaging_message m on m.id = r.message_id "
            f"where r.type = 'requested' and {MEASURED}",
            [event, tenant["tenant"]],
        )
        return [float(ms) for (ms,) in rows]

    def db_bytes(self) -> int:
        [(size,)] = self.stack.sql(
            "select sum(pg_total_relation_size(c.oid)) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind = 'r' and n.nspname = 'public'"
        )
        return int(size)

    def deliveries_settle(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.stack.sql(
            "select 1 from webhooks_webhookdelivery where status = 'pending' limit 1"
        ):
            if time.monotonic() > deadline:
                raise SystemExit("stored webhooks were not processed in time")
            time.sleep(0.2)

    def sandbox_webhooks(self, on: bool) -> None:
        self.stack.sandbox("POST", "/_sandbox/config", {"webhook_drop_rate": 0 if on else 1})

    # --- baselines ---------------------------------------------------------------------------

    def bare_sender(self, count: int) -> float:
        """messages/s of the fire-and-forget sender on the same worker processes."""
        from config.celery_app import app

        tenant = self.tenant("bare")
        number = tenant["sender"]["phone_number_id"]
        stats = self.stack.sandbox("GET", "/_sandbox/stats")
        before, refused_before = stats["accepted"], sum(stats["rejected"].values())
        started = time.monotonic()
        for i in range(count):
            template = body(f"+49157{self.serial % 100:02d}{i:06d}", "bare")
            payload = {  # the same message as Meta's payload, which is what a bare sender posts
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
        last, refused = (time.monotonic(), 0), 0
        while (stats := self.stack.sandbox("GET", "/_sandbox/stats"))["accepted"] + refused < (
            before + count
        ):
            # A refused request is answered too: the bare sender is done with it. One refusal
            # in 335,000 requests (code 100, a body the sandbox could not read; not traced)
            # must not end a 45-minute run: it is reported.
            refused = sum(stats["rejected"].values()) - refused_before
            if refused > count // 100:
                raise SystemExit(f"the sandbox refused the bare sender's requests: {stats}")
            now, done = time.monotonic(), stats["accepted"] - before
            if now - last[0] >= 1:
                progress(
                    f"bare sender {done:,}/{count:,} ({(done - last[1]) / (now - last[0]):,.0f}/s)"
                )
                last = (now, done)
            time.sleep(0.1)
        if refused:
            progress(f"bare sender: {refused} of {count:,} refused by the sandbox: {stats}")
        return count / (time.monotonic() - started)

    # --- scenarios ---------------------------------------------------------------------------

    def send(self, count: int | None = None) -> dict:
        count = count or self.sizes["send"]
        tenant = self.tenant("send")
        before = self.db_bytes()
        started = self.post_batches(tenant, count)
        api_done = time.monotonic()
        done = self.wait_state(tenant, count, "accepted")
        bare = self.bare_sender(count)
        rate = count / (done - started)
        return {
            "rate": rate,
            "intake": count / (api_done - started),
            "bare": bare,
            "ratio": rate / bare,
            "ms_per_message": (done - started) * 1000 / count,
            "bytes_per_message": (self.db_bytes() - before) / count,
        }

    def singles(self) -> dict:
        """Single sends from 8 keep-alive connections (``wrk -c8``: the issue's "8 client
        threads", in C so the client's own CPU stays small) → all ``accepted``, and the bare
        sender with as many messages right after, on the same stack."""
        count = self.sizes["singles"]
        tenant = self.tenant("singles")
        cpu, started = cpu_seconds(), time.monotonic()
        load = self.post_singles(tenant, count)
        api_done = time.monotonic()
        if load["errors"]:
            raise SystemExit(f"{load['errors']} single sends were refused")
        done = self.wait_state(tenant, load["requests"], "accepted")
        spent = per_unit_ms(cpu, cpu_seconds(), load["requests"])
        lags = self.lags_ms(tenant, "accepted")
        rate = load["requests"] / (done - started)
        cpu = cpu_seconds()
        bare = self.bare_sender(load["requests"])
        bare_spent = per_unit_ms(cpu, cpu_seconds(), load["requests"])
        progress(f"CPU ms per message, Waypost: {_per_kind(spent)}")
        progress(f"CPU ms per message, bare sender: {_per_kind(bare_spent)}")
        return {
            "rate": rate,
            "bare": bare,
            "ratio": rate / bare,
            "cpu_ms": sum(spent.values()),
            "bare_cpu_ms": sum(bare_spent.values()),
            "api_rate": load["requests"] / (api_done - started),
            "api_p99": load["p99"],
            "p50": pct(lags, 50),
            "p99": pct(lags, 99),
        }

    def e2e(self) -> dict:
        count = self.sizes["e2e"]
        tenant = self.tenant("e2e")
        before = self.db_bytes()
        self.sandbox_webhooks(True)
        try:
            started = self.post_batches(tenant, count)
            done = self.wait_state(tenant, count, "read")
        finally:
            self.sandbox_webhooks(False)
        [(statuses,)] = self.stack.sql(
            "select count(*) from messaging_messageevent e join messaging_message m "
            f"on m.id = e.message_id where {MEASURED} and e.type like 'status_%%'",
            [tenant["tenant"]],
        )
        accepted, read = self.lags_ms(tenant, "accepted"), self.lags_ms(tenant, "status_read")
        return {
            "rate": count / (done - started),
            "statuses_rate": statuses / (done - started),
            "accepted_p50": pct(accepted, 50),
            "accepted_p99": pct(accepted, 99),
            "read_p50": pct(read, 50),
            "read_p99": pct(read, 99),
            "bytes_per_message": (self.db_bytes() - before) / count,
        }

    def ingest(self) -> dict:
        """Status webhooks for real messages (sent first, webhooks off), one unique signed body
        per request, at saturation and at a fixed rate."""
        seconds = self.sizes["ingest_seconds"]
        # Two statuses per message: enough bodies for wrk at up to 1,500 requests/s, then the
        # fixed rate.
        count = (seconds * 1500 + seconds * 300) // 2 + 500
        tenant = self.tenant("ingest")
        self.post_batches(tenant, count)
        self.wait_state(tenant, count, "accepted")
        rows = self.stack.sql(
            f"select m.provider_message_id, m.recipient from messaging_message m where {MEASURED}",
            [tenant["tenant"]],
        )
        bodies = Path(tempfile.mkdtemp()) / "bodies.tsv"
        with bodies.open("w") as out:
            for status in ("delivered", "read"):
                for n, (wamid, recipient) in enumerate(rows):
                    out.write(self._signed_status(tenant, wamid, recipient, status, n) + "\n")
        url = f"{self.stack.url}/webhooks/whatsapp"
        [(stored_before,)] = self.stack.sql("select count(*) from webhooks_webhookdelivery")
        empty = self.wrk(f"{self.stack.url}/healthz", seconds=seconds)
        hooks = self.wrk(
            url,
            script=str(ROOT / "bench" / "hooks.lua"),
            seconds=seconds,
            env={"WEBHOOK_BODIES": str(bodies), "WRK_THREADS": str(WRK_THREADS)},
        )
        [(stored,)] = self.stack.sql("select count(*) from webhooks_webhookdelivery")
        fixed_rate = 300
        # The fixed-rate part takes its bodies from the end (wrk's threads took theirs from the
        # start, interleaved), so no body is sent twice.
        lines = bodies.read_text().splitlines()[-fixed_rate * seconds :]
        if len(lines) + hooks["requests"] > 2 * len(rows):
            raise SystemExit("the webhook bodies ran out: raise the count")
        self.deliveries_settle()  # the worker has applied the burst: the rate runs on its own
        queue = iter(lines)
        lock = threading.Lock()

        def one(session: requests.Session) -> int:
            with lock:
                signature, data = next(queue).split("\t", 1)
            return session.post(
                url,
                data=data,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                timeout=30,
            ).status_code

        fixed = self.open_loop(one, fixed_rate, seconds)
        empty_fixed = self.open_loop(
            lambda s: s.get(f"{self.stack.url}/healthz", timeout=30).status_code,
            fixed_rate,
            seconds,
        )
        [(stored_after,)] = self.stack.sql("select count(*) from webhooks_webhookdelivery")
        self.deliveries_settle()  # the next scenario starts on an idle stack
        answered = hooks["requests"] - hooks["errors"] + int(fixed_rate * seconds) - fixed["errors"]
        return {
            "rps": hooks["rps"],
            "p50": hooks["p50"],
            "p99": hooks["p99"],
            "empty_rps": empty["rps"],
            "empty_p99": empty["p99"],
            "ratio": hooks["rps"] / empty["rps"],
            "fixed_p50": fixed["p50"],
            "fixed_p99": fixed["p99"],
            "empty_fixed_p99": empty_fixed["p99"],
            # Every request answered 200 must be stored (wrk counts answered requests only).
            "unstored": max(0, answered - (stored_after - stored_before)),
            "stored": stored - stored_before,
        }

    def _signed_status(self, tenant, wamid: str, recipient: str, status: str, n: int) -> str:
        signature, data = signed_status(tenant["sender"], wamid, recipient, status, n)
        return f"{signature}\t{data}"

    def fairness(self) -> dict:
        a, b = self.tenant("flood"), self.tenant("quiet")

        def b_singles(prefix: str) -> None:
            for i in range(50):
                answer = b["session"].post(
                    f"{self.stack.url}/api/v1/messages",
                    json=body(f"+49159{self.serial % 100:02d}{i:06d}", f"{prefix}{i}"),
                    headers={"Idempotency-Key": f"{prefix}-{self.serial}-{i}"},
                    timeout=60,
                )
                assert answer.status_code == 202, answer.text
                time.sleep(0.1)

        b_singles("alone")
        self.wait_state(b, 50, "accepted")
        alone = self.lags_ms(b, "accepted")
        count = self.sizes["fairness"]
        flood = threading.Thread(target=self.post_batches, args=(a, count), kwargs={"clients": 1})
        started = time.monotonic()
        flood.start()
        time.sleep(0.5)  # A's first batch is in
        self.serial += 1
        b_singles("under")
        self.wait_state(b, 100, "accepted")
        flood.join()
        [(a_left,)] = self.stack.sql(
            f"select count(*) from messaging_message m where {MEASURED} and m.state = 'queued'",
            [a["tenant"]],
        )
        a_done = self.wait_state(a, count, "accepted")
        under = sorted(self.lags_ms(b, "accepted"))
        for lag in alone:
            under.remove(lag)
        return {
            "alone_p95": pct(alone, 95),
            "flood_p95": pct(under, 95),
            "a_seconds": a_done - started,
            "a_left": a_left,
        }

    def scale(self) -> dict:
        """Sizes in ``sizes["scale"]``; the largest (``scale_once``) in the first run only, to
        keep ``make bench`` near an hour on 2 cores (RESULTS.md says which figure is one run)."""
        figures = {}
        self.scale_runs += 1
        once = self.sizes.get("scale_once", ())
        for count in self.sizes["scale"]:
            if count in once and self.scale_runs > 1:
                continue
            print(f"    {count:,} messages", flush=True)
            sent = self.send_only(count)
            figures[f"ms_{count}"] = sent["ms_per_message"]
            figures[f"bytes_{count}"] = sent["bytes_per_message"]
        return figures

    def send_only(self, count: int) -> dict:
        tenant = self.tenant("scale")
        before = self.db_bytes()
        started = self.post_batches(tenant, count)
        done = self.wait_state(tenant, count, "accepted")
        return {
            "ms_per_message": (done - started) * 1000 / count,
            "bytes_per_message": (self.db_bytes() - before) / count,
        }

    def api(self) -> dict:
        tenant = self.tenant("api")
        seconds, counter, lock = self.sizes["api_seconds"], iter(range(10**9)), threading.Lock()

        def one(session: requests.Session) -> int:
            with lock:
                i = next(counter)
            return session.post(
                f"{self.stack.url}/api/v1/messages",
                json=body(f"+49155{self.serial % 100:02d}{i:06d}", str(i)),
                headers={
                    "Authorization": f"Bearer {tenant['api_key']}",
                    "Idempotency-Key": f"api-{i}",
                },
                timeout=30,
            ).status_code

        sent = self.open_loop(one, 200, seconds)
        empty = self.open_loop(
            lambda s: s.get(f"{self.stack.url}/healthz", timeout=30).status_code, 200, seconds
        )
        # The same load with the Celery worker stopped (SIGSTOP; the messages wait `queued`):
        # what the API costs when it has the cores to itself.
        workers = [int(pid) for pid in _pids("celery -A config worker")]
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            alone = self.open_loop(one, 200, seconds)
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        if sent["errors"] or alone["errors"]:
            raise SystemExit(f"{sent['errors'] + alone['errors']} API requests failed")
        self.wait_state(tenant, 2 * 200 * seconds, "accepted")
        return {
            "p50": sent["p50"],
            "p99": sent["p99"],
            "empty_p50": empty["p50"],
            "empty_p99": empty["p99"],
            "alone_p50": alone["p50"],
            "alone_p99": alone["p99"],
        }

    def callbacks(self) -> dict:
        from devtools.servers import start_receiver

        count = self.sizes["callbacks"]
        receiver, server = start_receiver()
        try:
            tenant = self.tenant("callbacks")
            self.stack.subscribe(tenant["session"], receiver.url, ["message.read"])
            self.sandbox_webhooks(True)
            try:
                started = self.post_batches(tenant, count)
                deadline = time.monotonic() + 600
                while len(receiver.delivered()) < count:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{len(receiver.delivered())} of {count} callbacks")
                    progress(f"{len(receiver.delivered()):,}/{count:,} callbacks")
                    time.sleep(0.2)
            finally:
                self.sandbox_webhooks(False)
            delivered = receiver.delivered()
            created = {
                f"msg_{pk.hex}": at.timestamp()
                for pk, at in self.stack.sql(
                    "select e.id, e.created_at from callbacks_callbackevent e "
                    "join tenants_tenant t on t.id = e.tenant_id where t.slug = %s",
                    [tenant["tenant"]],
                )
            }
            lags = [(t - created[h["webhook-id"]]) * 1000 for t, h, _ in delivered]
            first = min(created.values())
            rate = len(delivered) / (max(t for t, _, _ in delivered) - first)
            # Baseline: the same receiver answering plain POSTs from one client.
            session, plain = requests.Session(), time.monotonic()
            for _ in range(500):
                session.post(receiver.url, data=b"{}", timeout=10)
            baseline = 500 / (time.monotonic() - plain)
            del started
            return {"rate": rate, "p50": pct(lags, 50), "p99": pct(lags, 99), "baseline": baseline}
        finally:
            server.shutdown()

    def floor(self) -> dict:
        """What this machine does with no Waypost code in the way, from ``SINGLES_CONNECTIONS``
        keep-alive connections each: gunicorn (the Procfile's web flags) serving an app that
        does nothing, the same serving one ``INSERT`` of the single send's body per request
        (``bench/floor.py``), Django's empty view (``/healthz``), the sandbox alone (Meta-shaped
        sends straight to it), and the bare sender's CPU per message. The ceiling for single
        sends: a request that stores the message, then the bare sender's send, on these cores."""
        seconds = self.sizes["floor_seconds"]
        tenant = self.tenant("floor")
        port = free_port()
        web = procfile_entries()["web"]
        assert "config.wsgi:application" in web, "the web line no longer names the app"
        web = web.replace("config.wsgi:application", "bench.floor:app")
        self.stack.sql(floor_app.TABLE)
        app = subprocess.Popen(
            ["bash", "-c", f"exec {web}"],
            cwd=ROOT,
            env=self.stack.env | {"PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{url}/empty", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the floor app did not start")
                time.sleep(0.2)
            found: dict[str, float] = {}
            single = {
                "script": str(ROOT / "bench" / "singles.lua"),
                "env": {"API_KEY": "-", "PER_THREAD": str(10**9), "RUN": "floor"},
            }
            from django.conf import settings

            sends = (
                f"{self.stack.sandbox_url}/{settings.WHATSAPP_GRAPH_VERSION}/"
                f"{tenant['sender']['phone_number_id']}/messages"
            )
            # name, URL, wrk's script, the processes whose CPU the request costs
            for name, target, extra, kinds in (
                ("empty", f"{url}/empty", {}, ("floor app",)),
                ("healthz", f"{self.stack.url}/healthz", {}, ("gunicorn",)),
                ("insert", f"{url}/insert", single, ("floor app", "postgres")),
                ("sandbox", sends, {"script": str(ROOT / "bench" / "send.lua")}, ("sandbox",)),
            ):
                # Warm first: threads started, connections open (a cold app's first second
                # measured 40 % slower).
                self.wrk(target, seconds=2, connections=SINGLES_CONNECTIONS, **extra)
                before = cpu_seconds()
                load = self.wrk(target, seconds=seconds, connections=SINGLES_CONNECTIONS, **extra)
                if load["errors"]:
                    raise SystemExit(f"floor {name}: {load['errors']} requests failed")
                spent = per_unit_ms(before, cpu_seconds(), load["requests"])
                progress(f"floor {name}: {load['rps']:,.0f} req/s; CPU ms: {_per_kind(spent)}")
                found[f"{name}_rps"] = load["rps"]
                found[f"{name}_cpu"] = sum(spent.get(kind, 0.0) for kind in kinds)
        finally:
            os.killpg(app.pid, signal.SIGTERM)
            app.wait(timeout=30)
        count = self.sizes["floor_bare"]
        before = cpu_seconds()
        found["bare"] = self.bare_sender(count)
        spent = per_unit_ms(before, cpu_seconds(), count)
        progress(f"floor bare sender: {found['bare']:,.0f} msg/s; CPU ms: {_per_kind(spent)}")
        found["bare_cpu"] = sum(spent.values())
        # Both saturate the cores: a message that is one stored request, then one bare send.
        found["ceiling"] = 1 / (1 / found["insert_rps"] + 1 / found["bare"])
        found["ceiling_ratio"] = found["ceiling"] / found["bare"]
        return found


def _pids(command: str) -> list[str]:
    """The processes whose command line contains ``command``."""
    found = subprocess.run(["pgrep", "-f", command], capture_output=True, text=True)
    return found.stdout.split()


def _per_kind(spent: dict[str, float]) -> str:
    ranked = sorted(spent.items(), key=lambda item: -item[1])
    return ", ".join(f"{kind} {ms:.2f}" for kind, ms in ranked if ms >= 0.01)


def fmt(values: list[float], spec: str) -> str:
    med = spec.format(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} ({spec.format(min(values))}-{spec.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--runs", type=int, help="runs per scenario (3; --quick: 1)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="these scenarios only")
    parser.add_argument("--out", type=Path, help="where to write the results")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=N",
        help="one scenario's size instead of the default, e.g. --size singles=3000",
    )
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in sizes or not value.isdigit():
            parser.error(f"--size {item}: NAME=N with NAME one of {', '.join(sizes)}")
        sizes[name] = int(value)
    runs = args.runs or (1 if args.quick else 3)
    chosen = args.only or SCENARIOS
    out = args.out or ROOT / "bench" / ("results/quick.md" if args.quick else "RESULTS.md")
    env = {
        "SANDBOX_DEFAULT_MPS": "0",
        "SANDBOX_WEBHOOK_DROP_RATE": "1",  # status webhooks only where a scenario turns them on
        "SANDBOX_SEED": "1",
        "WAYPOST_CALLBACK_ALLOW_PRIVATE": "1",
        "WAYPOST_CALLBACK_REQUIRE_HTTPS": "0",
    }
    began = time.monotonic()
    results: dict[str, dict[str, list[float]]] = {}
    with Stack(database="waypost_bench", env=env) as stack:
        stack.start()
        os.environ.update(stack.env)  # the baseline publishes tasks with the Celery app
        import django

        django.setup()
        bench = Bench(stack, sizes)
        for run in range(1, runs + 1):
            for name in chosen:
                print(f"run {run}/{runs}: {name} …", flush=True)
                t0 = time.monotonic()
                figures = getattr(bench, name)()
                print(f"    {_short(figures)}  [{time.monotonic() - t0:.0f} s]", flush=True)
                for key, value in figures.items():
                    results.setdefault(name, {}).setdefault(key, []).append(value)
        stack.stop()
    text = report(results, sizes, runs, args, time.monotonic() - began)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n" + text + f"\nwritten to {out}")


def _short(figures: dict) -> str:
    return ", ".join(f"{k} {v:,.1f}" for k, v in figures.items())


def report(r: dict, sizes: dict, runs: int, args, elapsed: float) -> str:
    import celery
    import django
    import psycopg

    from devtools.stack import postgres_version

    command = "make bench" + (" ARGS=--quick" if args.quick else "")
    if args.only or args.runs:
        command = "scripts/with-services.sh .venv/bin/python bench/run.py " + " ".join(sys.argv[1:])
    lines = [
        "# Waypost as deployed: benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` in "
        f"{elapsed / 60:.0f} min. Machine: {os.cpu_count()} cores "
        f"({_cpu()}), {_memory()}; {platform.platform()}. Python {platform.python_version()}, "
        f"Django {django.get_version()}, Celery {celery.__version__}, psycopg "
        f"{psycopg.__version__}, PostgreSQL {postgres_version()} (fsync on), Redis, wrk.",
        "",
        "Stack: the Procfile under honcho — gunicorn 2 workers x 4 gthreads, Celery worker "
        "prefork x2, beat, callback deliverer, sandbox (no throughput limit) — and the load "
        "generator, all on this one machine. Each figure is the median of "
        f"{runs} run(s), min-max in brackets.",
        "",
        "| # | Scenario | Waypost | Baseline (same run) | Target |",
        "|---|---|---|---|---|",
    ]
    row = lines.append
    if s := r.get("send"):
        row(
            f"| 1 | Send: {sizes['send']:,} over HTTP in batches of 1,000 → all `accepted` | "
            f"**{fmt(s['rate'], '{:,.0f}')} msg/s** (intake {fmt(s['intake'], '{:,.0f}')} msg/s)"
            f" | bare fire-and-forget sender {fmt(s['bare'], '{:,.0f}')} msg/s; ratio "
            f"**{fmt(s['ratio'], '{:.2f}')}x** | ≥ 2x (goal 3x) |"
        )
    if s := r.get("singles"):
        row(
            f"| 2 | Singles: {sizes['singles']:,} `POST /api/v1/messages`, "
            f"{SINGLES_CONNECTIONS} keep-alive connections → all `accepted` | "
            f"**{fmt(s['rate'], '{:,.0f}')} msg/s**; request → `accepted` p50 "
            f"{fmt(s['p50'], '{:,.0f}')} ms, p99 {fmt(s['p99'], '{:,.0f}')} ms (API "
            f"{fmt(s['api_rate'], '{:,.0f}')} req/s); CPU {fmt(s['cpu_ms'], '{:.2f}')} ms/msg, "
            f"every process | bare sender, as many messages {fmt(s['bare'], '{:,.0f}')} msg/s "
            f"(CPU {fmt(s['bare_cpu_ms'], '{:.2f}')} ms/msg); ratio "
            f"**{fmt(s['ratio'], '{:.2f}')}x** | "
            "≥ 1.0x (goal 1.5x) |"
        )
    if s := r.get("e2e"):
        row(
            f"| 3 | End to end: {sizes['e2e']:,} with status webhooks on → all `read` | "
            f"**{fmt(s['rate'], '{:,.0f}')} msg/s**, {fmt(s['statuses_rate'], '{:,.0f}')} "
            f"statuses applied/s; API → `accepted` p50 {fmt(s['accepted_p50'], '{:,.0f}')} / "
            f"p99 {fmt(s['accepted_p99'], '{:,.0f}')} ms, → `read` p50 "
            f"{fmt(s['read_p50'], '{:,.0f}')} / p99 {fmt(s['read_p99'], '{:,.0f}')} ms; "
            f"{fmt(s['bytes_per_message'], '{:,.0f}')} database bytes/message with its "
            "statuses and stored webhooks | — | ≥ 300 msg/s; ≤ 4 KB/msg |"
        )
    if s := r.get("ingest"):
        row(
            f"| 4 | Webhook ingest: signed single-status POSTs, unique bodies | saturation "
            f"**{fmt(s['rps'], '{:,.0f}')} req/s**, p50 {fmt(s['p50'], '{:,.1f}')} / p99 "
            f"{fmt(s['p99'], '{:,.1f}')} ms; at 300 req/s p50 {fmt(s['fixed_p50'], '{:,.1f}')}"
            f" / p99 **{fmt(s['fixed_p99'], '{:,.1f}')} ms**; answered but not stored: "
            f"{fmt(s['unstored'], '{:,.0f}')} | empty view {fmt(s['empty_rps'], '{:,.0f}')} "
            f"req/s (p99 {fmt(s['empty_p99'], '{:,.1f}')} ms; at 300 req/s p99 "
            f"{fmt(s['empty_fixed_p99'], '{:,.1f}')} ms); ratio **{fmt(s['ratio'], '{:.2f}')}**"
            " | ≥ 0.7x, p99 < 100 ms |"
        )
    if s := r.get("fairness"):
        row(
            f"| 5 | Fairness: B's 50 singles while A sends {sizes['fairness']:,} | B p95 → "
            f"`accepted` **{fmt(s['flood_p95'], '{:,.0f}')} ms** (A's backlog took "
            f"{fmt(s['a_seconds'], '{:,.1f}')} s; still queued when B was done: "
            f"{fmt(s['a_left'], '{:,.0f}')}) | B alone p95 {fmt(s['alone_p95'], '{:,.0f}')} ms"
            " | < 1 s (aim ≤ 0.5 s) |"
        )
    if s := r.get("scale"):
        per = "; ".join(
            f"{n:,}{' (1 run)' if len(s[f'ms_{n}']) == 1 and runs > 1 else ''}: "
            f"{fmt(s[f'ms_{n}'], '{:.2f}')} ms/msg, {fmt(s[f'bytes_{n}'], '{:,.0f}')} B/msg"
            for n in sizes["scale"]
        )
        low, high = sizes["scale"][0], sizes["scale"][-1]
        s["flatness"] = [statistics.median(s[f"ms_{high}"]) / statistics.median(s[f"ms_{low}"])]
        row(
            f"| 6 | Scale: scenario 1 at {', '.join(f'{n:,}' for n in sizes['scale'])} | {per} | "
            f"largest / smallest time per message **{fmt(s['flatness'], '{:.2f}')}x** | "
            "flat within 1.2x; ≤ 2 KB/msg |"
        )
    if s := r.get("api"):
        row(
            f"| 7 | API latency: single POSTs at 200 req/s for {sizes['api_seconds']} s | p50 "
            f"{fmt(s['p50'], '{:,.1f}')} ms, p99 **{fmt(s['p99'], '{:,.1f}')} ms**; the same "
            f"with the Celery worker stopped: p50 {fmt(s['alone_p50'], '{:,.1f}')} ms, p99 "
            f"**{fmt(s['alone_p99'], '{:,.1f}')} ms** | `/healthz` at 200 req/s: p50 "
            f"{fmt(s['empty_p50'], '{:,.1f}')} ms, p99 {fmt(s['empty_p99'], '{:,.1f}')} ms | "
            "p99 < 50 ms |"
        )
    if s := r.get("callbacks"):
        row(
            f"| 8 | Callbacks: {sizes['callbacks']:,} `message.read` to a local receiver | "
            f"**{fmt(s['rate'], '{:,.0f}')} events/s**; state change → receiver's 200 p50 "
            f"{fmt(s['p50'], '{:,.0f}')} ms, p99 **{fmt(s['p99'], '{:,.0f}')} ms** | the "
            f"receiver alone: {fmt(s['baseline'], '{:,.0f}')} plain POSTs/s from one client | — |"
        )
    if s := r.get("floor"):
        row(
            f"| 9 | Floor: the machine with no Waypost code, {SINGLES_CONNECTIONS} keep-alive "
            "connections | gunicorn (Procfile flags) and an app doing nothing "
            f"{fmt(s['empty_rps'], '{:,.0f}')} req/s ({fmt(s['empty_cpu'], '{:.2f}')} ms CPU); "
            f"the same doing one INSERT of the single send's body {fmt(s['insert_rps'], '{:,.0f}')}"
            f" req/s ({fmt(s['insert_cpu'], '{:.2f}')} ms); Django's empty view "
            f"{fmt(s['healthz_rps'], '{:,.0f}')} req/s ({fmt(s['healthz_cpu'], '{:.2f}')} ms); "
            f"the sandbox alone {fmt(s['sandbox_rps'], '{:,.0f}')} sends/s "
            f"({fmt(s['sandbox_cpu'], '{:.2f}')} ms of its own CPU per send) | bare sender "
            f"{fmt(s['bare'], '{:,.0f}')} msg/s ({fmt(s['bare_cpu'], '{:.2f}')} ms CPU/msg); "
            "ceiling for a stored request then a bare send: "
            f"**{fmt(s['ceiling'], '{:,.0f}')} msg/s = {fmt(s['ceiling_ratio'], '{:.2f}')}x** "
            "the bare sender | — |"
        )
    notes = ROOT / "bench" / "NOTES.md"  # the reading: before/after, profiles, what limits
    if notes.exists() and not args.quick:
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kb / 2**20:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        return "memory unknown"


if __name__ == "__main__":
    main()

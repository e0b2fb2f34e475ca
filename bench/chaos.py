"""``make chaos``: break the deployed stack on purpose, count what happened, publish the counts.

    make chaos                          # every scenario at full size → docs/RELIABILITY.md
    make chaos ARGS=--quick             # small sizes, ~4 min → var/chaos/quick.md
    scripts/with-services.sh .venv/bin/python -m bench.chaos --only postgres --quick

One stack for the whole run (``devtools.stack``): the Procfile — gunicorn, the Celery worker,
beat, the callback deliverer, the sandbox — each entry under its own honcho and process group,
on production settings, against the PostgreSQL and Redis of ``scripts/with-services.sh``, whose
start/stop scripts (``$WAYPOST_SERVICES/pg-ctl``, ``redis-ctl``) restart the servers mid-run.
Every scenario has its own tenant and is driven over HTTP, as a client would.

What is counted, per scenario, against two independent records — the sandbox's ground truth
(every submission it accepted, per logical message: ``GET /_sandbox/messages``) and Waypost's
ledger (read with SQL):

* **sent** — logical messages the API took (a 2xx for their Idempotency-Key);
* **lost** — taken by the API but, once the run has settled, with no row, or in a state no
  operator is shown (still ``queued``/``submitting``/``retry_scheduled`` after the deadline);
* **duplicated** — logical messages the sandbox accepted more than once (or rows sharing a key);
* **wrong final state** — a message whose state disagrees with the ground truth: the sandbox
  accepted it and it is not ``accepted`` or beyond (or ``unknown`` and flagged stalled, the
  ``hold`` policy); with status webhooks on, the last status the sandbox delivered is not the
  message's state, or a message missing ``delivered`` is not flagged ``stalled``;
* **callbacks lost / duplicated** — events the client app's receiver never got, or got under
  the same ``webhook-id`` twice with a 2xx;
* **recovery** — seconds from the end of the fault (the last kill, the server back) until every
  message reached its final state.

Targets (issue 13): lost 0, duplicated 0 under ``hold``, wrong 0, every dropped status ends
``stalled``. The exit status is 1 when one is missed; the table says which.

Settings changed from the defaults, for a run that takes minutes (each is a tenant field or
an environment variable an operator sets the same way): stall thresholds 10 s (default 900),
the reconciler every 5 s (60), provider read timeout 2 s (10), ``WAYPOST_SUBMIT_STUCK_AFTER``
6 s, callback lease 10 s (60).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.signed import signed_status
from devtools.servers import start_receiver
from devtools.stack import ROOT, TEMPLATE, Stack, body

FULL = {
    "worker_kill": {"messages": 5_000, "kills": 5},
    "redis": {"messages": 2_000, "down_seconds": 10, "created_while_down": 200},
    "redis_flaps": {"flaps": 20, "messages": 100},
    "postgres": {"messages": 1_000, "down_seconds": 15, "clients": 8},
    "faults": {"messages": 2_000},
    "gunicorn": {"seconds": 20, "kill_at": 6, "down_seconds": 3},
    "callbacks": {"messages": 200, "down_seconds": 600},
    "host_kill": {"messages": 2_000, "kill_after": 3.0},
}
QUICK = {
    "worker_kill": {"messages": 500, "kills": 2},
    "redis": {"messages": 300, "down_seconds": 4, "created_while_down": 30},
    "redis_flaps": {"flaps": 3, "messages": 50},
    "postgres": {"messages": 200, "down_seconds": 6, "clients": 4},
    "faults": {"messages": 300},
    "gunicorn": {"seconds": 8, "kill_at": 3, "down_seconds": 2},
    "callbacks": {"messages": 30, "down_seconds": 20},
    "host_kill": {"messages": 150, "kill_after": 1.0},
}
SCENARIOS = tuple(FULL)
TITLES = {
    "worker_kill": "SIGKILL the worker during the run",
    "redis": "Redis restarted mid-run; down while messages are created",
    "redis_flaps": "Redis stopped and started again and again while batches are sent",
    "postgres": "PostgreSQL restarted mid-run; clients retry with their keys",
    "faults": "Sandbox: 10% HTTP 500 (131000), 5% 130429, 2% timeout-after-accept; webhooks "
    "20% duplicated, reordered, 5% dropped",
    "gunicorn": "gunicorn SIGKILLed under webhook load, then restarted",
    "callbacks": "The client's callback receiver down, then back",
    "host_kill": "A second host (web, worker, callback deliverer) SIGKILLed whole mid-run; "
    "clients retry on the other web",
}
# A message in one of these is still on its way: at the end of a run it counts as lost.
IN_FLIGHT = ("queued", "submitting", "retry_scheduled")
PAST_ACCEPTED = ("accepted", "sent", "delivered", "read")


def settled(row: dict) -> bool:
    """Final without status webhooks: accepted (or past it), or held for an operator — an
    unknown outcome (the worker died between the HTTP request and recording its answer) under
    the ``hold`` policy, flagged stalled."""
    return row["state"] in PAST_ACCEPTED or (row["state"] == "unknown" and row["stalled"])


STATUS_ORDER = ["accepted", "sent", "delivered", "read"]
SETTLE_SECONDS = 240


def progress(text: str) -> None:
    print(f"\r  {text:<78}", end="", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    scenario: str
    sent: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    callbacks_lost: int | None = None
    callbacks_duplicated: int | None = None
    recovery_s: float | None = None
    held: int | None = None  # unknown outcomes flagged for an operator (the hold policy)
    detail: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return (
            not (self.lost or self.duplicated or self.wrong or self.callbacks_lost)
            and not self.callbacks_duplicated
        )


class Chaos:
    def __init__(self, stack: Stack, sizes: dict) -> None:
        self.stack = stack
        self.sizes = sizes
        self.services = Path(os.environ["WAYPOST_SERVICES"])
        self.serial = 0

    # --- set-up ------------------------------------------------------------------------------

    def tenant(self, prefix: str) -> dict:
        self.serial += 1
        created = self.stack.create_tenant(f"{prefix}{self.serial}", mps=1000)
        # Unknown outcomes are held (flagged) after 10 s, not 15 min; the stall thresholds are
        # shortened only where status webhooks flow (the faults scenario).
        self.stack.sql(
            "update tenants_tenant set ambiguous_grace_seconds = 10 where slug = %s",
            [created["tenant"]],
        )
        created["session"] = self.stack.client(created["api_key"])
        answer = created["session"].post(f"{self.stack.url}/api/v1/templates", json=TEMPLATE)
        assert answer.json().get("status") == "APPROVED", answer.text
        return created

    def post_batches(self, tenant: dict, keys: list[str], *, size: int = 100) -> set[str]:
        """Send ``keys`` in batch requests (retrying a request until it is answered); returns
        the keys the API took."""
        taken: set[str] = set()
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            items = [{"idempotency_key": k, **body(phone(k), k)} for k in chunk]
            answer = retrying(
                lambda items=items: tenant["session"].post(
                    f"{self.stack.url}/api/v1/messages/batch",
                    json={"messages": items},
                    timeout=60,
                )
            )
            for key, result in zip(chunk, answer.json()["results"], strict=True):
                if result["status"] in (200, 202):
                    taken.add(key)
        return taken

    def send_in_background(self, tenant: dict, keys: list[str]) -> threading.Thread:
        """``post_batches`` in a thread; the keys taken land in ``tenant["taken"]``."""
        sending = threading.Thread(
            target=lambda: tenant.update(taken=self.post_batches(tenant, keys))
        )
        sending.start()
        return sending

    def sandbox(self, **config) -> None:
        self.stack.sandbox("POST", "/_sandbox/config", config)

    def sandbox_defaults(self) -> None:
        self.sandbox(
            error_rates={},
            timeout_after_accept_rate=0,
            webhook_duplicate_rate=0,
            webhook_reorder=False,
            webhook_drop_rate=1,  # status webhooks off unless a scenario turns them on
        )

    # --- what happened -----------------------------------------------------------------------

    def rows(self, tenant: dict) -> dict[str, dict]:
        found = self.stack.sql(
            "select m.idempotency_key, m.id, m.state, m.stalled from messaging_message m "
            "join tenants_tenant t on t.id = m.tenant_id where t.slug = %s",
            [tenant["tenant"]],
        )
        rows: dict[str, dict] = {}
        for key, pk, state, stalled in found:
            row = rows.setdefault(key, {"id": pk.hex, "state": state, "stalled": stalled})
            row["copies"] = row.get("copies", 0) + 1
        return rows

    def truth(self) -> dict[str, dict]:
        """The sandbox's record per message (keyed by biz_opaque_callback_data: our id)."""
        data = self.stack.sandbox("GET", "/_sandbox/messages")["data"]
        return {r["biz_opaque_callback_data"].replace("-", ""): r for r in data}

    def settle(
        self, tenant: dict, taken: set[str], *, final: Callable[[dict], bool] | None
    ) -> float:
        """Wait until every taken message is in a final state (``final=None``: the state the
        sandbox's ground truth says, status webhooks included); the monotonic time it was."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            rows = self.rows(tenant)
            done = final
            if done is None:
                truth = self.truth()

                def done(row: dict, truth=truth) -> bool:
                    return row["state"] not in IN_FLIGHT and correct(
                        row, truth.get(row["id"]), statuses=True
                    )

            waiting = [k for k in taken if k not in rows or not done(rows[k])]
            if not waiting:
                return time.monotonic()
            if time.monotonic() > deadline:
                return time.monotonic()  # what is still waiting is counted as lost
            progress(f"{len(taken) - len(waiting):,}/{len(taken):,} settled")
            time.sleep(0.5)

    def audit(self, name: str, tenant: dict, taken: set[str], *, statuses: bool) -> Outcome:
        rows, truth = self.rows(tenant), self.truth()
        outcome = Outcome(scenario=name, sent=len(taken))
        states: Counter = Counter()
        for key in taken:
            row = rows.get(key)
            if row is None or row["state"] in IN_FLIGHT:
                outcome.lost += 1
                continue
            states[row["state"] + (" (stalled)" if row["stalled"] else "")] += 1
            record = truth.get(row["id"])
            if row.get("copies", 1) > 1 or (record and record["submissions"] > 1):
                outcome.duplicated += 1
            if not correct(row, record, statuses=statuses):
                outcome.wrong += 1
                if outcome.wrong <= 3:
                    outcome.notes.append(f"wrong: {row} vs sandbox {record}")
        outcome.detail["final states"] = dict(sorted(states.items()))
        held = [r for k, r in rows.items() if k in taken and r["state"] == "unknown"]
        outcome.held = len(held)
        if held:  # what the operator will find when they look (the ground truth, per message)
            outcome.detail["held: the sandbox had accepted"] = sum(
                1 for r in held if r["id"] in truth
            )
            outcome.detail["held: never reached the sandbox"] = sum(
                1 for r in held if r["id"] not in truth
            )
        return outcome

    # --- service control ---------------------------------------------------------------------

    def service(self, name: str, action: str) -> None:
        subprocess.run([str(self.services / f"{name}-ctl"), action], check=True, timeout=60)

    # --- scenarios ---------------------------------------------------------------------------

    def worker_kill(self) -> Outcome:
        size = self.sizes["worker_kill"]
        tenant = self.tenant("kill")
        sending = self.send_in_background(tenant, [f"k{i}" for i in range(size["messages"])])
        last_kill = time.monotonic()
        for n in range(size["kills"]):
            time.sleep(1.5)
            progress(f"SIGKILL worker ({n + 1}/{size['kills']})")
            self.stack.kill("worker")
            last_kill = time.monotonic()
            time.sleep(0.5)
            self.stack.launch("worker")
        sending.join()
        done = self.settle(tenant, tenant["taken"], final=settled)
        outcome = self.audit("worker_kill", tenant, tenant["taken"], statuses=False)
        outcome.recovery_s = done - last_kill
        outcome.detail["kills"] = size["kills"]
        return outcome

    def redis(self) -> Outcome:
        size = self.sizes["redis"]
        tenant = self.tenant("redis")
        sending = self.send_in_background(tenant, [f"r{i}" for i in range(size["messages"])])
        time.sleep(1.0)
        progress("Redis: restart mid-run")
        self.service("redis", "stop")
        self.service("redis", "start")
        sending.join()
        # Down while messages are created: the API still takes them (PostgreSQL holds them).
        progress("Redis: down while messages are created")
        self.service("redis", "stop")
        down = [f"rd{i}" for i in range(size["created_while_down"])]
        started = time.monotonic()
        codes: Counter = Counter()
        taken_down: set[str] = set()
        latencies = []
        for key in down:
            asked = time.monotonic()
            answer = retrying(
                lambda key=key: tenant["session"].post(
                    f"{self.stack.url}/api/v1/messages",
                    json=body(phone(key), key),
                    headers={"Idempotency-Key": key},
                    timeout=30,
                )
            )
            latencies.append(time.monotonic() - asked)
            codes[answer.status_code] += 1
            if answer.status_code in (200, 202):
                taken_down.add(key)
        time.sleep(max(0.0, size["down_seconds"] - (time.monotonic() - started)))
        self.service("redis", "start")
        back = time.monotonic()
        taken = tenant["taken"] | taken_down
        done = self.settle(tenant, taken, final=settled)
        outcome = self.audit("redis", tenant, taken, statuses=False)
        outcome.recovery_s = done - back
        outcome.detail["answers while Redis was down"] = dict(codes)
        latencies.sort()
        outcome.detail["API latency while Redis was down (p50, max)"] = (
            f"{latencies[len(latencies) // 2] * 1000:.0f} ms, {latencies[-1] * 1000:.0f} ms"
        )
        return outcome

    def redis_flaps(self) -> Outcome:
        """Redis stopped while a batch is in flight and started again (after 0 to 2 s), over and
        over: each time the worker's broker connection breaks mid-task (acknowledgements on the
        old channel, unacknowledged messages restored on its close). Every process survives
        (the harness counts one that died as wrong), and each batch is sent."""
        size = self.sizes["redis_flaps"]
        tenant = self.tenant("flaps")
        taken: set[str] = set()
        pauses = [0.0, 0.5, 2.0]
        for flap in range(size["flaps"]):
            keys = [f"f{flap}-{i}" for i in range(size["messages"])]
            sending = self.send_in_background(tenant, keys)
            time.sleep(0.2 * (flap % 3))
            progress(f"Redis flap {flap + 1}/{size['flaps']}")
            self.service("redis", "stop")
            time.sleep(pauses[flap % len(pauses)])
            self.service("redis", "start")
            sending.join()
            taken |= tenant["taken"]
        back = time.monotonic()
        done = self.settle(tenant, taken, final=settled)
        outcome = self.audit("redis_flaps", tenant, taken, statuses=False)
        outcome.recovery_s = done - back
        outcome.detail["flaps"] = size["flaps"]
        return outcome

    def postgres(self) -> Outcome:
        size = self.sizes["postgres"]
        tenant = self.tenant("pg")
        keys = [f"p{i}" for i in range(size["messages"])]
        codes: Counter = Counter()
        retry_after: set[str] = set()
        lock = threading.Lock()

        def send(key: str) -> str | None:
            while True:  # a client that retries with the same key until it gets an answer
                try:
                    answer = tenant["session"].post(
                        f"{self.stack.url}/api/v1/messages",
                        json=body(phone(key), key),
                        headers={"Idempotency-Key": key},
                        timeout=30,
                    )
                except requests.RequestException:
                    with lock:
                        codes["connection error"] += 1
                    time.sleep(0.5)
                    continue
                with lock:
                    codes[answer.status_code] += 1
                if answer.status_code == 503:
                    with lock:
                        retry_after.add(answer.headers.get("Retry-After", "missing"))
                    time.sleep(min(float(answer.headers.get("Retry-After", 1)), 2.0))
                    continue
                return key if answer.status_code in (200, 202) else None

        down_at = len(keys) // 3

        def outage() -> None:
            while sum(v for k, v in codes.items() if k in (200, 202)) < down_at:
                time.sleep(0.05)
            progress("PostgreSQL: stop")
            self.service("pg", "stop")
            time.sleep(size["down_seconds"])
            self.service("pg", "start")
            tenant["back"] = time.monotonic()
            progress("PostgreSQL: back")

        fault = threading.Thread(target=outage)
        fault.start()
        with ThreadPoolExecutor(size["clients"]) as pool:
            taken = {k for k in pool.map(send, keys) if k}
        fault.join()
        done = self.settle(tenant, taken, final=settled)
        outcome = self.audit("postgres", tenant, taken, statuses=False)
        outcome.recovery_s = done - tenant["back"]
        outcome.detail["answers"] = {str(k): v for k, v in sorted(codes.items(), key=str)}
        outcome.detail["Retry-After on 503"] = sorted(retry_after)
        if codes.get(500):
            outcome.notes.append(f"{codes[500]} answers were 500")
            outcome.wrong += codes[500]
        return outcome

    def faults(self) -> Outcome:
        size = self.sizes["faults"]
        tenant = self.tenant("faults")
        self.stack.sql(
            "update tenants_tenant set stall_accepted_seconds = 10, stall_sent_seconds = 10 "
            "where slug = %s",
            [tenant["tenant"]],
        )
        self.sandbox(
            # 131000 "Something went wrong" is Meta's HTTP 500; 130429 its throughput limit.
            error_rates={"131000": 0.10, "130429": 0.05},
            timeout_after_accept_rate=0.02,
            hang_seconds=5,
            webhook_duplicate_rate=0.20,
            webhook_reorder=True,
            webhook_drop_rate=0.05,
        )
        try:
            keys = [f"f{i}" for i in range(size["messages"])]
            taken = self.post_batches(tenant, keys)
            started = time.monotonic()
            done = self.settle(tenant, taken, final=None)  # until the ground truth agrees
        finally:
            self.sandbox_defaults()
        outcome = self.audit("faults", tenant, taken, statuses=True)
        outcome.recovery_s = done - started
        # The target "every dropped status ends stalled": messages that never got `delivered`
        # (nor `read`, which implies it) must be flagged for an operator.
        rows, truth = self.rows(tenant), self.truth()
        missing = [
            r
            for k, r in rows.items()
            if k in taken
            and (record := truth.get(r["id"]))
            and "failed" not in record["statuses_planned"]
            and {"delivered", "read"}
            <= set(record["statuses_dropped"])
            | {s for s in ("delivered", "read") if s not in record["statuses_planned"]}
        ]
        outcome.detail["no delivered/read status arrived → flagged stalled"] = (
            f"{sum(1 for r in missing if r['stalled'])} of {len(missing)}"
        )
        stats = self.stack.sandbox("GET", "/_sandbox/stats")
        outcome.detail["sandbox"] = {
            k: v
            for k, v in stats.items()
            if k in ("timeouts_after_accept", "duplicate_submissions", "webhooks_dropped")
        }
        return outcome

    def gunicorn(self) -> Outcome:
        """Signed status webhooks at a steady rate; gunicorn SIGKILLed mid-load and restarted.
        Every delivery answered 200 must be stored and processed."""
        size = self.sizes["gunicorn"]
        tenant = self.tenant("hooks")
        count = size["seconds"] * 40
        keys = [f"h{i}" for i in range(count)]
        taken = self.post_batches(tenant, keys)
        self.settle(tenant, taken, final=settled)
        rows = self.stack.sql(
            "select m.provider_message_id, m.recipient from messaging_message m "
            "join tenants_tenant t on t.id = m.tenant_id where t.slug = %s",
            [tenant["tenant"]],
        )
        bodies = [
            signed_status(tenant["sender"], w, r, "delivered", n) for n, (w, r) in enumerate(rows)
        ]
        answered: list[str] = []
        codes: Counter = Counter()
        session = requests.Session()
        started = time.monotonic()
        killed = restarted = None
        for n, (signature, data) in enumerate(bodies):
            now = time.monotonic() - started
            if killed is None and now >= size["kill_at"]:
                progress("gunicorn: SIGKILL")
                self.stack.kill("web")
                killed = time.monotonic()
                threading.Thread(target=self._restart_web, args=(size["down_seconds"],)).start()
            time.sleep(max(0.0, n / 40 - (time.monotonic() - started)))
            try:
                answer = session.post(
                    f"{self.stack.url}/webhooks/whatsapp",
                    data=data,
                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                    timeout=10,
                )
                codes[answer.status_code] += 1
                if answer.status_code == 200:
                    answered.append(data)
                    if killed and restarted is None:
                        restarted = time.monotonic()
            except requests.RequestException:
                codes["connection error"] += 1
        outcome = Outcome(scenario="gunicorn", sent=len(answered))
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            [(pending,)] = self.stack.sql(
                "select count(*) from webhooks_webhookdelivery where status = 'pending'"
            )
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        processed = {
            bytes(raw).decode()
            for (raw,) in self.stack.sql(
                "select body from webhooks_webhookdelivery where status = 'processed'"
            )
        }
        outcome.lost = sum(1 for data in answered if data not in processed)
        # Each status answered 200 must also have reached its message.
        states = dict(
            self.stack.sql(
                "select m.provider_message_id, m.state from messaging_message m "
                "join tenants_tenant t on t.id = m.tenant_id where t.slug = %s",
                [tenant["tenant"]],
            )
        )
        outcome.wrong = sum(
            1
            for data in answered
            if states.get(json.loads(data)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"])
            != "delivered"
        )
        outcome.recovery_s = (restarted - killed) if killed and restarted else None
        outcome.detail["answers"] = {str(k): v for k, v in codes.items()}
        outcome.detail["deliveries answered 200"] = len(answered)
        outcome.notes.append(
            "sent = webhook deliveries answered 200; lost = of those, not processed"
        )
        return outcome

    def _restart_web(self, after: float) -> None:
        time.sleep(after)
        self.stack.launch("web")

    def host_kill(self) -> Outcome:
        """A whole machine lost. A second "host" — its own web (port), Celery worker (node name
        ``b@…``) and callback deliverer — joins the first; a client sends through both webs in
        turn, as behind a load balancer, with status webhooks on and a receiver subscribed to
        ``message.read``. Mid-run every process of host b is SIGKILLed at once; a request that
        died with its web is sent again, same keys, to the other. The survivors take over: the
        messages host b's worker had claimed go again (or are held as unknown, never sent
        blindly) and its deliverer's leased callbacks go out once their lease ends."""
        size = self.sizes["host_kill"]
        for name in ("web", "worker", "callbacks"):
            self.stack.launch(name, host="b")
        urls = [self.stack.url, self.stack.host_url("b")]
        receiver, server = start_receiver()
        try:
            tenant = self.tenant("host")
            self.stack.subscribe(tenant["session"], receiver.url, ["message.read"])
            self.sandbox(webhook_drop_rate=0)
            keys = [f"h{i}" for i in range(size["messages"])]
            taken: set[str] = set()

            def send() -> None:
                for n, start in enumerate(range(0, len(keys), 50)):
                    chunk = keys[start : start + 50]
                    items = [{"idempotency_key": k, **body(phone(k), k)} for k in chunk]
                    order = urls if n % 2 == 0 else urls[::-1]  # round robin
                    for attempt in range(120):
                        url = order[attempt % 2]
                        try:
                            answer = tenant["session"].post(
                                f"{url}/api/v1/messages/batch", json={"messages": items}, timeout=60
                            )
                        except requests.RequestException:
                            continue  # that host is gone: the other one, same keys
                        if answer.status_code == 200:
                            taken.update(
                                k
                                for k, r in zip(chunk, answer.json()["results"], strict=True)
                                if r["status"] in (200, 202)
                            )
                            break
                        time.sleep(0.5)
                    time.sleep(0.1)

            sending = threading.Thread(target=send)
            sending.start()
            time.sleep(size["kill_after"])
            progress("SIGKILL host b: its web, worker and callback deliverer")
            for name in ("web@b", "worker@b", "callbacks@b"):
                self.stack.kill(name)
            last_kill = time.monotonic()
            sending.join()
            self.settle(  # read, or held for an operator (unknown, flagged)
                tenant, taken, final=lambda r: r["state"] == "read" or r["stalled"]
            )
            read = {k for k, r in self.rows(tenant).items() if k in taken and r["state"] == "read"}
            settled = callbacks_settle(receiver, len(read), timeout=SETTLE_SECONDS)
            self.sandbox_defaults()
            outcome = self.audit("host_kill", tenant, taken, statuses=False)
            callbacks_count(outcome, receiver, expected=len(read))
            outcome.recovery_s = settled - last_kill
            outcome.detail["hosts"] = (
                "a (web, worker, beat, callbacks) + b (web, worker, callbacks)"
            )
            return outcome
        finally:
            server.shutdown()

    def callbacks(self) -> Outcome:
        size = self.sizes["callbacks"]
        receiver, server = start_receiver(status=503)
        try:
            tenant = self.tenant("cb")
            self.stack.subscribe(tenant["session"], receiver.url, ["message.read"])
            self.sandbox(webhook_drop_rate=0)
            keys = [f"c{i}" for i in range(size["messages"])]
            taken = self.post_batches(tenant, keys)
            self.settle(tenant, taken, final=lambda r: r["state"] == "read")
            self.sandbox_defaults()
            down_until = time.monotonic() + size["down_seconds"]
            while time.monotonic() < down_until:
                progress(f"receiver down: {down_until - time.monotonic():.0f} s left")
                time.sleep(1)
            receiver.status = 200
            back = time.monotonic()
            settled = callbacks_settle(receiver, len(taken), timeout=SETTLE_SECONDS + 600)
            outcome = self.audit("callbacks", tenant, taken, statuses=False)
            callbacks_count(outcome, receiver, expected=len(taken))
            outcome.recovery_s = settled - back
            outcome.detail["receiver answers while down (503)"] = sum(
                1 for *_, code in receiver.requests if code == 503
            )
            return outcome
        finally:
            server.shutdown()


def callbacks_settle(receiver, expected: int, *, timeout: float) -> float:
    """Wait until the receiver has answered ``expected`` distinct webhook-ids (or ``timeout``
    seconds); the monotonic time that was, then three seconds more, in which anything delivered
    twice would arrive."""
    deadline = time.monotonic() + timeout
    while len({h["webhook-id"] for _, h, _ in receiver.delivered()}) < expected:
        if time.monotonic() > deadline:
            break
        progress(f"{len(receiver.delivered())}/{expected} callbacks delivered")
        time.sleep(0.5)
    settled = time.monotonic()
    time.sleep(3)
    return settled


def callbacks_count(outcome: Outcome, receiver, *, expected: int) -> None:
    """Callbacks lost (expected, never answered 2xx) and duplicated (a webhook-id answered 2xx
    more than once) into ``outcome``."""
    ids = Counter(h["webhook-id"] for _, h, _ in receiver.delivered())
    outcome.callbacks_lost = max(0, expected - len(ids))
    outcome.callbacks_duplicated = sum(n - 1 for n in ids.values() if n > 1)


def correct(row: dict, record: dict | None, *, statuses: bool) -> bool:
    """Does the message's final state agree with the sandbox's ground truth?"""
    state = row["state"]
    if record is None:  # the sandbox never accepted it: it must have been refused, visibly
        return state in ("failed", "rejected") or (state == "unknown" and row["stalled"])
    if state == "unknown":  # hold: the outcome was not known; an operator sees it
        return row["stalled"]
    if not statuses:
        return state in PAST_ACCEPTED
    delivered = [s for s in record["statuses_planned"] if s not in record["statuses_dropped"]]
    expected = max(delivered, key=STATUS_ORDER.index) if delivered else "accepted"
    if state != expected:
        return False
    # A message whose delivered status never came must be flagged for an operator.
    return state in ("delivered", "read") or row["stalled"]


def retrying(call: Callable[[], requests.Response], attempts: int = 120) -> requests.Response:
    """A client's retry loop: connection errors and 503 (honouring Retry-After, capped at 2 s)
    are tried again with the same request."""
    for _ in range(attempts):
        try:
            answer = call()
        except requests.RequestException:
            time.sleep(0.5)
            continue
        if answer.status_code != 503:
            return answer
        time.sleep(min(float(answer.headers.get("Retry-After", 1)), 2.0))
    raise SystemExit("no answer after retrying for minutes")


def phone(key: str) -> str:
    return f"+49151{zlib.crc32(key.encode()) % 10**8:08d}"


# ==================================================================================================
# the report
# ==================================================================================================


READING = """**Reading the table.** *Sent*: logical messages the API took (webhook deliveries \
answered 200 in scenario 5). *Lost*: taken, and at the end in no state an operator sees (or a \
200-answered webhook not processed). *Duplicated*: accepted by the sandbox more than once. \
*Wrong final state*: disagrees with the sandbox's record of what it accepted and which statuses \
it delivered (a 500 answer counts here too). *Held for an operator*: submits whose outcome is \
unknown — the worker died between its HTTP request and recording the answer, or Meta answered \
HTTP 500 (131000), which may or may not have sent — flagged `stalled` under the `hold` policy, \
never sent twice; the admin's retry (with the duplicate consent) or a late status webhook \
resolves each. Every target: lost 0, duplicated 0, wrong 0, callbacks lost/duplicated 0, every \
dropped `delivered` flagged stalled.

Commands: `make chaos` (this page); `make chaos ARGS=--quick` (small sizes, ~4 min; also part \
of `make test` as `tests/chaos/test_chaos_quick.py`); one scenario: \
`scripts/with-services.sh .venv/bin/python -m bench.chaos --only postgres`; the fuzzing \
alone: `WAYPOST_FUZZ_EXAMPLES=420 scripts/with-services.sh .venv/bin/pytest \
tests/security/test_schemathesis.py`. Settings changed for a run that takes minutes: \
`ambiguous_grace_seconds` 10 (default 900), stall thresholds 10 s in scenario 4 (900), the \
reconciler every 5 s (60), provider read timeout 2 s (10), `WAYPOST_SUBMIT_STUCK_AFTER` 6 s \
(18), callback lease 10 s (60)."""
RECOVERY = {
    "worker_kill": "recovery: from the last SIGKILL until every message was final.",
    "redis": "recovery: from Redis back (after the outage during creation) until every message "
    "was final.",
    "redis_flaps": "recovery: from Redis back after the last flap until every message was final "
    "(a worker that reconnects re-drives at once; the worker must survive every flap).",
    "postgres": "recovery: from PostgreSQL back until every message was final; clients retried "
    "503s (honouring `Retry-After`, capped at 2 s) and connection errors with the same key.",
    "faults": "recovery: from the last message taken until every state agreed with the "
    "sandbox's record (statuses applied, drops flagged by the reconciler).",
    "gunicorn": "recovery: from the SIGKILL until the first 200 from the restarted gunicorn "
    "(restarted after the pause in the sizes).",
    "callbacks": "recovery: from the receiver answering 200 again until every event was "
    "delivered (the endpoint's backoff decides the first retry).",
    "host_kill": "recovery: from the SIGKILL of host b until every message was `read` (or "
    "held as `unknown`) and every `message.read` callback delivered (host b's leased "
    "callbacks wait for their lease: 10 s here).",
}
FUZZ_EXAMPLES = 420  # per operation in the fuzzing phase: over 5,000 cases in all (310 gave 4,471)


def schemathesis_run() -> dict:
    """tests/security/test_schemathesis.py at full size (its own test database, the live
    server over HTTP); the case count and the CLI's summary."""
    print(f"\n[schemathesis] {FUZZ_EXAMPLES} examples per operation", file=sys.stderr)
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"waypost-fuzz-{os.getpid()}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/security/test_schemathesis.py",
        ],
        cwd=ROOT,
        env=os.environ
        | {"WAYPOST_FUZZ_EXAMPLES": str(FUZZ_EXAMPLES), "WAYPOST_FUZZ_REPORT": str(out)},
        timeout=3600,
        check=False,
        capture_output=True,
    )
    if not out.exists():
        return {"cases": 0, "exit": -1, "summary": "the fuzzing run did not finish"}
    result = json.loads(out.read_text())
    out.unlink()
    return result


def report(outcomes: list[Outcome], args, elapsed: float, fuzz: dict | None = None) -> str:
    mode = "--quick" if args.quick else "full"
    lines = [
        "# Reliability, measured",
        "",
        f"`make chaos{' ARGS=--quick' if args.quick else ''}` ({mode} sizes) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {elapsed / 60:.1f} min. The stack: the Procfile "
        "(gunicorn, worker, beat, callback deliverer, sandbox) on production settings, each "
        "entry its own process group; PostgreSQL and Redis from `scripts/with-services.sh`. "
        "How each figure is counted: `bench/chaos.py` (its docstring).",
        "",
        "| # | Scenario | Sent | Lost | Duplicated | Wrong final state | Held for an operator "
        "| Callbacks lost / dup | Recovery | Targets |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, o in enumerate(outcomes, 1):
        cb = (
            f"{o.callbacks_lost} / {o.callbacks_duplicated}"
            if o.callbacks_lost is not None
            else "—"
        )
        recovery = f"{o.recovery_s:.1f} s" if o.recovery_s is not None else "—"
        lines.append(
            f"| {n} | {TITLES[o.scenario]} | {o.sent:,} | {o.lost} | {o.duplicated} | {o.wrong} "
            f"| {o.held if o.held is not None else '—'} | {cb} | {recovery} "
            f"| {'met' if o.met else '**missed**'} |"
        )
    lines += ["", READING, "", "## Details, per scenario", ""]
    for o in outcomes:
        lines.append(f"- **{o.scenario}** — {RECOVERY[o.scenario]}")
        lines.extend(f"  - {key}: {json.dumps(value)}" for key, value in o.detail.items())
        lines.extend(f"  - {note}" for note in o.notes)
    lines += [
        "",
        "Sizes: " + json.dumps({o.scenario: args.sizes[o.scenario] for o in outcomes}) + ".",
        "",
    ]
    if fuzz is not None:
        verdict = "no failure" if fuzz["exit"] == 0 else "**failures: see below**"
        lines += [
            "## Hostile input: schemathesis",
            "",
            f"`tests/security/test_schemathesis.py` with {FUZZ_EXAMPLES} examples per operation "
            f"(`WAYPOST_FUZZ_EXAMPLES={FUZZ_EXAMPLES}`): **{fuzz['cases']:,} generated cases**, "
            f"{verdict} (checks: no 5xx, status codes, content types and bodies as the schema "
            "says).",
            "",
            "```",
            fuzz["summary"],
            "```",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--out", help="default: docs/RELIABILITY.md, or var/chaos/quick.md")
    parser.add_argument("--json", help="also write the outcomes as JSON here")
    parser.add_argument(
        "--no-fuzz", action="store_true", help="skip the 5,000-case schemathesis run"
    )
    args = parser.parse_args()
    args.sizes = QUICK if args.quick else FULL
    out = (
        Path(args.out)
        if args.out
        else (
            ROOT / "var" / "chaos" / "quick.md" if args.quick else ROOT / "docs" / "RELIABILITY.md"
        )
    )
    started = time.monotonic()
    stack = Stack(
        database="waypost_chaos",
        env={
            "SANDBOX_DEFAULT_MPS": "0",
            "WAYPOST_PROVIDER_READ_TIMEOUT": "2",
            "WAYPOST_SUBMIT_STUCK_AFTER": "6",
            "WAYPOST_CALLBACK_LEASE": "10",
            "WAYPOST_CALLBACK_ALLOW_PRIVATE": "True",  # the receiver is on 127.0.0.1
            "WAYPOST_CALLBACK_REQUIRE_HTTPS": "False",
            "LOG_LEVEL": "WARNING",
        },
    )
    outcomes: list[Outcome] = []
    with stack:
        stack.sql(
            "update django_celery_beat_intervalschedule set every = 5 where id = (select "
            "interval_id from django_celery_beat_periodictask where name = 'waypost: reconcile')"
        )
        stack.start(separately=True)
        chaos = Chaos(stack, args.sizes)
        chaos.sandbox_defaults()
        for name in args.only:
            print(f"\n[{name}] {TITLES[name]}", file=sys.stderr)
            outcome = getattr(chaos, name)()
            outcomes.append(outcome)
            print(f"\n  → {asdict(outcome)}", file=sys.stderr)
            dead = [n for n, p in stack.procs.items() if p.poll() is not None]
            if dead:
                outcome.notes.append(f"processes that died on their own: {dead}")
                outcome.wrong += 1
                for n in dead:
                    last = [line for line in stack.log if line.startswith(f"{n} | ")][-15:]
                    outcome.notes.append(f"{n}'s last lines: " + " ⏎ ".join(last))
                    stack.launch(n)
    fuzz = None if args.quick or args.no_fuzz else schemathesis_run()
    text = report(outcomes, args, time.monotonic() - started, fuzz)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    print("\n" + text)
    fuzz_ok = fuzz is None or fuzz["exit"] == 0
    sys.exit(0 if all(o.met for o in outcomes) and fuzz_ok else 1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()

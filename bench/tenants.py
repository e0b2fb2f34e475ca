"""Thousands of tenants on the deployed stack (issue 22 §1).

A platform runs Waypost for many tenants, most of them quiet. For each tenant count the
Procfile stack (``devtools.stack``, production settings, PostgreSQL with fsync on, Redis) is
started on a fresh database holding that many tenants, created in bulk (each with a sender, an
API key and the approved template), plus ten busy tenants. Measured from outside:

* **worker start** — from launching the Procfile's worker entry to its ``ready.`` line, and its
  second start with every tenant present;
* **idle** — with nothing to send: Redis commands per second (``INFO commandstats``, the top
  three named), the CPU of the worker (its processes, pool included) and of Redis — a poll
  naming thousands of queues costs both — and Redis memory;
* **quiet, alone** — ``QUIET`` tenants that never sent before each send one message
  (``RATE`` per second, one connection each): p50/p95 ``requested → accepted`` from the ledger.
  Each is its tenant's *first* message, the one a per-tenant queue made slow;
* **quiet, under a flood** — the same with ten busy tenants sending ``FLOOD`` messages each in
  batches of 1,000 at once: the issue's target is p95 < 1 s with 10,000 tenants;
* **again** — the quiet tenants of the first phase send a second message each, alone: a
  tenant's first message should be as fast as its later ones.

Baseline: the same stack with the fewest tenants these phases need (``BUSY + 2 * QUIET``),
measured in the same run: what grows with the tenant count is what does not scale.

    scripts/with-services.sh .venv/bin/python bench/tenants.py             # 310, 1,000, 10,000
    scripts/with-services.sh .venv/bin/python bench/tenants.py --tenants 1000 --label quick

Writes ``bench/results/tenants-<label>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cputime import cpu_seconds
from bench.run import pct
from devtools.stack import ROOT, TEMPLATE, Stack, body, procfile_entries

BUSY = 10
FLOOD = 2_000  # messages per busy tenant, in batches of 1,000
QUIET = 150  # quiet tenants sending one message each, per phase
RATE = 10.0  # their messages per second
IDLE_SECONDS = 10


# --- bulk creation, in a Django process on the stack's settings ------------------------------


def bulk_create(count: int, prefix: str) -> list[dict]:
    """``count`` tenants, each with a sandbox sender, an API key and a copy of the approved
    template of the tenant ``template_of`` (the sandbox shows a sender that is not registered
    every WABA's templates). Prints nothing; returns ``[{"slug", "api_key"}]``."""
    import django

    django.setup()
    from django.db import transaction

    from templates_registry.models import MessageTemplate
    from tenants.models import ApiKey, SenderNumber, Tenant
    from tenants.services import KEY_PREFIX, _hash

    source = MessageTemplate.objects.filter(status="APPROVED", name=TEMPLATE["name"]).first()
    assert source is not None, "create one tenant with the template first"
    fields = {
        f.attname: getattr(source, f.attname)
        for f in MessageTemplate._meta.concrete_fields
        if f.attname not in ("id", "tenant_id", "sender_id")
    }
    created, tenants, senders, keys, templates = [], [], [], [], []
    for i in range(count):
        tenant = Tenant(slug=f"{prefix}{i}", name=f"Quiet {i}", api_requests_per_second=0)
        tenants.append(tenant)
        senders.append(
            SenderNumber(
                tenant=tenant,
                provider="sandbox",
                phone_number_id=f"9{i:010d}",
                waba_id=f"8{i:010d}",
                messages_per_second=80,
            )
        )
        key_prefix, secret = os.urandom(6).hex(), os.urandom(24).hex()
        keys.append(ApiKey(tenant=tenant, prefix=key_prefix, key_hash=_hash(secret)))
        created.append({"slug": tenant.slug, "api_key": f"{KEY_PREFIX}{key_prefix}_{secret}"})
        templates.append(MessageTemplate(**fields, tenant=tenant))
    # The tenants created one by one (the busy ones) have no template yet either.
    for tenant in Tenant.objects.exclude(templates__isnull=False):
        templates.append(MessageTemplate(**fields, tenant=tenant))
    with transaction.atomic():
        for model, rows in (
            (Tenant, tenants),
            (SenderNumber, senders),
            (ApiKey, keys),
            (MessageTemplate, templates),
        ):
            model.objects.bulk_create(rows, batch_size=1000)
    return created


# --- the measurement ------------------------------------------------------------------------


def lags(stack: Stack, slugs: list[str], key: str, start="requested", end="accepted"):
    """Milliseconds from each message's ``start`` event to its ``end`` event."""
    rows = stack.sql(
        "select extract(epoch from a.recorded_at - r.recorded_at) * 1000 "
        "from messaging_message m join tenants_tenant t on t.id = m.tenant_id "
        "join messaging_messageevent r on r.message_id = m.id and r.type = %s "
        "join messaging_messageevent a on a.message_id = m.id and a.type = %s "
        "where t.slug = any(%s) and m.idempotency_key = %s",
        [start, end, slugs, key],
    )
    return [float(ms) for (ms,) in rows]


def wait_accepted(stack: Stack, slugs: list[str], key: str | None, timeout: float = 600) -> int:
    """Until none of the tenants' messages (of ``key``, or all) waits to be sent; how many
    still do at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        [(left,)] = stack.sql(
            "select count(*) from messaging_message m join tenants_tenant t on "
            "t.id = m.tenant_id where t.slug = any(%s) and (%s::text is null or "
            "m.idempotency_key = %s) and m.state in ('queued', 'retry_scheduled', 'submitting')",
            [slugs, key, key],
        )
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def quiet_phase(stack: Stack, tenants: list[dict], key: str) -> None:
    """One message per tenant, ``RATE`` per second, open loop (a slow answer does not delay
    the next request)."""
    began = time.monotonic()

    def one(item: tuple[int, dict]) -> None:
        i, tenant = item
        time.sleep(max(0.0, began + i / RATE - time.monotonic()))
        answer = requests.post(
            f"{stack.url}/api/v1/messages",
            json=body(f"+4915{i:09d}", key),
            headers={"Authorization": f"Bearer {tenant['api_key']}", "Idempotency-Key": key},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, enumerate(tenants)))


def flood(stack: Stack, busy: list[dict]) -> None:
    def one(tenant: dict) -> None:
        for start in range(0, FLOOD, 1000):
            items = [
                {"idempotency_key": f"flood-{i}", **body(f"+4916{i:09d}", str(i))}
                for i in range(start, start + 1000)
            ]
            answer = tenant["session"].post(
                f"{stack.url}/api/v1/messages/batch", json={"messages": items}, timeout=600
            )
            assert answer.status_code == 200, answer.text[:300]

    with ThreadPoolExecutor(len(busy)) as pool:
        list(pool.map(one, busy))


def idle(stack: Stack, client: redis.Redis) -> dict:
    time.sleep(5)  # what the last phase left settles
    before_stats, before_cpu = client.info("commandstats"), cpu_seconds()
    time.sleep(IDLE_SECONDS)
    after_stats, after_cpu = client.info("commandstats"), cpu_seconds()
    per_command = {
        name.removeprefix("cmdstat_"): (stats["calls"] - before_stats.get(name, {}).get("calls", 0))
        / IDLE_SECONDS
        for name, stats in after_stats.items()
    }

    def cpu(of: str) -> float:
        return sum(
            seconds - before_cpu.get(pid, (kind, 0.0))[1]
            for pid, (kind, seconds) in after_cpu.items()
            if kind == of
        )

    top = sorted(per_command.items(), key=lambda item: -item[1])[:3]
    return {
        "commands": sum(per_command.values()),
        "top": ", ".join(f"{name} {rate:.1f}" for name, rate in top if rate > 0),
        "worker_cpu": 100 * cpu("celery worker") / IDLE_SECONDS,
        "redis_cpu": 100 * cpu("redis") / IDLE_SECONDS,
        "memory_mb": client.info("memory")["used_memory"] / 1e6,
    }


def measure(count: int, index: int) -> dict:
    stack = Stack(
        database=f"waypost_tenants_{index}",
        env={"SANDBOX_DEFAULT_MPS": "0", "SANDBOX_WEBHOOK_DROP_RATE": "1"},
    )
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    client.flushdb()
    stack.manage("migrate", "-v0")
    found: dict = {"tenants": count}
    try:
        for name in procfile_entries():  # every entry of the Procfile; the worker timed below
            if name != "worker":
                stack.launch(name)
        busy = []
        for i in range(BUSY):  # the first one's template is the one the others copy
            tenant = stack.create_tenant(f"busy{i}", mps=1000)
            tenant["session"] = stack.client(tenant["api_key"])
            if i == 0:
                answer = tenant["session"].post(f"{stack.url}/api/v1/templates", json=TEMPLATE)
                assert answer.json().get("status") == "APPROVED", answer.text
            busy.append(tenant)
        began = time.monotonic()
        quiet = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--bulk-create", str(count - BUSY)],
                cwd=ROOT,
                env=stack.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        found["create_seconds"] = time.monotonic() - began
        began = time.monotonic()
        stack.launch("worker", timeout=900)
        found["worker_start"] = time.monotonic() - began
        stack.kill("worker", 15)
        began = time.monotonic()
        stack.launch("worker", timeout=900)
        found["worker_restart"] = time.monotonic() - began
        found |= idle(stack, client)
        first, second = quiet[:QUIET], quiet[QUIET : 2 * QUIET]
        quiet_phase(stack, first, "first")
        found["alone_left"] = wait_accepted(stack, [t["slug"] for t in first], "first")
        alone = lags(stack, [t["slug"] for t in first], "first")
        flooding = threading.Thread(target=flood, args=(stack, busy))
        flooding.start()
        time.sleep(1.0)  # the busy tenants' first batches are in
        cpu_before, clock = cpu_seconds(), time.monotonic()
        quiet_phase(stack, second, "under")
        found["flood_left"] = wait_accepted(stack, [t["slug"] for t in second], "under")
        found["under_cpu"] = cpu_shares(cpu_before, cpu_seconds(), time.monotonic() - clock)
        under = lags(stack, [t["slug"] for t in second], "under")
        # Where the time went: waiting to be claimed (a worker process free to run the
        # tenant's drain), then claimed to accepted (the send itself).
        claimed = lags(stack, [t["slug"] for t in second], "under", end="submit_started")
        sent = lags(stack, [t["slug"] for t in second], "under", "submit_started")
        found["under_split"] = [pct(claimed, 50), pct(claimed, 95), pct(sent, 50), pct(sent, 95)]
        flooding.join()
        [(backlog,)] = stack.sql(
            "select count(*) from messaging_message where state in ('queued', 'submitting')"
        )
        found["flood_backlog_after_quiet"] = backlog
        wait_accepted(stack, [t["tenant"] for t in busy], None)  # the whole flood
        quiet_phase(stack, first, "again")
        wait_accepted(stack, [t["slug"] for t in first], "again")
        again = lags(stack, [t["slug"] for t in first], "again")
        for name, values in (("alone", alone), ("under", under), ("again", again)):
            found[name] = (pct(values, 50), pct(values, 95), len(values)) if values else None
        found["memory_after_mb"] = client.info("memory")["used_memory"] / 1e6
    finally:
        stack.stop()
    return found


def cpu_shares(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Per kind of process, its CPU over ``seconds`` of wall time as a % of one core."""
    spent: dict[str, float] = {}
    for pid, (kind, total) in after.items():
        spent[kind] = spent.get(kind, 0.0) + total - before.get(pid, (kind, 0.0))[1]
    return {
        kind: 100 * value / seconds for kind, value in sorted(spent.items(), key=lambda kv: -kv[1])
    }


def ms(triple) -> str:
    return "—" if triple is None else f"{triple[0]:.0f} / **{triple[1]:.0f}** ms ({triple[2]})"


def report(rows: list[dict], elapsed: float, label: str) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"# Thousands of tenants — {label}",
        "",
        f"`scripts/with-services.sh .venv/bin/python bench/tenants.py --label {label}` at "
        f"`{commit}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {elapsed / 60:.1f} min. "
        "The Procfile stack (`Procfile.sandbox`) on production settings, each entry started "
        f"as the Procfile says; {BUSY} busy tenants of {FLOOD:,} messages each (batches of "
        f"1,000); {QUIET} quiet tenants per phase, one message each at {RATE:.0f}/s; times "
        "from the ledger (`requested` → `accepted`), p50 / **p95** (messages). Target: p95 "
        "under the flood < 1 s with 10,000 tenants; worker start < 10 s. The first row is "
        "the baseline: the fewest tenants the phases need.",
        "",
        "| Tenants | Worker start / restart | Idle: Redis commands/s (top 3) | "
        "Idle CPU: worker / Redis | Redis memory idle / after | Quiet, first message, alone | "
        "Quiet, first message, 10 busy flooding | Quiet, second message | Left behind |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['tenants']:,} | {r['worker_start']:.1f} s / {r['worker_restart']:.1f} s | "
            f"{r['commands']:.0f} ({r['top']}) | {r['worker_cpu']:.1f} % / "
            f"{r['redis_cpu']:.1f} % | "
            f"{r['memory_mb']:.1f} / {r['memory_after_mb']:.1f} MB | {ms(r['alone'])} | "
            f"{ms(r['under'])} | {ms(r['again'])} | {r['alone_left'] + r['flood_left']} |"
        )
    lines += [
        "",
        "Under the flood, where a quiet message's time went, p50 / p95: `requested` → "
        "`submit_started` (waiting for its drain to claim it) and `submit_started` → `accepted`"
        " (the send): "
        + "; ".join(
            f"{r['tenants']:,}: {r['under_split'][0]:.0f} / {r['under_split'][1]:.0f} ms and "
            f"{r['under_split'][2]:.0f} / {r['under_split'][3]:.0f} ms"
            for r in rows
            if r.get("under_split")
        )
        + ".",
        "",
        "CPU while the quiet tenants sent under the flood, % of one core (the machine has "
        f"{os.cpu_count()} cores: {100 * (os.cpu_count() or 1)} % is all of it): "
        + "; ".join(
            f"{r['tenants']:,}: "
            + ", ".join(f"{kind} {share:.0f}" for kind, share in r["under_cpu"].items())
            + f" (total {sum(r['under_cpu'].values()):.0f})"
            for r in rows
            if r.get("under_cpu")
        )
        + ".",
        "",
        "Bulk creation of the quiet tenants took "
        + ", ".join(f"{r['create_seconds']:.0f} s ({r['tenants']:,})" for r in rows)
        + ". Messages of the busy tenants still queued or submitting when the last quiet "
        "message was accepted: "
        + ", ".join(f"{r['flood_backlog_after_quiet']:,} ({r['tenants']:,})" for r in rows)
        + " (the flood was still going: the quiet messages did not wait for it).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[BUSY + 2 * QUIET, 1_000, 10_000])
    parser.add_argument("--label", default="after")
    parser.add_argument("--bulk-create", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bulk_create is not None:
        print(json.dumps(bulk_create(args.bulk_create, "quiet")))
        return
    began = time.monotonic()
    rows = []
    for index, count in enumerate(args.tenants):
        print(f"{count:,} tenants …", flush=True)
        rows.append(measure(count, index))
        print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "bench" / "results" / f"tenants-{args.label}.md"
    out.write_text(report(rows, time.monotonic() - began, args.label))
    print(out.read_text())


if __name__ == "__main__":
    main()

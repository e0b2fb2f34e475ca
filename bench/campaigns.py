"""Campaigns as deployed (issue 20): an audience imported and preflighted over HTTP, and a
campaign sent beside the tenant's single sends — the Procfile stack, each figure beside its
baseline in the same run. Writes ``bench/results/campaigns.md`` (``--quick``:
``bench/results/campaigns-quick.md``).

    WAYPOST_PG_DURABLE=1 scripts/with-services.sh .venv/bin/python bench/campaigns.py
    WAYPOST_PG_DURABLE=1 scripts/with-services.sh .venv/bin/python bench/campaigns.py --quick

The stack is ``make bench``'s (``devtools.stack``: gunicorn 2 workers x 4 threads, the Celery
worker with 2 prefork processes, beat, the callback deliverer, the sandbox with no throughput
limit and its status webhooks off; PostgreSQL with fsync on). Nothing is called in-process:
the load is HTTP from this script, the figures are the client's clock, the ledger's
timestamps, ``/proc`` and PostgreSQL's own statement log.

1. ``send`` — once per ``--mps`` (200, then 100): a sender of that rate, registered at the
   sandbox with the same rate (it refuses beyond it with 130429, as Meta does). Baseline: the
   tenant's single sends of an OTP-like template, one every 1/``--rate`` s (5/s, open loop)
   for ``--seconds`` (60) with nothing else running → p50/p95 ``requested`` → ``accepted``
   from the ledger, and where the time went (→ ``submit_started``, → ``accepted``, how many
   messages the single's claim took). Then a campaign of ``--rows`` (20,000) rows, uploaded
   as a CSV and started; once it sends at its pace, the same singles again, during it.
   Figures: the campaign's rate (its messages' ``accepted`` events, first to last and between
   its 10th and 90th percentile) against ``WAYPOST_CAMPAIGN_SHARE`` x mps; what reached the
   sandbox from the sender (its busiest second and ten seconds, campaign and singles
   together) and what it refused; the singles' latencies beside the baseline's.
2. ``import`` — ``POST /api/v1/campaigns`` as multipart with a CSV of 10,000 and of 100,000
   rows (a factory-like audience: numbers of five countries, two body variables, a metadata
   column; 1 % invalid numbers, 0.5 % duplicates; a few suppressed recipients): the wall time
   of the request, which imports and preflights before it answers (target ≤ 60 s for
   100,000), rows/s, and the peak RSS of the gunicorn worker that served it (``VmHWM`` of each
   worker, reset with ``/proc/<pid>/clear_refs`` just before the request, and ``VmRSS``
   sampled every 50 ms). The same two sizes again with PostgreSQL's ``log_statement = all``
   (set with ``ALTER SYSTEM`` for those requests only; untimed): every statement the serving
   connection issued, per 1,000 rows, and where the time went (the log's timestamps of the
   campaign's insert, its last row insert and the commit; the slowest statement). The
   sandbox's request counter shows that no HTTP leaves during an import.

Beside every figure: how busy the machine's CPU was, and how much of it other jobs used (CPU
time outside this script's process tree, its PostgreSQL and its Redis) — a figure taken while
something else ran on the machine says so.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Bench, pct
from devtools.stack import ROOT, TEMPLATE, Stack, body

FULL = {"import": (10_000, 100_000), "rows": 20_000, "seconds": 60}
QUICK = {"import": (1_000, 5_000), "rows": 1_500, "seconds": 8}
IMPORT_TARGET_SECONDS = 60
# The singles: an OTP-like transactional template. (Not an AUTHENTICATION one: the sandbox
# stores an authentication template's body without the text Meta supplies, "{{1}} is your
# verification code", so it refuses the code parameter with 132000.)
OTP = {
    "name": "login_code",
    "language": "en_US",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Your login code is {{1}}. It expires in 10 minutes."}],
}
# E.164 prefixes of mobile ranges, each followed by 7 digits: DE, NL, ES, BR, IN.
PREFIXES = ("+491511", "+3161", "+3461", "+551191", "+91981")
SUPPRESSED = 20  # recipients of the audience the tenant has a suppression for


def otp(to: str, code: str) -> dict:
    return {
        "to": to,
        "template": {
            "name": "login_code",
            "language": "en_US",
            "components": [{"type": "body", "parameters": [{"type": "text", "text": code}]}],
        },
    }


def number(i: int, run: int) -> str:
    """A distinct valid mobile number per (run < 10, i < 10**6), spread over five countries."""
    return f"{PREFIXES[i % len(PREFIXES)]}{run % 10}{i:06d}"


def audience_csv(rows: int, run: int, *, invalid: bool = True) -> bytes:
    """The CSV a delivery system would export: to, the two body variables, an order number as
    metadata. With ``invalid``: every 100th number unusable, every 200th row a duplicate of
    the row before."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["to", "1", "2", "metadata.order"])
    names = ("Ana", "Bruno", "Chloé", "Deepa", "Émile", "Farah", "Gustavo")
    for i in range(rows):
        to = number(i, run)
        if invalid and i % 100 == 99:
            to = f"+49000{i:04d}"
        elif invalid and i % 200 == 1:
            to = number(i - 1, run)
        writer.writerow([to, names[i % len(names)], f"A-{run}-{i:06d}", f"{run}-{i}"])
    return buffer.getvalue().encode()


# --- processes and memory ------------------------------------------------------------------------


def _status(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def gunicorn_workers(root: int) -> list[int]:
    """The gunicorn workers among ``root``'s descendants: the gunicorn processes without a
    gunicorn child (honcho's shell and the master have one)."""
    parent, command = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def under(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == root:
                return True
        return False

    gunicorn = {pid for pid, cmd in command.items() if b"gunicorn" in cmd and under(pid)}
    parents = {parent.get(pid) for pid in gunicorn}
    return sorted(pid for pid in gunicorn if pid not in parents)


TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float, bytes]]:
    """Every process: pid → (parent, CPU seconds of it and its reaped children, command)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        cpu = sum(int(v) for v in fields[11:15]) / TICK  # utime stime cutime cstime
        found[int(entry.name)] = (int(fields[1]), cpu, command)
    return found


class Machine:
    """CPU seconds the whole machine spent, and how much of it was not this benchmark's (this
    script's process tree, its PostgreSQL and its Redis): another job on the machine shows."""

    def __init__(self) -> None:
        services = os.environ["WAYPOST_SERVICES"].encode()
        procs = _processes()
        self.roots = {os.getppid()} | {
            pid for pid, (_, _, cmd) in procs.items() if services in cmd and b"postgres" in cmd
        }
        redis = Path(os.environ["WAYPOST_SERVICES"]) / "redis.pid"
        if redis.exists():
            self.roots.add(int(redis.read_text()))
        self.began = (time.monotonic(), *self._snapshot())

    def _snapshot(self) -> tuple[float, float]:
        busy = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = (sum(busy) - busy[3] - busy[4]) / TICK  # less idle and iowait
        procs, ours = _processes(), 0.0
        for pid, (_, cpu, _) in procs.items():
            walk = pid
            while walk > 1 and walk not in self.roots:
                walk = procs.get(walk, (0,))[0]
            if walk in self.roots:
                ours += cpu
        return total, ours

    def window(self) -> tuple[float, float]:
        """Since the last call (or since created): the share of the machine's CPU that was
        busy, and the share other jobs used."""
        now, (total, ours) = time.monotonic(), self._snapshot()
        began, total0, ours0 = self.began
        self.began = (now, total, ours)
        capacity = (now - began) * (os.cpu_count() or 1)
        return (total - total0) / capacity, max(0.0, total - total0 - (ours - ours0)) / capacity


class RssSampler(threading.Thread):
    """The largest ``VmRSS`` of each process, sampled every 50 ms until ``stop()``."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.peak = dict.fromkeys(pids, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for pid in self.peak:
                self.peak[pid] = max(self.peak[pid], _status(pid, "VmRSS"))
            self.done.wait(0.05)

    def stop(self) -> dict[int, int]:
        self.done.set()
        self.join()
        return self.peak


# --- PostgreSQL's statement log ------------------------------------------------------------------

LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \S+ \[(\d+)\] LOG:  (?:statement|execute [^:]*): "
    r"(.*)$"
)


PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[\d+\] ")


class StatementLog:
    """``log_statement = all`` for the block (``ALTER SYSTEM`` and a reload: every session,
    the open ones included), then the statements logged meanwhile."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.path = Path(os.environ["WAYPOST_SERVICES"]) / "pg.log"

    def __enter__(self) -> StatementLog:
        self._set("all")
        self.offset = self.path.stat().st_size
        return self

    def __exit__(self, *exc) -> None:
        self._set(None)
        with self.path.open("rb") as log:
            log.seek(self.offset)
            self.text = log.read().decode(errors="replace")

    def _set(self, value: str | None) -> None:
        if value is None:
            self.stack.sql("ALTER SYSTEM RESET log_statement")
        else:
            self.stack.sql(f"ALTER SYSTEM SET log_statement = '{value}'")
        self.stack.sql("SELECT pg_reload_conf()")
        time.sleep(1)  # every backend reads the reloaded file before its next command

    def statements(self) -> list[tuple[datetime, int, str]]:
        """(when, backend pid, the statement on one line) for every statement logged."""
        found: list[tuple[datetime, int, str]] = []
        for line in self.text.splitlines():
            if match := LOG_LINE.match(line):
                at, pid, text = match.groups()
                found.append((datetime.fromisoformat(at), int(pid), text))
            elif found and not PREFIX.match(line):  # a statement's next line
                at, pid, text = found[-1]
                found[-1] = (at, pid, f"{text} {line}")
        return [(at, pid, " ".join(text.split())) for at, pid, text in found]


# --- the bench -----------------------------------------------------------------------------------


class CampaignBench:
    def __init__(self, stack: Stack, sizes: dict, rate: float) -> None:
        self.stack = stack
        self.sizes = sizes
        self.rate = rate
        self.bench = Bench(stack, sizes)  # the ledger's helpers
        self.machine = Machine()
        self.run = 0

    def tenant(self, slug: str, mps: int = 1000) -> dict:
        created = self.stack.create_tenant(slug, mps=mps)
        created["session"] = self.stack.client(created["api_key"])
        for definition in (TEMPLATE, OTP):
            answer = created["session"].post(f"{self.stack.url}/api/v1/templates", json=definition)
            assert answer.json().get("status") == "APPROVED", answer.text
        answer = created["session"].post(  # the queue's first message (see bench.run)
            f"{self.stack.url}/api/v1/messages",
            json=body("+4915100000000", "warm-up"),
            headers={"Idempotency-Key": "warm-up"},
        )
        assert answer.status_code == 202, answer.text
        self.bench.wait_state(created, 0, "accepted")
        return created

    def create(self, tenant: dict, data: bytes, key: str, **fields) -> tuple[float, dict]:
        """``POST /api/v1/campaigns`` (multipart, the CSV as the ``audience`` file): seconds,
        and the campaign."""
        form = {"template": json.dumps({"name": "order_update", "language": "en_US"})}
        form |= {name: str(value).lower() for name, value in fields.items()}
        started = time.monotonic()
        answer = tenant["session"].post(
            f"{self.stack.url}/api/v1/campaigns",
            files={"audience": ("audience.csv", data, "text/csv")},
            data=form,
            headers={"Idempotency-Key": key},
            timeout=900,
        )
        seconds = time.monotonic() - started
        assert answer.status_code == 201, answer.text[:2000]
        return seconds, answer.json()

    # --- sending -------------------------------------------------------------------------------

    def singles(self, tenant: dict, label: str) -> list[float]:
        """OTP sends at ``rate``/s for ``seconds``, open loop; the API's answer times (ms)."""
        total = int(self.rate * self.sizes["seconds"])
        self.run += 1
        run, local, answered = self.run, threading.local(), []
        start = time.monotonic() + 0.2

        def one(i: int) -> None:
            due = start + i / self.rate
            time.sleep(max(0.0, due - time.monotonic()))
            if not hasattr(local, "session"):
                local.session = self.stack.client(tenant["api_key"])
            answer = local.session.post(
                f"{self.stack.url}/api/v1/messages",
                json=otp(f"+4917{run % 100:02d}{i:07d}", f"{i % 1000000:06d}"),
                headers={"Idempotency-Key": f"{label}-{i}"},
                timeout=60,
            )
            assert answer.status_code == 202, answer.text
            answered.append((time.monotonic() - due) * 1000)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(total)))
        return answered

    def single_lags(self, tenant: dict, label: str, until: str = "accepted") -> list[float]:
        """``requested`` → ``until`` (ms) of the tenant's singles whose key starts with
        ``label``, once every one of them is accepted."""
        deadline = time.monotonic() + 300
        expected = int(self.rate * self.sizes["seconds"])
        query = (  # the first such event of each message
            "select extract(epoch from min(a.recorded_at) - min(r.recorded_at)) * 1000 "
            "from messaging_message m "
            "join messaging_messageevent r on r.message_id = m.id and r.type = 'requested' "
            "join messaging_messageevent a on a.message_id = m.id and a.type = %s "
            "where m.tenant_id = (select id from tenants_tenant where slug = %s) "
            "and m.campaign_id is null and m.idempotency_key like %s group by m.id"
        )
        while True:
            args = ["accepted", tenant["tenant"], f"{label}-%"]
            lags = [float(ms) for (ms,) in self.stack.sql(query, args)]
            if len(lags) >= expected:
                if until == "accepted":
                    return lags
                args[0] = until
                return [float(ms) for (ms,) in self.stack.sql(query, args)]
            if time.monotonic() > deadline:
                states = self.stack.sql(
                    "select state, error_code, count(*) from messaging_message "
                    "where idempotency_key like %s group by 1, 2",
                    [f"{label}-%"],
                )
                raise SystemExit(f"{label}: {len(lags)} of {expected} accepted; {states}")
            time.sleep(0.5)

    def claims(self, tenant: dict, label: str) -> tuple[list[float], list[int]]:
        """For each single: its first claim → ``accepted`` (ms: its batch's submit and record)
        and how many messages that claim took (the tenant's ``submit_started`` events stamped
        within 5 ms of its own: one claim writes its events together, claims are further
        apart)."""
        rows = self.stack.sql(
            "with singles as (select m.id, min(s.recorded_at) as claimed, "
            "min(a.recorded_at) as accepted from messaging_message m "
            "join messaging_messageevent s on s.message_id = m.id and s.type = 'submit_started' "
            "join messaging_messageevent a on a.message_id = m.id and a.type = 'accepted' "
            "where m.tenant_id = (select id from tenants_tenant where slug = %s) "
            "and m.campaign_id is null and m.idempotency_key like %s group by m.id) "
            "select extract(epoch from s.accepted - s.claimed) * 1000, "
            "(select count(*) from messaging_messageevent e join messaging_message o "
            "on o.id = e.message_id where e.type = 'submit_started' and o.tenant_id = "
            "(select id from tenants_tenant where slug = %s) and e.recorded_at between "
            "s.claimed - interval '5 ms' and s.claimed + interval '5 ms') from singles s",
            [tenant["tenant"], f"{label}-%", tenant["tenant"]],
        )
        return [float(ms) for ms, _ in rows], [int(n) for _, n in rows]

    def campaign_state(self, campaign_id: str) -> tuple[str, int]:
        [(state, accepted)] = self.stack.sql(
            "select c.state, (select count(*) from messaging_message m where m.campaign_id = c.id "
            "and m.state in ('accepted', 'sent', 'delivered', 'read')) "
            "from campaigns_campaign c where c.id = %s",
            [campaign_id],
        )
        return state, accepted

    def send(self, mps: int) -> dict:
        tenant = self.tenant(f"sender{mps}", mps)
        number = tenant["sender"]["phone_number_id"]
        # The sandbox enforces the sender's rate as Meta does (130429 beyond it).
        self.stack.sandbox("POST", "/_sandbox/numbers", {"phone_number_id": number, "mps": mps})
        refused = self.stack.sandbox("GET", "/_sandbox/stats")["rejected"].get("130429", 0)
        seconds = self.sizes["seconds"]
        print(
            f"    baseline: OTP-like singles at {self.rate:g}/s for {seconds} s, alone", flush=True
        )
        self.machine.window()
        alone_api = self.singles(tenant, f"alone{mps}")
        alone_busy, alone_others = self.machine.window()
        alone = self.single_lags(tenant, f"alone{mps}")
        alone_claimed = self.single_lags(tenant, f"alone{mps}", "submit_started")
        alone_batch, alone_claim = self.claims(tenant, f"alone{mps}")
        rows = self.sizes["rows"]
        print(f"    a campaign of {rows:,} rows on a {mps} msg/s sender", flush=True)
        _, campaign = self.create(
            tenant, audience_csv(rows, 9, invalid=False), f"send{mps}", start=True
        )
        assert campaign["state"] in ("running", "scheduled"), campaign["state"]
        planned = campaign["progress"]["planned_rate_per_second"]
        # The singles once the campaign has sent at its pace for a few seconds.
        while self.campaign_state(campaign["id"])[1] < 3 * planned:
            time.sleep(0.1)
        print("    the same singles during the campaign", flush=True)
        before = self.campaign_state(campaign["id"])
        self.machine.window()
        during_api = self.singles(tenant, f"during{mps}")
        during_busy, during_others = self.machine.window()
        after = self.campaign_state(campaign["id"])
        during = self.single_lags(tenant, f"during{mps}")
        during_claimed = self.single_lags(tenant, f"during{mps}", "submit_started")
        during_batch, during_claim = self.claims(tenant, f"during{mps}")
        deadline = time.monotonic() + 3600
        while (state := self.campaign_state(campaign["id"]))[0] != "completed":
            if time.monotonic() > deadline:
                raise SystemExit(f"the campaign did not complete: {state}")
            self.bench_progress(state, rows)
            time.sleep(0.5)
        accepted = sorted(
            float(t)
            for (t,) in self.stack.sql(
                "select extract(epoch from e.recorded_at) from messaging_messageevent e "
                "join messaging_message m on m.id = e.message_id "
                "where m.campaign_id = %s and e.type = 'accepted'",
                [campaign["id"]],
            )
        )
        # What reached "Meta" from this sender, on the sandbox's clock: the campaign's messages
        # and the singles together.
        arrived = sorted(
            record["accepted_at"]
            for record in self.stack.sandbox("GET", "/_sandbox/messages")["data"]
            if record["phone_number_id"] == number
        )
        n = len(accepted)
        low, high = accepted[n // 10], accepted[n * 9 // 10]
        return {
            "mps": mps,
            "rows": rows,
            "accepted": n,
            "rate": (n - 1) / (accepted[-1] - accepted[0]),
            "rate_steady": (n * 9 // 10 - n // 10) / (high - low),
            "planned": planned,
            "sender_peak_1s": _busiest(arrived, 1.0),
            "sender_peak_10s": _busiest(arrived, 10.0) / 10,
            "refused_130429": self.stack.sandbox("GET", "/_sandbox/stats")["rejected"].get(
                "130429", 0
            )
            - refused,
            "overlap": after[1] - before[1],
            "alone_p50": pct(alone, 50),
            "alone_p95": pct(alone, 95),
            "alone_max": max(alone),
            "during_p50": pct(during, 50),
            "during_p95": pct(during, 95),
            "during_max": max(during),
            "alone_claimed_p95": pct(alone_claimed, 95),
            "during_claimed_p95": pct(during_claimed, 95),
            "alone_batch_p95": pct(alone_batch, 95),
            "during_batch_p95": pct(during_batch, 95),
            "alone_claim_p50": pct(alone_claim, 50),
            "during_claim_p50": pct(during_claim, 50),
            "during_claim_p95": pct(during_claim, 95),
            "alone_api_p95": pct(alone_api, 95),
            "during_api_p95": pct(during_api, 95),
            "singles": len(during),
            "alone_busy": alone_busy,
            "alone_others": alone_others,
            "during_busy": during_busy,
            "during_others": during_others,
        }

    @staticmethod
    def bench_progress(state: tuple[str, int], rows: int) -> None:
        end = "\r" if sys.stdout.isatty() else "\n"
        print(f"    campaign {state[0]}: {state[1]:,}/{rows:,} accepted\033[K", end=end, flush=True)

    # --- import --------------------------------------------------------------------------------

    def import_(self) -> dict:
        tenant = self.tenant("importer")
        self.stack.sql(  # a few of the audience's recipients opted out
            "insert into messaging_suppression (tenant_id, recipient, user_id, reason, created_at) "
            "select t.id, n, '', 'bench', now() "
            "from tenants_tenant t, unnest(%s::text[]) n where t.slug = %s",
            [[number(i * 37, 1) for i in range(SUPPRESSED)], tenant["tenant"]],
        )
        figures: dict = {}
        workers = gunicorn_workers(self.stack.proc.pid)
        assert len(workers) == 2, f"gunicorn workers: {workers}"
        for rows in self.sizes["import"]:
            data = audience_csv(rows, 1)
            print(f"    {rows:,} rows ({len(data) / 2**20:.1f} MiB of CSV), timed", flush=True)
            figures[rows] = self.import_timed(tenant, data, rows, workers)
            print(f"    {_short(figures[rows])}", flush=True)
        for rows in self.sizes["import"]:
            print(f"    {rows:,} rows, every statement logged (untimed)", flush=True)
            counted = self.import_counted(tenant, audience_csv(rows, 2), rows)
            figures[rows] |= counted
            print(f"    {_short(counted)}", flush=True)
        return figures

    def import_timed(self, tenant: dict, data: bytes, rows: int, workers: list[int]) -> dict:
        before = {pid: _status(pid, "VmRSS") for pid in workers}
        for pid in workers:  # VmHWM := VmRSS (proc(5), clear_refs)
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        http_before = self.stack.sandbox("GET", "/_sandbox/stats")["requests"]
        sampler = RssSampler(workers)
        sampler.start()
        self.machine.window()
        seconds, campaign = self.create(tenant, data, f"import-{rows}")
        busy, others = self.machine.window()
        sampled = sampler.stop()
        http_after = self.stack.sandbox("GET", "/_sandbox/stats")["requests"]
        peaks = {pid: _status(pid, "VmHWM") for pid in workers}
        served = max(workers, key=lambda pid: peaks[pid] - before[pid])
        report = campaign["preflight"]
        assert report["rows"] == rows, report
        return {
            "seconds": seconds,
            "rows_per_second": rows / seconds,
            "rss_before_mib": before[served] / 1024,
            "rss_peak_mib": peaks[served] / 1024,
            "rss_growth_mib": (peaks[served] - before[served]) / 1024,
            "rss_sampled_mib": sampled[served] / 1024,
            "other_worker_peak_mib": max(
                (peaks[pid] / 1024 for pid in workers if pid != served), default=0
            ),
            "invalid": report["invalid"],
            "valid": report["valid"],
            "provider_requests": http_after - http_before,
            "busy": busy,
            "others": others,
        }

    def import_counted(self, tenant: dict, data: bytes, rows: int) -> dict:
        with StatementLog(self.stack) as log:
            self.create(tenant, data, f"counted-{rows}")
        statements = log.statements()
        insert = next(  # the campaign's own insert: the serving connection's backend
            (at, pid)
            for at, pid, text in statements
            if text.startswith('INSERT INTO "campaigns_campaign" ')
        )
        mine = [(at, text) for at, pid, text in statements if pid == insert[1]]
        row_inserts = [
            at for at, text in mine if text.startswith('INSERT INTO "campaigns_campaignrow"')
        ]
        commits = [at for at, text in mine if text.strip().upper() == "COMMIT" and at >= insert[0]]
        # A statement's time: until the same connection's next one (its Python included).
        spans = sorted(((b[0] - a[0]).total_seconds(), a[1]) for a, b in pairwise(mine))
        seconds, slowest = spans[-1]
        return {
            "statements": len(mine),
            "statements_per_1000_rows": len(mine) * 1000 / rows,
            "row_inserts": len(row_inserts),
            "import_seconds_logged": (row_inserts[-1] - insert[0]).total_seconds(),
            "preflight_seconds_logged": (commits[0] - row_inserts[-1]).total_seconds(),
            "slowest_seconds": seconds,
            "slowest": slowest[:90],
        }


def _busiest(times: list[float], width: float) -> int:
    """The most events in any window of ``width`` seconds."""
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= width:
            first += 1
        best = max(best, last - first + 1)
    return best


def _short(figures: dict) -> str:
    return ", ".join(
        f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
    )


# --- the report ----------------------------------------------------------------------------------


def report(sends: list[dict], imported: dict | None, args, elapsed: float, pg: str) -> str:
    import django
    import psycopg

    command = "WAYPOST_PG_DURABLE=1 scripts/with-services.sh .venv/bin/python bench/campaigns.py"
    if len(sys.argv) > 1:
        command += " " + " ".join(sys.argv[1:])
    lines = [
        "# Campaigns as deployed: benchmark results (issue 20)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` in "
        f"{elapsed / 60:.0f} min. Machine: {os.cpu_count()} cores, {platform.platform()}; "
        f"Python {platform.python_version()}, Django {django.get_version()}, psycopg "
        f"{psycopg.__version__}, PostgreSQL {pg} (fsync on). The Procfile stack under "
        "honcho (gunicorn 2 workers x 4 gthreads, Celery worker prefork x2, beat, callback "
        "deliverer, sandbox), production settings, the load from this script over HTTP; one run.",
        "",
        "| Scenario | Waypost | Baseline (same run) | Target |",
        "|---|---|---|---|",
    ]
    if imported:
        smallest = imported[min(imported)]
        for rows, f in imported.items():
            baseline = (
                f"the {min(imported):,}-row import: {smallest['seconds']:.1f} s, +"
                f"{smallest['rss_growth_mib']:.0f} MiB, {smallest.get('statements', '?')} "
                f"statements; "
                if rows != min(imported)
                else ""
            )
            counted = (
                f"; **{f['statements']} SQL statements** ({f['statements_per_1000_rows']:.2f} per "
                f"1,000 rows; {f['row_inserts']} row INSERTs of 2,000 rows), per PostgreSQL's "
                f"statement log: import {f['import_seconds_logged']:.1f} s, preflight "
                f"{f['preflight_seconds_logged']:.1f} s, the slowest statement "
                f"{f['slowest_seconds']:.1f} s (`{f['slowest'][:60]}…`)"
                if "statements" in f
                else ""
            )
            lines.append(
                f"| Import + preflight: `POST /api/v1/campaigns`, {rows:,}-row CSV (multipart) "
                f"| **{f['seconds']:.1f} s** ({f['rows_per_second']:,.0f} rows/s; "
                f"{f['valid']:,} valid, {f['invalid']:,} invalid); serving gunicorn worker's "
                f"peak RSS **{f['rss_peak_mib']:.0f} MiB** (+{f['rss_growth_mib']:.0f} MiB over "
                f"its {f['rss_before_mib']:.0f} MiB before; sampled max "
                f"{f['rss_sampled_mib']:.0f} MiB){counted}; requests to the provider: "
                f"{f['provider_requests']}; the machine's CPU {f['busy']:.0%} busy, other jobs "
                f"{f['others']:.0%} | {baseline}the other gunicorn "
                f"worker's peak {f['other_worker_peak_mib']:.0f} MiB | "
                f"≤ {IMPORT_TARGET_SECONDS} s at 100,000; memory bounded; no per-row round trip |"
            )
    for s in sends:
        lines += [
            f"| Campaign of {s['rows']:,} rows on a {s['mps']} msg/s sender | **"
            f"{s['rate_steady']:.1f} msg/s** between its 10th and 90th percentile `accepted` "
            f"({s['rate']:.1f} msg/s first to last); at the sandbox (Meta's place, the campaign "
            f"and the singles): busiest second {s['sender_peak_1s']} messages, busiest ten "
            f"seconds {s['sender_peak_10s']:.1f}/s, **{s['refused_130429']} refused** for the "
            f"sender's {s['mps']} msg/s (130429) | planned: {s['planned']:g} msg/s "
            "(WAYPOST_CAMPAIGN_SHARE x mps) | ≈ share x mps, never above mps |",
            f"| OTP-like single sends at {args.rate:g}/s for {args.seconds} s during that "
            f"campaign ({s['overlap']:,} campaign messages accepted meanwhile) | requested → "
            f"accepted p50 {s['during_p50']:.0f} ms, **p95 {s['during_p95']:.0f} ms**, max "
            f"{s['during_max']:.0f} ms; requested → submit started p95 "
            f"{s['during_claimed_p95']:.0f} ms, submit started → accepted p95 "
            f"{s['during_batch_p95']:.0f} ms (claimed with {s['during_claim_p50'] - 1} other "
            f"messages at the median, {s['during_claim_p95'] - 1} at p95); API answer p95 "
            f"{s['during_api_p95']:.0f} ms; the machine's CPU {s['during_busy']:.0%} busy, "
            f"other jobs {s['during_others']:.0%} | "
            f"the same singles alone: p50 {s['alone_p50']:.0f} ms, **p95 {s['alone_p95']:.0f} "
            f"ms**, max {s['alone_max']:.0f} ms; requested → submit started p95 "
            f"{s['alone_claimed_p95']:.0f} ms, submit started → accepted p95 "
            f"{s['alone_batch_p95']:.0f} ms (claimed with {s['alone_claim_p50'] - 1} other "
            f"messages, median); API answer p95 {s['alone_api_p95']:.0f} ms; the machine's "
            f"CPU {s['alone_busy']:.0%} busy, other jobs {s['alone_others']:.0%} | at their "
            "usual latency |",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", choices=("send", "import"), help="one scenario only")
    parser.add_argument(
        "--mps",
        type=int,
        nargs="+",
        default=[200, 100],
        help="the sender's messages/s, one send scenario each (200 100)",
    )
    parser.add_argument("--rate", type=float, default=5.0, help="single sends per second (5)")
    parser.add_argument("--rows", type=int, help="the campaign's rows (20,000)")
    parser.add_argument("--seconds", type=int, help="seconds of single sends (60)")
    parser.add_argument("--out", type=Path, help="where to write the results")
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    sizes["rows"] = args.rows or sizes["rows"]
    sizes["seconds"] = args.seconds or sizes["seconds"]
    args.seconds = sizes["seconds"]
    name = "campaigns-quick.md" if args.quick else "campaigns.md"
    out = args.out or ROOT / "bench" / "results" / name
    env = {
        "SANDBOX_DEFAULT_MPS": "0",
        "SANDBOX_WEBHOOK_DROP_RATE": "1",
        "SANDBOX_SEED": "1",
    }
    began = time.monotonic()
    sends, imported = [], None
    with Stack(database="waypost_bench_campaigns", env=env) as stack:
        stack.start()
        bench = CampaignBench(stack, sizes, args.rate)
        for mps in args.mps if args.only in (None, "send") else ():
            print(f"send at {mps} msg/s …", flush=True)
            sends.append(bench.send(mps))
            print(f"    {_short(sends[-1])}", flush=True)
        if args.only in (None, "import"):
            print("import …", flush=True)
            imported = bench.import_()
        [(pg,)] = stack.sql("show server_version")
        stack.stop()
    text = report(sends, imported, args, time.monotonic() - began, pg.split()[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n" + text + f"\nwritten to {out}")


if __name__ == "__main__":
    main()

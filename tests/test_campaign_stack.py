"""Issue 20's end-to-end test, on the real stack: the production Procfile's processes (gunicorn,
the Celery worker, beat, the callback deliverer) with the sandbox in place of Meta
(``Procfile.sandbox``, started by ``devtools.stack`` as ``tests/test_procfile_stack.py`` starts
it), driven over HTTP as a client and an operator would.

A 10,000-row campaign whose CSV holds 50 invalid rows of four kinds (reported, never sent) is
scheduled a few seconds ahead (nothing leaves before), paced (never more than a lead's worth of
its messages waiting, never faster than its planned rate), paused and resumed (nothing submitted
a second after the pause answered), held at the business portfolio's messaging limit that the
sandbox's ``business_capability_update`` webhook set before it started (the sandbox refused
none of its sends beyond the limit), and completed once the limit is raised the same way. Its
report's counts equal the ledger's, no message was submitted twice, and single messages sent
meanwhile are all accepted — their requested → accepted latency printed beside the same figure
before the campaign (``bench/`` measures it properly; here only a sanity bound).

The sandbox sends a tenth of its status events (its drop knob): the ledger still holds every
state a campaign's message can be in, and the worker's time goes to the campaign rather than to
20,000 statuses — this test runs beside the rest of ``make test`` on two cores.

The test reads the stack's PostgreSQL for the ledger (events and their times), as an auditor
would; everything it does goes through the API, the webhook route and the sandbox's control
API. Its Redis is database 1 of the run's server (``devtools.stack`` takes 2, for
``tests/test_procfile_stack.py``, and pytest-xdist's processes 3 and up): two stacks in one run
must not share a broker.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests

from devtools.stack import TEMPLATE, Stack, body

from .waiting import wait_for, wait_while_moving

pytestmark = [pytest.mark.system, pytest.mark.long]

ROWS = 10_000
SENDER_MPS = 500  # Waypost's sender (the campaign's share: 400 a second); the sandbox: unlimited
LEAD_SECONDS = 1.0  # WAYPOST_CAMPAIGN_LEAD_SECONDS: a campaign's messages waiting, in seconds
LIMIT = 2000  # the portfolio's messaging limit, set through the webhook before the campaign
SCHEDULED_AHEAD = 20.0  # from the request to its send_at, s (the import: 2-3, 8+ in make test)
PAUSE_AFTER = 400  # the campaign's messages accepted when it is paused
PAUSE_GRACE = 1.0  # seconds after the pause's answer in which a claimed message may still leave
PAUSE_WATCH = 1.5  # seconds watched after that grace, to see nothing leave
RATE_WINDOW = 5  # seconds: the release rate is counted over every window this long
SINGLES_BEFORE = 20
SINGLES_EVERY = 0.25  # seconds between two single sends while the campaign runs
SANE_P95 = 2.0  # seconds, requested → accepted: a sanity bound (bench/ measures the latency)
ACCEPTED = ("accepted", "sent", "delivered", "read")
WAITING = ("queued", "retry_scheduled", "submitting")


def number(n: int) -> str:
    return f"+49152{n:08d}"


def audience() -> tuple[bytes, dict[int, str]]:
    """A CSV of :data:`ROWS` rows (``to``, ``1``, ``2``) and its invalid rows, row number → the
    error code the preflight must give: a number that is not one, a recipient given twice, a
    row without a recipient, a row without the template's second variable."""
    bad_numbers = ["12345", "+1", "not-a-number", "+49 152 abc", "004915299999999", "+0000"]
    invalid: dict[int, str] = {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["to", "1", "2"])
    for n in range(1, ROWS + 1):
        to, second = number(n), f"C-{n}"
        if n % 200 == 7:  # 50 rows, the four kinds in turn
            kind = (n // 200) % 4
            if kind == 0:
                to, invalid[n] = bad_numbers[n % len(bad_numbers)], "recipient_invalid"
            elif kind == 1:
                to, invalid[n] = number(n - 6), "duplicate_recipient"
            elif kind == 2:
                to, invalid[n] = "", "recipient_missing"
            else:
                second, invalid[n] = "", "variable_missing"
        writer.writerow([to, "Ana", second])
    return out.getvalue().encode(), invalid


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Singles:
    """The tenant's transactional traffic: single sends, each retried with its own
    Idempotency-Key when the connection drops (as a client would), and their requested →
    accepted lags read from the ledger."""

    def __init__(self, stack: Stack, key: str) -> None:
        self.stack, self.session = stack, stack.client(key)
        self.ids: dict[str, list[str]] = {}
        self.errors: list[str] = []
        self.count = 0

    def send(self, phase: str, to: str) -> None:
        self.count += 1
        request = {
            "url": f"{self.stack.url}/api/v1/messages",
            "headers": {"Idempotency-Key": f"single-{self.count}"},
            "json": body(to, f"OTP-{self.count}"),
            "timeout": 30,
        }
        try:
            answer = self.session.post(**request)
        except requests.ConnectionError:  # a kept-alive connection the server closed
            answer = self.session.post(**request)
        if answer.status_code not in (201, 202):
            self.errors.append(f"{answer.status_code} {answer.text[:300]}")
            return
        self.ids.setdefault(phase, []).append(answer.json()["id"])

    def accepted(self, phase: str) -> int:
        [(n,)] = self.stack.sql(
            "select count(*) from messaging_message where id = any(%s::uuid[]) and state = any(%s)",
            [self.ids.get(phase, []), list(ACCEPTED)],
        )
        return n

    def lags(self, phase: str) -> list[float]:
        """Seconds from ``requested`` to ``accepted``, one per message of ``phase``."""
        rows = self.stack.sql(
            "select extract(epoch from a.recorded_at - r.recorded_at) "
            "from messaging_messageevent r join messaging_messageevent a "
            "on a.message_id = r.message_id and a.type = 'accepted' "
            "where r.type = 'requested' and r.message_id = any(%s::uuid[])",
            [self.ids.get(phase, [])],
        )
        return [float(lag) for (lag,) in rows]


def campaign_progress(session: requests.Session, url: str) -> tuple:
    """(state, its progress counts) from the API: changes while the campaign moves."""
    data = session.get(url, timeout=10).json()
    return data["state"], sorted(data["progress"]["counts"].items())


def states_of(stack: Stack, campaign_id: str) -> Counter:
    """The campaign's messages by state, as the ledger has them."""
    return Counter(
        dict(
            stack.sql(
                "select state, count(*) from messaging_message where campaign_id = %s "
                "group by state",
                [campaign_id],
            )
        )
    )


def test_a_10000_row_campaign_on_the_procfile_stack(tmp_path, capsys):
    redis = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/1"
    stack = Stack(
        database="waypost_campaign_stack",
        env={
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            "CELERY_IMPORTS": "",
            "REDIS_URL": redis,
            "CELERY_BROKER_URL": redis,
            "WAYPOST_CAMPAIGN_LEAD_SECONDS": str(LEAD_SECONDS),
            "SANDBOX_SEED": "20",
            "SANDBOX_DEFAULT_MPS": "0",
            "SANDBOX_WEBHOOK_DROP_RATE": "0.9",
            "SANDBOX_SENT_AFTER_MS": "20",
            "SANDBOX_DELIVERED_AFTER_MS": "60",
            "SANDBOX_READ_AFTER_MS": "100",
            # Twenty users of the audience, past the limit's first 2,000, are not on WhatsApp:
            # accepted, then failed (131026) — when the sandbox sends that status.
            "SANDBOX_FAIL_RULES": json.dumps([[r"^\+?49152000050[01]\d$", 131026]]),
        },
    )
    figures: list[str] = []
    clock = time.monotonic()

    def mark(what: str) -> None:
        figures.append(f"{time.monotonic() - clock:6.1f} s  {what}")

    with stack:
        created = stack.create_tenant("shop", mps=SENDER_MPS)
        sender = created["sender"]
        stack.start()
        mark("the stack answers")
        session = stack.client(created["api_key"])
        api = stack.url + "/api/v1"
        # The sandbox knows the number in its WABA: the portfolio its limit applies to.
        stack.sandbox(
            "POST",
            "/_sandbox/numbers",
            {"phone_number_id": sender["phone_number_id"], "waba_id": sender["waba_id"], "mps": 0},
        )
        template = session.post(f"{api}/templates", json=TEMPLATE, timeout=10)
        assert template.json()["status"] == "APPROVED", template.text

        def portfolio() -> dict:
            [entry] = [
                p
                for p in stack.sandbox("GET", "/_sandbox/limits")["data"]
                if sender["waba_id"] in p["waba_ids"]
            ]
            return entry

        # 1. The portfolio's limit, as Meta's webhook tells it (an integer), before the campaign.
        stack.sandbox("POST", "/_sandbox/limits", {"waba_id": sender["waba_id"], "limit": LIMIT})
        wait_for(
            lambda: stack.sql('select 1 from tenants_portfoliolimit where "limit" = %s', [LIMIT]),
            30,
            "Waypost to learn the limit from business_capability_update",
        )

        # 2. The campaign: imported and preflighted, scheduled a few seconds ahead, started
        # with its invalid rows skipped.
        csv_bytes, invalid = audience()
        valid = ROWS - len(invalid)
        send_at = datetime.now(UTC) + timedelta(seconds=SCHEDULED_AHEAD)
        answer = session.post(
            f"{api}/campaigns",
            headers={"Idempotency-Key": "campaign-1"},
            files={"audience": ("audience.csv", csv_bytes, "text/csv")},
            data={
                "template": '{"name": "order_update", "language": "en_US"}',
                "send_at": send_at.isoformat(),
                "start": "true",
                "skip_invalid": "true",
            },
            timeout=120,
        )
        assert answer.status_code == 201, answer.text
        campaign = answer.json()
        cid = campaign["id"]
        mark(f"campaign imported, {send_at.timestamp() - time.time():.1f} s before its send_at")
        assert campaign["state"] == "scheduled", (
            f"{campaign['state']}: the import took longer than its {SCHEDULED_AHEAD} s ahead"
        )
        preflight = campaign["preflight"]
        assert (preflight["rows"], preflight["valid"], preflight["invalid"]) == (
            ROWS,
            valid,
            len(invalid),
        )
        assert preflight["errors"] == dict(Counter(invalid.values()))
        assert preflight["messaging_limit"] == {
            "limit": LIMIT,
            "reached_24h": 0,
            "remaining": LIMIT,
            "recipients": valid,
            "fits": False,
        }
        assert [w["code"] for w in preflight["warnings"]] == ["beyond_messaging_limit"]
        report = session.get(f"{api}/campaigns/{cid}/report", timeout=10).json()
        assert report["invalid_rows_total"] == len(invalid)
        assert {r["row"]: r["error_code"] for r in report["invalid_rows"]} == invalid
        download = session.get(stack.url + report["invalid_rows_csv"], timeout=10)
        assert download.status_code == 200, download.text
        assert download.headers["Content-Type"].startswith("text/csv")
        listed = list(csv.DictReader(io.StringIO(download.text)))
        assert {int(r["row"]): r["error_code"] for r in listed} == invalid
        assert {r["outcome"] for r in listed} == {"skipped"}  # started with skip_invalid

        # 6, before: single sends while the campaign waits for its send_at — new users, counted
        # by the limit before the campaign's first message.
        singles = Singles(stack, created["api_key"])
        for i in range(SINGLES_BEFORE):
            singles.send("before", f"+49170{i:08d}")
        wait_for(lambda: singles.accepted("before") == SINGLES_BEFORE, 30, "the singles accepted")
        assert not states_of(stack, cid), "the campaign released messages before its send_at"
        mark("singles before the campaign accepted")

        # 6, during: a few single sends a second while the campaign runs, each to a user the
        # campaign already reached (so the portfolio's count stays the campaign's: Meta counts
        # a user once).
        stop, failures = threading.Event(), []

        def during() -> None:
            try:
                offset = 0
                while not stop.wait(SINGLES_EVERY):
                    reached = stack.sql(
                        "select recipient from messaging_message where campaign_id = %s and "
                        "state = any(%s) order by created_at, id offset %s limit 1",
                        [cid, list(ACCEPTED), offset],
                    )
                    if reached:
                        singles.send("during", reached[0][0])
                        offset += 1
            except Exception as exc:
                failures.append(repr(exc))

        wait_for(lambda: states_of(stack, cid), 30, "the campaign's first release")
        mark("the campaign's first release")
        traffic = threading.Thread(target=during, daemon=True)
        traffic.start()

        # 3. Paused once part of it is out, watched, resumed.
        wait_for(
            lambda: sum(states_of(stack, cid)[s] for s in ACCEPTED) >= PAUSE_AFTER,
            30,
            f"{PAUSE_AFTER} of the campaign's messages accepted",
        )
        paused = session.post(f"{api}/campaigns/{cid}/pause", json={"reason": "check"}, timeout=10)
        paused_at = time.time()
        assert paused.json()["state"] == "paused", paused.text
        wait_for(
            lambda: (
                time.time() > paused_at + PAUSE_GRACE + PAUSE_WATCH
                and not states_of(stack, cid)["submitting"]
            ),
            15,
            "the pause watched",
        )
        resumed_at = time.time()
        resumed = session.post(f"{api}/campaigns/{cid}/resume", json={}, timeout=10)
        assert resumed.json()["state"] == "running", resumed.text
        mark("paused and resumed")

        # 4. Held at the limit: the portfolio reached it, and the sandbox refused nothing.
        wait_for(
            lambda: (
                session.get(f"{api}/campaigns/{cid}", timeout=10).json()["progress"]["held_reason"]
                == "messaging_limit"
            ),
            90,
            "the campaign held at the messaging limit",
        )
        wait_for(  # what it released has been answered: the portfolio's count is final
            lambda: not states_of(stack, cid).keys() & set(WAITING),
            20,
            "the campaign's released messages answered",
        )
        mark("held at the messaging limit")

        def held_with_its_rows() -> dict | None:
            # A user slot that frees as the last waiting message is answered (it reached an
            # already counted user) is released by the next pass, which then holds again.
            data = session.get(f"{api}/campaigns/{cid}", timeout=10).json()
            counts = data["progress"]["counts"]
            return data if counts["held_at_limit"] == counts["pending"] > 0 else None

        held = wait_for(held_with_its_rows, 10, "the campaign held, its pending rows counted")
        at_limit = portfolio()
        assert at_limit["limit"] == LIMIT and at_limit["refused"] == 0, at_limit
        # A queued single (counted as a possible new user) may hold the campaign a user short.
        assert LIMIT - 5 <= at_limit["reached"] <= LIMIT, at_limit
        counts = held["progress"]["counts"]
        assert held["state"] == "running", held["state"]
        assert counts["held_at_limit"] == counts["pending"] > 0, counts
        [(reached,)] = stack.sql(
            "select count(distinct recipient) from messaging_message where attempts > 0"
        )
        assert reached == at_limit["reached"]  # Waypost's count is Meta's

        # ... and it goes on when Meta raises the limit (the TIER_* form), to completion.
        stack.sandbox(
            "POST",
            "/_sandbox/limits",
            {"waba_id": sender["waba_id"], "limit": "unlimited", "webhook": "tier"},
        )
        # To completion: on a busy machine (the rest of make test beside it) 8,000 messages
        # take minutes, not the 45 s they take alone; what must not happen is a standstill.
        wait_while_moving(
            lambda: campaign_progress(session, f"{api}/campaigns/{cid}"),
            lambda value: value[0] == "completed",
            stall=60,
            what="the campaign completed",
            describe=lambda: (
                dict(states_of(stack, cid)),
                stack.sql(
                    "select held_reason, next_pass_at, now() from campaigns_campaign where id = %s",
                    [cid],
                ),
            ),
        )
        mark("completed")
        stop.set()
        traffic.join(30)
        assert not failures, failures
        wait_for(
            lambda: (
                stack.sandbox("GET", "/_sandbox/stats")["webhooks"]["pending"] == 0
                and not stack.sql(
                    "select 1 from webhooks_webhookdelivery where status = 'pending' limit 1"
                )
            ),
            60,
            "the status webhooks delivered and processed",
        )
        mark("statuses settled")

        # 5. The report's counts are the ledger's.
        final = session.get(f"{api}/campaigns/{cid}", timeout=10).json()
        report = session.get(f"{api}/campaigns/{cid}/report", timeout=10).json()
        counts = final["progress"]["counts"]
        assert report["progress"]["counts"] == counts
        states = states_of(stack, cid)
        assert sum(states.values()) == valid, states
        ledger = {
            "rows": ROWS,
            "invalid": 0,
            "skipped": len(invalid),
            "pending": 0,
            "held_at_limit": 0,
            "queued": sum(states[s] for s in WAITING),
            "accepted": states["accepted"],
            "sent": states["sent"],
            "delivered": states["delivered"],
            "read": states["read"],
            "failed": states["failed"] + states["rejected"],
            "failed_by_code": dict(
                stack.sql(
                    "select error_code, count(*) from messaging_message where campaign_id = %s "
                    "and state in ('failed', 'rejected') group by error_code",
                    [cid],
                )
            ),
            "expired": states["expired"],
            "cancelled": states["cancelled"],
            "unknown": states["unknown"],
            "held": states["held"],
        }
        assert counts == ledger
        assert set(states) <= {*ACCEPTED, "failed"}, states  # a mix, every one answered
        assert final["progress"]["percent_done"] == 100.0 and final["finished_at"]
        # The rows not sent are exactly the invalid rows the preflight reported.
        unsent = stack.sql(
            "select number, error_code from campaigns_campaignrow where campaign_id = %s "
            "and outcome <> 'released'",
            [cid],
        )
        assert dict(unsent) == invalid
        # One submit per message, and the sandbox saw each once. A claim the pause recalled
        # (its batch's requests had not begun: the message waited, parked, and was claimed
        # again on resume) is the one second claim there may be.
        [(submits, submitted, recalled)] = stack.sql(
            "select count(*) filter (where e.type = 'submit_started'), "
            "count(distinct e.message_id) filter (where e.type = 'submit_started'), "
            "count(*) filter (where e.type = 'requeued' "
            "and e.detail->>'reason' = 'its campaign was paused') "
            "from messaging_messageevent e join messaging_message m on m.id = e.message_id "
            "where m.campaign_id = %s",
            [cid],
        )
        assert submitted == valid and submits == valid + recalled, (submits, recalled)
        assert stack.sandbox("GET", "/_sandbox/stats")["duplicate_submissions"] == 0
        ids = {str(i) for (i,) in stack.sql(
            "select id from messaging_message where campaign_id = %s", [cid]
        )}  # fmt: skip
        records = [
            r
            for r in stack.sandbox("GET", "/_sandbox/messages")["data"]
            if r["biz_opaque_callback_data"] in ids
        ]
        assert len(records) == valid and {r["submissions"] for r in records} == {1}

        # 2. Nothing left before send_at (the ledger's creations, the sandbox's acceptances).
        [(first_created,)] = stack.sql(
            "select min(created_at) from messaging_message where campaign_id = %s", [cid]
        )
        assert first_created >= send_at
        assert min(r["accepted_at"] for r in records) >= send_at.timestamp()

        # 3. The pause: no submit of the campaign began from a second after its answer until
        # it was resumed, and the sandbox accepted none then.
        [(during_pause,)] = stack.sql(
            "select count(*) from messaging_messageevent e "
            "join messaging_message m on m.id = e.message_id "
            "where m.campaign_id = %s and e.type = 'submit_started' "
            "and e.recorded_at > to_timestamp(%s) and e.recorded_at < to_timestamp(%s)",
            [cid, paused_at + PAUSE_GRACE, resumed_at],
        )
        assert during_pause == 0
        assert not [r for r in records if paused_at + PAUSE_GRACE < r["accepted_at"] < resumed_at]

        # 3. Paced: never more than a lead's worth of its messages released and not yet
        # submitted, and never released faster than planned (each pass releases at most a
        # second's worth: a window of RATE_WINDOW seconds holds at most RATE_WINDOW + 1).
        planned = final["progress"]["planned_rate_per_second"]
        assert planned == SENDER_MPS * 0.8  # WAYPOST_CAMPAIGN_SHARE's default
        [(waiting_peak,)] = stack.sql(
            "select max(waiting) from (select sum(step) over (order by at, step) as waiting "
            "from (select created_at as at, 1 as step from messaging_message "
            "where campaign_id = %(c)s union all select e.recorded_at, -1 "
            "from messaging_messageevent e join messaging_message m on m.id = e.message_id "
            "where m.campaign_id = %(c)s and e.type = 'submit_started') steps) running",
            {"c": cid},
        )
        assert waiting_peak <= planned * LEAD_SECONDS, waiting_peak
        [(window_peak,)] = stack.sql(
            "select max(n) from (select count(*) over (order by created_at range between "
            "current row and %s following) as n from messaging_message "
            "where campaign_id = %s) windows",
            [timedelta(seconds=RATE_WINDOW), cid],
        )
        assert window_peak <= planned * (RATE_WINDOW + 1), window_peak

        # 6. The single sends: every one accepted, at their usual latency.
        assert not singles.errors, singles.errors
        assert singles.accepted("during") == len(singles.ids["during"]) > 0
        before, during_campaign = singles.lags("before"), singles.lags("during")
        assert len(before) == SINGLES_BEFORE and len(during_campaign) == len(singles.ids["during"])
        assert percentile(during_campaign, 95) < SANE_P95
        figures += [
            f"singles requested → accepted, before the campaign: p50 "
            f"{percentile(before, 50) * 1000:.0f} ms, p95 {percentile(before, 95) * 1000:.0f} ms"
            f" ({len(before)})",
            f"singles requested → accepted, during it: p50 "
            f"{percentile(during_campaign, 50) * 1000:.0f} ms, p95 "
            f"{percentile(during_campaign, 95) * 1000:.0f} ms ({len(during_campaign)})",
            f"campaign: planned {planned:.0f}/s; at most {waiting_peak} waiting; peak release "
            f"{window_peak / RATE_WINDOW:.0f}/s over {RATE_WINDOW} s; final states "
            f"{dict(states)}; held at {at_limit['reached']} users reached, none refused",
        ]
    with capsys.disabled():
        print("\n" + "\n".join(figures))

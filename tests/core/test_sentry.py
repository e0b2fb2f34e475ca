"""The SDK as ``core.sentry.init`` sets it up, with a transport that keeps what would leave:
the same in sentry-sdk 2.x and 3.x (3.0 changed what is collected and sent by default)."""

import logging

import sentry_sdk
from sentry_sdk.transport import Transport

from core import sentry

PHONE = "+4915198765432"


def test_error_logs_become_scrubbed_events_and_no_record_leaves_as_a_sentry_log():
    kept: list[tuple[str, dict]] = []

    class Kept(Transport):
        def capture_envelope(self, envelope):
            kept.extend((item.type, item.payload.json) for item in envelope.items)

    sentry.init(dsn="https://public@sentry.invalid/1", transport=Kept)
    try:
        client_options = sentry_sdk.get_client().options
        options = client_options["data_collection"]
        # Traces are scrubbed too (a span's description is a request's URL): 3.x spans, 2.x
        # transactions.
        traces = client_options.get("before_send_span") or client_options.get(
            "before_send_transaction"
        )
        log = logging.getLogger("waypost.sentry_test")
        log.info("accepted for %s", PHONE)
        log.error("failed for %s", PHONE)
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    assert traces is sentry.before_send
    assert options["user_info"] is False and options["stack_frame_variables"] is False
    assert options["http_bodies"] == [] and options["cookies"] == {"mode": "off"}
    assert "log" not in {kind for kind, _ in kept}  # no record as a Sentry log
    [event] = [payload for kind, payload in kept if kind == "event"]
    assert event["level"] == "error"
    assert PHONE not in str(event) and "failed for" in str(event)  # masked, through before_send
    assert "accepted for" in str(event.get("breadcrumbs"))  # the INFO record: a breadcrumb

"""Status webhooks as the sandbox sends them for the oldest supported and the current Graph API
version: pricing is read wherever the version puts it (``sent`` up to v23, ``delivered`` from
v24, docs/meta-api.md §4.9), with the 2026 user fields on both."""

import pytest

from whatsapp.meta import (
    CURRENT_GRAPH_VERSION,
    OLDEST_SUPPORTED_GRAPH_VERSION,
    MetaCloudProvider,
)
from whatsapp.reports import StatusReport

pytestmark = pytest.mark.redis

TEMPLATE = {
    "name": "version_check",
    "language": "en_US",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Order {{1}} shipped."}],
}


@pytest.mark.parametrize(
    ("version", "priced"),
    [(OLDEST_SUPPORTED_GRAPH_VERSION, "sent"), (CURRENT_GRAPH_VERSION, "delivered")],
)
def test_statuses_parse_on_the_oldest_and_the_current_version(sandbox, sink, version, priced):
    provider = MetaCloudProvider(base_url=sandbox.url, graph_version=version)
    provider.create_template(credential="t", waba_id="w-versions", definition=TEMPLATE)
    sandbox.configure(read_rate=0.0)
    payload = {
        "messaging_product": "whatsapp",
        "to": "+4915112345678",
        "type": "template",
        "template": {
            "name": "version_check",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}],
        },
    }
    result = provider.send_message(credential="t", phone_number_id="pn-versions", payload=payload)
    wamid = provider.answer(result).wamid
    sink.wait_for(lambda d: wamid.encode() in d.body and b'"delivered"' in d.body)
    reports = [
        event
        for delivery in sink.deliveries
        for event in provider.parse_webhook(delivery.body).events
        if isinstance(event, StatusReport) and event.wamid == wamid
    ]
    by_status = {r.status: r for r in reports}
    assert set(by_status) == {"sent", "delivered"}
    assert [s for s, r in by_status.items() if r.pricing] == [priced]
    assert by_status[priced].pricing.type == "regular"
    assert all(r.recipient_user_id and r.recipient_id == "4915112345678" for r in reports)

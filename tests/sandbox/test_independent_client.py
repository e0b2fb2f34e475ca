"""An independent WhatsApp client library — pywa, current release — pointed at the sandbox:
every webhook the sandbox sends in a 2026 scenario (statuses, inbound messages from users with
and without a phone number, marketing preferences, template status, category and components
updates) is parsed by it into its typed updates.

One known disagreement between the sources, kept visible: Meta's documented ``failed`` status
example (and, per other client libraries, Meta's 2026 statuses) carry no ``contacts``; pywa
4.x requires them on every status. The sandbox follows Meta by default
(``failed_status_contacts`` off); with the knob on, pywa parses failed statuses too."""

import logging

import pytest
from pywa import WhatsApp

from .test_sandbox import ORDER_UPDATE, PHONE, WABA, message, send

PROMO = {
    "name": "spring_promo",
    "language": "en_US",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Spring sale, {{1}}!"}],
}


class Failures(logging.Handler):
    """pywa logs, rather than raises, an update it cannot build."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        if "Failed to construct" in record.getMessage() or "unexpected update" in (
            record.getMessage()
        ):
            self.records.append(record)


def run_scenario(sandbox, sink) -> list[bytes]:
    """Every kind of webhook the sandbox sends; their bodies, as posted."""
    sandbox.post(
        "/_sandbox/numbers",
        {"phone_number_id": PHONE, "waba_id": WABA, "display_phone_number": "15550783881"},
    )
    # pywa reads one status per POST (the first of `statuses`): one status per POST, however
    # the statuses fall due on a loaded machine.
    sandbox.configure(fail_rules=[["0009$", 131026]], username_rate=0.0, webhook_batch_max=1)
    sandbox.post(f"/v24.0/{WABA}/message_templates", ORDER_UPDATE)
    sandbox.post(f"/v24.0/{WABA}/message_templates", PROMO)
    send(sandbox, version="v24.0")  # sent, delivered, read
    send(sandbox, message(to="+15551230009"), version="v24.0")  # failed
    sandbox.wait_idle()
    for sender, hidden in (("+15551230002", False), ("+15551230003", True)):
        sandbox.post(
            "/_sandbox/inbound",
            {"phone_number_id": PHONE, "from": sender, "text": "hi", "username": hidden},
        )
    sandbox.post(
        "/_sandbox/user_preferences",
        {"phone_number_id": PHONE, "from": "+15551230002", "value": "stop"},
    )
    template = {"waba_id": WABA, "name": "order_update", "language": "en_US"}
    sandbox.post("/_sandbox/template_category", template | {"new_category": "MARKETING"})
    sandbox.post("/_sandbox/template_components", template | {"body": "Hi {{1}}, see {{2}}."})
    sandbox.wait_idle()
    return [d.body for d in sink.deliveries]


def parse_all(bodies: list[bytes]) -> tuple[list, list]:
    client = WhatsApp(phone_id=PHONE, token="sandbox", server=None, filter_updates=False)
    parsed: list = []
    for decorator in (
        client.on_message,
        client.on_message_status,
        client.on_user_marketing_preferences,
        client.on_template_status_update,
        client.on_template_category_update,
        client.on_template_components_update,
    ):
        decorator(lambda _, update: parsed.append(update))
    failures = Failures()
    logger = logging.getLogger("pywa")
    logger.addHandler(failures)
    try:
        for body in bodies:
            assert client.webhook_update_handler(body) == ("ok", 200)
    finally:
        logger.removeHandler(failures)
    return parsed, failures.records


@pytest.mark.parametrize("failed_status_contacts", [True, False])
def test_pywa_parses_every_webhook_the_sandbox_sends(sandbox, sink, failed_status_contacts):
    sandbox.configure(failed_status_contacts=failed_status_contacts)
    bodies = run_scenario(sandbox, sink)
    parsed, failures = parse_all(bodies)
    kinds = {type(update).__name__ for update in parsed}
    assert {
        "Message",
        "MessageStatus",
        "UserMarketingPreferences",
        "TemplateStatusUpdate",
        "TemplateCategoryUpdate",
        "TemplateComponentsUpdate",
    } <= kinds, kinds
    statuses = [u for u in parsed if type(u).__name__ == "MessageStatus"]
    assert {str(s.status) for s in statuses} >= {"sent", "delivered", "read"}
    assert all(s.from_user.bsuid for s in statuses)
    phone_less = [u for u in parsed if type(u).__name__ == "Message" and not u.from_user.wa_id]
    assert phone_less and phone_less[0].from_user.bsuid and phone_less[0].from_user.username
    if failed_status_contacts:
        assert failures == [] and "failed" in {str(s.status) for s in statuses}
    else:
        # The disagreement above: only the failed status, and only because of `contacts`.
        assert len(failures) == 1 and "'contacts'" in str(failures[0].exc_info[1])

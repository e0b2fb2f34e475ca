"""The messaging admin: the ledger is append-only here too; operators can act on messages."""

import pytest

from messaging.models import Message, MessageEvent

from ..factories import MessageTemplateFactory
from .helpers import body


@pytest.fixture
def message(tenant_a):
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    data = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()
    return Message.objects.get(pk=data["id"])


def test_ledger_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, message):
    event = MessageEvent.objects.get(message=message)
    assert admin_client.get("/admin/messaging/messageevent/add/").status_code == 403
    change = f"/admin/messaging/messageevent/{event.pk}/change/"
    assert admin_client.post(change, {"type": "cancelled"}).status_code == 403
    assert (
        admin_client.post(
            f"/admin/messaging/messageevent/{event.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert MessageEvent.objects.get(pk=event.pk).type == "requested"


def test_message_page_shows_the_timeline(admin_client, message):
    page = admin_client.get(f"/admin/messaging/message/{message.pk}/change/")
    assert page.status_code == 200 and "<strong>requested</strong>" in page.content.decode()


def test_operator_can_mark_a_message_failed(admin_client, message):
    response = admin_client.post(
        "/admin/messaging/message/",
        {
            "action": "mark_failed",
            "_selected_action": [str(message.pk)],
            "apply": "1",
            "reason": "gave up",
        },
    )
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.state == "failed"
    assert message.events.get(type="marked_failed").source == "operator"

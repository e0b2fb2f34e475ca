"""The messaging admin: the ledger is append-only here too; operators can act on messages; a
message's errors come with what the provider's table says of them, the first one included; a
contact links to its messages."""

import html
import random
import re

import pytest

from core.ids import short
from messaging.models import Message, MessageEvent
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from sandbox import wire
from webhooks.services import deliveries_drain
from whatsapp import SubmitOutcome, SubmitResult, error_info

from ..factories import MessageTemplateFactory
from ..webhooks.helpers import envelope, post, status
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


# --- errors: each with its title, meaning and who must act; the first one not hidden ---------

LIST = "/admin/messaging/message/"


def _refused(message, code: int, round_: int):
    """A submit the provider refused with Meta's error ``code``, as the pipeline records it."""
    answer = SubmitResult(
        SubmitOutcome.RESPONSE, 500, wire.error_body(wire.MetaError(code), random.Random(1))
    )
    record(
        [
            NewEvent(message.pk, EventType.SUBMIT_STARTED, EventSource.PIPELINE, round=round_),
            NewEvent(
                message.pk,
                EventType.SUBMIT_RESPONDED,
                EventSource.PIPELINE,
                round=round_,
                detail=answer.as_detail(),
            ),
            NewEvent(message.pk, EventType.RETRY_SCHEDULED, EventSource.PIPELINE, round=round_),
        ]
    )


def _accepted(message, wamid: str, round_: int):
    answer = SubmitResult(SubmitOutcome.RESPONSE, 200, wire.send_response("", "", wamid))
    record(
        [
            NewEvent(message.pk, EventType.SUBMIT_STARTED, EventSource.PIPELINE, round=round_),
            NewEvent(
                message.pk,
                EventType.SUBMIT_RESPONDED,
                EventSource.PIPELINE,
                round=round_,
                detail=answer.as_detail(),
            ),
            NewEvent(message.pk, EventType.ACCEPTED, EventSource.PROVIDER, round=round_),
        ]
    )
    Message.objects.filter(pk=message.pk).update(
        provider_message_id=wamid, round=round_, attempts=round_ + 1
    )
    message.refresh_from_db()


def _failed_status(client, message, code: int):
    """Meta's ``failed`` status with ``code``, through the webhook route and its processing."""
    errors = [wire.webhook_error(wire.MetaError(code))]
    payload = envelope(
        message.sender.phone_number_id,
        statuses=[status(message.provider_message_id, "failed", 1_750_030_000, errors=errors)],
    )
    assert post(client, payload).status_code == 200
    deliveries_drain()


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _words(response) -> str:
    """The page as a reader sees it: no tags, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def test_a_failed_message_shows_its_final_and_its_first_error_with_their_titles(
    admin_client, client, message
):
    """The demo's failed row: 131016 on the first submit (retried), accepted on the second,
    then a failed status with 131026. Both errors are on the page, each with the provider
    table's title, meaning and who must act; the list shows the final one's title."""
    _refused(message, 131016, 0)
    _accepted(message, "wamid.failed-twice", 1)
    _failed_status(client, message, 131026)
    message.refresh_from_db()
    assert (message.state, message.error_code) == ("failed", "131026")

    page = _words(admin_client.get(f"{LIST}{message.pk}/change/"))
    final, first = error_info("131026"), error_info("131016")
    assert f"131026 {final.title} {final.meaning}" in page
    assert f"Who must act: {final.who_acts.label}" in page
    assert "Before it (1 earlier error)" in page
    earlier = page[page.index("Before it") :]
    assert "131016" in earlier and first.title in earlier and first.meaning in earlier
    assert page.index(final.meaning) < page.index(first.meaning)  # the final error first

    listed = _words(admin_client.get(LIST))
    assert f"131026 {final.title}" in listed


def test_a_retried_message_that_was_delivered_still_shows_the_error_it_was_retried_after(
    admin_client, message
):
    _refused(message, 131016, 0)
    _accepted(message, "wamid.retried", 1)
    message.refresh_from_db()
    assert message.error_code == ""  # the message's own fields hold no error any more
    page = _words(admin_client.get(f"{LIST}{message.pk}/change/"))
    assert "Before it (1 earlier error)" in page
    assert f"131016 {error_info('131016').title}" in page


def test_the_error_code_filter_names_each_code_by_its_title(admin_client, message):
    Message.objects.filter(pk=message.pk).update(error_code="131026", error_class="never_retry")
    page = _text(admin_client.get(LIST))
    assert f"131026 {error_info('131026').title} (1)" in page


# --- a contact links to its messages ------------------------------------------------------------


def test_a_contact_links_to_its_messages_by_number_and_by_bsuid(admin_client, tenant_a):
    from messaging.track.contacts import contact_resolve

    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    contact = contact_resolve(
        tenant=tenant_a.tenant, wa_id="4915112345678", user_id="DE.13491208655302741918"
    )
    by_number = _send(tenant_a, template, "n", to="+4915112345678")
    by_bsuid = _send(tenant_a, template, "b", to=None, recipient="DE.13491208655302741918")
    someone_else = _send(tenant_a, template, "x", to="+4915199999999")

    page = _text(admin_client.get(f"/admin/messaging/contact/{contact.pk}/change/"))
    link = f"{LIST}?contact={contact.pk}"
    assert f'href="{link}"' in page and "2 messages" in page
    assert f'href="{link}"' in _text(admin_client.get("/admin/messaging/contact/"))

    listed = _text(admin_client.get(link))
    assert short(by_number) in listed and short(by_bsuid) in listed
    assert short(someone_else) not in listed

    # and back: the message's page links to its contact
    message_page = _text(admin_client.get(f"{LIST}{by_number}/change/"))
    assert f'href="/admin/messaging/contact/{contact.pk}/change/"' in message_page


def test_a_contact_of_another_tenant_shows_no_messages(client, tenant_a, tenant_b):
    from django.contrib.auth.models import Permission, User

    from messaging.track.contacts import contact_resolve
    from tenants.models import StaffScope

    theirs = contact_resolve(tenant=tenant_b.tenant, wa_id="4915112345678")
    _send(tenant_b, MessageTemplateFactory(tenant=tenant_b.tenant), "b", to="+4915112345678")
    _send(tenant_a, MessageTemplateFactory(tenant=tenant_a.tenant), "a", to="+4915112345678")
    user = User.objects.create_user("oncall", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="view_message"))
    StaffScope.objects.create(user=user).tenants.add(tenant_a.tenant)
    client.force_login(user)
    page = _text(client.get(f"{LIST}?contact={theirs.pk}"))
    assert "0 messages" in page or "0 results" in page
    assert "no such contact" in page


def _send(tenant_client, template, key, *, to="+4915112345678", recipient=None):
    data = body(template, to=to) if to else body(template)
    if to is None:
        data.pop("to", None)
        data["recipient"] = recipient
    answer = tenant_client.client.post(
        "/api/v1/messages", data, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert answer.status_code == 202, answer.content
    return answer.json()["id"]

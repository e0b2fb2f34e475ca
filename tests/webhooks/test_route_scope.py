"""Provider updates touch only what the delivering route may speak for (issue 18 §3.5).

A template update is matched within the WABA the delivery is authenticated for — a 360dialog
route's own sender's WABA, or the WABA a signed Meta delivery names — never by the provider's
template id across every tenant (ids are guessable: the sandbox's are sequential). A
``THROUGHPUT_UPGRADE`` changes the delivering route's own number only, and never above
``WAYPOST_SENDER_MPS_CAP``."""

import json

import pytest

from sandbox import wire
from templates_registry.models import MessageTemplate
from tenants.models import SenderNumber
from webhooks.models import WebhookDelivery
from webhooks.services import deliveries_drain

from ..factories import MessageTemplateFactory, SenderNumberFactory
from .helpers import post

pytestmark = pytest.mark.django_db
T0 = 1_750_030_000


def change(field: str, value: dict, waba: str | None) -> dict:
    return wire.envelope(waba, field, value, time=T0)


def template_status(template_id: str, name: str, event: str, *, waba: str | None) -> dict:
    value = {
        "event": event,
        "message_template_id": int(template_id),
        "message_template_name": name,
        "message_template_language": "en_US",
        "reason": "NONE",
    }
    return change("message_template_status_update", value, waba)


def throughput_upgrade(display_phone_number: str, *, waba: str | None) -> dict:
    value = {"display_phone_number": display_phone_number, "event": "THROUGHPUT_UPGRADE"}
    return change("phone_number_quality_update", value, waba)


def on_route(client, sender: SenderNumber, payload: dict):
    """Post ``payload`` on ``sender``'s own 360dialog route and process it."""
    response = client.post(
        f"/webhooks/360dialog/{sender.webhook_token}",
        json.dumps(payload).encode(),
        content_type="application/json",
    )
    deliveries_drain()
    return response


def on_meta_route(client, payload: dict):
    """Post ``payload`` signed on Meta's app-wide route and process it."""
    response = post(client, payload)
    deliveries_drain()
    return response


def approved(sender: SenderNumber, provider_id: str, name: str) -> MessageTemplate:
    return MessageTemplateFactory(
        tenant=sender.tenant,
        sender=sender,
        name=name,
        status="APPROVED",
        provider_template_id=provider_id,
    )


def status_of(template: MessageTemplate) -> str:
    template.refresh_from_db()
    return template.status


def test_a_360dialog_route_cannot_disable_another_tenants_template_by_its_id(client):
    a = SenderNumberFactory(provider="360dialog")
    b = SenderNumberFactory(provider="360dialog")
    victim = approved(a, "1001", "order_update")
    # B names its own WABA (the endpoint refuses another one) and A's template id; then the
    # same without any WABA, which must not become a lookup across every tenant.
    for waba in (b.waba_id, None):
        answer = on_route(client, b, template_status("1001", "order_update", "DISABLED", waba=waba))
        assert answer.status_code == 200
    assert WebhookDelivery.objects.filter(sender=b).count() == 2
    assert status_of(victim) == "APPROVED"
    assert victim.status_reason == ""


def test_a_360dialog_template_update_without_a_waba_is_its_routes_senders(client):
    b = SenderNumberFactory(provider="360dialog")
    other = SenderNumberFactory(provider="360dialog")
    own = approved(b, "2001", "welcome")
    theirs = approved(other, "2002", "welcome")  # the same name in another WABA
    on_route(client, b, template_status("0", "welcome", "PAUSED", waba=None))
    assert (status_of(own), status_of(theirs)) == ("PAUSED", "APPROVED")
    on_route(client, b, template_status("2001", "welcome", "REINSTATED", waba=None))
    assert status_of(own) == "APPROVED"


def test_a_meta_delivery_for_a_waba_changes_only_that_wabas_templates(client):
    x = SenderNumberFactory(provider="meta", waba_id="300000000001")
    y = SenderNumberFactory(provider="meta", waba_id="300000000002")
    in_x = approved(x, "3001", "shipping")
    in_y = approved(y, "3002", "order_update")
    orphan_in_y = MessageTemplateFactory(  # its sender was deleted: its tenant owns WABA Y
        tenant=y.tenant, name="legacy", status="APPROVED", provider_template_id="3003"
    )
    for template_id, name in (("3002", "order_update"), ("3003", "legacy"), ("0", "legacy")):
        payload = template_status(template_id, name, "DISABLED", waba=x.waba_id)
        assert on_meta_route(client, payload).status_code == 200
    assert status_of(in_y) == status_of(orphan_in_y) == "APPROVED"
    assert status_of(in_x) == "APPROVED"
    on_meta_route(client, template_status("3001", "shipping", "DISABLED", waba=x.waba_id))
    assert status_of(in_x) == "DISABLED"
    on_meta_route(client, template_status("3003", "legacy", "PAUSED", waba=y.waba_id))
    assert status_of(orphan_in_y) == "PAUSED"


def test_a_meta_template_update_without_a_waba_changes_nothing(client):
    x = SenderNumberFactory(provider="meta")
    template = approved(x, "4001", "order_update")
    on_meta_route(client, template_status("4001", "order_update", "DISABLED", waba=None))
    assert status_of(template) == "APPROVED"


def test_a_throughput_upgrade_stops_at_the_operators_cap(client, settings):
    settings.WAYPOST_SENDER_MPS_CAP = 250
    sender = SenderNumberFactory(
        provider="meta", display_phone_number="+1 555 0001 111", messages_per_second=80
    )
    on_meta_route(client, throughput_upgrade("15550001111", waba=sender.waba_id))
    sender.refresh_from_db()
    assert sender.messages_per_second == 250
    assert sender.status_reason.startswith("THROUGHPUT_UPGRADE: 250 messages/second")
    assert "WAYPOST_SENDER_MPS_CAP" in sender.status_reason


def test_a_throughput_upgrade_never_lowers_an_operators_higher_setting(client, settings):
    settings.WAYPOST_SENDER_MPS_CAP = 250
    sender = SenderNumberFactory(
        provider="meta", display_phone_number="+15550001111", messages_per_second=600
    )
    on_meta_route(client, throughput_upgrade("15550001111", waba=sender.waba_id))
    sender.refresh_from_db()
    assert sender.messages_per_second == 600


def test_a_routes_throughput_upgrade_changes_its_own_number_only(client):
    route = SenderNumberFactory(
        provider="360dialog", display_phone_number="+15550001111", messages_per_second=80
    )
    neighbour = SenderNumberFactory(  # another number of the same WABA
        tenant=route.tenant,
        provider="360dialog",
        waba_id=route.waba_id,
        display_phone_number="+15550002222",
        messages_per_second=80,
    )
    # The route names its WABA and the neighbour's number: nothing changes.
    on_route(client, route, throughput_upgrade("15550002222", waba=route.waba_id))
    assert SenderNumber.objects.get(pk=neighbour.pk).messages_per_second == 80
    assert SenderNumber.objects.get(pk=route.pk).messages_per_second == 80
    # Its own number, with or without the WABA: only the route's sender changes.
    on_route(client, route, throughput_upgrade("15550001111", waba=None))
    assert SenderNumber.objects.get(pk=route.pk).messages_per_second == 1000
    assert SenderNumber.objects.get(pk=neighbour.pk).messages_per_second == 80


def test_a_routes_throughput_upgrade_applies_to_it_when_its_display_number_is_unknown(client):
    route = SenderNumberFactory(
        provider="360dialog", display_phone_number="", messages_per_second=80
    )
    on_route(client, route, throughput_upgrade("15550009999", waba=route.waba_id))
    assert SenderNumber.objects.get(pk=route.pk).messages_per_second == 1000


def test_a_route_token_with_a_nul_byte_is_a_404_not_a_500(client):
    """360dialog route tokens are URL-safe (token_urlsafe): anything else never reaches the
    database, where a NUL byte in a text parameter is an error."""
    answer = client.post("/webhooks/360dialog/%00abc", b"{}", content_type="application/json")
    assert answer.status_code == 404

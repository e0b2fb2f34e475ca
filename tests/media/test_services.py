"""Sends naming Waypost media: the intake's check (``media_check_components``) and the submit's
resolution (``media_resolve_payload``) on the real database, the provider's media endpoint
answering recorded answers."""

import hashlib
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ValidationFailed
from media import services
from media.models import MediaAsset
from media.services import MediaUnavailable, media_check_components, media_resolve_payload
from tenants.models import SenderNumber
from tests.factories import SenderNumberFactory

from ..waiting import wait_for
from .conftest import PDF, PNG
from .recorded import Recorded

pytestmark = pytest.mark.django_db


def asset_of(tenant, *, content=PNG, content_type="image/png", provider_id="1001", days=20):
    sender = tenant.senders.order_by("created_at").first()
    now = timezone.now()
    uploaded = {}
    if provider_id:
        uploaded = {
            "provider_media_id": provider_id,
            "uploaded_at": now - timedelta(days=30 - days),
            "expires_at": now + timedelta(days=days),
        }
    return MediaAsset.objects.create(
        tenant=tenant,
        sender=sender,
        file=content,
        filename="file",
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        **uploaded,
    )


def header(kind: str, media_id) -> list[dict]:
    return [
        {"type": "header", "parameters": [{"type": kind, kind: {"media_id": str(media_id)}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
    ]


def payload(components) -> dict:
    """A send's body as the provider builds it (Meta's shape)."""
    return {
        "messaging_product": "whatsapp",
        "to": "+4915112345678",
        "type": "template",
        "template": {"name": "sale", "language": {"code": "en"}, "components": components},
        "biz_opaque_callback_data": "m-1",
    }


def header_media(body: dict) -> dict:
    parameter = body["template"]["components"][0]["parameters"][0]
    return parameter[parameter["type"]]


# --- the intake's check -------------------------------------------------------------------------


def test_components_without_waypost_media_need_no_query(tenant_a, django_assert_num_queries):
    plain = [{"type": "header", "parameters": [{"type": "image", "image": {"id": "123"}}]}]
    with django_assert_num_queries(0):
        media_check_components(tenant=tenant_a.tenant, components=plain)


def test_the_tenants_own_file_of_the_parameters_kind_passes(tenant_a):
    image = asset_of(tenant_a.tenant)
    media_check_components(tenant=tenant_a.tenant, components=header("image", image.pk))


@pytest.mark.parametrize("named", ["b2b1f7a0-0000-4000-8000-000000000000", "not-a-uuid", ""])
def test_an_unknown_id_is_media_not_found_naming_the_parameter(tenant_a, named):
    with pytest.raises(ValidationFailed) as refused:
        media_check_components(tenant=tenant_a.tenant, components=header("image", named))
    assert refused.value.code == "media_not_found"
    assert refused.value.details == [
        {"field": "template.components[0].parameters[0].image.media_id", "code": "not_found"}
    ]


def test_another_tenants_file_is_not_found(tenant_a, tenant_b):
    theirs = asset_of(tenant_b.tenant)
    with pytest.raises(ValidationFailed) as refused:
        media_check_components(tenant=tenant_a.tenant, components=header("image", theirs.pk))
    assert refused.value.code == "media_not_found"


def test_a_file_of_another_kind_is_a_type_mismatch(tenant_a):
    document = asset_of(tenant_a.tenant, content=PDF, content_type="application/pdf")
    with pytest.raises(ValidationFailed) as refused:
        media_check_components(tenant=tenant_a.tenant, components=header("image", document.pk))
    assert refused.value.code == "media_type_mismatch"
    assert "application/pdf, not a(n) image" in refused.value.message
    media_check_components(tenant=tenant_a.tenant, components=header("document", document.pk))


def test_carousel_cards_are_checked_too_in_one_query(tenant_a, django_assert_num_queries):
    image = asset_of(tenant_a.tenant)
    card = {
        "card_index": 0,
        "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"media_id": "x"}}]}
        ],
    }
    components = [*header("image", image.pk), {"type": "carousel", "cards": [card]}]
    with django_assert_num_queries(1), pytest.raises(ValidationFailed) as refused:
        media_check_components(tenant=tenant_a.tenant, components=components, field="components")
    assert refused.value.details[0]["field"] == (
        "components[2].cards[0].components[0].parameters[0].image.media_id"
    )


# --- the submit's resolution ---------------------------------------------------------------------


def test_a_payload_without_waypost_media_is_returned_as_it_is(tenant_a, django_assert_num_queries):
    body = payload([{"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]}])
    sender = tenant_a.tenant.senders.get()
    with django_assert_num_queries(0):
        assert media_resolve_payload(sender=sender, payload=body) is body


def test_a_fresh_id_replaces_the_waypost_id_and_the_payload_built_is_untouched(tenant_a, uploads):
    sender = tenant_a.tenant.senders.get()
    provider = uploads(sender, "upload_success")
    document = asset_of(tenant_a.tenant, content=PDF, content_type="application/pdf")
    components = header("document", document.pk)
    components[0]["parameters"][0]["document"]["filename"] = "invoice.pdf"
    built = payload(components)
    sent = media_resolve_payload(sender=sender, payload=built)
    assert header_media(sent) == {"id": "1001", "filename": "invoice.pdf"}
    assert header_media(built) == {"media_id": str(document.pk), "filename": "invoice.pdf"}
    assert provider.sent == []


def test_a_resolved_id_is_remembered_by_the_process(tenant_a, uploads, django_assert_num_queries):
    sender = tenant_a.tenant.senders.get()
    image = asset_of(tenant_a.tenant)
    media_resolve_payload(sender=sender, payload=payload(header("image", image.pk)))
    with django_assert_num_queries(0):
        again = media_resolve_payload(sender=sender, payload=payload(header("image", image.pk)))
    assert header_media(again) == {"id": "1001"}


def test_a_remembered_id_is_read_again_after_a_minute(tenant_a):
    sender = tenant_a.tenant.senders.get()
    image = asset_of(tenant_a.tenant)
    body = payload(header("image", image.pk))
    media_resolve_payload(sender=sender, payload=body)
    key = (str(image.pk), str(sender.pk))
    image.delete()  # a process that read it a moment ago still sends it
    assert header_media(media_resolve_payload(sender=sender, payload=body)) == {"id": "1001"}
    provider_id, expires_at, read_at = services._RESOLVED[key]
    services._RESOLVED[key] = (provider_id, expires_at, read_at - services.REMEMBER_SECONDS)
    with pytest.raises(MediaUnavailable) as failed:
        media_resolve_payload(sender=sender, payload=body)
    assert failed.value.code == "media_not_found"


@pytest.mark.parametrize(
    "stale",
    [
        {"expires_at_in": timedelta(hours=3)},  # within the margin (a day)
        {"expires_at_in": timedelta(days=-2)},  # expired
        {"never_uploaded": True},
    ],
)
def test_a_missing_or_expiring_id_is_uploaded_again_before_the_send(tenant_a, uploads, stale):
    sender = tenant_a.tenant.senders.get()
    provider = uploads(sender, (200, {"id": "2002"}))
    image = asset_of(tenant_a.tenant, provider_id="" if stale.get("never_uploaded") else "1001")
    if "expires_at_in" in stale:
        MediaAsset.objects.filter(pk=image.pk).update(
            expires_at=timezone.now() + stale["expires_at_in"]
        )
    sent = media_resolve_payload(sender=sender, payload=payload(header("image", image.pk)))
    assert header_media(sent) == {"id": "2002"}
    [upload] = provider.sent
    assert upload.field("file") == PNG and upload.field("type") == b"image/png"
    image.refresh_from_db()
    assert image.provider_media_id == "2002" and image.upload_error == ""
    assert image.expires_at - image.uploaded_at == timedelta(days=30)


def test_a_message_leaving_from_another_number_gets_the_file_uploaded_there(tenant_a, uploads):
    first = tenant_a.tenant.senders.get()
    second = SenderNumber.objects.get(pk=SenderNumberFactory(tenant=tenant_a.tenant).pk)
    uploads(first, "upload_success")
    there = uploads(second, (200, {"id": "3003"}))
    image = asset_of(tenant_a.tenant)
    sent = media_resolve_payload(sender=second, payload=payload(header("image", image.pk)))
    assert header_media(sent) == {"id": "3003"}
    assert there.sent[0].field("file") == PNG
    sibling = MediaAsset.objects.get(sender=second)
    assert (sibling.sha256, sibling.provider_media_id, bytes(sibling.file)) == (
        image.sha256,
        "3003",
        PNG,
    )
    # The next message from that number finds it: no second upload, no second asset.
    media_resolve_payload(sender=second, payload=payload(header("image", image.pk)))
    assert len(there.sent) == 1 and MediaAsset.objects.filter(sender=second).count() == 1


def test_a_failed_upload_is_media_upload_failed_and_recorded_on_the_file(tenant_a, uploads):
    sender = tenant_a.tenant.senders.get()
    uploads(sender, "upload_error_131053", (200, {"id": "4004"}))
    image = asset_of(tenant_a.tenant, provider_id="")
    body = payload(header("image", image.pk))
    with pytest.raises(MediaUnavailable) as failed:
        media_resolve_payload(sender=sender, payload=body)
    assert failed.value.code == "media_upload_failed"
    assert "could not be processed" in str(failed.value)
    image.refresh_from_db()
    assert image.provider_media_id == "" and "could not be processed" in image.upload_error
    # The retry finds the provider willing again.
    assert header_media(media_resolve_payload(sender=sender, payload=body)) == {"id": "4004"}
    image.refresh_from_db()
    assert image.upload_error == ""


def test_a_file_deleted_after_the_message_was_accepted_is_media_not_found(tenant_a):
    image = asset_of(tenant_a.tenant)
    body = payload(header("image", image.pk))
    image.delete()
    with pytest.raises(MediaUnavailable) as failed:
        media_resolve_payload(sender=tenant_a.tenant.senders.get(), payload=body)
    assert failed.value.code == "media_not_found"


def test_another_tenants_file_is_never_resolved(tenant_a, tenant_b):
    theirs = asset_of(tenant_b.tenant)
    with pytest.raises(MediaUnavailable):
        media_resolve_payload(
            sender=tenant_a.tenant.senders.get(), payload=payload(header("image", theirs.pk))
        )


class Held(Recorded):
    """Answers once ``release`` is set: an upload in flight, as long as the test wants."""

    def __init__(self, *answers):
        super().__init__(list(answers))
        self.release = threading.Event()
        self.entered = threading.Event()

    def send(self, request, **kw):
        self.entered.set()
        assert self.release.wait(20)
        return super().send(request, **kw)


def _waiting_on_a_row_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_sends_of_an_expiring_file_upload_it_once(tenant_a, uploads):
    sender = tenant_a.tenant.senders.get()
    image = asset_of(tenant_a.tenant, days=0)  # expires now: both must upload first
    held = uploads(sender, transport=Held((200, {"id": "5005"})))
    answers: dict[str, dict] = {}

    def send(name):
        try:
            body = payload(header("image", image.pk))
            answers[name] = header_media(media_resolve_payload(sender=sender, payload=body))
        finally:
            connection.close()

    first = threading.Thread(target=send, args=("first",))
    first.start()
    assert held.entered.wait(20)  # the first holds the row lock, its upload in flight
    second = threading.Thread(target=send, args=("second",))
    second.start()
    wait_for(_waiting_on_a_row_lock, 20, "the second send waiting for the file's row lock")
    held.release.set()
    first.join(20)
    second.join(20)
    assert answers == {"first": {"id": "5005"}, "second": {"id": "5005"}}
    assert len(held.sent) == 1

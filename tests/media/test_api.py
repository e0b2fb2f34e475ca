"""``POST /api/v1/media`` and ``GET /api/v1/media/{id}`` through the real API (PostgreSQL, the
tenant's key), the provider's media endpoint answering recorded answers."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from media.models import MediaAsset
from tests.factories import SenderNumberFactory

from .conftest import JPEG, MP4, PDF, PNG, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender(tenant_a):
    return tenant_a.tenant.senders.get()


def test_a_file_is_uploaded_through_the_default_sender_and_kept_with_its_expiry(
    tenant_a, sender, uploads
):
    provider = uploads(sender, "upload_success")
    before = timezone.now()
    answer = upload(tenant_a.client)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["filename"] == "sale.png" and body["content_type"] == "image/png"
    assert (body["kind"], body["size"], body["sender"]) == (
        "image",
        len(PNG),
        sender.phone_number_id,
    )
    assert body["provider_media_id"] == "1339522734477770"
    [sent] = provider.sent
    assert sent.field("file") == PNG and sent.field("type") == b"image/png"
    asset = MediaAsset.objects.get(pk=body["id"])
    assert bytes(asset.file) == PNG and asset.sha256 == body["sha256"] and len(body["sha256"]) == 64
    assert before <= asset.uploaded_at <= timezone.now()
    assert asset.expires_at - asset.uploaded_at == timedelta(days=30)
    assert tenant_a.client.get(f"/api/v1/media/{body['id']}").json() == body


def test_the_same_file_twice_is_the_same_file_uploaded_once(tenant_a, sender, uploads):
    provider = uploads(sender, "upload_success")
    first = upload(tenant_a.client)
    again = upload(tenant_a.client, name="renamed.png")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(provider.sent) == 1 and MediaAsset.objects.count() == 1


def test_through_another_sender_it_is_that_senders_own_upload(tenant_a, sender, uploads):
    other = SenderNumberFactory(tenant=tenant_a.tenant)
    uploads(sender, "upload_success")
    theirs = uploads(other, (200, {"id": "777"}))
    first = upload(tenant_a.client).json()
    second = upload(tenant_a.client, sender=other.phone_number_id)
    assert second.status_code == 201
    assert second.json()["id"] != first["id"] and second.json()["provider_media_id"] == "777"
    assert second.json()["sender"] == other.phone_number_id and len(theirs.sent) == 1


def test_a_file_whose_id_would_expire_is_uploaded_again_when_posted_again(
    tenant_a, sender, uploads
):
    uploads(sender, "upload_success", (200, {"id": "2000"}))
    asset_id = upload(tenant_a.client).json()["id"]
    soon = timezone.now() + timedelta(hours=2)  # within the day's margin
    MediaAsset.objects.filter(pk=asset_id).update(expires_at=soon)
    again = upload(tenant_a.client)
    assert again.status_code == 200 and again.json()["id"] == asset_id
    assert again.json()["provider_media_id"] == "2000"
    assert timezone.now() + timedelta(days=29) < MediaAsset.objects.get(pk=asset_id).expires_at


@pytest.mark.parametrize(
    ("content", "name", "declared", "expected"),
    [
        (JPEG, "photo.jpg", "image/jpeg", "image/jpeg"),
        (MP4, "clip.mp4", "video/mp4", "video/mp4"),
        (PDF, "invoice.pdf", "application/octet-stream", "application/pdf"),  # by its name
        (PDF, "invoice", "", "application/pdf"),  # by its content
        (b"Opening hours: 9-5\n", "hours.txt", "text/plain; charset=utf-8", "text/plain"),
    ],
)
def test_each_kind_a_header_takes_is_accepted(
    tenant_a, sender, uploads, content, name, declared, expected
):
    provider = uploads(sender, "upload_success")
    answer = upload(tenant_a.client, content, name=name, content_type=declared)
    assert answer.status_code == 201, answer.content
    assert answer.json()["content_type"] == expected
    assert provider.sent[0].field("type") == expected.encode()


@pytest.mark.parametrize(
    ("content", "name", "declared"),
    [
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(32), "sticker.webp", "image/webp"),
        (b"GIF89a" + bytes(32), "anim.gif", "image/gif"),
        (b"OggS" + bytes(32), "voice.ogg", "audio/ogg"),
        (b"\x00\x01\x02\x03", "blob.bin", "application/octet-stream"),
    ],
)
def test_a_type_no_template_header_takes_is_415_and_nothing_is_sent(
    tenant_a, sender, uploads, content, name, declared
):
    provider = uploads(sender, "upload_success")
    answer = upload(tenant_a.client, content, name=name, content_type=declared)
    assert answer.status_code == 415, answer.content
    assert answer.json()["error"]["code"] == "media_type_not_supported"
    assert "image (image/jpeg, image/png)" in answer.json()["error"]["message"]
    assert provider.sent == [] and not MediaAsset.objects.exists()


def test_content_that_is_not_its_declared_type_is_refused(tenant_a, sender, uploads):
    provider = uploads(sender, "upload_success")
    answer = upload(tenant_a.client, PDF, name="photo.png", content_type="image/png")
    assert answer.status_code == 415
    error = answer.json()["error"]
    assert error["code"] == "media_content_mismatch" and "application/pdf" in error["message"]
    assert provider.sent == []


def test_a_file_over_the_deployments_limit_is_413(tenant_a, sender, uploads, settings):
    settings.WAYPOST_MEDIA_MAX_BYTES = 50
    provider = uploads(sender, "upload_success")
    answer = upload(tenant_a.client, PNG + bytes(100))
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "media_too_large"
    assert answer.json()["error"]["details"][0]["max_bytes"] == 50
    assert provider.sent == []


def test_a_body_announcing_more_than_the_limit_is_refused_before_it_is_read(
    tenant_a, sender, uploads, settings
):
    settings.WAYPOST_MEDIA_MAX_BYTES = 1000
    uploads(sender, "upload_success")
    answer = upload(tenant_a.client, PNG + bytes(200_000))
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "media_too_large"
    assert answer.json()["error"]["message"].startswith("The request is ")  # the parser's


def test_an_image_over_the_providers_5_mb_is_413_even_below_the_deployments_limit(
    tenant_a, sender, uploads, settings
):
    settings.WAYPOST_MEDIA_MAX_BYTES = 20 * 1024 * 1024
    provider = uploads(sender, "upload_success")
    answer = upload(tenant_a.client, PNG + bytes(5 * 1024 * 1024))
    assert answer.status_code == 413
    assert "the provider for a image takes at most 5.0 MB" in answer.json()["error"]["message"]
    assert provider.sent == []


def test_no_file_is_media_missing(tenant_a):
    for data in ({}, {"file": "not a file"}, {"sender": "x"}):
        answer = tenant_a.client.post("/api/v1/media", data, format="multipart")
        assert answer.status_code == 400, data
        assert answer.json()["error"]["code"] == "media_missing", data


def test_an_empty_file_is_refused(tenant_a, sender, uploads):
    uploads(sender, "upload_success")
    answer = upload(tenant_a.client, b"")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "media_empty"


def test_an_unknown_field_is_refused(tenant_a, sender, uploads):
    uploads(sender, "upload_success")
    answer = upload(tenant_a.client, caption="hi")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "unknown_field"


def test_a_sender_the_tenant_does_not_have_is_not_found(tenant_a, tenant_b, uploads):
    theirs = tenant_b.tenant.senders.get()
    provider = uploads(theirs, "upload_success")
    for number in ("123456789", theirs.phone_number_id):
        answer = upload(tenant_a.client, sender=number)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "sender_not_found"
    assert provider.sent == []


def test_a_file_the_provider_refuses_is_400_with_its_code_and_nothing_is_kept(
    tenant_a, sender, uploads
):
    uploads(sender, "upload_error_131053")
    answer = upload(tenant_a.client)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "media_refused" and "131053" in error["message"]
    assert error["details"][0]["provider_code"] == 131053
    assert not MediaAsset.objects.exists()


def test_a_credential_the_provider_refuses_is_502_for_an_operator(tenant_a, sender, uploads):
    uploads(sender, "upload_error_190")
    answer = upload(tenant_a.client)
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "provider_refused"
    assert not MediaAsset.objects.exists()


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("refused"), (503, "<html>down</html>")]
)
def test_a_provider_away_is_503_with_retry_after(tenant_a, sender, uploads, failure):
    uploads(sender, failure)
    answer = upload(tenant_a.client)
    assert answer.status_code == 503 and int(answer["Retry-After"]) > 0
    assert answer.json()["error"]["code"] == "provider_unavailable"
    assert not MediaAsset.objects.exists()


def test_a_tenant_never_sees_another_tenants_media(tenant_a, tenant_b, uploads):
    uploads(tenant_b.tenant.senders.get(), "upload_success")
    uploads(tenant_a.tenant.senders.get(), (200, {"id": "55"}))
    theirs = upload(tenant_b.client).json()
    foreign = tenant_a.client.get(f"/api/v1/media/{theirs['id']}")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "media_not_found"
    # The same file posted by A is A's own asset, not B's.
    mine = upload(tenant_a.client)
    assert mine.status_code == 201 and mine.json()["id"] != theirs["id"]
    assert mine.json()["provider_media_id"] == "55"
    # The file's bytes are never in an answer.
    assert "file" not in tenant_b.client.get(f"/api/v1/media/{theirs['id']}").json()

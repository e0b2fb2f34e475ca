"""Media for template headers through the real sandbox process, which answers a template send
whose header names a media id it does not know (or no longer knows) with Meta's 131053: a file
uploaded with the API, a template with an IMAGE header sent naming the Waypost id — accepted,
so the sandbox got the provider's id — and a provider id that expired uploaded again before
the send. The API and the drain run in this process (the submit threads too)."""

from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from media.models import MediaAsset
from messaging.models import Message
from messaging.selectors import message_payload
from messaging.send import dispatch, pipeline
from templates_registry.services import template_create
from whatsapp.meta import CURRENT_GRAPH_VERSION

from ..messaging.conftest import live, make_live_tenant  # noqa: F401
from .conftest import PNG, upload
from .recorded import REAL

pytestmark = pytest.mark.redis

SALE = {
    "name": "spring_sale",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hi {{1}}, your spring order is ready for pickup."},
    ],
}


@pytest.fixture(autouse=True)
def _drained_here_only(monkeypatch):
    """These tests drain in this process: no drain is published for a worker process of the
    suite (one may be running, consuming every tenant's queue) to race them."""
    monkeypatch.setattr(dispatch, "nudge", lambda **kwargs: False)
    monkeypatch.setattr(dispatch, "wake", lambda **kwargs: False)


@pytest.fixture
def shop(live):  # noqa: F811
    tenant = make_live_tenant(live, "media-shop")
    template = template_create(tenant=tenant.tenant, definition=SALE)
    assert template.status == "APPROVED", template.submission_error
    return tenant


def image_message(media_id: str, *, image: dict | None = None) -> dict:
    """A message of SALE whose header names ``media_id`` (or the ``image`` object given)."""
    return {
        "to": "+4915112345678",
        "template": {
            "name": "spring_sale",
            "language": "en_US",
            "components": [
                {
                    "type": "header",
                    "parameters": [{"type": "image", "image": image or {"media_id": media_id}}],
                },
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
            ],
        },
    }


def sent_and_drained(shop, media_id: str, key: str, **kw) -> Message:
    answer = shop.client.post(
        "/api/v1/messages", image_message(media_id, **kw), format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert answer.status_code == 202, answer.content
    pipeline.drain(tenant_id=shop.tenant.pk)
    return Message.objects.get(pk=answer.json()["id"])


def known_to_the_sandbox(sandbox, provider_id: str) -> bool:
    answer = sandbox.session.get(
        f"{sandbox.url}/{CURRENT_GRAPH_VERSION}/{provider_id}",
        headers={"Authorization": "Bearer sandbox-token"},
        timeout=10,
    )
    return answer.status_code == 200 and answer.json().get("id") == provider_id


def database_sessions() -> int:
    """This process's sessions (another process — a test's worker — has its own name)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = current_setting('application_name')"
        )
        return cursor.fetchone()[0]


def media_uploads(sandbox) -> int:
    return sandbox.get("/_sandbox/stats").json()["media_uploads"]


def test_a_send_naming_waypost_media_reaches_the_provider_with_its_id(shop, live):  # noqa: F811
    uploaded = upload(shop.client, PNG)
    assert uploaded.status_code == 201, uploaded.content
    media = uploaded.json()
    assert known_to_the_sandbox(live, media["provider_media_id"])

    before = database_sessions()
    message = sent_and_drained(shop, media["id"], "sale-1")
    assert message.state == "accepted", (message.error_code, message.error_title)
    assert database_sessions() == before  # the submit thread closed the one it opened
    # The ledger keeps Waypost's id; the sandbox, which refuses an id it does not know with
    # 131053, accepted the provider's.
    header = message_payload(message=message)["template"]["components"][0]["parameters"][0]
    assert header == {"type": "image", "image": {"media_id": media["id"]}}
    assert media_uploads(live) == 1


def test_an_id_the_provider_does_not_know_is_what_the_sandbox_refuses(shop, live):  # noqa: F811
    """The sandbox's check is real: a header naming a provider id it does not know (as an
    unresolved one would be) fails with 131053."""
    message = sent_and_drained(shop, "", "unknown-id", image={"id": "42"})
    assert (message.state, message.error_code) == ("rejected", "131053")


def test_an_expired_provider_id_is_uploaded_again_before_the_send(shop, live):  # noqa: F811
    media = upload(shop.client, PNG).json()
    old = media["provider_media_id"]
    # 30 days later: the provider has forgotten the id, and Waypost's record says it expired.
    live.session.delete(
        f"{live.url}/{CURRENT_GRAPH_VERSION}/{old}",
        headers={"Authorization": "Bearer sandbox-token"},
        timeout=10,
    ).raise_for_status()
    assert not known_to_the_sandbox(live, old)
    asset = MediaAsset.objects.get(pk=media["id"])
    MediaAsset.objects.filter(pk=asset.pk).update(
        uploaded_at=asset.uploaded_at - timedelta(days=31),
        expires_at=asset.expires_at - timedelta(days=31),
    )

    message = sent_and_drained(shop, media["id"], "sale-2")
    assert message.state == "accepted", (message.error_code, message.error_title)
    asset.refresh_from_db()
    assert asset.provider_media_id != old and known_to_the_sandbox(live, asset.provider_media_id)
    assert media_uploads(live) == 2
    # The next send uses the new id: no third upload.
    assert sent_and_drained(shop, media["id"], "sale-3").state == "accepted"
    assert media_uploads(live) == 2


def test_a_failed_upload_fails_the_send_with_its_own_code_and_a_retry(shop, live, uploads):  # noqa: F811
    media = upload(shop.client, PNG).json()
    MediaAsset.objects.filter(pk=media["id"]).update(
        provider_media_id="", uploaded_at=None, expires_at=None
    )
    failing = uploads(shop.sender, requests.ConnectionError("the provider is away"), REAL)

    message = sent_and_drained(shop, media["id"], "sale-4")
    assert (message.state, message.error_code, message.error_class) == (
        "retry_scheduled",
        "media_upload_failed",
        "retry_backoff",
    )
    assert "connection to the provider failed" in message.error_title
    assert len(failing.sent) == 1
    responded = message.events.get(type="submit_responded").detail
    assert responded["outcome"] == "not_sent" and responded["error"].startswith(
        "media_upload_failed: "
    )

    # The provider is back (the transport's next answer is the sandbox's): the retry, when
    # due, uploads the file and sends.
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    pipeline.drain(tenant_id=shop.tenant.pk)
    message.refresh_from_db()
    assert message.state == "accepted", (message.error_code, message.error_title)
    assert message.attempts == 2 and len(failing.sent) == 2 and media_uploads(live) == 2


def test_a_file_deleted_after_the_message_was_accepted_refuses_it(shop, live):  # noqa: F811
    media = upload(shop.client, PNG).json()
    answer = shop.client.post(
        "/api/v1/messages", image_message(media["id"]), format="json", HTTP_IDEMPOTENCY_KEY="k5"
    )
    MediaAsset.objects.filter(pk=media["id"]).delete()
    pipeline.drain(tenant_id=shop.tenant.pk)
    message = Message.objects.get(pk=answer.json()["id"])
    assert (message.state, message.error_code) == ("rejected", "media_not_found")
    assert live.get("/_sandbox/messages").json()["count"] == 0

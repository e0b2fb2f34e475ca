"""The admin's callback endpoint form holds staff to the API's destination rules (a scoped
operator cannot point a tenant's callbacks at loopback or cloud metadata); a deliverer hands
back the events it can no longer attempt within its lease instead of racing another deliverer;
records never keep the credentials a URL carries."""

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent
from callbacks.services import Item, callbacks_enqueue, deliver_tenant, endpoint_get, url_shown
from callbacks.transport import Transport
from devtools.servers import start_receiver
from tenants.models import StaffScope

from ..waiting import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(tenant_a, client):
    user = User.objects.create_user("oncall", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_callbackendpoint", "change_callbackendpoint"]
        )
    )
    StaffScope.objects.create(user=user).tenants.add(tenant_a.tenant)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/hook",
        "https://93.184.216.34:22/hook",
    ],
)
def test_the_admin_refuses_a_destination_the_api_refuses(operator, tenant_a, settings, url):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = False
    endpoint = endpoint_get(tenant=tenant_a.tenant)
    page = f"/admin/callbacks/callbackendpoint/{endpoint.pk}/change/"
    answer = operator.post(page, {"url": url, "event_types": '["message.delivered"]'})
    assert answer.status_code == 200  # the form again, with its error
    assert b"errorlist" in answer.content
    endpoint.refresh_from_db()
    assert endpoint.url == "" and endpoint.event_types != ["message.delivered"]


def test_the_admin_saves_a_good_destination_through_the_service(operator, tenant_a, settings):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = False
    endpoint = endpoint_get(tenant=tenant_a.tenant)
    page = f"/admin/callbacks/callbackendpoint/{endpoint.pk}/change/"
    answer = operator.post(
        page, {"url": "https://93.184.216.34/hook", "event_types": '["message.read"]'}
    )
    assert answer.status_code == 302, answer.content[-2000:]
    endpoint.refresh_from_db()
    assert endpoint.url == "https://93.184.216.34/hook"
    assert endpoint.event_types == ["message.read"] and endpoint.secrets  # as the API does
    answer = operator.post(page, {"url": endpoint.url, "event_types": '["message.unknown"]'})
    assert b"errorlist" in answer.content


def test_a_deliverer_hands_back_what_it_cannot_attempt_within_its_lease(tenant_a, settings):
    receiver, server = start_receiver(delay=1.5)
    try:
        settings.WAYPOST_CALLBACK_LEASE = 11  # an attempt may take 10 s (the deadline)
        endpoint, _ = CallbackEndpoint.objects.get_or_create(tenant=tenant_a.tenant)
        with_credentials = receiver.url.replace("http://", "http://user:s3cret@")
        endpoint.url, endpoint.event_types = with_credentials, ["message.delivered"]
        endpoint.secrets = [{"secret": "whsec_" + "A" * 32, "created_at": "", "expires_at": None}]
        endpoint.save()
        callbacks_enqueue(
            tenant_id=tenant_a.tenant.pk,
            items=[
                Item(type="message.delivered", message_id=None, sequence=i, data={"n": i})
                for i in range(3)
            ],
        )
        counts = deliver_tenant(tenant_id=tenant_a.tenant.pk, transport=Transport())
        # The first attempt took 1.5 s: 1.5 + 10 > 11, so no second attempt was started.
        assert counts == {"delivered": 1, "retry": 0, "dead": 0}
        # The receiver records a request after answering it: wait for the record.
        assert len(wait_for(receiver.delivered, 10, "the receiver's record")) == 1
        waiting = CallbackEvent.objects.filter(tenant=tenant_a.tenant, attempts=0)
        assert waiting.count() == 2
        # Handed back due at once, not at the end of the lease.
        assert waiting.filter(next_attempt_at__lte=timezone.now()).count() == 2
        [attempt] = CallbackAttempt.objects.all()
        assert attempt.url == receiver.url  # the record keeps no credentials
        assert receiver.delivered()[0][1]["Authorization"].startswith("Basic ")  # still sent
    finally:
        server.shutdown()


def test_a_url_is_shown_without_its_credentials():
    assert url_shown("https://user:s3cret@hooks.example.com/x?y=1") == (
        "https://hooks.example.com/x?y=1"
    )
    assert url_shown("https://hooks.example.com/x") == "https://hooks.example.com/x"


def test_the_admin_never_shows_a_callback_urls_credentials(
    operator, admin_client, tenant_a, settings
):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = False
    endpoint = endpoint_get(tenant=tenant_a.tenant)
    endpoint.url = "https://user:s3cret@93.184.216.34/hook"
    endpoint.failures = 3
    endpoint.save()
    page = f"/admin/callbacks/callbackendpoint/{endpoint.pk}/change/"
    for url in (page, "/admin/callbacks/callbackendpoint/"):
        html = operator.get(url).content.decode()
        assert "s3cret" not in html and "93.184.216.34/hook" in html, url
    operations = admin_client.get("/admin/operations/").content.decode()  # failing endpoints
    assert "s3cret" not in operations and "93.184.216.34/hook" in operations
    # Saved with the URL as shown: the stored one, credentials included, is kept.
    answer = operator.post(
        page, {"url": url_shown(endpoint.url), "event_types": '["message.read"]'}
    )
    assert answer.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://user:s3cret@93.184.216.34/hook"
    assert endpoint.failures == 3  # the URL did not change: not a new endpoint

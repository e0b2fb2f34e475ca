"""The hot path's per-process caches (``core.lookups``) with caching on, as deployed: a key
revoked, a tenant deactivated or a template paused takes effect at once in the process that
changed it, and once ``WAYPOST_LOOKUP_CACHE_SECONDS`` have passed when another process changed
it (here: a queryset update, which sends no signal — as a change in another process looks to
this one). The caches' clock is the test's, so "within a second" is exact, not timed."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone

from core import lookups
from messaging.models import Message
from templates_registry.models import MessageTemplate, TemplateStatus
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_revoke

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body

URL = "/api/v1/messages"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(settings, monkeypatch):
    settings.WAYPOST_LOOKUP_CACHE_SECONDS = 1.0
    clock = Clock()
    monkeypatch.setattr(lookups.time, "monotonic", clock)
    lookups.clear_all()
    yield clock
    lookups.clear_all()


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def send(tenant_a, template, key):
    return tenant_a.client.post(URL, body(template), format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_key_revoked_in_this_process_is_refused_at_once(clock, tenant_a, template):
    assert send(tenant_a, template, "k1").status_code == 202
    api_key_revoke(api_key=ApiKey.objects.get(tenant=tenant_a.tenant))
    assert send(tenant_a, template, "k2").status_code == 401


def test_a_key_revoked_elsewhere_is_refused_within_a_second(clock, tenant_a, template):
    assert send(tenant_a, template, "k1").status_code == 202
    ApiKey.objects.filter(tenant=tenant_a.tenant).update(revoked_at=timezone.now())
    clock.now += 0.9
    assert send(tenant_a, template, "k2").status_code == 202  # the cached key, < 1 s old
    clock.now += 0.1
    assert send(tenant_a, template, "k3").status_code == 401


def test_a_tenant_deactivated_elsewhere_is_refused_within_a_second(clock, tenant_a, template):
    assert send(tenant_a, template, "k1").status_code == 202
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(active=False)
    clock.now += 1.0
    response = send(tenant_a, template, "k2")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "tenant_inactive"


def test_a_template_paused_elsewhere_is_refused_within_a_second(clock, tenant_a, template):
    assert send(tenant_a, template, "k1").status_code == 202
    MessageTemplate.objects.filter(pk=template.pk).update(status=TemplateStatus.PAUSED)
    clock.now += 0.9
    assert send(tenant_a, template, "k2").status_code == 202  # validated on the cached row
    clock.now += 0.1
    response = send(tenant_a, template, "k3")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "template_not_approved"


def test_a_template_saved_in_this_process_is_read_again_at_once(clock, tenant_a, template):
    assert send(tenant_a, template, "k1").status_code == 202
    template.status = TemplateStatus.PAUSED
    template.save()
    assert send(tenant_a, template, "k2").status_code == 400
    assert Message.objects.count() == 1


def test_with_caching_off_every_request_reads_the_database(settings, tenant_a, template):
    settings.WAYPOST_LOOKUP_CACHE_SECONDS = 0
    assert send(tenant_a, template, "k1").status_code == 202
    ApiKey.objects.filter(tenant=tenant_a.tenant).update(revoked_at=timezone.now())
    assert send(tenant_a, template, "k2").status_code == 401


def test_an_entry_not_at_hand_is_read_once_while_the_other_threads_wait(settings, monkeypatch):
    settings.WAYPOST_LOOKUP_CACHE_SECONDS = 60.0
    cache = lookups.ProcessCache("single flight")  # missing and expired take the same path
    looks, all_came = [], threading.Event()
    fresh = cache._fresh

    def counted(key, ttl):  # the reader looks twice (before and after the lock), the others once
        looks.append(key)
        if len(looks) >= 5:
            all_came.set()
        return fresh(key, ttl)

    monkeypatch.setattr(cache, "_fresh", counted)
    reads = []

    def load():
        reads.append(threading.get_ident())
        assert all_came.wait(5), "the other threads never came"
        return "value"

    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(cache.get, "key", load) for _ in range(4)]
        assert [answer.result(10) for answer in answers] == ["value"] * 4
    assert len(reads) == 1


def test_a_read_begun_before_a_clear_is_returned_but_not_kept(settings):
    settings.WAYPOST_LOOKUP_CACHE_SECONDS = 60.0
    cache = lookups.ProcessCache("cleared while read")

    def read_during_a_save():
        cache.clear()  # the model was saved in this process while the old row was on its way
        return "old"

    assert cache.get("key", read_during_a_save) == "old"
    assert cache.get("key", lambda: "new") == "new"

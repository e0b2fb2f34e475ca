"""The health poll (the beat's ``operations.poll_sender_health``, ``tenants.services.
senders_health_poll``): each active sender of an active tenant is asked for its portfolio's
messaging limit and its quality rating at most every ``WAYPOST_HEALTH_POLL_SECONDS``, claimed
before any request leaves (two passes never ask twice), a provider's error logged and skipped
— and, against the sandbox, what Meta's ``GET /{phone-number-id}?fields=…`` answers is learned."""

import logging
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from operations.tasks import poll_sender_health
from tenants import services
from tenants.limits import UNLIMITED
from tenants.models import HealthKind, SenderHealthEvent, SenderNumber, SenderStatus
from tenants.selectors import portfolio_limit
from whatsapp import ProviderError
from whatsapp.reports import NumberHealth

from ..factories import SenderNumberFactory, TenantFactory


class FakeProvider:
    """Answers each number as told, and keeps who was asked."""

    def __init__(self):
        self.answers, self.default, self.asked = {}, NumberHealth("TIER_2K", "GREEN"), []

    def number_health(self, *, credential, phone_number_id):
        self.asked.append(phone_number_id)
        answer = self.answers.get(phone_number_id, self.default)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def provider(monkeypatch):
    fake = FakeProvider()
    monkeypatch.setattr(services, "get_provider", lambda slug: fake)
    return fake


@pytest.mark.django_db
def test_every_active_sender_is_asked_once_per_interval(provider, settings):
    settings.WAYPOST_HEALTH_POLL_SECONDS = 900
    now = timezone.now()
    due = SenderNumberFactory(business_id="1001")
    never = SenderNumberFactory(tenant=due.tenant, business_id="1001")
    SenderNumber.objects.filter(pk=due.pk).update(health_checked_at=now - timedelta(minutes=16))
    recent = SenderNumberFactory(tenant=due.tenant)
    SenderNumber.objects.filter(pk=recent.pk).update(health_checked_at=now - timedelta(minutes=5))
    SenderNumberFactory(tenant=due.tenant, status=SenderStatus.BLOCKED)
    SenderNumberFactory(tenant=due.tenant, status=SenderStatus.DISABLED)
    SenderNumberFactory(tenant=TenantFactory(active=False))
    counts = services.senders_health_poll(now=now)
    assert sorted(provider.asked) == sorted([due.phone_number_id, never.phone_number_id])
    assert counts == {"changed": 2}  # each one's quality; their portfolio's limit once
    assert SenderHealthEvent.objects.filter(kind=HealthKind.LIMIT).count() == 1
    assert SenderNumber.objects.get(pk=due.pk).health_checked_at == now
    assert services.senders_health_poll(now=now) == {}  # claimed: not asked again
    assert len(provider.asked) == 2
    later = now + timedelta(minutes=15)
    services.senders_health_poll(now=later)
    assert len(provider.asked) == 5  # due, never and recent (16, 15 and 20 minutes old)


@pytest.mark.django_db
def test_what_the_provider_says_is_learned_from_the_poll(provider):
    sender = SenderNumberFactory(business_id="1002")
    provider.default = NumberHealth("TIER_UNLIMITED", "YELLOW")
    assert services.senders_health_poll() == {"changed": 1}
    sender.refresh_from_db()
    assert portfolio_limit(tenant=sender.tenant, business_id="1002") == UNLIMITED
    assert sender.quality_rating == "YELLOW"
    assert set(SenderHealthEvent.objects.values_list("kind", "value", "source", "sender")) == {
        (HealthKind.LIMIT, "unlimited", "poll", sender.pk),
        (HealthKind.QUALITY, "YELLOW", "poll", sender.pk),
    }


@pytest.mark.django_db
def test_a_failing_sender_is_logged_and_skipped_and_the_others_are_asked(provider, caplog):
    failing = SenderNumberFactory()
    missing = SenderNumberFactory(provider="meta", credentials_env="")  # no credential
    fine = SenderNumberFactory()
    provider.answers = {failing.phone_number_id: ProviderError("expired token", code=190)}
    with caplog.at_level(logging.WARNING, logger="tenants.services"):
        counts = services.senders_health_poll()
    assert counts == {"changed": 1, "failed": 2}
    assert "failed: expired token" in caplog.text  # (the ids are masked in logs)
    assert "names no credential variable" in caplog.text
    assert fine.phone_number_id in provider.asked and missing.phone_number_id not in provider.asked
    assert SenderNumber.objects.filter(health_checked_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_a_provider_that_cannot_be_asked_is_counted(provider):
    SenderNumberFactory()
    provider.default = None
    assert services.senders_health_poll() == {"unsupported": 1}


@pytest.mark.django_db
def test_the_task_runs_a_pass(provider):
    SenderNumberFactory()
    assert poll_sender_health.apply().get() == {"changed": 1}


@pytest.mark.django_db
def test_the_schedule_is_a_beat_row_made_by_a_data_migration():
    call_command("migrate", "operations", "0001", verbosity=0)
    assert not PeriodicTask.objects.filter(task="operations.poll_sender_health").exists()
    call_command("migrate", "operations", verbosity=0)
    job = PeriodicTask.objects.get(task="operations.poll_sender_health")
    assert (job.interval.every, job.interval.period, job.enabled) == (60, "seconds", True)


def test_the_sandbox_answers_the_limit_and_the_quality(live):
    """Against the sandbox's ``GET /{phone-number-id}?fields=…`` (Meta's shape)."""
    live.post(
        "/_sandbox/numbers",
        {"phone_number_id": "601001", "waba_id": "602001", "business_id": "603001"},
    )
    assert (
        live.post(
            "/_sandbox/limits", {"business_id": "603001", "limit": 10000, "webhook": "none"}
        ).status_code
        == 200
    )
    sender = SenderNumberFactory(phone_number_id="601001", waba_id="602001", business_id="603001")
    assert services.senders_health_poll() == {"changed": 1}
    assert portfolio_limit(tenant=sender.tenant, business_id="603001") == 10_000
    sender.refresh_from_db()
    assert sender.quality_rating == "GREEN"
    live.post(
        "/_sandbox/limits", {"business_id": "603001", "limit": "TIER_100K", "webhook": "none"}
    )
    SenderNumber.objects.filter(pk=sender.pk).update(health_checked_at=None)
    services.senders_health_poll()
    assert portfolio_limit(tenant=sender.tenant, business_id="603001") == 100_000


@pytest.mark.django_db
def test_a_pass_asks_enough_senders_for_each_to_be_asked_once_an_interval(settings):
    tenant = TenantFactory()
    SenderNumberFactory.create_batch(90, tenant=tenant)
    settings.WAYPOST_HEALTH_POLL_SECONDS = 60  # one pass an interval: all of them, and a quarter
    assert services.health_poll_pass_size() == 113
    settings.WAYPOST_HEALTH_POLL_SECONDS = 900  # fifteen passes: never fewer than the floor
    assert services.health_poll_pass_size() == services.HEALTH_POLL_MIN_PASS


@pytest.mark.django_db
def test_a_slow_provider_ends_the_pass_at_its_deadline_and_the_rest_wait_their_turn(
    provider, monkeypatch
):
    gate = threading.Event()
    answer = provider.number_health

    def slow(**kwargs):  # the first question hangs until the pass's deadline has passed
        gate.wait(5)
        return answer(**kwargs)

    monkeypatch.setattr(provider, "number_health", slow)
    monkeypatch.setattr(services, "HEALTH_POLL_THREADS", 1)
    monkeypatch.setattr(services, "HEALTH_POLL_DEADLINE", 0.2)
    tenant = TenantFactory()
    senders = SenderNumberFactory.create_batch(3, tenant=tenant)
    threading.Timer(0.5, gate.set).start()

    counts = services.senders_health_poll()

    assert counts == {"changed": 1, "deferred": 2}
    unasked = SenderNumber.objects.filter(pk__in=[s.pk for s in senders], health_checked_at=None)
    assert unasked.count() == 2  # given back: due again at the next pass
    assert services.senders_health_poll() == {"changed": 2}

"""``tenants.services``' health facts and ``tenants.selectors``' reads of them: a portfolio's
limit (learned in either of Meta's forms, a change recorded, never taken back by an older or
an unknown fact, a lowered one alerted), a number's quality rating, account alerts, and the
tenant's time zone for campaign windows."""

import logging
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants.limits import UNLIMITED
from tenants.models import HealthKind, HealthSource, PortfolioLimit, SenderHealthEvent
from tenants.selectors import (
    portfolio_limit,
    portfolio_of,
    portfolio_senders,
    portfolios,
    sender_health_history,
)
from tenants.services import portfolio_limit_learn, sender_alert_record, sender_quality_learn

from ..factories import SenderNumberFactory, TenantFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now()


@pytest.fixture
def sender():
    return SenderNumberFactory(business_id="506914307656634")


@pytest.fixture
def alerts(caplog, django_capture_on_commit_callbacks):
    """The alerts raised (after commit) inside the ``with``."""

    class Alerts:
        def __enter__(self):
            caplog.clear()
            self.level = caplog.at_level(logging.WARNING, logger="waypost.alerts")
            self.level.__enter__()
            self.commits = django_capture_on_commit_callbacks(execute=True)
            self.commits.__enter__()
            return self

        def __exit__(self, *exc):
            self.commits.__exit__(*exc)
            self.level.__exit__(*exc)
            self.titles = [r.alert for r in caplog.records if r.name == "waypost.alerts"]

    return Alerts()


def learn(sender, value, *, source=HealthSource.WEBHOOK, at=NOW):
    return portfolio_limit_learn(
        tenant=sender.tenant,
        business_id=portfolio_of(sender),
        value=value,
        source=source,
        sender=sender,
        at=at,
    )


def limit_events():
    return list(
        SenderHealthEvent.objects.filter(kind=HealthKind.LIMIT)
        .order_by("occurred_at", "id")
        .values_list("previous", "value", "source")
    )


def test_a_limit_is_learned_once_and_its_changes_recorded(sender):
    assert portfolio_limit(tenant=sender.tenant, business_id=sender.business_id) is None
    assert learn(sender, 2000)
    assert not learn(sender, "TIER_2K", at=NOW + timedelta(minutes=1))  # the same limit
    assert PortfolioLimit.objects.get().tier == "TIER_2K"  # as Meta said it last
    assert learn(sender, "TIER_UNLIMITED", source=HealthSource.POLL, at=NOW + timedelta(minutes=2))
    assert portfolio_limit(tenant=sender.tenant, business_id=sender.business_id) == UNLIMITED
    assert limit_events() == [("", "2,000", "webhook"), ("2,000", "unlimited", "poll")]
    assert SenderHealthEvent.objects.filter(sender=sender).count() == 2


def test_an_older_fact_or_an_unknown_one_takes_nothing_back(sender):
    learn(sender, "TIER_10K")
    assert not learn(sender, "TIER_250", at=NOW - timedelta(hours=1))
    assert not learn(sender, "TIER_NOT_SET", at=NOW + timedelta(hours=1))
    assert not learn(sender, "whatever", at=NOW + timedelta(hours=2))
    assert portfolio_limit(tenant=sender.tenant, business_id=sender.business_id) == 10_000
    assert len(limit_events()) == 1


def test_an_unknown_first_fact_is_kept_without_a_change(sender):
    assert not learn(sender, "TIER_NOT_SET")
    row = PortfolioLimit.objects.get()
    assert (row.limit, row.tier) == (None, "TIER_NOT_SET")
    assert learn(sender, "TIER_250", at=NOW + timedelta(minutes=1))
    assert limit_events() == [("unknown", "250", "webhook")]


@pytest.mark.parametrize(
    ("before", "after", "alerted"),
    [
        (10_000, 2_000, True),
        (UNLIMITED, 100_000, True),
        (2_000, 10_000, False),
        (2_000, UNLIMITED, False),
    ],
)
def test_a_lowered_limit_alerts(sender, alerts, before, after, alerted):
    learn(sender, before)
    with alerts:
        learn(sender, after, at=NOW + timedelta(minutes=1))
    assert (alerts.titles == ["business portfolio messaging limit lowered"]) is alerted


def test_portfolios_are_per_tenant_and_business_id(sender):
    sibling = SenderNumberFactory(tenant=sender.tenant, business_id=sender.business_id)
    default = SenderNumberFactory(tenant=sender.tenant)
    stranger = SenderNumberFactory(business_id=sender.business_id)
    learn(sender, 2000)
    assert portfolio_of(default) == ""
    assert set(portfolio_senders(tenant=sender.tenant, business_id=sender.business_id)) == {
        sender,
        sibling,
    }
    assert portfolio_limit(tenant=stranger.tenant, business_id=sender.business_id) is None
    rows = portfolios(tenants=[sender.tenant, stranger.tenant])
    assert [(p.tenant, p.business_id, p.limit_label, len(p.senders)) for p in rows] == sorted(
        [
            (sender.tenant, "", "unknown", 1),
            (sender.tenant, sender.business_id, "2,000", 2),
            (stranger.tenant, sender.business_id, "unknown", 1),
        ],
        key=lambda r: (r[0].slug, r[1]),
    )


def test_quality_is_learned_and_a_drop_alerted(sender, alerts):
    with alerts:
        assert sender_quality_learn(sender=sender, quality="high", source=HealthSource.POLL, at=NOW)
    assert alerts.titles == []  # GREEN: nothing to say
    with alerts:
        assert sender_quality_learn(
            sender=sender, quality="RED", source=HealthSource.WEBHOOK, at=NOW + timedelta(seconds=1)
        )
    assert alerts.titles == ["sender quality rating dropped to RED"]
    assert not sender_quality_learn(sender=sender, quality="RED", source=HealthSource.POLL)
    assert not sender_quality_learn(sender=sender, quality="PURPLE", source=HealthSource.POLL)
    other = SenderNumberFactory(tenant=sender.tenant)
    with alerts:
        sender_quality_learn(sender=other, quality="YELLOW", source=HealthSource.POLL)
    assert alerts.titles == ["sender quality rating is YELLOW"]  # first told, not GREEN
    assert not sender_quality_learn(  # older than the RED held
        sender=sender, quality="GREEN", source=HealthSource.WEBHOOK, at=NOW - timedelta(hours=1)
    )
    sender.refresh_from_db()
    assert sender.quality_rating == "RED"
    assert [(e.previous, e.value) for e in sender_health_history(sender=sender)] == [
        ("GREEN", "RED"),
        ("", "GREEN"),
    ]


def test_an_alert_is_recorded_once_and_a_cleared_one_is_not_raised(sender, alerts):
    kw = dict(tenant=sender.tenant, business_id=sender.business_id, at=NOW)
    with alerts:
        first = sender_alert_record(
            alert_type="INCREASED_CAPABILITIES_ELIGIBILITY_FAILED",
            severity="CRITICAL",
            status="ACTIVE",
            description="Not eligible.",
            **kw,
        )
        again = sender_alert_record(
            alert_type="INCREASED_CAPABILITIES_ELIGIBILITY_FAILED",
            severity="CRITICAL",
            status="ACTIVE",
            description="Not eligible.",
            **kw,
        )
    assert first is not None and again is None
    assert alerts.titles == ["Meta refused to raise the business portfolio's messaging limit"]
    with alerts:
        cleared = sender_alert_record(
            alert_type="INCREASED_CAPABILITIES_ELIGIBILITY_FAILED", status="NONE", **kw
        )
    assert cleared is not None and alerts.titles == []  # recorded, not raised


def test_a_portfolio_limit_change_is_in_each_of_its_senders_history(sender):
    sibling = SenderNumberFactory(tenant=sender.tenant, business_id=sender.business_id)
    learn(sender, 2000)
    assert [e.value for e in sender_health_history(sender=sibling)] == ["2,000"]


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Sao_Paulo"])
def test_a_tenant_time_zone_is_an_iana_name(name):
    TenantFactory.build(slug="tz-ok", time_zone=name).full_clean()


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "+03:00"])
def test_anything_else_is_refused(name):
    with pytest.raises(ValidationError) as caught:
        TenantFactory.build(slug="tz-bad", time_zone=name).full_clean()
    assert "time_zone" in caught.value.message_dict


def test_the_default_time_zone_is_utc():
    assert TenantFactory().time_zone == "UTC"


@pytest.mark.parametrize("value", ["0123", "12a", "1/2"])
def test_a_business_id_is_metas_digits(sender, value):
    sender.business_id = value
    with pytest.raises(ValidationError) as caught:
        sender.full_clean()
    assert "business_id" in caught.value.message_dict

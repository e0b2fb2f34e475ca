"""``messaging.selectors.portfolio_reach``: the unique users a business portfolio's senders
reached with templates outside a customer-service window in the moving 24 hours — what Meta's
messaging limit counts — conservatively, in one query; and when that count next drops."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Contact, Message, MessageKind
from messaging.selectors import portfolio_reach, portfolio_reach_oldest, portfolio_usage

from ..factories import SenderNumberFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
_keys = itertools.count()


@pytest.fixture
def sender():
    return SenderNumberFactory(business_id="506914307656634")


def sent(
    sender,
    recipient="+4915100000001",
    *,
    user_id="",
    state="delivered",
    ago=1.0,
    created_ago=None,
    attempts=1,
    kind=MessageKind.TEMPLATE,
    wamid=True,
    **fields,
):
    """A message of ``sender``'s that last changed state ``ago`` hours before NOW."""
    key = next(_keys)
    content = (
        {"template_name": "offer", "template_language": "en_US"}
        if kind == MessageKind.TEMPLATE
        else {"text_body": "hi"}
    )
    message = Message.objects.create(
        tenant=sender.tenant,
        sender=sender,
        recipient=recipient,
        recipient_user_id=user_id,
        kind=kind,
        idempotency_key=f"reach-{key}",
        request_hash="-",
        state=state,
        attempts=attempts,
        state_changed_at=NOW - timedelta(hours=ago),
        provider_message_id=f"wamid.reach-{key}" if wamid else None,
        **content,
        **fields,
    )
    created = NOW - timedelta(hours=created_ago if created_ago is not None else ago)
    Message.objects.filter(pk=message.pk).update(created_at=created)
    return message


def reach(sender, **kw):
    return portfolio_reach(tenant=sender.tenant, business_id=sender.business_id, now=NOW, **kw)


@pytest.mark.parametrize(
    ("state", "attempts", "wamid", "counted"),
    [
        ("submitting", 1, False, True),
        ("unknown", 1, False, True),  # may have reached Meta: counted
        ("accepted", 1, True, True),
        ("held", 1, True, True),
        ("sent", 1, True, True),
        ("delivered", 1, True, True),
        ("read", 1, True, True),
        ("failed", 1, True, True),  # failed after Meta accepted it
        ("failed", 3, False, False),  # retries exhausted, never accepted
        ("queued", 0, False, False),
        ("retry_scheduled", 1, False, False),  # refused, waiting to try again
        ("rejected", 1, False, False),
        ("cancelled", 0, False, False),
        ("expired", 0, False, False),
    ],
)
def test_what_counts_is_what_may_have_reached_the_user(sender, state, attempts, wamid, counted):
    sent(sender, state=state, attempts=attempts, wamid=wamid)
    assert reach(sender) == int(counted)


def test_unique_users_in_the_moving_24_hours_by_number_or_bsuid(sender):
    sent(sender, "+4915100000001", ago=2)
    sent(sender, "+4915100000001", ago=1)  # the same user again
    sent(sender, "+4915100000002", ago=23.9)
    sent(sender, "", user_id="US.13491208655302741918", ago=3)  # known by BSUID only
    sent(sender, "+4915100000003", ago=24.1)  # left the window
    assert reach(sender) == 3


def test_only_templates_of_the_portfolios_senders_count(sender):
    same_portfolio = SenderNumberFactory(tenant=sender.tenant, business_id=sender.business_id)
    other_portfolio = SenderNumberFactory(tenant=sender.tenant, business_id="")
    other_tenant = SenderNumberFactory(business_id=sender.business_id)
    sent(sender, "+4915100000001")
    sent(same_portfolio, "+4915100000002")  # the limit is shared by the portfolio's numbers
    sent(other_portfolio, "+4915100000003")
    sent(other_tenant, "+4915100000004")
    sent(sender, "+4915100000005", kind=MessageKind.TEXT)  # text goes only inside a window
    assert reach(sender) == 2
    assert reach(other_portfolio) == 1  # "": the tenant's one portfolio


def test_a_user_whose_window_was_open_does_not_count_one_who_answered_does(sender):
    tenant = sender.tenant
    Contact.objects.create(
        tenant=tenant, wa_id="4915100000001", last_inbound_at=NOW - timedelta(hours=5)
    )
    Contact.objects.create(tenant=tenant, user_id="BR.77", last_inbound_at=NOW - timedelta(hours=5))
    Contact.objects.create(
        tenant=tenant, wa_id="4915100000002", last_inbound_at=NOW - timedelta(minutes=30)
    )
    Contact.objects.create(
        tenant=tenant, wa_id="4915100000003", last_inbound_at=NOW - timedelta(hours=30)
    )
    sent(sender, "+4915100000001", ago=2)  # they wrote 5 h ago: inside their window
    sent(sender, "", user_id="BR.77", ago=2)  # the same, by BSUID
    sent(sender, "+4915100000002", ago=2)  # they answered afterwards: it counted when sent
    sent(sender, "+4915100000003", ago=2)  # their window had closed
    assert reach(sender) == 2


def test_a_message_meta_priced_inside_a_window_does_not_count(sender):
    sent(sender, "+4915100000001", pricing_type="free_customer_service")
    sent(sender, "+4915100000002", pricing_type="free_entry_point")
    sent(sender, "+4915100000003", pricing_type="regular")
    assert reach(sender) == 1


def test_it_is_one_query(sender, django_assert_num_queries):
    for index in range(5):
        sent(sender, f"+491510000000{index}")
    with django_assert_num_queries(1):
        assert reach(sender) == 5


def test_the_count_next_drops_when_the_user_reached_longest_ago_leaves_the_window(sender):
    assert (
        portfolio_reach_oldest(tenant=sender.tenant, business_id=sender.business_id, now=NOW)
        is None
    )
    sent(sender, "+4915100000001", ago=20)
    sent(sender, "+4915100000001", ago=1)  # reached again: stays counted 23 more hours
    sent(sender, "+4915100000002", ago=10)
    sent(sender, "+4915100000003", ago=30)  # already out
    oldest = portfolio_reach_oldest(tenant=sender.tenant, business_id=sender.business_id, now=NOW)
    assert oldest == NOW - timedelta(hours=10) + timedelta(hours=24)


def test_usage_counts_reached_and_waiting_in_one_statement(sender, django_assert_num_queries):
    """The campaign feeder's count: both numbers from one snapshot (one query). Waiting: the
    portfolio's template messages not yet submitted, unless scheduled beyond the day."""
    sent(sender, "+4915100000001")
    sent(sender, "+4915100000002")
    sent(sender, "+4915100000003", state="queued", attempts=0, wamid=False)
    sent(sender, "+4915100000004", state="retry_scheduled", wamid=False)
    sent(
        sender,
        "+4915100000005",
        state="queued",
        attempts=0,
        wamid=False,
        next_attempt_at=NOW + timedelta(days=3),
    )
    with django_assert_num_queries(1):
        usage = portfolio_usage(tenant=sender.tenant, business_id=sender.business_id, now=NOW)
    assert usage == (2, 2)

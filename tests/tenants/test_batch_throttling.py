"""The per-tenant API throttle counts a batch's messages, not its requests (issue 18 §5).

``POST /api/v1/messages/batch`` with N messages costs N tokens: all at once when the bucket
holds them; a batch larger than the bucket when the bucket is full, leaving it in debt for
the rest (the next requests wait until the refill has repaid it); otherwise ``429`` with a
``Retry-After`` that says when it would go — and nothing of it is stored."""

import time

import pytest

from core.ratelimit import get_rate_limiter
from messaging.models import Message
from tests.conftest import make_tenant_client

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body
from ..waiting import wait_for

BATCH = "/api/v1/messages/batch"
LIST = "/api/v1/messages"


def batch(template, size: int, prefix: str) -> dict:
    return {
        "messages": [{"idempotency_key": f"{prefix}-{i}", **body(template)} for i in range(size)]
    }


def tenant_at(rate: int, slug: str):
    tenant = make_tenant_client(slug=slug, api_requests_per_second=rate)
    return tenant, MessageTemplateFactory(tenant=tenant.tenant)


@pytest.mark.django_db
def test_a_batch_costs_one_token_per_message():
    """A batch of four seconds' worth goes on a full bucket and leaves the rest as debt: the
    tenant's next request waits about three seconds (before, the batch cost one token)."""
    tenant, template = tenant_at(5, "bulk")
    taken = tenant.client.post(BATCH, batch(template, 20, "a"), format="json")
    assert taken.status_code == 200 and taken.json()["accepted"] == 20
    refused = tenant.client.get(LIST)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 2  # (1 + 15 owed) / 5 per second, less time spent
    again = tenant.client.post(BATCH, batch(template, 20, "b"), format="json")
    assert again.status_code == 429 and int(again["Retry-After"]) >= 3  # for a full bucket
    assert Message.objects.count() == 20


@pytest.mark.django_db
def test_a_batch_the_bucket_cannot_cover_is_refused_whole_and_goes_when_it_says():
    tenant, template = tenant_at(5, "partial")
    for _ in range(4):  # one token left
        assert tenant.client.get(LIST).status_code == 200
    refused = tenant.client.post(BATCH, batch(template, 5, "p"), format="json")
    assert refused.status_code == 429
    retry_after = int(refused["Retry-After"])
    assert retry_after == 1  # four tokens at five per second: under a second
    assert not Message.objects.exists()  # all or nothing
    # A refused request spends nothing: asking again until it goes is free, and it goes
    # once the time the answer named has passed (give or take a refill's rounding).

    def ask_again():
        answer = tenant.client.post(BATCH, batch(template, 5, "p"), format="json")
        return answer if answer.status_code != 429 else None

    answer = wait_for(ask_again, retry_after + 2, f"the batch to go after {retry_after} s")
    assert answer.status_code == 200 and answer.json()["accepted"] == 5


@pytest.mark.django_db
def test_an_empty_bucket_refuses_a_batch_before_reading_it():
    tenant, template = tenant_at(3, "indebted")
    assert tenant.client.post(BATCH, batch(template, 12, "d"), format="json").status_code == 200
    # In debt: even a body that could not be parsed is refused, before it is read.
    refused = tenant.client.post(BATCH, b"{not json", content_type="application/json")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"


@pytest.mark.django_db
def test_a_batch_whose_body_cannot_be_parsed_is_a_400_and_costs_one_token():
    tenant, _template = tenant_at(2, "clumsy")
    bad = tenant.client.post(BATCH, b"{not json", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_request"
    assert tenant.client.get(LIST).status_code == 200  # the second of two tokens
    assert tenant.client.get(LIST).status_code == 429


@pytest.mark.django_db
def test_a_batch_over_the_maximum_costs_one_and_is_refused_by_validation():
    tenant, template = tenant_at(5, "toolong")
    too_long = tenant.client.post(BATCH, batch(template, 1001, "x"), format="json")
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "batch_too_large"
    assert tenant.client.get(LIST).status_code == 200  # it did not put the tenant in debt


@pytest.mark.django_db
def test_no_limit_means_no_limit_for_batches_too():
    tenant, template = tenant_at(0, "unlimited")
    for n in range(3):
        answer = tenant.client.post(BATCH, batch(template, 200, f"u{n}"), format="json")
        assert answer.status_code == 200
    assert Message.objects.count() == 600


@pytest.mark.django_db
def test_one_tenants_batches_do_not_spend_anothers_tokens(tenant_b):
    tenant, template = tenant_at(5, "greedy")
    assert tenant.client.post(BATCH, batch(template, 50, "g"), format="json").status_code == 200
    assert tenant.client.get(LIST).status_code == 429
    assert {tenant_b.client.get(LIST).status_code for _ in range(5)} == {200}


def test_spend_is_all_or_nothing_and_lends_to_a_full_bucket(db):
    """The limiter's primitive (Redis, the server's clock): ``need`` tokens or nothing."""
    limiter, key = get_rate_limiter(), f"test:spend:{time.monotonic_ns()}"

    def spend(cost, need):
        return limiter.spend(key, rate=1.0, burst=10.0, cost=cost, need=need)

    assert spend(8, 8) == (True, 0.0)
    granted, wait = spend(5, 5)  # two left: refused, nothing taken
    assert not granted and 2.0 < wait <= 3.0  # three missing at one a second, less time spent
    assert spend(2, 2)[0]  # the two are still there
    assert not spend(0, 1)[0]  # empty: a peek is refused
    later = f"{key}:debt"
    assert limiter.spend(later, rate=1.0, burst=10.0, cost=30, need=10) == (True, 0.0)
    granted, wait = limiter.spend(later, rate=1.0, burst=10.0, cost=1, need=1)
    assert not granted and 20.0 < wait <= 21.0  # 20 owed, then one to take

"""A number's health as the provider answers a poll (``BaseProvider.number_health``), against
recorded answers: the request each provider gets — URL, credential header, the fields asked —
and what each answer means. Meta: ``GET /{phone-number-id}?fields=
whatsapp_business_manager_messaging_limit,quality_rating`` (never the deprecated
``messaging_limit_tier``, which answers null); 360dialog: ``GET /health_status?fields=…``. No
network: a recorded transport answers (``tests/media/recorded``)."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from whatsapp import ProviderError
from whatsapp.base import BaseProvider
from whatsapp.dialog360 import Dialog360Provider
from whatsapp.meta import CURRENT_GRAPH_VERSION, MetaCloudProvider
from whatsapp.reports import NumberHealth

from ..fixtures import meta as fixtures
from ..media.recorded import Recorded

GRAPH = "https://graph.example"
D360 = "https://waba.example"
FIELDS = "whatsapp_business_manager_messaging_limit,quality_rating"
# Meta's answer to the fields (tests/fixtures/meta/phone_number_limit_fields.json: the
# messaging-limits page), and an error answer in Meta's shape (§1.5).
ANSWER = (200, fixtures.payload("phone_number_limit_fields"))
TOKEN_EXPIRED = (
    401,
    {
        "error": {
            "message": "Error validating access token: Session has expired.",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": "AbCdEf",
        }
    },
)
# 360dialog's /health_status with the fields passed on: health_status always, the fields asked
# for beside it (360dialog Messaging API reference, Health).
D360_ANSWER = (
    200,
    {
        "health_status": {
            "can_send_message": "AVAILABLE",
            "entities": [
                {
                    "entity_type": "PHONE_NUMBER",
                    "id": "106540352242922",
                    "can_send_message": "AVAILABLE",
                },
                {
                    "entity_type": "BUSINESS",
                    "id": "506914307656634",
                    "can_send_message": "AVAILABLE",
                },
            ],
        },
        "whatsapp_business_manager_messaging_limit": "TIER_10K",
        "quality_rating": "YELLOW",
        "id": "106540352242922",
    },
)


def provider(cls, base, *answers):
    instance = cls(base_url=base, graph_version=CURRENT_GRAPH_VERSION)
    transport = Recorded(list(answers))
    instance.session.mount(base, transport)
    return instance, transport


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_meta_is_asked_for_the_limit_and_the_quality_on_the_number():
    meta, transport = provider(MetaCloudProvider, GRAPH, ANSWER)
    health = meta.number_health(credential="EAAG-token", phone_number_id="106540352242922")
    assert health == NumberHealth(messaging_limit="TIER_2K", quality="GREEN")
    [sent] = transport.sent
    assert sent.method == "GET"
    assert urlsplit(sent.url).path == f"/{CURRENT_GRAPH_VERSION}/106540352242922"
    assert query(sent.url) == {"fields": FIELDS}  # not messaging_limit_tier: it answers null
    assert sent.headers["Authorization"] == "Bearer EAAG-token"


def test_360dialog_is_asked_on_its_health_status_with_the_same_fields():
    d360, transport = provider(Dialog360Provider, D360, D360_ANSWER)
    health = d360.number_health(credential="d360-key", phone_number_id="106540352242922")
    assert (health.messaging_limit, health.quality) == ("TIER_10K", "YELLOW")
    [sent] = transport.sent
    assert sent.url.startswith(f"{D360}/health_status?")
    assert query(sent.url) == {"fields": FIELDS}
    assert sent.headers["D360-API-KEY"] == "d360-key" and "Authorization" not in sent.headers


def test_an_answer_without_the_fields_says_nothing():
    meta, _ = provider(MetaCloudProvider, GRAPH, (200, {"id": "1", "messaging_limit_tier": None}))
    assert meta.number_health(credential="t", phone_number_id="1") == NumberHealth()


def test_a_limit_given_as_an_object_is_read_too():
    meta, _ = provider(
        MetaCloudProvider,
        GRAPH,
        (200, {"whatsapp_business_manager_messaging_limit": {"current_limit": "TIER_100K"}}),
    )
    assert meta.number_health(credential="t", phone_number_id="1").messaging_limit == "TIER_100K"


def test_an_error_answer_is_a_provider_error_with_metas_code():
    meta, _ = provider(MetaCloudProvider, GRAPH, TOKEN_EXPIRED)
    with pytest.raises(ProviderError) as caught:
        meta.number_health(credential="t", phone_number_id="1")
    assert (caught.value.code, caught.value.status) == (190, 401)


@pytest.mark.parametrize(
    "answer",
    [requests.ConnectionError("refused"), requests.ReadTimeout("slow"), (200, "<html>oops</html>")],
)
def test_no_answer_or_not_json_is_a_provider_error(answer):
    meta, _ = provider(MetaCloudProvider, GRAPH, answer)
    with pytest.raises(ProviderError, match="number health request failed"):
        meta.number_health(credential="t", phone_number_id="1")


def test_a_provider_that_cannot_be_asked_answers_none():
    class Quiet(BaseProvider):
        pass

    assert (
        Quiet(base_url="http://unused").number_health(credential="t", phone_number_id="1") is None
    )

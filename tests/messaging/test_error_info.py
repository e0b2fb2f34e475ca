"""What a message's error code means, for the admin: Waypost's own codes (``OWN_ERRORS``, which
the pipeline writes from) and its provider's (``whatsapp.error_info``) — one question."""

import pytest

from messaging.states import OWN_ERRORS, error_info
from templates_registry.models import TemplateStatus
from whatsapp import ErrorClass, Provider, WhoActs


@pytest.mark.parametrize("code", sorted(OWN_ERRORS))
def test_each_of_wayposts_own_codes_has_a_title_a_meaning_and_who_acts(code):
    info = error_info(code, provider=Provider.META)
    assert info is OWN_ERRORS[code]
    assert info.title and info.meaning.endswith(".") and info.who_acts in WhoActs
    assert info.error_class in ErrorClass


def test_every_template_wait_the_pipeline_can_write_is_explained():
    for status in TemplateStatus.WAITING:
        info = error_info(f"template_{status.lower()}", provider=Provider.META)
        assert (info.title, info.error_class) == (f"Template is {status}", ErrorClass.COOL_DOWN)


@pytest.mark.parametrize(
    ("code", "who", "error_class"),
    [
        ("expired", WhoActs.NOBODY, ErrorClass.INVALID),
        ("missing_credential", WhoActs.OPERATOR, ErrorClass.ALERT_TENANT),
        ("131026", WhoActs.RECIPIENT, ErrorClass.NEVER_RETRY),  # the provider's
        ("no_response", WhoActs.NOBODY, ErrorClass.AMBIGUOUS),  # the provider's reason
    ],
)
def test_a_code_is_answered_from_waypost_then_from_the_senders_provider(code, who, error_class):
    for provider in (Provider.META, Provider.DIALOG360, Provider.SANDBOX):
        info = error_info(code, provider=provider)
        assert (info.who_acts, info.error_class) == (who, error_class)


@pytest.mark.parametrize("code", ["", "nonsense", "999999"])
def test_an_unknown_code_has_no_entry(code):
    assert error_info(code, provider=Provider.META) is None

"""The provider's error table: every code Waypost classifies has a title, what it means and who
must act (the admin shows them), and ``error_info`` answers for a code as a message stores it."""

import re

import pytest

from devtools.servers import ROOT
from sandbox import wire
from whatsapp import ErrorClass, Policy, Provider, WhoActs, error_info, provider_class
from whatsapp.meta import MetaCloudProvider
from whatsapp.meta_errors import META_ERRORS

META = MetaCloudProvider(base_url="http://unused")


@pytest.mark.parametrize("code", sorted(META_ERRORS))
def test_every_code_has_a_title_a_meaning_and_who_acts(code):
    info = error_info(str(code))
    assert info is not None and info.code == str(code)
    assert info.title.strip() and info.who_acts in WhoActs
    assert info.meaning[0].isupper() and info.meaning.endswith(".") and "\n" not in info.meaning
    assert info.error_class in ErrorClass
    assert META.classify(code, 400) == info.classification  # the same table classifies


def test_every_code_the_sandbox_answers_with_is_explained_under_metas_title():
    """The sandbox stands in for Meta, written from Meta's error table on its own: each code it
    can fail a message with is in Waypost's table, with the same title."""
    missing = sorted(set(wire.ERRORS) - set(META_ERRORS))
    assert missing == []
    differ = {
        code: (title, META_ERRORS[code].title)
        for code, (_, title, _) in wire.ERRORS.items()
        if META_ERRORS[code].title != title
    }
    assert differ == {}


@pytest.mark.parametrize(
    ("code", "title", "who", "error_class"),
    [
        ("131026", "Message undeliverable", WhoActs.RECIPIENT, ErrorClass.NEVER_RETRY),
        (190, "Access token has expired", WhoActs.OPERATOR, ErrorClass.ALERT_TENANT),
        ("131042", "Business eligibility payment issue", WhoActs.BUSINESS, ErrorClass.ALERT_TENANT),
        ("130429", "Rate limit hit", WhoActs.NOBODY, ErrorClass.COOL_DOWN),
        ("131000", "Something went wrong", WhoActs.NOBODY, ErrorClass.AMBIGUOUS),
        ("250", "API Permission", WhoActs.OPERATOR, ErrorClass.ALERT_TENANT),  # 200-299
        ("not_sent", "Not sent", WhoActs.NOBODY, ErrorClass.RETRY_BACKOFF),
        ("no_response", "No answer", WhoActs.NOBODY, ErrorClass.AMBIGUOUS),
        ("http_503", "HTTP 503 without an error code", WhoActs.NOBODY, ErrorClass.AMBIGUOUS),
        ("http_401", "HTTP 401 without an error code", WhoActs.OPERATOR, ErrorClass.ALERT_TENANT),
        ("http_400", "HTTP 400 without an error code", WhoActs.OPERATOR, ErrorClass.NEVER_RETRY),
    ],
)
def test_error_info_for_a_code_as_a_message_stores_it(code, title, who, error_class):
    info = error_info(code)
    assert (info.code, info.title, info.who_acts, info.error_class) == (
        str(code),
        title,
        who,
        error_class,
    )


@pytest.mark.parametrize("code", [None, "", "expired", "worker_lost", "999999", "http_x"])
def test_a_code_no_provider_defines_has_no_entry(code):
    assert error_info(code) is None


def test_every_provider_answers_from_its_own_table():
    for provider in Provider:
        assert provider_class(provider).error_info("131050").who_acts == WhoActs.RECIPIENT
    assert error_info("131050", provider=Provider.DIALOG360) == error_info("131050")


def test_the_marketing_codes_say_their_policy_not_their_number():
    assert META.classify(131050, 400).policy == Policy.MARKETING_STOPPED
    assert META.classify(131049, 400).policy == Policy.MARKETING_LIMIT
    assert META.classify(131026, 400).policy == ""


def test_the_documented_classification_is_the_tables():
    """docs/meta-api.md §2 summarises the table by class: the same codes in the same classes."""

    classes = {
        "cool-down": ErrorClass.COOL_DOWN,
        "retry with backoff": ErrorClass.RETRY_BACKOFF,
        "ambiguous": ErrorClass.AMBIGUOUS,
        "alert the tenant": ErrorClass.ALERT_TENANT,
        "never retry": ErrorClass.NEVER_RETRY,
    }
    section = (ROOT / "docs/meta-api.md").read_text().split("## 2.")[1].split("\n## ")[0]
    documented = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and cells[1] in classes:
            codes = re.sub(r"200\W299", "", cells[2])  # the permission range: meta_code_info
            documented |= {int(c): classes[cells[1]] for c in re.findall(r"\b\d+\b", codes)}
    assert documented == {code: info.error_class for code, info in META_ERRORS.items()}

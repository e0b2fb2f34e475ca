"""Fuzzing the two parsers of untrusted input with hypothesis, for a fixed budget each: the
template rules (a definition a tenant submits, the components a client sends against it) and
the webhook parsers (bodies a signature let in). Neither may raise: a bad input is a list of
violations, or an ``invalid``/``ItemError`` the processor records."""

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import wire
from templates_registry.rules.definition import check_definition
from templates_registry.rules.send import check_send
from whatsapp import Provider, get_provider

# The same inputs on every run (derandomized): 500 each in make test; a deeper run, say
# ``WAYPOST_PARSER_FUZZ_EXAMPLES=20000 make test-unit``, tries others.
BUDGET = settings(
    max_examples=int(os.environ.get("WAYPOST_PARSER_FUZZ_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

# JSON-like values, biased towards the keys and values the parsers look for.
KEYS = st.sampled_from(
    [
        "type",
        "format",
        "text",
        "parameters",
        "buttons",
        "sub_type",
        "index",
        "example",
        "components",
        "name",
        "language",
        "category",
        "cards",
        "entry",
        "changes",
        "field",
        "value",
        "statuses",
        "messages",
        "contacts",
        "metadata",
        "id",
        "status",
        "timestamp",
        "recipient_id",
        "errors",
        "code",
        "pricing",
        "biz_opaque_callback_data",
        "user_id",
        "wa_id",
        "from",
        "event",
        "message_template_id",
        "phone_number_id",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "BODY",
            "HEADER",
            "FOOTER",
            "BUTTONS",
            "TEXT",
            "IMAGE",
            "URL",
            "QUICK_REPLY",
            "{{1}}",
            "{{2}} {{1}}",
            "{{name}}",
            "{{",
            "}}",
            "sent",
            "delivered",
            "read",
            "failed",
            "1750030073",
            "messages",
            "whatsapp_business_account",
            "text",
            "body",
            "header",
        ]
    ),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=6)
    ),
    max_leaves=40,
)


@BUDGET
@given(definition=st.dictionaries(KEYS, JSONISH, max_size=6))
def test_template_definitions_never_raise(definition):
    violations = check_definition(definition)
    assert isinstance(violations, list)


@BUDGET
@given(
    template=st.lists(JSONISH, max_size=4),
    sent=JSONISH,
    policy=st.sampled_from(["reject", "sanitize"]),
)
def test_send_checks_never_raise(template, sent, policy):
    template = [c for c in template if isinstance(c, dict)]
    for parameter_format in ("POSITIONAL", "NAMED"):
        result = check_send(
            template_components=template,
            send_components=sent,
            parameter_format=parameter_format,
            policy=policy,
        )
        assert isinstance(result.violations, list)


def _envelope(value) -> dict:
    return wire.envelope("waba", "messages", value)


@BUDGET
@given(
    value=JSONISH, wrap=st.booleans(), provider=st.sampled_from([Provider.META, Provider.DIALOG360])
)
def test_webhook_parsers_never_raise(value, wrap, provider):
    body = json.dumps(_envelope(value) if wrap else value, allow_nan=True).encode()
    parsed = get_provider(provider).parse_webhook(body)
    assert parsed.invalid or isinstance(parsed.events, list)
    get_provider(provider).webhook_addresses(body)


@BUDGET
@given(raw=st.binary(max_size=200))
def test_webhook_parsers_take_any_bytes(raw):
    for provider in (Provider.META, Provider.DIALOG360):
        parsed = get_provider(provider).parse_webhook(raw)
        assert parsed.invalid or isinstance(parsed.events, list)

"""The rules' table: every code has a message and a place in the index, and back."""

from templates_registry.rules.violations import DEFINITION_RULES, MESSAGES, SEND_RULES, violation


def test_every_indexed_code_has_a_message_and_every_message_is_indexed():
    indexed = {r.code for r in DEFINITION_RULES + SEND_RULES}
    assert indexed == set(MESSAGES)


def test_codes_are_indexed_once_per_family():
    for rules in (DEFINITION_RULES, SEND_RULES):
        codes = [r.code for r in rules]
        assert len(codes) == len(set(codes))


def test_a_violation_is_built_from_its_code_and_facts():
    built = violation("button_text_too_long", "button[0]", "text", length=30)
    assert built.as_dict() == {
        "code": "button_text_too_long",
        "message": "Button label is 30 characters; the limit is 25.",
        "component": "button[0]",
        "parameter": "text",
    }
    assert violation("param_newline", "body", "1").formatting

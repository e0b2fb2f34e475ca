"""Meta's template rules as pure functions: no database, no HTTP, no Django.

Two families, each returning a list of :class:`Violation` (empty = valid):

* :func:`check_definition` (``definition.py``) — a template *being created*, in Meta's
  creation JSON (``name, language, category, parameter_format, components``).
* :func:`check_send` (``send.py``) — the parameters of *one message*, in Meta's send-time
  ``components`` JSON, against the approved template's components. With the tenant policy
  ``sanitize``, formatting violations (newline/tab, > 4 spaces) are repaired instead, and every
  repair is returned so the caller can record it — never silently.

The package: ``limits.py`` (Meta's limits and vocabularies), ``placeholders.py`` (``{{1}}`` and
``{{name}}``), ``definition.py``, ``send.py``, and ``violations.py`` — every rule's code, summary,
source and message in one table; a check names the code of what it found (``violation()``).

Every violation has a stable ``code`` (clients and tests match on it), the ``component`` and
``parameter`` it concerns, and a human ``message``. The source of each rule is a section of
``docs/meta-api.md``; the table-driven tests cite the same. The index, from that table:

"""

from templates_registry.rules.definition import check_components, check_definition
from templates_registry.rules.limits import (
    BODY_TEXT_MAX,
    BUTTON_TEXT_MAX,
    CATEGORIES,
    FOOTER_TEXT_MAX,
    HEADER_FORMATS,
    HEADER_TEXT_MAX,
    MAX_CONSECUTIVE_SPACES,
    NAME_MAX,
    PARAMETER_FORMATS,
)
from templates_registry.rules.placeholders import placeholders
from templates_registry.rules.send import (
    SendCheck,
    TemplateSpec,
    check_send,
    formatting_violations,
    sanitize_text,
    template_spec,
)
from templates_registry.rules.violations import Violation, rules_index

__doc__ += rules_index()

__all__ = [
    "BODY_TEXT_MAX",
    "BUTTON_TEXT_MAX",
    "CATEGORIES",
    "FOOTER_TEXT_MAX",
    "HEADER_FORMATS",
    "HEADER_TEXT_MAX",
    "MAX_CONSECUTIVE_SPACES",
    "NAME_MAX",
    "PARAMETER_FORMATS",
    "SendCheck",
    "TemplateSpec",
    "Violation",
    "check_components",
    "check_definition",
    "check_send",
    "formatting_violations",
    "placeholders",
    "sanitize_text",
    "template_spec",
]

"""Writes and checks on the template registry. Views, the admin and tasks call these.

Both checks raise :class:`core.errors.ValidationFailed` whose ``code`` is the first
violation's code and whose ``details`` list every violation
(``{code, message, component, parameter}``), so an API client sees all problems at once.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from core.errors import Conflict, ValidationFailed
from templates_registry import rules
from templates_registry.models import MessageTemplate
from tenants.models import Tenant


def violations_error(violations: list[rules.Violation], *, what: str) -> ValidationFailed:
    first = violations[0]
    message = (
        first.message
        if len(violations) == 1
        else (f"The {what} breaks {len(violations)} of Meta's rules; see details.")
    )
    return ValidationFailed(message, code=first.code, details=[v.as_dict() for v in violations])


def template_create(*, tenant: Tenant, definition: dict[str, Any]) -> MessageTemplate:
    """Validate a template in Meta's creation JSON and store it (PENDING until approved)."""
    violations = rules.check_definition(definition)
    if violations:
        raise violations_error(violations, what="template")
    template = MessageTemplate(
        tenant=tenant,
        name=definition["name"],
        language=definition["language"],
        category=definition["category"].upper(),
        parameter_format=(definition.get("parameter_format") or "POSITIONAL").upper(),
        components=definition["components"],
    )
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError as exc:
        raise Conflict(
            f"Template {template.name!r} already exists in language {template.language!r}.",
            code="template_exists",
        ) from exc
    return template


def template_check_send(
    *, template: MessageTemplate, components: Any, policy: str
) -> rules.SendCheck:
    """Check a message's parameters against ``template`` under the tenant's ``policy``.

    Returns the check (with any sanitised components and the repairs made) when it passes.
    """
    check = rules.check_send(
        template_components=template.components,
        send_components=components,
        parameter_format=template.parameter_format,
        category=template.category,
        policy=policy,
    )
    if check.violations:
        raise violations_error(check.violations, what="message")
    return check


def template_update(
    *, template: MessageTemplate, category: str, components: list[dict]
) -> MessageTemplate:
    """Replace a template's category and components (Meta replaces components wholesale)."""
    definition = {**template.definition(), "category": category, "components": components}
    violations = rules.check_definition(definition)
    if violations:
        raise violations_error(violations, what="template")
    template.category = category.upper()
    template.components = components
    template.save(update_fields=["category", "components", "updated_at"])
    return template

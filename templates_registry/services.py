"""Writes and checks on the template registry. Views, the admin and tasks call these.

Both checks raise :class:`core.errors.ValidationFailed` whose ``code`` is the first
violation's code and whose ``details`` list every violation
(``{code, message, component, parameter}``), so an API client sees all problems at once.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from callbacks.services import Item, callbacks_enqueue
from core.errors import Conflict, UpstreamError, ValidationFailed
from templates_registry import rules
from templates_registry.models import MessageTemplate, TemplateQuality, TemplateStatus
from tenants.models import MissingCredential, SenderNumber, Tenant
from tenants.selectors import sender_default
from whatsapp import ProviderError, get_provider


def violations_error(violations: list[rules.Violation], *, what: str) -> ValidationFailed:
    first = violations[0]
    message = (
        first.message
        if len(violations) == 1
        else (f"The {what} breaks {len(violations)} of Meta's rules; see details.")
    )
    return ValidationFailed(message, code=first.code, details=[v.as_dict() for v in violations])


def template_create(*, tenant: Tenant, definition: dict[str, Any]) -> MessageTemplate:
    """Validate a template in Meta's creation JSON, store it, and submit it to the provider of
    the tenant's sender. It stays PENDING until the provider says APPROVED (in the create
    response, a status webhook or a sync); only then can it send."""
    violations = rules.check_definition(definition)
    if violations:
        raise violations_error(violations, what="template")
    template = MessageTemplate(
        tenant=tenant,
        sender=sender_default(tenant=tenant),
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
    return template_submit(template=template)


def template_submit(*, template: MessageTemplate) -> MessageTemplate:
    """``POST /{version}/{waba_id}/message_templates`` on the sender's provider; records the
    provider's id and status. A refusal makes the template REJECTED with the provider's
    reason; a transport failure leaves it PENDING with ``submission_error`` set, to resubmit."""
    sender = template.sender
    if sender is None:
        template.submission_error = "The tenant has no sender number to submit through."
        template.save(update_fields=["submission_error", "updated_at"])
        return template
    provider = get_provider(sender.provider)
    try:
        answer = provider.create_template(
            credential=sender.credential(), waba_id=sender.waba_id, definition=template.definition()
        )
    except ProviderError as exc:
        if exc.status is not None and exc.status < 500:
            template.status = TemplateStatus.REJECTED
            template.rejection_reason = f"{exc.code or exc.status}: {exc}"[:1000]
            template.submission_error = ""
        else:
            template.submission_error = str(exc)[:500]
    except MissingCredential as exc:
        template.submission_error = str(exc)[:500]
    else:
        template.provider_template_id = answer.provider_id
        status = answer.status
        template.status = status if status in TemplateStatus.values else TemplateStatus.PENDING
        template.submission_error = ""
        template.last_synced_at = timezone.now()
    template.save()
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


def _announce_status(template: MessageTemplate) -> None:
    """``template.status_changed`` to the tenant's callback endpoint (in this transaction)."""
    callbacks_enqueue(
        tenant_id=template.tenant_id,
        items=[
            Item(
                type="template.status_changed",
                data={
                    "template_id": str(template.pk),
                    "name": template.name,
                    "language": template.language,
                    "status": template.status,
                    "reason": template.status_reason or template.rejection_reason,
                },
            )
        ],
    )


# Meta lets these be edited (docs/meta-api.md §5.2); FLAGGED is an approved template whose
# quality is low.
EDITABLE = frozenset(
    {
        TemplateStatus.APPROVED,
        TemplateStatus.FLAGGED,
        TemplateStatus.REJECTED,
        TemplateStatus.PAUSED,
    }
)


def template_check_editable(*, template: MessageTemplate, category: str) -> None:
    """Refuse, before anything is sent, an edit the provider would refuse."""
    if not template.provider_template_id:
        return  # the provider never got it: the edit is a new submission
    if template.status not in EDITABLE:
        raise Conflict(
            f"A template in status {template.status} cannot be edited"
            + (" while the provider reviews it." if template.status == "PENDING" else "."),
            code="template_not_editable",
        )
    if template.status in TemplateStatus.SENDABLE and category.upper() != template.category:
        raise Conflict(
            "The category of an approved template cannot be changed; create a new template.",
            code="template_category_locked",
        )


def template_update(
    *, template: MessageTemplate, category: str, components: list[dict], by: str = ""
) -> MessageTemplate:
    """Edit a template's category and components (Meta replaces components wholesale).

    The edit is submitted to the provider before anything changes here: Waypost never sends
    components the provider has not reviewed. Accepted, the template is PENDING until the
    provider's review answers (status webhook or sync) — messages for it wait meanwhile. A
    template the provider never got is submitted anew. A refusal or an outage changes
    nothing (409 ``template_edit_refused``, or 503 with ``Retry-After``)."""
    definition = {**template.definition(), "category": category, "components": components}
    violations = rules.check_definition(definition)
    if violations:
        raise violations_error(violations, what="template")
    template_check_editable(template=template, category=category)
    if not template.provider_template_id:
        template.category, template.components = category.upper(), components
        template.save(update_fields=["category", "components", "updated_at"])
        return template_submit(template=template)
    changes: dict = {"components": components}
    if category.upper() != template.category:
        changes["category"] = category.upper()
    sender = template.sender
    try:
        if sender is None:
            raise MissingCredential("the template has no sender to submit the edit through")
        get_provider(sender.provider).edit_template(
            credential=sender.credential(),
            template_id=template.provider_template_id,
            changes=changes,
        )
    except MissingCredential as exc:
        raise UpstreamError(
            f"The edit was not submitted: {exc}",
            code="provider_credential_missing",
            unavailable=False,
        ) from exc
    except ProviderError as exc:
        if exc.status is None or exc.status >= 500:
            raise UpstreamError(
                f"The edit was not submitted: {exc}", code="provider_unavailable", unavailable=True
            ) from exc
        raise Conflict(
            f"The provider refused the edit: {exc}", code="template_edit_refused"
        ) from exc
    template.category, template.components = category.upper(), components
    template.status = TemplateStatus.PENDING
    template.status_reason = "edited; the provider reviews the edit"
    template.status_changed_at = timezone.now()
    template.status_changed_by = by or "operator"
    template.save()
    _announce_status(template)
    return template


def template_mark_paused(*, template_id, reason: str, by: str) -> bool:
    """The provider refused a send because the template is paused (132015): mark it PAUSED,
    with the reason, until the provider reinstates it (status webhook or sync). False when it
    was not sendable anyway."""
    changed = MessageTemplate.objects.filter(
        pk=template_id, status__in=TemplateStatus.SENDABLE
    ).update(
        status=TemplateStatus.PAUSED,
        status_reason=reason[:255],
        status_changed_at=timezone.now(),
        status_changed_by=by[:150],
        updated_at=timezone.now(),
    )
    if changed:
        _announce_status(MessageTemplate.objects.get(pk=template_id))
    return bool(changed)


# Meta's template events (docs/meta-api.md §4.8) → the status we store. REINSTATED is the
# end of a pause: the template is APPROVED again.
_EVENT_STATUS = {"REINSTATED": TemplateStatus.APPROVED, **{s: s for s in TemplateStatus.values}}


def template_apply_provider_update(
    *,
    waba_id: str,
    template_id: str,
    name: str,
    language: str,
    event: str = "",
    reason: str = "",
    quality: str = "",
    new_category: str = "",
    correct_category: str = "",
    category_update_at=None,
    components: list | None = None,
) -> MessageTemplate | None:
    """A status, quality, category or components update from the provider for a template of
    the WABA ``waba_id``: found by the provider's id, else by name and language — only among
    that WABA's templates (:func:`_waba_templates`). Provider template ids are guessable (the
    sandbox's are sequential), so a delivery may only ever touch templates of the WABA it
    speaks for: the caller passes the WABA the delivery is authenticated for (a sender's own
    route: that sender's WABA), and an update without a WABA changes nothing. A category
    change applies to the messages created after it (each message keeps the category it was
    sent with); an impending one is recorded with its date."""
    if not waba_id:
        return None
    candidates = _waba_templates(waba_id)
    template = None
    if template_id:
        template = candidates.filter(provider_template_id=template_id).first()
    if template is None:
        template = candidates.filter(name=name, language=language).first()
    if template is None:
        return None
    fields = ["last_synced_at", "updated_at"]
    if event in _EVENT_STATUS:
        template.status = _EVENT_STATUS[event]
        template.status_reason = f"{event}: {reason}" if reason and reason != "NONE" else event
        template.status_changed_at = timezone.now()
        template.status_changed_by = "provider"
        fields += ["status", "status_reason", "status_changed_at", "status_changed_by"]
        if template.status == TemplateStatus.REJECTED:
            template.rejection_reason = reason
            fields.append("rejection_reason")
    if quality:
        template.quality = quality if quality in TemplateQuality.values else "UNKNOWN"
        fields.append("quality")
    if new_category and new_category != template.category:
        template.status_reason = (
            f"recategorized by the provider: {template.category} → {new_category}"
        )
        template.category = new_category
        template.pending_category, template.pending_category_at = "", None
        fields += ["category", "status_reason", "pending_category", "pending_category_at"]
    elif correct_category and correct_category != template.category:
        template.pending_category = correct_category
        template.pending_category_at = category_update_at
        fields += ["pending_category", "pending_category_at"]
    if components:
        template.components = _merge_components(template.components or [], components)
        fields.append("components")
    if template_id and not template.provider_template_id:
        template.provider_template_id = template_id
        fields.append("provider_template_id")
    template.last_synced_at = timezone.now()
    template.save(update_fields=fields)
    if "status" in fields:
        _announce_status(template)
    return template


def _waba_templates(waba_id: str):
    """The templates that belong to the WABA ``waba_id``: submitted through (or synced from)
    one of its numbers; or, for a template whose sender is gone, of a tenant that owns a
    number in it."""
    owners = SenderNumber.objects.filter(waba_id=waba_id).values("tenant_id")
    return MessageTemplate.objects.filter(
        Q(sender__waba_id=waba_id) | Q(sender__isnull=True, tenant_id__in=owners)
    ).order_by("created_at")


def _merge_components(current: list[dict], update: list[dict]) -> list[dict]:
    """The provider's edited parts over the stored components: texts replace texts, buttons
    replace buttons; what the update does not mention (a media header's format) stays."""
    by_type = {str(c.get("type", "")).upper(): dict(c) for c in current if isinstance(c, dict)}
    for part in update:
        kind = part["type"]
        merged = by_type.get(kind, {"type": kind})
        if kind == "HEADER" and str(merged.get("format", "TEXT")).upper() != "TEXT":
            continue
        merged.update(part)
        by_type[kind] = merged
    order = ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    return sorted(
        by_type.values(), key=lambda c: order.index(c["type"]) if c["type"] in order else 9
    )


def templates_sync(*, tenant: Tenant) -> dict[str, int]:
    """Pull every template of each of the tenant's WABAs from the provider (with paging) and
    upsert them: provider-managed fields are updated, unknown templates are added."""
    counts = {"created": 0, "updated": 0}
    seen_wabas: set[str] = set()
    for sender in SenderNumber.objects.filter(tenant=tenant).order_by("created_at"):
        if sender.waba_id in seen_wabas:
            continue
        seen_wabas.add(sender.waba_id)
        provider = get_provider(sender.provider)
        try:
            remote = list(
                provider.list_templates(credential=sender.credential(), waba_id=sender.waba_id)
            )
        except MissingCredential as exc:
            raise UpstreamError(
                f"Template sync failed: {exc}",
                code="provider_credential_missing",
                unavailable=False,
            ) from exc
        except ProviderError as exc:
            unavailable = exc.status is None or exc.status >= 500
            raise UpstreamError(
                f"Template sync failed: {exc}",
                code="provider_unavailable" if unavailable else "provider_refused",
                unavailable=unavailable,
            ) from exc
        now = timezone.now()
        for item in remote:
            fields = {
                "sender": sender,
                "category": item.category,
                "parameter_format": item.parameter_format,
                "components": item.components,
                "status": item.status
                if item.status in TemplateStatus.values
                else TemplateStatus.PENDING,
                "provider_template_id": item.provider_id,
                "last_synced_at": now,
                "submission_error": "",
            }
            if item.quality in TemplateQuality.values:
                fields["quality"] = item.quality
            _, created = MessageTemplate.objects.update_or_create(
                tenant=tenant, name=item.name, language=item.language, defaults=fields
            )
            counts["created" if created else "updated"] += 1
    return counts

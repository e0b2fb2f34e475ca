"""Senders stored before the rules of ``SenderNumber.clean()`` existed (issue 18): Meta ids that
are not digits, a WABA shared by two tenants, a credential variable outside the names reserved
for the sender's tenant. A sender with such a variable no longer sends (``credential()``
refuses it, the sender is blocked with the reason); the others would keep a hole open. Reported
by ``manage.py migrate`` and ``manage.py check --database default`` (database checks run only
when a command asks for them), each with what to change."""

from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import connection
from django.db.models import Count

SHOWN = 10  # senders named per finding


@register(Tags.database)
def senders_check(app_configs=None, databases=None, **kwargs) -> list:
    if not databases:
        return []
    from tenants.models import SenderNumber, credential_env_allowed, credential_env_prefix

    # migrate runs this before it migrates: a new database has no senders table yet.
    if SenderNumber._meta.db_table not in connection.introspection.table_names():
        return []

    found = []
    senders = list(SenderNumber.objects.select_related("tenant").order_by("tenant__slug"))
    odd_ids = [str(s) for s in senders if not (s.phone_number_id.isdigit() and s.waba_id.isdigit())]
    if odd_ids:
        found.append(
            Warning(
                f"{len(odd_ids)} sender(s) with a phone number id or WABA id that is not Meta's "
                f"(digits): {', '.join(odd_ids[:SHOWN])}.",
                hint="Correct them to the ids Meta shows (superuser, in the admin).",
                id="tenants.W001",
            )
        )
    shared = (
        SenderNumber.objects.values("waba_id")
        .annotate(tenants=Count("tenant", distinct=True))
        .filter(tenants__gt=1)
        .values_list("waba_id", flat=True)
    )
    if shared:
        found.append(
            Warning(
                f"WABA(s) used by senders of more than one tenant: {', '.join(shared[:SHOWN])}. "
                "Template and webhook updates for a WABA belong to one tenant.",
                hint="Keep each WABA's senders in one tenant; remove the others.",
                id="tenants.W002",
            )
        )
    outside = [
        f"{s} ({s.credentials_env}; expected {credential_env_prefix(s.tenant)}…)"
        for s in senders
        if s.credentials_env and not credential_env_allowed(s.tenant, s.credentials_env)
    ]
    if outside:
        found.append(
            Warning(
                f"{len(outside)} sender(s) read a credential variable not reserved for their "
                f"tenant, and do not send until it is renamed: {'; '.join(outside[:SHOWN])}.",
                hint="Rename the variable in the environment and on the sender (superuser).",
                id="tenants.W003",
            )
        )
    return found

"""Tenant settings as a client sees them: the tenant's own policies (``tenants``) and its
callback endpoint (``callbacks``), read and changed together."""

from __future__ import annotations

from django.db import transaction

from callbacks.services import endpoint_configure, endpoint_get, endpoint_validate
from tenants.models import Tenant

TENANT_FIELDS = (
    "param_policy",
    "ambiguous_policy",
    "ambiguous_grace_seconds",
    "max_attempts",
    "retry_window_seconds",
    "stall_accepted_seconds",
    "stall_sent_seconds",
    "opt_out_keywords",
    "marketing_limit_retry",
    "time_zone",
)


def tenant_settings_update(*, tenant: Tenant, data: dict) -> str | None:
    """Apply validated settings; returns a new callback secret when one was made (shown once).
    The callback URL is judged first, outside the transaction (its name is resolved)."""
    endpoint_validate(
        url=data.get("callback_url"), event_types=data.get("callback_events"), tenant=tenant
    )
    with transaction.atomic():
        fields = [name for name in TENANT_FIELDS if name in data]
        for name in fields:
            setattr(tenant, name, data[name])
        if fields:
            tenant.save(update_fields=fields)
        callback = {
            key: data[source]
            for key, source in (("url", "callback_url"), ("event_types", "callback_events"))
            if source in data
        }
        if callback or data.get("rotate_callback_secret"):
            _, secret = endpoint_configure(
                tenant=tenant,
                rotate_secret=bool(data.get("rotate_callback_secret")),
                validated=True,
                **callback,
            )
            return secret
    return None


def tenant_settings(*, tenant: Tenant) -> dict:
    endpoint = endpoint_get(tenant=tenant)
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        **{name: getattr(tenant, name) for name in TENANT_FIELDS},
        "callback_url": endpoint.url,
        "callback_events": endpoint.event_types,
        "callback_secrets": len(endpoint.secrets),
        "callback_enabled": endpoint.enabled,
        "callback_disabled_reason": endpoint.disabled_reason,
        "callback_failures": endpoint.failures,
        "callback_last_success_at": endpoint.last_success_at,
    }

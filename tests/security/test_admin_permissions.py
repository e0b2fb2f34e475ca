"""Every admin action checks its own permission (issue 18 §3.2).

Each action in the project is posted to its changelist, as the issue tried it on the demo, by
three staff users scoped to the object's tenant: one with only the *view* permission, one
with no permission at all — neither may change anything — and one with the permission the
action declares, for whom it runs. A view-only user still sees the pages; a user without
permissions sees nothing."""

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from callbacks.models import CallbackEvent, CallbackStatus
from campaigns.models import Campaign
from campaigns.services import campaign_create
from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from tenants.models import ApiKey, SenderNumber, StaffScope, Tenant
from tenants.services import api_key_create
from webhooks.models import DeliveryStatus, WebhookDelivery

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body
from ..webhooks.helpers import envelope, status

pytestmark = pytest.mark.django_db


def admin_url(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def staff(client, tenant, *codenames: str):
    user = User.objects.create_user(f"staff{User.objects.count()}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    StaffScope.objects.create(user=user).tenants.add(tenant)
    client.force_login(user)
    return client


# --- the objects each action acts on, and what it changes ------------------------------------


def a_message(tenant_client, key: str, *facts: str) -> Message:
    template = MessageTemplateFactory(tenant=tenant_client.tenant)
    message_id = tenant_client.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY=key
    ).json()["id"]
    if facts:
        record([NewEvent(message_id, fact, EventSource.PIPELINE) for fact in facts])
    return Message.objects.get(pk=message_id)


def inactive_tenant(tc):
    Tenant.objects.filter(pk=tc.tenant.pk).update(active=False)
    return tc.tenant


def blocked_sender(tc):
    sender = tc.tenant.senders.get()
    SenderNumber.objects.filter(pk=sender.pk).update(status="blocked", status_reason="190")
    return sender


def a_campaign(tc, state: str = "draft"):
    template = MessageTemplateFactory(tenant=tc.tenant)
    row = {"to": "+4915112345678", "header.1": "A-1", "1": "Ana", "2": "A-1"}
    campaign, _ = campaign_create(
        tenant=tc.tenant,
        idempotency_key=f"admin-{state}",
        data={"template": {"name": template.name, "language": template.language}},
        rows=[row],
        audience_digest=state,
    )
    Campaign.objects.filter(pk=campaign.pk).update(state=state)
    return campaign


def unknown_message(tc):
    return a_message(tc, "unknown", EventType.SUBMIT_UNKNOWN)


def stalled_message(tc):
    message = a_message(tc, "stalled", EventType.ACCEPTED, EventType.STATUS_SENT)
    Message.objects.filter(pk=message.pk).update(
        stalled=True, stalled_reason="sent_not_delivered", stalled_at=timezone.now()
    )
    return message


def dead_callback(tc):
    now = timezone.now()
    return CallbackEvent.objects.create(
        tenant=tc.tenant,
        type="message.failed",
        payload={"type": "message.failed", "timestamp": now.isoformat(), "data": {}},
        status=CallbackStatus.DEAD,
        next_attempt_at=now - timedelta(hours=2),
        retry_until=now - timedelta(hours=1),
    )


def failed_delivery(tc):
    sender = tc.tenant.senders.get()
    payload = envelope(
        sender.phone_number_id,
        statuses=[status("wamid.replayed", "sent", 1750030073)],
        waba=sender.waba_id,
    )
    raw = json.dumps(payload).encode()
    return WebhookDelivery.objects.create(
        provider="meta",
        sender=sender,
        body=raw,
        body_sha256="f" * 64,
        headers={},
        received_at=timezone.now(),
        status=DeliveryStatus.FAILED,
        error="boom",
    )


def a_template(tc):
    return MessageTemplateFactory(tenant=tc.tenant)


@dataclass
class Case:
    model: Any
    action: str
    make: Any  # tenant client -> the object
    state: Any  # the object -> what the action changes
    codenames: tuple[str, ...]  # the permissions that allow it (beside view)
    form: tuple = ()  # what the action's intermediate form asks for

    def __str__(self) -> str:
        return f"{self.model._meta.model_name}.{self.action}"


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


REASON = (("apply", "1"), ("reason", "tried by a test"), ("accept_duplicate", "on"))
CASES = [
    Case(Tenant, "activate", inactive_tenant, lambda t: fresh(t).active, ("change_tenant",)),
    Case(Tenant, "deactivate", lambda tc: tc.tenant, lambda t: fresh(t).active, ("change_tenant",)),
    Case(
        SenderNumber,
        "reactivate",
        blocked_sender,
        lambda s: fresh(s).status,
        ("change_sendernumber",),
    ),
    Case(
        SenderNumber,
        "disable",
        lambda tc: tc.tenant.senders.get(),
        lambda s: fresh(s).status,
        ("change_sendernumber",),
    ),
    Case(
        ApiKey,
        "revoke",
        lambda tc: api_key_create(tenant=tc.tenant).api_key,
        lambda k: fresh(k).revoked_at,
        ("change_apikey",),
    ),
    Case(
        Message,
        "retry_now",
        unknown_message,
        lambda m: (fresh(m).state, fresh(m).round),
        ("change_message",),
        REASON,
    ),
    Case(
        Message,
        "cancel",
        lambda tc: a_message(tc, "cancel"),
        lambda m: fresh(m).state,
        ("change_message",),
        REASON,
    ),
    Case(
        Message,
        "mark_resolved",
        stalled_message,
        lambda m: fresh(m).stalled,
        ("change_message",),
        REASON,
    ),
    Case(
        Message,
        "mark_failed",
        lambda tc: a_message(tc, "fail"),
        lambda m: fresh(m).state,
        ("change_message",),
        REASON,
    ),
    Case(
        CallbackEvent,
        "replay",
        dead_callback,
        lambda e: fresh(e).status,
        ("change_callbackevent",),
    ),
    *(
        Case(
            Campaign,
            action,
            lambda tc, state=state: a_campaign(tc, state),
            lambda c: fresh(c).state,
            ("change_campaign",),
            (("apply", "1"), ("reason", "checked by on-call")),
        )
        for action, state in (
            ("start", "draft"),
            ("pause", "running"),
            ("resume", "paused"),
            ("cancel", "running"),
        )
    ),
    Case(
        WebhookDelivery,
        "replay",
        failed_delivery,
        lambda d: fresh(d).status,
        ("change_webhookdelivery",),
    ),
]


def view_codename(model) -> str:
    return f"view_{model._meta.model_name}"


def post_action(client, case: Case, obj):
    return client.post(
        admin_url(case.model),
        {"action": case.action, "_selected_action": [str(obj.pk)], **dict(case.form)},
    )


def test_every_action_in_the_project_is_covered_here():
    """A new action needs its permission, and a row here."""
    declared = set()
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or ():
            name = getattr(action, "__name__", action)  # a name, or the action function itself
            if name == "delete_selected":
                continue
            declared.add(f"{model._meta.model_name}.{name}")
            func = action if callable(action) else getattr(model_admin, name)
            assert getattr(func, "allowed_permissions", None), f"{model.__name__}.{name}"
    beat = {f"periodictask.{name}" for name in ("enable_tasks", "toggle_tasks", "run_tasks")}
    others = {"messagetemplate.sync_from_provider", "periodictask.disable_tasks", *beat}
    assert declared == {str(case) for case in CASES} | others


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_view_only_user_sees_the_page_but_cannot_act(client, tenant_a, case):
    obj = case.make(tenant_a)
    before = case.state(obj)
    viewer = staff(client, tenant_a.tenant, view_codename(case.model))
    listing = viewer.get(admin_url(case.model))
    assert listing.status_code == 200
    assert f'value="{case.action}"' not in listing.content.decode()
    assert viewer.get(f"{admin_url(case.model)}{obj.pk}/change/").status_code == 200
    post_action(viewer, case, obj)
    assert case.state(obj) == before


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_staff_user_without_permissions_sees_and_does_nothing(client, tenant_a, case):
    obj = case.make(tenant_a)
    before = case.state(obj)
    nobody = staff(client, tenant_a.tenant)
    assert nobody.get(admin_url(case.model)).status_code == 403
    assert nobody.get(f"{admin_url(case.model)}{obj.pk}/change/").status_code in (302, 403)
    assert nobody.get(f"{admin_url(case.model)}{obj.pk}/history/").status_code in (302, 403)
    assert post_action(nobody, case, obj).status_code == 403
    assert case.state(obj) == before


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_user_with_the_permission_acts(client, tenant_a, case):
    obj = case.make(tenant_a)
    before = case.state(obj)
    allowed = staff(client, tenant_a.tenant, view_codename(case.model), *case.codenames)
    assert f'value="{case.action}"' in allowed.get(admin_url(case.model)).content.decode()
    assert post_action(allowed, case, obj).status_code == 302
    assert case.state(obj) != before


def test_the_template_sync_needs_the_change_permission(client, tenant_a, monkeypatch):
    """The one action that asks the provider: who may trigger it (the sync itself is tested
    against the sandbox in tests/messaging/test_template_sync.py)."""
    import templates_registry.admin

    synced = []
    monkeypatch.setattr(
        templates_registry.admin,
        "templates_sync",
        lambda *, tenant: synced.append(tenant) or {"created": 0, "updated": 0},
    )
    template = a_template(tenant_a)
    form = {"action": "sync_from_provider", "_selected_action": [str(template.pk)]}
    url = admin_url(type(template))
    viewer = staff(client, tenant_a.tenant, "view_messagetemplate")
    assert viewer.get(url).status_code == 200
    viewer.post(url, form)
    client.logout()
    assert staff(client, tenant_a.tenant).post(url, form).status_code == 403
    assert synced == []
    client.logout()
    allowed = staff(client, tenant_a.tenant, "view_messagetemplate", "change_messagetemplate")
    assert allowed.post(url, form).status_code == 302
    assert synced == [tenant_a.tenant]


def test_a_staff_user_without_permissions_sees_no_model_and_no_operations(client, tenant_a):
    a_message(tenant_a, "seen")
    nobody = staff(client, tenant_a.tenant)
    index = nobody.get("/admin/")
    assert index.status_code == 200
    assert "/admin/messaging/message/" not in index.content.decode()
    for model in admin.site._registry:
        assert nobody.get(admin_url(model)).status_code == 403, model
    assert nobody.get("/admin/operations/").status_code == 403


def test_the_schedule_is_stopped_only_with_the_change_permission(client, db):
    """django-celery-beat's own actions declare no permission; the reconciler's schedule is a
    periodic task a view-only user could otherwise disable (operations/admin.py)."""
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    task, _ = PeriodicTask.objects.update_or_create(  # made by a migration; a flush drops it
        name="waypost: reconcile",
        defaults={"task": "operations.reconcile", "interval": every, "enabled": True},
    )
    url = admin_url(PeriodicTask)
    form = {"action": "disable_tasks", "_selected_action": [str(task.pk)]}
    viewer = _unscoped_staff(client, "view_periodictask", "all_tenants")
    listing = viewer.get(url)
    assert listing.status_code == 200 and 'value="disable_tasks"' not in listing.content.decode()
    viewer.post(url, form)
    client.logout()
    assert _unscoped_staff(client).post(url, form).status_code == 403
    assert fresh(task).enabled
    client.logout()
    # The schedule runs any task for every tenant: model permissions alone are not enough.
    scoped = _unscoped_staff(client, "view_periodictask", "change_periodictask", "add_periodictask")
    assert scoped.get(url).status_code == 403
    assert scoped.post(url, form).status_code == 403
    assert scoped.get(admin_url(IntervalSchedule)).status_code == 403
    assert fresh(task).enabled
    client.logout()
    _unscoped_staff(client, "view_periodictask", "change_periodictask", "all_tenants").post(
        url, form
    )
    assert not fresh(task).enabled


def _unscoped_staff(client, *codenames: str):
    user = User.objects.create_user(f"staff{User.objects.count()}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client

"""The operations page in the admin (``/admin/operations/``): one screen for someone paged at
night — per tenant (scoped to the user's tenants), counts by state for the last hour and day,
stalls by reason, top error codes, webhook lag, the depth of each broker queue, each business
portfolio's messaging limit and the unique users it reached in the moving 24 hours with its
senders' quality ratings, senders blocked by an alert, failing callback endpoints, and what
the provider's invoice will count (for one tenant: by day, pricing category, sender and
recipient country).

It is a view of messages: it needs ``messaging.view_message`` (a staff user without it gets a
403, like on the messages' own list), and shows the user's tenants only.

Also the admin of the schedule (django-celery-beat's *Periodic tasks* and schedules, where the
reconciler's and the sweeps' rows live). Its rows run any task with any arguments for every
tenant, so only staff who see every tenant (superusers, ``tenants.all_tenants``) see or change
it, whatever model permissions a scoped user holds; and its actions — enable, disable, toggle,
run — which declare no permission of their own, need the *change* permission."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import django_celery_beat.admin as beat_admin  # registers its admins first: replaced below
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from core.logging import mask_phone
from messaging.selectors import pricing_report
from messaging.states import MessageState
from operations.reconciler import rules_rows
from operations.selectors import operations_overview
from tenants.scoping import AllTenantsOnly, allowed_tenants, can_see_recipients


def operations_view(request):
    if not request.user.has_perm("messaging.view_message"):
        raise PermissionDenied
    tenants = list(allowed_tenants(request.user).order_by("slug"))
    chosen = request.GET.get("tenant", "")
    shown = [t for t in tenants if t.slug == chosen] if chosen else tenants
    overview = operations_overview(tenants=shown)
    if not can_see_recipients(request):  # an endpoint's health quotes its receiver's answer
        overview["failing_endpoints"] = [
            (slug, url, replace(health, detail=mask_phone(health.detail)))
            for slug, url, health in overview["failing_endpoints"]
        ]
    states = [s.value for s in MessageState]
    pricing_rows = []
    if chosen and shown:  # one tenant: what its Meta invoice will count, row by row
        now = timezone.now()
        pricing_rows = pricing_report(
            tenant=shown[0], since=now - timedelta(days=30), until=now + timedelta(seconds=1)
        )
    return TemplateResponse(
        request,
        "admin/operations.html",
        {
            **admin.site.each_context(request),
            "title": "Operations",
            "tenants": tenants,
            "chosen": chosen,
            "overview": overview,
            "state_rows": [
                (s, overview["states_hour"].get(s, 0), overview["states_day"].get(s, 0))
                for s in states
                if overview["states_day"].get(s) or overview["states_hour"].get(s)
            ],
            "tenant_id": shown[0].pk if chosen and shown else "",
            "pricing_rows": pricing_rows,
            "rules": rules_rows(tenant=shown[0] if chosen and shown else None),
        },
    )


_admin_urls = admin.site.get_urls


def _get_urls():
    return [
        path("operations/", admin.site.admin_view(operations_view), name="operations"),
        *_admin_urls(),
    ]


admin.site.get_urls = _get_urls
admin.site.index_template = "admin/waypost_index.html"  # the index, with a link to Operations
# Lists get the whole width (issue 19: they fit 1,400 px with their filters): the index, the
# breadcrumbs and the operations page are the way around, not a sidebar on every page.
admin.site.enable_nav_sidebar = False


def _needing_change(name: str):
    """django-celery-beat's action ``name``, offered and run only with the change permission."""
    original = getattr(beat_admin.PeriodicTaskAdmin, name)

    def action(model_admin, request, queryset):
        return original(model_admin, request, queryset)

    action.__name__ = name
    return admin.action(description=original.short_description, permissions=("change",))(action)


class PeriodicTaskAdmin(AllTenantsOnly, beat_admin.PeriodicTaskAdmin):
    enable_tasks = _needing_change("enable_tasks")
    disable_tasks = _needing_change("disable_tasks")
    toggle_tasks = _needing_change("toggle_tasks")
    run_tasks = _needing_change("run_tasks")


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
for _model in (IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    _base = type(admin.site._registry[_model])
    admin.site.unregister(_model)
    admin.site.register(
        _model, type(_base.__name__, (AllTenantsOnly, _base), {"__module__": __name__})
    )

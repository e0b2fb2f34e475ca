"""The admin's forms: a campaign made by a business user, and the reason an action asks for.

``CampaignCreateForm`` only gathers and checks what a person typed — which tenant, template and
sender (each of the user's own tenants), the CSV file, the schedule and the pace — and hands it
to ``campaigns.services.campaign_create`` as the API does (``request_data``): the import, the
preflight and every rule are the service's.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from django import forms

from messaging.send.windows import DAY_NAMES, InvalidWindow, SendWindow
from templates_registry.models import MessageTemplate, TemplateStatus
from tenants.models import SenderNumber
from tenants.scoping import allowed_tenants

DAY_CHOICES = [(str(number), name.title()) for number, name in enumerate(DAY_NAMES, start=1)]


class TenantOptionsSelect(forms.Select):
    """A select whose options name their object's tenant (``data-tenant``): the add page's
    script shows the chosen tenant's only."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-tenant"] = str(instance.tenant_id)
        return option


class TemplateChoiceField(forms.ModelChoiceField):
    widget = TenantOptionsSelect

    def label_from_instance(self, obj):
        return f"{obj.tenant.slug} · {obj.name} ({obj.language}, {obj.category.lower()})"


class SenderChoiceField(forms.ModelChoiceField):
    widget = TenantOptionsSelect

    def label_from_instance(self, obj):
        return f"{obj.tenant.slug} · {obj.phone_number_id}"


class CampaignCreateForm(forms.Form):
    """A draft campaign from an uploaded CSV audience. The choices are the user's tenants'
    (``tenants.scoping.allowed_tenants``), and a template or sender must be the chosen
    tenant's. ``form_token`` is drawn when the form is shown: with the form's content and the
    file's digest it makes the campaign's idempotency key (``idempotency_key``), so the same
    form sent twice makes one campaign, while the same audience sent again from a fresh form
    makes another."""

    tenant = forms.ModelChoiceField(queryset=None)
    name = forms.CharField(
        max_length=200, required=False, help_text="Default: the template's name."
    )
    template = TemplateChoiceField(queryset=None, help_text="An approved template of the tenant.")
    sender = SenderChoiceField(
        queryset=None,
        required=False,
        empty_label="The template's number (else the tenant's default)",
        help_text="Must be in the WABA the template is approved in.",
    )
    audience = forms.FileField(
        label="Audience (CSV)",
        help_text="UTF-8 CSV with a header row: a <code>to</code> column (+4915112345678) or "
        "<code>recipient</code> (BSUIDs), one column per variable (<code>1</code>, "
        "<code>2</code>, <code>header.1</code>, or the names of a named-parameter template), "
        "optional <code>metadata.&lt;key&gt;</code> columns.",
    )
    send_at = forms.DateTimeField(
        label="Send at (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text="Not sent before this time. Empty: as soon as it is started.",
    )
    window_start = forms.TimeField(
        label="Window opens",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Local time of each recipient (from the number; the tenant's zone for a "
        "BSUID), inclusive.",
    )
    window_end = forms.TimeField(
        label="Window closes",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Local time, exclusive; on the same day as the opening.",
    )
    window_days = forms.MultipleChoiceField(
        label="Window days",
        choices=DAY_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every day.",
    )
    messages_per_second = forms.IntegerField(
        min_value=1,
        max_value=1000,
        required=False,
        help_text="The campaign's own cap (never more than its share of the sender's rate).",
    )
    ttl_seconds = forms.IntegerField(
        label="Time to live (seconds)",
        min_value=30,
        max_value=30 * 86400,
        required=False,
        help_text="A row not sent this long after the campaign is due ends expired.",
    )
    form_token = forms.CharField(widget=forms.HiddenInput)

    SECTIONS = (
        ("Campaign", ("tenant", "name", "template", "sender", "audience")),
        ("Schedule", ("send_at", "window_start", "window_end", "window_days")),
        ("Pace", ("messages_per_second", "ttl_seconds")),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        tenants = allowed_tenants(user).order_by("slug")
        self.fields["tenant"].queryset = tenants
        self.fields["template"].queryset = (
            MessageTemplate.objects.filter(tenant__in=tenants, status=TemplateStatus.APPROVED)
            .select_related("tenant")
            .order_by("tenant__slug", "name", "language")
        )
        self.fields["sender"].queryset = (
            SenderNumber.objects.filter(tenant__in=tenants)
            .select_related("tenant")
            .order_by("tenant__slug", "phone_number_id")
        )
        if not self.is_bound:
            self.initial.setdefault("form_token", secrets.token_urlsafe(16))
            if len(tenants) == 1:
                self.initial.setdefault("tenant", tenants[0].pk)
        # Each option names its tenant, for the page's script that shows the chosen one's only.
        for name in ("template", "sender"):
            self.fields[name].widget.attrs["data-tenant-filtered"] = "1"

    def clean(self):
        data = super().clean()
        tenant = data.get("tenant")
        for name in ("template", "sender"):
            chosen = data.get(name)
            if tenant is not None and chosen is not None and chosen.tenant_id != tenant.pk:
                self.add_error(name, f"Not one of {tenant.slug}'s.")
        start, end, days = data.get("window_start"), data.get("window_end"), data.get("window_days")
        data["window"] = None
        if start is not None or end is not None or days:
            try:
                data["window"] = SendWindow(
                    start=start, end=end, days=frozenset(int(d) for d in days or ())
                )
            except InvalidWindow as exc:
                field = {"start": "window_start", "end": "window_end", "days": "window_days"}
                self.add_error(field.get(exc.field), str(exc))
        return data

    def request_data(self) -> dict:
        """The fields as ``campaign_create`` takes them (the API's validated request)."""
        data = self.cleaned_data
        request = {"template_id": str(data["template"].pk)}
        if data["name"]:
            request["name"] = data["name"]
        if data["sender"] is not None:
            request["sender"] = data["sender"].phone_number_id
        for name in ("send_at", "messages_per_second", "ttl_seconds"):
            if data[name] is not None:
                request[name] = data[name]
        if data["window"] is not None and not data["window"].is_always:
            request["window"] = data["window"]
            request["window_spec"] = data["window"].as_dict()
        return request

    def idempotency_key(self, audience_digest: str) -> str:
        """``admin:`` and a digest of the form as shown (its token), what it says and the
        file: a double-submitted form finds the campaign it already made."""
        fields = {k: v for k, v in self.request_data().items() if k != "window"}
        body = json.dumps(
            {
                "form": self.cleaned_data["form_token"],
                "tenant": self.cleaned_data["tenant"].pk,
                "fields": fields,
                "audience": audience_digest,
            },
            sort_keys=True,
            default=str,
        )
        return f"admin:{hashlib.sha256(body.encode()).hexdigest()[:40]}"


class CampaignActionForm(forms.Form):
    """What an action asks before it acts: a reason (recorded on the campaign with the user,
    and sent with ``campaign.paused``), and for a start whether to skip the invalid rows."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=255,
        help_text="Recorded on the campaign with your name (and sent with campaign.paused).",
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Skip the invalid rows",
        help_text="Send to the valid rows only; the invalid ones end skipped, never sent.",
    )

    def __init__(self, *args, asks_reason: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not asks_reason:
            del self.fields["reason"]

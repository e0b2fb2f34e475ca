"""``GET`` and ``PATCH /api/v1/tenant``: the caller's own tenant's settings."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from callbacks.services import EVENT_TYPES
from core.api import RejectUnknownFields
from operations.services import tenant_settings, tenant_settings_update
from tenants.models import AmbiguousPolicy, ParamPolicy, validate_time_zone


class TenantSettingsOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    param_policy = serializers.ChoiceField(choices=ParamPolicy.choices)
    ambiguous_policy = serializers.ChoiceField(choices=AmbiguousPolicy.choices)
    ambiguous_grace_seconds = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    retry_window_seconds = serializers.IntegerField()
    stall_accepted_seconds = serializers.IntegerField()
    stall_sent_seconds = serializers.IntegerField()
    opt_out_keywords = serializers.CharField()
    marketing_limit_retry = serializers.BooleanField()
    time_zone = serializers.CharField()
    callback_url = serializers.CharField(allow_blank=True)
    callback_events = serializers.ListField(child=serializers.CharField())
    callback_secrets = serializers.IntegerField(
        help_text="How many secrets sign (2 in a rotation)."
    )
    callback_enabled = serializers.BooleanField()
    callback_disabled_reason = serializers.CharField(allow_blank=True)
    callback_failures = serializers.IntegerField()
    callback_last_success_at = serializers.DateTimeField(allow_null=True)
    callback_secret = serializers.CharField(
        required=False, help_text="Only in the answer that made it: a new secret, shown once."
    )


class TenantSettingsInput(RejectUnknownFields, serializers.Serializer):
    """The settings to change. Any other key (a misspelling, a read-only field such as `slug`)
    is refused with `unknown_field`, and nothing is changed."""

    param_policy = serializers.ChoiceField(choices=ParamPolicy.choices, required=False)
    ambiguous_policy = serializers.ChoiceField(choices=AmbiguousPolicy.choices, required=False)
    ambiguous_grace_seconds = serializers.IntegerField(
        min_value=0, max_value=30 * 86400, required=False
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=50, required=False)
    retry_window_seconds = serializers.IntegerField(
        min_value=0, max_value=30 * 86400, required=False
    )
    stall_accepted_seconds = serializers.IntegerField(
        min_value=1, max_value=30 * 86400, required=False
    )
    stall_sent_seconds = serializers.IntegerField(min_value=1, max_value=30 * 86400, required=False)
    opt_out_keywords = serializers.CharField(max_length=200, allow_blank=True, required=False)
    marketing_limit_retry = serializers.BooleanField(
        required=False,
        help_text="Retry a marketing message refused for Meta's per-user marketing limit "
        "(131049) once, after 24 hours.",
    )
    time_zone = serializers.CharField(
        max_length=64,
        required=False,
        validators=[validate_time_zone],
        help_text="The time zone of recipients known only by BSUID, for campaign send windows: "
        "an IANA name (Europe/Berlin).",
    )
    # Not a URLField: the callback rules (callbacks.services.check_destination) judge the URL
    # whole — form, port, scheme, then resolution — and answer one code for each refusal.
    callback_url = serializers.CharField(
        max_length=500,
        allow_blank=True,
        required=False,
        help_text="An http(s) URL on port 80, 443 or 1024-65535; empty to stop callbacks.",
    )
    callback_events = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        help_text=f"Any of: {', '.join(EVENT_TYPES)}.",
    )
    rotate_callback_secret = serializers.BooleanField(
        required=False,
        help_text="Make a new secret (answered once); the old one keeps signing for 24 hours.",
    )


class TenantSettingsApi(APIView):
    @extend_schema(responses=TenantSettingsOutput)
    def get(self, request):
        return Response(TenantSettingsOutput(tenant_settings(tenant=request.user.tenant)).data)

    @extend_schema(request=TenantSettingsInput, responses=TenantSettingsOutput)
    def patch(self, request):
        data = TenantSettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = request.user.tenant
        secret = tenant_settings_update(tenant=tenant, data=data.validated_data)
        body = TenantSettingsOutput(tenant_settings(tenant=tenant)).data
        if secret:
            body["callback_secret"] = secret
        return Response(body)

"""Campaign API: one thin view per operation; the rules are the services' and the feeder's.

``POST /campaigns`` takes JSON (``audience``: a list of rows) or ``multipart/form-data`` (an
``audience`` CSV file, streamed from the upload's temporary file; the other fields as form
fields, ``template``, ``window`` and ``defaults`` as JSON text).
"""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.audience import (
    INVALID_ROWS_SHOWN,
    campaign_window,
    csv_rows,
    file_digest,
    json_rows,
)
from campaigns.models import Campaign, CampaignState
from campaigns.selectors import (
    campaign_get,
    campaign_list,
    campaign_progress,
    invalid_rows,
    invalid_rows_csv,
)
from campaigns.services import (
    campaign_cancel,
    campaign_create,
    campaign_pause,
    campaign_resume,
    campaign_start,
)
from core.api import RejectUnknownFields, idempotency_key
from core.errors import ValidationFailed
from core.openapi import follow_ups, idempotency_key_parameter, paginated
from core.parsers import BoundedMultiPartParser, JSONParser, unstorable
from messaging.send.inputs import SEND_AT_MAX_DAYS, WindowInput, send_at_checked, validated
from templates_registry.formats import LANGUAGE_SCHEMA, TEMPLATE_NAME_SCHEMA

IDEMPOTENCY_KEY = idempotency_key_parameter("campaign")
JSON_FIELDS = ("template", "window", "defaults", "audience")


class TemplateRef(RejectUnknownFields, serializers.Serializer):
    openapi_properties = {"name": TEMPLATE_NAME_SCHEMA, "language": LANGUAGE_SCHEMA}

    name = serializers.CharField(max_length=512)
    language = serializers.CharField(max_length=16)


class CampaignInput(RejectUnknownFields, serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    template = TemplateRef(required=False, help_text="The template, by name and language.")
    template_id = serializers.UUIDField(required=False, help_text="Or the template, by id.")
    sender = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The phone number id to send from (default: the template's number).",
    )
    send_at = serializers.DateTimeField(
        required=False,
        help_text=f"Not sent before this time (ISO 8601; at most {SEND_AT_MAX_DAYS} days ahead).",
    )
    window = WindowInput(
        required=False,
        help_text="Send only inside these local hours and days, in each recipient's time zone "
        "(from the number; the tenant's for BSUID-only recipients).",
    )
    messages_per_second = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=1000,
        help_text="The campaign's own rate (at most its share of the sender's).",
    )
    ttl_seconds = serializers.IntegerField(
        required=False,
        min_value=30,
        max_value=30 * 86400,
        help_text="A row not sent this long after the campaign starts ends expired.",
    )
    defaults = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=2000),
        required=False,
        help_text="Variables every row gets unless its own column says otherwise, e.g. "
        '{"header.image": "media:<id>"}.',
    )
    audience = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        min_length=1,
        help_text='JSON rows: {"to": "+4915112345678", "1": "Ana", "metadata.order": '
        '"A-1"} (or a CSV file in a multipart request).',
    )
    start = serializers.BooleanField(
        required=False, default=False, help_text="Start it once the preflight passes."
    )
    skip_invalid = serializers.BooleanField(
        required=False, default=False, help_text="With start: send to the valid rows only."
    )

    def validate_send_at(self, value):
        return send_at_checked(value)

    def validate(self, data):
        if not data.get("template") and not data.get("template_id"):
            raise serializers.ValidationError(
                {"template": serializers.ErrorDetail("Name a template.", code="required")}
            )
        return data


class CampaignOutput(serializers.ModelSerializer):
    template = serializers.SerializerMethodField()
    sender = serializers.CharField(source="sender.phone_number_id")
    window = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = (
            "id",
            "name",
            "state",
            "state_reason",
            "state_changed_by",
            "state_changed_at",
            "template",
            "sender",
            "send_at",
            "window",
            "messages_per_second",
            "ttl_seconds",
            "rows_total",
            "rows_invalid",
            "preflight_status",
            "preflight",
            "skip_invalid",
            "progress",
            "started_at",
            "finished_at",
            "created_at",
        )

    def get_template(self, obj) -> dict:
        return {
            "id": str(obj.template_id),
            "name": obj.template.name,
            "language": obj.template.language,
            "category": obj.template.category,
        }

    def get_window(self, obj) -> dict | None:
        window = campaign_window(obj)
        return window.as_dict() if window else None

    def get_progress(self, obj) -> dict:
        return campaign_progress(obj)


class CampaignPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    max_page_size = 100
    page_size_query_param = "page_size"


def _request_fields(request) -> tuple[dict, object | None]:
    """The request's fields as one dict, and the CSV upload (multipart) if any."""
    upload = request.FILES.get("audience") if hasattr(request, "FILES") else None
    if not hasattr(request.data, "getlist"):  # JSON: an object (anything else is refused)
        return request.data, upload
    fields: dict = {}
    for key in request.data:
        if key == "audience" and upload is not None:
            continue
        value = request.data.get(key)
        if key in JSON_FIELDS and isinstance(value, str):
            try:
                value = json.loads(value)
                problem = unstorable(value)  # as the JSON parser refuses for a JSON body
            except (ValueError, RecursionError):
                problem = "not JSON"
            if problem:
                raise ValidationFailed(
                    f"'{key}' must be JSON in a form field ({problem}).",
                    code="validation_error",
                    details=[{"field": key, "code": "invalid_json"}],
                )
        fields[key] = value
    return fields, upload


class AudienceParser(BoundedMultiPartParser):
    """Refuses an audience file announcing more than ``WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES``
    before reading any of it."""

    limit_setting = "WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES"
    code = "audience_too_large"
    field = "audience"


class CampaignListCreateApi(APIView):
    parser_classes = [JSONParser, AudienceParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, description="Comma-separated campaign states."),
        ],
        responses=paginated(CampaignOutput),
        operation_id="campaigns_list",
    )
    def get(self, request):
        state = request.query_params.get("state")
        if state and set(state.split(",")) - set(CampaignState.values):
            raise ValidationFailed(
                f"Unknown state; one of {', '.join(CampaignState.values)}.",
                code="validation_error",
                details=[{"field": "state", "code": "invalid"}],
            )
        paginator = CampaignPagination()
        page = paginator.paginate_queryset(
            campaign_list(tenant=request.user.tenant, state=state), request, view=self
        )
        return paginator.get_paginated_response(CampaignOutput(page, many=True).data)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request={"application/json": CampaignInput, "multipart/form-data": CampaignInput},
        responses={201: CampaignOutput, 200: CampaignOutput},
        operation_id="campaigns_create",
        extensions=follow_ups(
            201,
            200,
            GetCampaign=("campaigns_retrieve", {"campaign_id": "$response.body#/id"}, "Progress."),
            GetReport=("campaigns_report", {"campaign_id": "$response.body#/id"}, "The report."),
            **{
                f"{action.title()}Campaign": (
                    f"campaigns_{action}",
                    {"campaign_id": "$response.body#/id"},
                    f"{action.title()} it.",
                )
                for action in ("start", "pause", "resume", "cancel")
            },
        ),
    )
    def post(self, request):
        key = idempotency_key(request)
        fields, upload = _request_fields(request)
        data = validated(CampaignInput, fields)
        start, skip_invalid = data.pop("start"), data.pop("skip_invalid")
        audience = data.pop("audience", None)
        if upload is not None and audience is not None:
            raise ValidationFailed(
                "Give the audience as JSON rows or as a CSV file, not both.",
                code="audience_ambiguous",
            )
        if upload is None and audience is None:
            raise ValidationFailed(
                "The campaign needs an audience: JSON rows, or a CSV file in a multipart request.",
                code="audience_missing",
                details=[{"field": "audience", "code": "required"}],
            )
        if upload is not None:
            rows, digest = csv_rows(upload), file_digest(upload)
        else:
            rows = json_rows(audience)
            digest = json.dumps(audience, sort_keys=True, separators=(",", ":"))
        campaign, created = campaign_create(
            tenant=request.user.tenant,
            idempotency_key=key,
            data=data,
            rows=rows,
            audience_digest=digest,
        )
        if created and start and (campaign.rows_invalid == 0 or skip_invalid):
            campaign = campaign_start(campaign=campaign, skip_invalid=skip_invalid, by="api")
        response = Response(
            CampaignOutput(campaign).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


class CampaignDetailApi(APIView):
    @extend_schema(responses=CampaignOutput, operation_id="campaigns_retrieve")
    def get(self, request, campaign_id):
        campaign = campaign_get(tenant=request.user.tenant, campaign_id=campaign_id)
        return Response(CampaignOutput(campaign).data)


class InvalidRowOutput(serializers.Serializer):
    row = serializers.IntegerField(source="number")
    recipient = serializers.SerializerMethodField()
    outcome = serializers.CharField()
    error_code = serializers.CharField()
    error_message = serializers.CharField()

    def get_recipient(self, obj) -> str:
        return obj.recipient or obj.recipient_user_id or obj.raw_recipient


class CampaignReportApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "CampaignReport",
            {
                "campaign_id": serializers.UUIDField(),
                "state": serializers.CharField(),
                "preflight_status": serializers.CharField(),
                "preflight": serializers.DictField(),
                "progress": serializers.DictField(),
                "invalid_rows": InvalidRowOutput(many=True),
                "invalid_rows_total": serializers.IntegerField(),
                "invalid_rows_csv": serializers.CharField(),
            },
        ),
        operation_id="campaigns_report",
    )
    def get(self, request, campaign_id):
        campaign = campaign_get(tenant=request.user.tenant, campaign_id=campaign_id)
        rows = invalid_rows(campaign)
        return Response(
            {
                "campaign_id": str(campaign.pk),
                "state": campaign.state,
                "preflight_status": campaign.preflight_status,
                "preflight": campaign.preflight,
                "progress": campaign_progress(campaign),
                "invalid_rows": InvalidRowOutput(rows[:INVALID_ROWS_SHOWN], many=True).data,
                "invalid_rows_total": rows.count(),
                "invalid_rows_csv": f"/api/v1/campaigns/{campaign.pk}/invalid-rows.csv",
            }
        )


class CampaignInvalidRowsCsvApi(APIView):
    @extend_schema(
        responses={(200, "text/csv"): str},
        operation_id="campaigns_invalid_rows_csv",
        description="Every row not sent and why: row, recipient, outcome, error_code, "
        "error_message.",
    )
    def get(self, request, campaign_id):
        campaign = campaign_get(tenant=request.user.tenant, campaign_id=campaign_id)
        response = StreamingHttpResponse(invalid_rows_csv(campaign), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-rows.csv"'
        return response


class ReasonInput(RejectUnknownFields, serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True)


class StartInput(RejectUnknownFields, serializers.Serializer):
    skip_invalid = serializers.BooleanField(required=False, default=False)


def _action(name: str, input_class, act, description: str) -> type[APIView]:
    """``POST /campaigns/{id}/<name>``: one state change (``act(campaign, body)``), answered
    with the campaign."""

    @extend_schema(
        request=input_class,
        responses=CampaignOutput,
        operation_id=f"campaigns_{name}",
        description=description,
    )
    def post(self, request, campaign_id):
        campaign = campaign_get(tenant=request.user.tenant, campaign_id=campaign_id)
        campaign = act(campaign, request.data if request.data else {})
        return Response(CampaignOutput(campaign).data)

    return type(f"Campaign{name.title()}Api", (APIView,), {"post": post, "__doc__": description})


CampaignStartApi = _action(
    "start",
    StartInput,
    lambda c, body: campaign_start(
        campaign=c, skip_invalid=validated(StartInput, body)["skip_invalid"], by="api"
    ),
    "Start a draft: at its send_at, or now. Needs a preflight that passed, or skip_invalid.",
)
CampaignPauseApi = _action(
    "pause",
    ReasonInput,
    lambda c, body: campaign_pause(
        campaign=c, reason=validated(ReasonInput, body).get("reason", ""), by="api"
    ),
    "Pause: nothing more is sent (messages not yet submitted wait), until resumed.",
)
CampaignResumeApi = _action(
    "resume",
    ReasonInput,
    lambda c, body: campaign_resume(
        campaign=c, reason=validated(ReasonInput, body).get("reason", ""), by="api"
    ),
    "Resume a paused campaign.",
)
CampaignCancelApi = _action(
    "cancel",
    ReasonInput,
    lambda c, body: campaign_cancel(
        campaign=c, reason=validated(ReasonInput, body).get("reason", ""), by="api"
    ),
    "Cancel: rows not yet sent are skipped, messages not yet submitted are cancelled.",
)

"""Message API: one thin view per operation; logic lives in ``send.intake`` and the selectors."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import IDEMPOTENCY_HEADER, RejectUnknownFields, idempotency_key
from core.errors import WaypostError
from core.lean import bearer, json_accepted, json_object, lean, respond
from core.lean import error as lean_error
from core.openapi import follow_ups, idempotency_key_parameter, paginated
from messaging.models import Message, MessageKind
from messaging.selectors import (
    inbound_list,
    message_get,
    message_list,
    message_timeline,
    pricing_report,
)
from messaging.send.inputs import (
    MAX_BATCH,
    BatchInput,
    BatchItemInput,
    TemplateMessageInput,
    TextMessageInput,
    message_input,
    validated,
)
from messaging.send.intake import message_cancel, message_create, message_create_batch
from messaging.states import MessageState
from tenants.authentication import TenantPrincipal
from tenants.services import api_key_authenticate
from tenants.throttling import api_request_allowed


class MessageOutput(serializers.ModelSerializer):
    to = serializers.CharField(
        source="recipient", allow_blank=True, help_text="E.164; empty when only the BSUID is known."
    )
    recipient = serializers.CharField(
        source="recipient_user_id",
        allow_blank=True,
        help_text="The business-scoped user id, when known.",
    )
    template = serializers.SerializerMethodField()
    text = serializers.CharField(source="text_body")
    error = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = (
            "id",
            "state",
            "to",
            "recipient",
            "kind",
            "template",
            "text",
            "parameters",
            "provider_message_id",
            "error",
            "stalled",
            "stalled_reason",
            "stalled_at",
            "attempts",
            "next_attempt_at",
            "metadata",
            "campaign",
            "send_at",
            "send_window",
            "idempotency_key",
            "created_at",
            "state_changed_at",
            "ledger_pruned_at",
        )

    def get_template(self, obj) -> dict | None:
        if obj.kind == MessageKind.TEXT:
            return None
        return {
            "name": obj.template_name,
            "language": obj.template_language,
            "category": obj.template_category,
        }

    def get_error(self, obj) -> dict | None:
        if not obj.error_code:
            return None
        return {
            "code": obj.error_code,
            "title": obj.error_title,
            "details": obj.error_details,
            "class": obj.error_class,
        }


class EventOutput(serializers.Serializer):
    type = serializers.CharField()
    source = serializers.CharField()
    state = serializers.CharField(allow_null=True)
    round = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    detail = serializers.JSONField()


class ErrorOutput(serializers.Serializer):
    """The one error shape (``core.api``)."""

    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.ListField(child=serializers.DictField())


MESSAGE_INPUT = PolymorphicProxySerializer(
    component_name="MessageInput",
    serializers=[TemplateMessageInput, TextMessageInput],
    resource_type_field_name=None,
)


class TemplateBatchItemInput(BatchItemInput, TemplateMessageInput):
    pass


class TextBatchItemInput(BatchItemInput, TextMessageInput):
    pass


class _BatchInputSchema(RejectUnknownFields, serializers.Serializer):
    messages = PolymorphicProxySerializer(
        component_name="BatchItemInput",
        serializers=[TemplateBatchItemInput, TextBatchItemInput],
        resource_type_field_name=None,
        many=True,
    )


BATCH_INPUT = _BatchInputSchema


class MessagePagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"


IDEMPOTENCY_KEY = idempotency_key_parameter("message")


def _message_links(expression: str) -> dict:
    return {
        "GetMessage": (
            "messages_retrieve",
            {"message_id": expression},
            "The message: its state, error and events.",
        ),
        "CancelMessage": (
            "messages_cancel_create",
            {"message_id": expression},
            "Cancel it, while it is not yet submitted.",
        ),
    }


class MessageListCreateApi(APIView):
    class Filters(serializers.Serializer):
        state = serializers.CharField(required=False)
        recipient = serializers.CharField(required=False)
        template = serializers.CharField(required=False)
        created_after = serializers.DateTimeField(required=False)
        created_before = serializers.DateTimeField(required=False)
        stalled = serializers.BooleanField(required=False, allow_null=True, default=None)

        def validate_state(self, value):
            unknown = set(value.split(",")) - set(MessageState.values)
            if unknown:
                raise serializers.ValidationError(f"unknown state(s): {sorted(unknown)}")
            return value

    @extend_schema(
        parameters=[Filters],
        responses=paginated(MessageOutput),
        operation_id="messages_list",
        extensions=follow_ups(
            200,
            **{
                f"{name}First": link
                for name, link in _message_links("$response.body#/results/0/id").items()
            },
        ),
    )
    def get(self, request):
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        messages = message_list(tenant=request.user.tenant, **filters.validated_data)
        paginator = MessagePagination()
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(MessageOutput(page, many=True).data)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=MESSAGE_INPUT,
        responses={202: MessageOutput, 200: MessageOutput},
        extensions=follow_ups(202, 200, **_message_links("$response.body#/id")),
    )
    def post(self, request):
        key = idempotency_key(request)
        message, created = message_create(
            tenant=request.user.tenant,
            idempotency_key=key,
            body=request.data,
            data=message_input(request.data),
        )
        response = Response(message_output(message), status=status.HTTP_202_ACCEPTED)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    @classmethod
    def as_view(cls, **initkwargs):
        """DRF's view, with the lean single send (``core.lean``) in front of its POST."""
        return lean(super().as_view(**initkwargs), _lean_create, methods={"POST"})


ALLOW = "GET, POST, HEAD, OPTIONS"  # what DRF answers for MessageListCreateApi


def _lean_create(request):
    """``MessageListCreateApi.post`` for the plain request — a valid key of an active tenant,
    a JSON body the input rules take, an Idempotency-Key, a token in the tenant's bucket —
    without DRF around it (``core.lean``: None otherwise, and DRF answers)."""
    if not json_accepted(request):
        return None
    raw = bearer(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    api_key = api_key_authenticate(raw=raw) if raw and key else None
    if api_key is None or not api_key.tenant.active:
        return None
    body = json_object(request)
    if body is None:
        return None
    try:
        data = message_input(body)
    except WaypostError:
        return None
    tenant = api_key.tenant
    if not api_request_allowed(tenant):
        return None
    request.user = TenantPrincipal(tenant=tenant, api_key=api_key)
    try:
        message, created = message_create(tenant=tenant, idempotency_key=key, body=body, data=data)
    except WaypostError as exc:
        return lean_error(exc, allow=ALLOW)
    headers = None if created else {"Idempotent-Replayed": "true"}
    return respond(message_output(message), 202, allow=ALLOW, headers=headers)


@functools.cache
def _output() -> MessageOutput:
    return MessageOutput()


def message_output(message: Message) -> dict:
    """``MessageOutput(message).data`` with the serializer's fields built once, not per message
    (as ``MessageOutput(many=True)`` does): half of a 1,000-item batch's time went there."""
    return _output().to_representation(message)


class BatchItemResultOutput(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request.")
    status = serializers.IntegerField(
        help_text="202 created, 200 replayed (same key, same body), or the item's 4xx."
    )
    message = MessageOutput(required=False, help_text="Unless the item was refused.")
    error = ErrorOutput(required=False, help_text="Why the item was refused.")


class BatchOutput(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = BatchItemResultOutput(many=True)


class MessageBatchApi(APIView):
    @staticmethod
    def throttle_cost(request) -> int:
        """A batch spends one of the tenant's API tokens per message (``tenants.throttling``);
        one longer than ``MAX_BATCH`` is refused whole by validation, and costs one."""
        messages = request.data.get("messages") if isinstance(request.data, dict) else None
        return len(messages) if isinstance(messages, list) and len(messages) <= MAX_BATCH else 1

    @extend_schema(
        request=BATCH_INPUT,
        responses=BatchOutput,
        extensions=follow_ups(
            200,
            **{
                f"{name}First": link
                for name, link in _message_links("$response.body#/results/0/message/id").items()
            },
        ),
    )
    def post(self, request):
        items = validated(BatchInput, request.data)["messages"]
        results = message_create_batch(tenant=request.user.tenant, items=items)
        body = [
            {
                "index": r.index,
                "status": r.status,
                **({"message": message_output(r.message)} if r.message else {}),
                **({"error": r.error} if r.error else {}),
            }
            for r in results
        ]
        accepted = sum(1 for r in results if r.status in (200, 202))
        return Response(
            {"accepted": accepted, "rejected": len(results) - accepted, "results": body}
        )


class MessageDetailApi(APIView):
    @extend_schema(
        responses=MessageOutput,
        extensions=follow_ups(
            200, CancelMessage=_message_links("$response.body#/id")["CancelMessage"]
        ),
    )
    def get(self, request, message_id):
        message = message_get(tenant=request.user.tenant, message_id=message_id)
        data = message_output(message)
        data["events"] = EventOutput(message_timeline(message=message), many=True).data
        return Response(data)


class MessageCancelApi(APIView):
    @extend_schema(
        request=None,
        responses=MessageOutput,
        extensions=follow_ups(200, GetMessage=_message_links("$response.body#/id")["GetMessage"]),
    )
    def post(self, request, message_id):
        message = message_cancel(tenant=request.user.tenant, message_id=message_id)
        return Response(message_output(message))


class InboundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    wamid = serializers.CharField()
    wa_id = serializers.CharField(source="contact.wa_id", help_text="Empty for a username user.")
    user_id = serializers.CharField(source="contact.user_id", help_text="The BSUID, when known.")
    username = serializers.CharField(source="contact.username")
    profile_name = serializers.CharField(source="contact.profile_name")
    type = serializers.CharField()
    text = serializers.CharField()
    payload = serializers.CharField()
    context_wamid = serializers.CharField()
    received_at = serializers.DateTimeField()


class InboundPagination(MessagePagination):
    ordering = ("-received_at", "-id")


class InboundListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("wa_id", str)],
        responses=paginated(InboundOutput),
        operation_id="inbound_list",
    )
    def get(self, request):
        messages = inbound_list(tenant=request.user.tenant, wa_id=request.query_params.get("wa_id"))
        paginator = InboundPagination()
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(InboundOutput(page, many=True).data)


class PricingRowOutput(serializers.Serializer):
    day = serializers.DateField()
    category = serializers.CharField(help_text="Meta's pricing category, e.g. marketing, utility.")
    sender = serializers.CharField(help_text="The sending number's phone number id.")
    country = serializers.CharField(help_text="The recipient's ISO country code.")
    billable = serializers.IntegerField(help_text="Messages Meta charges for (type regular).")
    free = serializers.IntegerField(
        help_text="Messages Meta prices at zero (free_customer_service, free_entry_point)."
    )


class PricingReportOutput(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    billable = serializers.IntegerField()
    free = serializers.IntegerField()
    rows = PricingRowOutput(many=True)


class PricingReportApi(APIView):
    """What the tenant's Meta invoice will count: messages by day (UTC), pricing category,
    billable or free, sender and recipient country — from the pricing Meta's statuses carried."""

    class Filters(serializers.Serializer):
        since = serializers.DateField(required=False, help_text="First day (default: 30 days ago).")
        until = serializers.DateField(required=False, help_text="Last day (default: today).")

        def validate(self, data):
            today = timezone.now().date()
            until = data.get("until") or today
            since = data.get("since") or until - timedelta(days=30)
            if since > until or (until - since).days > 366:
                raise serializers.ValidationError(
                    {"since": "since must be on or before until, at most a year apart."}
                )
            return {"since": since, "until": until}

    @extend_schema(parameters=[Filters], responses=PricingReportOutput)
    def get(self, request):
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        since, until = filters.validated_data["since"], filters.validated_data["until"]
        rows = pricing_report(
            tenant=request.user.tenant,
            since=datetime.combine(since, time.min, tzinfo=UTC),
            until=datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC),
        )
        body = {
            "since": since,
            "until": until,
            "billable": sum(r["billable"] for r in rows),
            "free": sum(r["free"] for r in rows),
            "rows": rows,
        }
        return Response(PricingReportOutput(body).data)

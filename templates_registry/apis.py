"""Template API: one thin view per operation; logic lives in services and selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import RejectUnknownFields
from core.openapi import follow_ups, paginated
from templates_registry.formats import (
    CATEGORY_SCHEMA,
    DEFINITION_COMPONENTS,
    LANGUAGE_SCHEMA,
    PARAMETER_FORMAT_SCHEMA,
    SEND_COMPONENTS,
    TEMPLATE_NAME_SCHEMA,
)
from templates_registry.models import MessageTemplate
from templates_registry.selectors import template_get, template_list
from templates_registry.services import template_check_send, template_create, templates_sync


class TemplateOutput(serializers.ModelSerializer):
    class Meta:
        model = MessageTemplate
        fields = (
            "id",
            "name",
            "language",
            "category",
            "status",
            "parameter_format",
            "provider_template_id",
            "components",
            "rejection_reason",
            "quality",
            "created_at",
            "updated_at",
        )


class TemplatePagination(CursorPagination):
    ordering = ("-created_at", "id")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


_TEMPLATE_LINKS = {
    "GetTemplate": (
        "templates_retrieve",
        {"template_id": "$response.body#/id"},
        "The template, with its status (PENDING until the provider approves it).",
    ),
    "ValidateParameters": (
        "templates_validate_create",
        {"template_id": "$response.body#/id"},
        "Check a message's parameters against this template.",
    ),
}


class TemplateListCreateApi(APIView):
    @extend_schema_serializer(component_name="TemplateCreateInput")
    class CreateInput(RejectUnknownFields, serializers.Serializer):
        """Meta's template-creation JSON. The definition rules check the content and answer
        their own codes (e.g. `template_name_invalid`); this schema states their limits."""

        openapi_properties = {
            "name": TEMPLATE_NAME_SCHEMA,
            "language": LANGUAGE_SCHEMA,
            "category": CATEGORY_SCHEMA,
            "parameter_format": PARAMETER_FORMAT_SCHEMA,
            "components": DEFINITION_COMPONENTS,
        }

        name = serializers.CharField(max_length=600)
        language = serializers.CharField(max_length=32)
        category = serializers.CharField(max_length=32)
        parameter_format = serializers.CharField(max_length=16, required=False)
        components = serializers.JSONField()

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="e.g. APPROVED"),
            OpenApiParameter("name", str),
        ],
        responses=paginated(TemplateOutput),
        operation_id="templates_list",
        extensions=follow_ups(
            200,
            **{
                f"{name}First": (operation, {"template_id": "$response.body#/results/0/id"}, text)
                for name, (operation, _, text) in _TEMPLATE_LINKS.items()
            },
        ),
    )
    def get(self, request):
        templates = template_list(
            tenant=request.user.tenant,
            status=request.query_params.get("status"),
            name=request.query_params.get("name"),
        )
        paginator = TemplatePagination()
        page = paginator.paginate_queryset(templates, request, view=self)
        return paginator.get_paginated_response(TemplateOutput(page, many=True).data)

    @extend_schema(
        request=CreateInput,
        responses={201: TemplateOutput},
        extensions=follow_ups(201, **_TEMPLATE_LINKS),
    )
    def post(self, request):
        data = self.CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        template = template_create(tenant=request.user.tenant, definition=data.validated_data)
        return Response(TemplateOutput(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    @extend_schema(
        responses=TemplateOutput,
        extensions=follow_ups(200, ValidateParameters=_TEMPLATE_LINKS["ValidateParameters"]),
    )
    def get(self, request, template_id):
        template = template_get(tenant=request.user.tenant, template_id=template_id)
        return Response(TemplateOutput(template).data)


class TemplateValidateApi(APIView):
    """Dry run: check send-time parameters against the template under the tenant's policy."""

    @extend_schema_serializer(component_name="TemplateValidateInput")
    class Input(RejectUnknownFields, serializers.Serializer):
        openapi_properties = {"components": SEND_COMPONENTS}

        components = serializers.JSONField()

    @extend_schema_serializer(component_name="TemplateValidateOutput")
    class Output(serializers.Serializer):
        valid = serializers.BooleanField()
        components = serializers.JSONField()
        sanitized = serializers.JSONField()

    @extend_schema(request=Input, responses=Output)
    def post(self, request, template_id):
        template = template_get(tenant=request.user.tenant, template_id=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        check = template_check_send(
            template=template,
            components=data.validated_data["components"],
            policy=request.user.tenant.param_policy,
        )
        return Response(
            {"valid": True, "components": check.components, "sanitized": check.sanitized}
        )


class TemplateSyncOutput(serializers.Serializer):
    created = serializers.IntegerField(help_text="Templates the registry did not know.")
    updated = serializers.IntegerField(help_text="Templates whose provider fields were updated.")


class TemplateSyncApi(APIView):
    """Pull the tenant's templates from its provider (all pages) into the registry."""

    @extend_schema(request=None, responses=TemplateSyncOutput)
    def post(self, request):
        return Response(templates_sync(tenant=request.user.tenant))

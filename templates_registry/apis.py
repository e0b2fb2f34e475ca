"""Template API: one thin view per operation; logic lives in services and selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.openapi import paginated
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


class TemplateListCreateApi(APIView):
    class CreateInput(serializers.Serializer):
        """Meta's template-creation JSON; the definition rules check the content."""

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

    @extend_schema(request=CreateInput, responses={201: TemplateOutput})
    def post(self, request):
        data = self.CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        template = template_create(tenant=request.user.tenant, definition=data.validated_data)
        return Response(TemplateOutput(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    @extend_schema(responses=TemplateOutput)
    def get(self, request, template_id):
        template = template_get(tenant=request.user.tenant, template_id=template_id)
        return Response(TemplateOutput(template).data)


class TemplateValidateApi(APIView):
    """Dry run: check send-time parameters against the template under the tenant's policy."""

    class Input(serializers.Serializer):
        components = serializers.JSONField()

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

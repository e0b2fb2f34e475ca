"""Media API: upload a file for template headers, read it back. Thin: ``media.services`` decides."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import RejectUnknownFields
from core.errors import ValidationFailed
from core.openapi import follow_ups
from core.parsers import BoundedMultiPartParser
from media.models import MediaAsset
from media.selectors import media_get
from media.services import media_upload


class MediaParser(BoundedMultiPartParser):
    """Refuses a body announcing more than the largest file (``WAYPOST_MEDIA_MAX_BYTES``)
    before reading any of it."""

    limit_setting = "WAYPOST_MEDIA_MAX_BYTES"
    code = "media_too_large"
    field = "file"


class MediaOutput(serializers.ModelSerializer):
    sender = serializers.CharField(
        source="sender.phone_number_id", help_text="The number it is uploaded through."
    )
    kind = serializers.CharField(help_text="The header it fits: image, video or document.")

    class Meta:
        model = MediaAsset
        fields = (
            "id",
            "filename",
            "content_type",
            "kind",
            "size",
            "sha256",
            "sender",
            "provider_media_id",
            "uploaded_at",
            "expires_at",
            "created_at",
        )


_ERROR = {"$ref": "#/components/schemas/Error"}
_LINKS = {
    "GetMedia": (
        "media_retrieve",
        {"media_id": "$response.body#/id"},
        "The file: its provider id and when that expires.",
    )
}


class MediaCreateApi(APIView):
    parser_classes = [MediaParser]

    @extend_schema_serializer(component_name="MediaUploadInput")
    class Input(RejectUnknownFields, serializers.Serializer):
        """A file for template headers, as ``multipart/form-data``."""

        openapi_schema = {"required": ["file"]}
        openapi_properties = {"file": {"type": "string", "format": "binary", "nullable": False}}

        file = serializers.FileField(
            required=False,
            allow_empty_file=True,
            use_url=False,
            help_text="The file: an image (JPEG or PNG, at most 5 MB), a video (MP4 or 3GPP, "
            "16 MB) or a document (PDF, plain text or Microsoft Office, 100 MB) — and at most "
            "the deployment's WAYPOST_MEDIA_MAX_BYTES (16 MB unless raised). Its part's "
            "Content-Type, else its name's extension, says its type; the content must match.",
        )
        sender = serializers.CharField(
            required=False,
            max_length=64,
            help_text="The phone number id to upload it through: a message naming the file "
            "from another number uploads it there too. Default: the tenant's default sender.",
        )

    @extend_schema(
        request={"multipart/form-data": Input},
        responses={
            201: MediaOutput,
            200: OpenApiResponse(
                MediaOutput, description="The same file through the same sender: the same one."
            ),
            413: OpenApiResponse(_ERROR, description="The file is too large (media_too_large)."),
            415: OpenApiResponse(
                _ERROR,
                description="No template header takes this type (media_type_not_supported), or "
                "the content is not the type it claims (media_content_mismatch).",
            ),
            502: OpenApiResponse(
                _ERROR,
                description="The provider refused the sender's credential: an operator must act.",
            ),
        },
        extensions=follow_ups(201, 200, **_LINKS),
    )
    def post(self, request):
        """Upload a file for template headers: kept by Waypost and uploaded to the provider
        through the sender (a provider's media id lasts 30 days; Waypost uploads it again
        before a send that would otherwise name an expired one). Name it in a template send
        as ``{"type": "image", "image": {"media_id": "<id>"}}`` (also video, document)."""
        data = self.Input(data=request.data)
        if not data.is_valid():
            if "file" in data.errors:
                raise ValidationFailed(
                    "Send the file as the multipart field 'file' (a file part, not a text field).",
                    code="media_missing",
                    details=[{"field": "file", "code": "required"}],
                )
            raise serializers.ValidationError(data.errors)
        asset, created = media_upload(
            tenant=request.user.tenant,
            file=data.validated_data.get("file"),
            sender=data.validated_data.get("sender"),
        )
        return Response(
            MediaOutput(asset).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MediaDetailApi(APIView):
    @extend_schema(responses=MediaOutput)
    def get(self, request, media_id):
        asset = media_get(tenant=request.user.tenant, media_id=media_id)
        return Response(MediaOutput(asset).data)

"""Media for template headers: what a provider takes, and the upload that gives its media id.

* **Upload**: ``POST {graph}/{version}/{phone_number_id}/media`` (Meta), ``POST {base}/media``
  (360dialog), multipart: ``file`` (with its content type), ``type`` (the content type) and
  ``messaging_product=whatsapp``; the answer is ``{"id": "<media id>"}`` or the provider's
  error shape. At every provider Waypost speaks, the media endpoint is the messages
  endpoint's sibling, so :func:`upload_media` takes the URL and the credential header from the
  provider's :meth:`~whatsapp.base.BaseProvider.message_request` (a provider's authentication
  is written once) and its errors from the provider's own error parsing; it posts over the
  provider's pooled session. [Meta: cloud-api/reference/media; 360dialog: upload, retrieve or
  delete media]
* **Lifetime**: an uploaded media id stays usable for 30 days (:data:`MEDIA_ID_LIFETIME`);
  after that a send naming it fails (131053), so the caller uploads again before then.
* **What a template header takes** (:data:`HEADER_MEDIA`): IMAGE — JPEG or PNG, 5 MB; VIDEO —
  MP4 or 3GPP, 16 MB; DOCUMENT — PDF, plain text and Microsoft Office files, 100 MB. [Meta:
  cloud-api/reference/media, "Supported media types"]

Unlike a send, an upload may be repeated safely: a duplicate only leaves an unused media id at
the provider, which it deletes after 30 days. So every failure is one
:class:`~whatsapp.errors.ProviderError` — ``status`` None when no answer came back, else the
HTTP status with the provider's ``code`` when it gave one (classify it with
:meth:`~whatsapp.base.BaseProvider.classify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import requests

from whatsapp.base import BaseProvider, _describe, as_dict
from whatsapp.errors import ProviderError

#: How long an uploaded media id stays usable [Meta: cloud-api/reference/media].
MEDIA_ID_LIFETIME = timedelta(days=30)

_MB = 1024 * 1024


@dataclass(frozen=True)
class HeaderMedia:
    """One kind of media a template header may carry: its header format (``IMAGE``…, the
    parameter's ``type`` in lower case), the content types the provider takes for it and its
    size limit."""

    format: str
    content_types: frozenset[str]
    max_bytes: int

    @property
    def parameter_type(self) -> str:
        return self.format.lower()


HEADER_MEDIA: dict[str, HeaderMedia] = {
    media.parameter_type: media
    for media in (
        HeaderMedia("IMAGE", frozenset({"image/jpeg", "image/png"}), 5 * _MB),
        HeaderMedia("VIDEO", frozenset({"video/mp4", "video/3gpp"}), 16 * _MB),
        HeaderMedia(
            "DOCUMENT",
            frozenset(
                {
                    "text/plain",
                    "application/pdf",
                    "application/msword",
                    "application/vnd.ms-excel",
                    "application/vnd.ms-powerpoint",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                }
            ),
            100 * _MB,
        ),
    )
}


def header_media_for(content_type: str) -> HeaderMedia | None:
    """The header kind that takes ``content_type`` (``image/png`` → IMAGE), or None when no
    template header takes it (audio, stickers, WebP…)."""
    return next((m for m in HEADER_MEDIA.values() if content_type in m.content_types), None)


def media_request(
    provider: BaseProvider, *, credential: str, phone_number_id: str
) -> tuple[str, dict]:
    """(url, headers) of the provider's media upload: its messages endpoint's sibling."""
    url, headers = provider.message_request(credential=credential, phone_number_id=phone_number_id)
    base, _, endpoint = url.rpartition("/")
    if endpoint != "messages":
        raise ProviderError(f"{provider.slug or type(provider).__name__} has no media upload")
    return f"{base}/media", headers


def upload_media(
    provider: BaseProvider,
    *,
    credential: str,
    phone_number_id: str,
    content: bytes,
    filename: str,
    content_type: str,
) -> str:
    """Upload one file through ``phone_number_id``; the provider's media id. Raises
    :class:`~whatsapp.errors.ProviderError` (see the module docstring)."""
    url, headers = media_request(provider, credential=credential, phone_number_id=phone_number_id)
    try:
        response = provider.session.post(
            url,
            data={"messaging_product": "whatsapp", "type": content_type},
            files={"file": (filename, content, content_type)},
            headers=headers,
            timeout=provider.timeout,
        )
    except requests.RequestException as exc:
        raise ProviderError(f"media upload failed: {_describe(exc)}") from exc
    try:
        body = response.json()
    except ValueError:
        body = response.text[:2000]
    if response.status_code != 200:
        parsed = provider.parse_error(response.status_code, body)
        raise ProviderError(
            parsed.error_details or parsed.error_title or f"HTTP {response.status_code}",
            code=parsed.error_code,
            status=response.status_code,
        )
    media_id = as_dict(body).get("id")
    if not isinstance(media_id, str | int) or isinstance(media_id, bool) or not str(media_id):
        raise ProviderError("the provider's answer names no media id", status=200)
    return str(media_id)

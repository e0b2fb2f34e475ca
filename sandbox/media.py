"""Uploaded media, as Meta's media endpoints keep it (docs/meta-api.md §12).

Meta's media reference (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media):
``POST /{phone-number-id}/media`` (multipart ``file``, ``type``, ``messaging_product``) answers
``{"id": "<media id>"}``; the file "persists for 30 days, unless deleted earlier" —
``media_ttl_seconds`` here, so tests can shorten it; ``GET /{media-id}`` answers its URL,
MIME type, SHA-256 and size; ``DELETE /{media-id}`` removes it. Supported types and their size
limits are the reference's "Supported Media Types" table.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from aiohttp import web

from sandbox import wire

MB = 1024 * 1024
# MIME type -> the largest file Meta accepts (Supported Media Types).
SUPPORTED: dict[str, int] = {
    "audio/aac": 16 * MB,
    "audio/amr": 16 * MB,
    "audio/mpeg": 16 * MB,
    "audio/mp4": 16 * MB,
    "audio/ogg": 16 * MB,
    "text/plain": 100 * MB,
    "application/pdf": 100 * MB,
    "application/vnd.ms-powerpoint": 100 * MB,
    "application/msword": 100 * MB,
    "application/vnd.ms-excel": 100 * MB,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": 100 * MB,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": 100 * MB,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 100 * MB,
    "image/jpeg": 5 * MB,
    "image/png": 5 * MB,
    "image/webp": 500 * 1024,  # stickers (animated; static ones 100 KB)
    "video/mp4": 16 * MB,
    "video/3gpp": 16 * MB,
}
LARGEST = max(SUPPORTED.values())
# A template header's media kind -> the MIME prefix its media must have ("" = any document).
HEADER_KINDS = {"image": "image/", "video": "video/", "document": ""}


@dataclass(slots=True)
class Media:
    id: str
    phone_number_id: str
    mime_type: str
    data: bytes
    sha256: str
    uploaded_at: float

    @property
    def size(self) -> int:
        return len(self.data)

    def expired(self, now: float, ttl: float) -> bool:
        return now - self.uploaded_at >= ttl

    def as_graph(self, url: str) -> dict:
        """``GET /{media-id}``'s answer (media reference, "Retrieve Media URL"). Meta's example
        shows ``file_size`` as a placeholder; BSPs' references of the same answer type it an
        integer, and so does the sandbox."""
        return {
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "file_size": self.size,
            "id": self.id,
        }


class MediaStore:
    """Uploaded media by id. Ids are numeric strings, never reused in a run (a reset forgets
    the media, not the counter), so an old id never names a new file."""

    def __init__(self) -> None:
        self.items: dict[str, Media] = {}
        self.next_id = 4_490_709_327_384_000

    def clear(self) -> None:
        self.items.clear()

    def add(self, phone_number_id: str, mime_type: str, data: bytes, now: float) -> Media:
        self.next_id += 1
        media = Media(
            id=str(self.next_id),
            phone_number_id=phone_number_id,
            mime_type=mime_type,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            uploaded_at=now,
        )
        self.items[media.id] = media
        return media

    def live(self, media_id: str, now: float, ttl: float) -> Media | None:
        """The media with this id if it was uploaded and has not expired (nor been deleted)."""
        media = self.items.get(str(media_id))
        if media is None or media.expired(now, ttl):
            return None
        return media

    def delete(self, media_id: str) -> bool:
        return self.items.pop(str(media_id), None) is not None


UPLOAD_FIELDS = "file, type and messaging_product=whatsapp"


class MediaRoutes:
    """Meta's media endpoints, a mixin of :class:`sandbox.server.Sandbox` (it uses its
    ``state``, ``config``, ``rng``, ``error``, ``check_token`` and ``_token_from``)."""

    async def upload_media(self, request: web.Request) -> web.Response:
        """``POST /{version}/{phone-number-id}/media``, multipart ``file``, ``type`` (the MIME
        type) and ``messaging_product=whatsapp`` → ``{"id": "<numeric id>"}``. A missing part,
        an unsupported type or a file over the type's size limit is Meta's 400 error 100."""
        try:
            self.check_token(self._token_from(request))
            parts = await _read_upload(request)
            mime_type = parts.get("type", b"").decode(errors="replace").strip().lower()
            if "file" not in parts or not mime_type:
                raise wire.MetaError(100, f"The request must be multipart with {UPLOAD_FIELDS}.")
            if parts.get("messaging_product", b"").decode(errors="replace") != "whatsapp":
                raise wire.MetaError(100, "Param messaging_product must be 'whatsapp'.")
            if mime_type not in SUPPORTED:
                raise wire.MetaError(
                    100,
                    "Param file must be a file with one of the following types: "
                    f"{', '.join(SUPPORTED)}. Received file of type '{mime_type}'.",
                )
            if len(parts["file"]) > SUPPORTED[mime_type]:
                raise wire.MetaError(
                    100,
                    f"The file is {len(parts['file'])} bytes; {mime_type} files may be at "
                    f"most {SUPPORTED[mime_type]} bytes.",
                )
        except wire.MetaError as exc:
            return self.error(exc)
        media = self.state.media.add(
            request.match_info["phone_number_id"], mime_type, parts["file"], time.time()
        )
        self.state.stats.media_uploads += 1
        return web.Response(body=wire.dumps({"id": media.id}), content_type="application/json")

    def live_media(self, media_id: str) -> Media | None:
        return self.state.media.live(media_id, time.time(), self.config.media_ttl_seconds)

    def media_info(self, request: web.Request, media: Media) -> dict:
        """``GET /{version}/{media-id}``'s answer; its URL serves the bytes to a bearer of
        the API token, as Meta's lookaside URL does."""
        url = request.url.origin().with_path("/whatsapp_business/attachments/")
        return media.as_graph(str(url.with_query(mid=media.id)))

    async def download_media(self, request: web.Request) -> web.Response:
        """``GET /whatsapp_business/attachments/?mid=<media id>`` (with the token): the file."""
        try:
            self.check_token(self._token_from(request))
            media = self.live_media(request.query.get("mid", ""))
            if media is None:
                raise wire.MetaError(100, "The media does not exist or has expired.")
        except wire.MetaError as exc:
            return self.error(exc)
        return web.Response(body=media.data, content_type=media.mime_type)

    def check_media_ids(self, components: tuple) -> None:
        """Every media id a template's header names (``{"type": "image", "image": {"id": …}}``,
        also video and document, in the header or a carousel card's) must be an upload that
        has not expired, of the header's kind; else Meta's 131053 "Media upload error". A
        ``link`` is accepted as it is."""
        for param in _header_parameters(components):
            kind = param.get("type")
            holder = param.get(kind) if kind in HEADER_KINDS else None
            if not isinstance(holder, dict) or not holder.get("id"):
                continue
            media = self.live_media(str(holder["id"]))
            if media is None:
                raise wire.MetaError(
                    131053,
                    f"Media id {holder['id']} is unknown or has expired: an uploaded media id "
                    "is usable for 30 days.",
                )
            if not media.mime_type.startswith(HEADER_KINDS[kind]):
                raise wire.MetaError(
                    131053, f"Media id {media.id} is {media.mime_type}, not a(n) {kind}."
                )


async def _read_upload(request: web.Request) -> dict[str, bytes]:
    """The multipart form's parts by name, reading no part past the largest size Meta
    accepts (one byte more, so an oversized file is known to be one)."""
    if not request.content_type.startswith("multipart/"):
        raise wire.MetaError(100, f"The request must be multipart/form-data with {UPLOAD_FIELDS}.")
    parts: dict[str, bytes] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > LARGEST:
                break
        if part.name:
            parts.setdefault(part.name, bytes(data))
    return parts


def _header_parameters(components: tuple) -> list[dict]:
    """The parameters of a template send's header and of its carousel cards' headers."""
    headers = [c for c in components if c.get("type") == "header"]
    for carousel in (c for c in components if c.get("type") == "carousel"):
        for card in carousel.get("cards") or []:
            if isinstance(card, dict):
                cards = [c for c in card.get("components") or [] if isinstance(c, dict)]
                headers += [c for c in cards if c.get("type") == "header"]
    return [p for h in headers for p in h.get("parameters") or [] if isinstance(p, dict)]

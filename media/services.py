"""Media for template headers: upload a file, check what a send names, resolve it at submit.

The life of a file::

    POST /api/v1/media ──▶ media_upload: checked (size, type, content), uploaded through
                           the sender, kept with the provider's id and its expiry (30 days)
    POST /api/v1/messages  {"image": {"media_id": <the file's id>}}
                       ──▶ media_check_components (intake): the tenant's file, of that kind
    drain, submit thread ──▶ media_resolve_payload: the provider's id instead — uploaded
                           again first when it is missing or expires within
                           WAYPOST_MEDIA_REFRESH_MARGIN

* **One upload per file at a time.** An upload at submit runs under the file's row lock
  (``SELECT … FOR UPDATE``), in a transaction of its own, in the submit thread — never inside
  the drain's claim transaction. Concurrent sends of the same file wait for the lock and find
  the new id; a second upload never happens.
* **A media id belongs to the number it was uploaded through** (its app). A message that
  leaves from another number than the one its file was uploaded through gets the same file's
  asset for that number (created once, with the bytes, and uploaded).
* **Each process remembers the ids it has resolved** (:data:`_RESOLVED`) for a minute
  (:data:`REMEMBER_SECONDS`), never past the margin before their expiry, so a campaign of
  thousands of messages naming one image reads the database about once a minute per process,
  not once per message, and a submit thread rarely opens a connection at all. A file deleted
  meanwhile is refused within that minute.
* **Failures at submit** are :class:`MediaUnavailable`, with the message's own error code:
  ``media_upload_failed`` (uploading again failed: the send is retried with backoff) or
  ``media_not_found`` (the file was deleted after the message was accepted: refused).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import time
import unicodedata
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from core.db import retry_transient
from core.errors import PayloadTooLarge, UpstreamError, ValidationFailed, WaypostError
from media.models import MediaAsset
from media.references import Reference, references, substituted
from tenants.models import MissingCredential, SenderNumber, Tenant
from tenants.selectors import sender_default
from whatsapp import ErrorClass, ProviderError, get_provider
from whatsapp.media import HEADER_MEDIA, MEDIA_ID_LIFETIME, header_media_for, upload_media

_MB = 1024 * 1024


class MediaTooLarge(PayloadTooLarge):
    code = "media_too_large"


class MediaTypeNotSupported(ValidationFailed):
    """The file is of a type no template header takes, or its content is not the type it
    claims (``media_content_mismatch``)."""

    code = "media_type_not_supported"
    status = 415


class MediaUnavailable(Exception):
    """A send's media could not be given a fresh provider id. ``code`` is the message's own
    error code (``messaging.states.OWN_ERRORS``): ``media_upload_failed`` or
    ``media_not_found``."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


# ==================================================================================================
# upload (POST /api/v1/media)
# ==================================================================================================


def media_upload(
    *, tenant: Tenant, file: UploadedFile | None, sender: str | None = None
) -> tuple[MediaAsset, bool]:
    """Keep ``file`` and upload it to the provider through ``sender`` (a phone number id of
    the tenant's; default: the tenant's default sender). Returns the asset and whether it is
    new: the same file through the same sender again is the same asset, uploaded again only
    when its id would expire within the margin.

    Refused before anything is stored or sent: no file (``media_missing``), an empty one
    (``media_empty``), more than ``WAYPOST_MEDIA_MAX_BYTES`` or than the provider takes for
    its kind (``media_too_large``, 413), a type no template header takes
    (``media_type_not_supported``, 415) or content that is not its type
    (``media_content_mismatch``, 415), an unknown sender (``sender_not_found``). The
    provider's refusal is ``media_refused`` (400), its outage ``provider_unavailable`` (503),
    a credential it refuses ``provider_refused`` (502)."""
    if file is None:
        raise ValidationFailed(
            "Send the file as the multipart field 'file'.",
            code="media_missing",
            details=[{"field": "file", "code": "required"}],
        )
    number = _sender(tenant, sender)
    limit = settings.WAYPOST_MEDIA_MAX_BYTES
    if file.size is not None and file.size > limit:
        raise _too_large(file.size, limit, "this deployment (WAYPOST_MEDIA_MAX_BYTES)")
    content = file.read(limit + 1)
    if len(content) > limit:
        raise _too_large(len(content), limit, "this deployment (WAYPOST_MEDIA_MAX_BYTES)")
    if not content:
        raise ValidationFailed(
            "The file is empty.", code="media_empty", details=[{"field": "file", "code": "empty"}]
        )
    filename = clean_filename(file.name)
    content_type = media_content_type(file.content_type, filename, content)
    kind = header_media_for(content_type)
    if len(content) > kind.max_bytes:
        raise _too_large(len(content), kind.max_bytes, f"the provider for a {kind.parameter_type}")
    digest = hashlib.sha256(content).hexdigest()
    existing = _asset(tenant_id=tenant.pk, sender=number, sha256=digest)
    if existing is not None:
        return _refresh_or_refuse(existing), False
    started = timezone.now()
    provider_id = _upload_or_refuse(number, content, filename, content_type)
    try:
        with transaction.atomic():
            asset = MediaAsset.objects.create(
                tenant=tenant,
                sender=number,
                file=content,
                filename=filename,
                content_type=content_type,
                size=len(content),
                sha256=digest,
                provider_media_id=provider_id,
                uploaded_at=started,
                expires_at=started + MEDIA_ID_LIFETIME,
            )
    except IntegrityError:  # the same file, posted at the same moment by another request
        return MediaAsset.objects.defer("file").get(
            tenant=tenant, sender=number, sha256=digest
        ), False
    return asset, True


def _sender(tenant: Tenant, phone_number_id: str | None) -> SenderNumber:
    if not phone_number_id:
        number = sender_default(tenant=tenant)
        if number is None:
            raise ValidationFailed("This tenant has no sender number.", code="no_sender")
        return number
    number = (
        SenderNumber.objects.filter(tenant=tenant, phone_number_id=phone_number_id)
        .select_related("tenant")
        .first()
    )
    if number is None:
        raise ValidationFailed(
            f"No sender with phone number id {phone_number_id!r} for this tenant.",
            code="sender_not_found",
            details=[{"field": "sender", "code": "not_found"}],
        )
    return number


def _asset(*, tenant_id, sender: SenderNumber, sha256: str) -> MediaAsset | None:
    return (
        MediaAsset.objects.defer("file")
        .filter(tenant_id=tenant_id, sender=sender, sha256=sha256)
        .first()
    )


def _too_large(size: int, limit: int, whose: str) -> MediaTooLarge:
    return MediaTooLarge(
        f"The file is {_megabytes(size)}; {whose} takes at most {_megabytes(limit)}.",
        details=[{"field": "file", "code": "too_large", "size": size, "max_bytes": limit}],
    )


def _megabytes(size: int) -> str:
    return f"{size / _MB:.1f} MB" if size >= _MB / 10 else f"{size} bytes"


def clean_filename(name: str | None) -> str:
    """The name a file is kept and uploaded under: its last path segment, without control
    characters, at most 255 characters (``file`` when nothing is left)."""
    base = os.path.basename((name or "").replace("\\", "/"))
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    if len(base) > 255:
        stem, dot, extension = base.rpartition(".")
        keep = extension[:16] if dot and stem else ""
        base = (stem if keep else base)[: 255 - len(keep) - len(dot)] + (dot + keep if keep else "")
    return base or "file"


# --- the type: what a template header takes, and what the content is ------------------------------

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Office 97-2003 (doc, xls, ppt)
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (_OLE, "application/msword"),
    (b"PK\x03\x04", "application/zip"),
)
# What each accepted type's content must look like (the sniffed type, or a family of them).
_CONTENT: dict[str, set[str]] = {
    "image/jpeg": {"image/jpeg"},
    "image/png": {"image/png"},
    "video/mp4": {"video/mp4", "video/3gpp"},
    "video/3gpp": {"video/mp4", "video/3gpp"},
    "application/pdf": {"application/pdf"},
    "application/msword": {"application/msword"},
    "application/vnd.ms-excel": {"application/msword"},
    "application/vnd.ms-powerpoint": {"application/msword"},
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {"application/zip"},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"application/zip"},
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": {
        "application/zip"
    },
    "text/plain": {"text/plain"},
}


def _sniff(content: bytes) -> str:
    """What the first bytes say the content is ("" when they say nothing)."""
    for signature, kind in _SIGNATURES:
        if content.startswith(signature):
            return kind
    if content[4:8] == b"ftyp":  # ISO base media: the brand tells 3GPP from MP4
        return "video/3gpp" if content[8:11] == b"3gp" else "video/mp4"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" not in content[:8192]:
        try:
            content[:8192].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < 8188:  # not merely a character cut at the 8 KiB boundary
                return ""
        return "text/plain"
    return ""


def media_content_type(declared: str | None, filename: str, content: bytes) -> str:
    """The file's content type: the one declared with it (else guessed from its name, else
    from its content), which must be one a template header takes and match the content's
    first bytes. Raises :class:`MediaTypeNotSupported` (415)."""
    given = (declared or "").split(";")[0].strip().lower()
    if given in ("", "application/octet-stream"):
        given = (mimetypes.guess_type(filename)[0] or "").lower()
    sniffed = _sniff(content)
    given = given or sniffed
    if header_media_for(given) is None:
        accepted = "; ".join(
            f"{kind} ({', '.join(sorted(media.content_types))})"
            for kind, media in HEADER_MEDIA.items()
        )
        raise MediaTypeNotSupported(
            f"A template header takes no {given or 'file of unknown type'}. It takes: {accepted}.",
            details=[{"field": "file", "code": "type_not_supported", "content_type": given}],
        )
    if sniffed not in _CONTENT[given]:
        raise MediaTypeNotSupported(
            f"The file's content is not {given}"
            + (f" (it looks like {sniffed})." if sniffed else "."),
            code="media_content_mismatch",
            details=[{"field": "file", "code": "content_mismatch", "content_type": given}],
        )
    return given


# --- the provider, for the API ----------------------------------------------------------------


def _upload_or_refuse(sender: SenderNumber, content: bytes, filename: str, kind: str) -> str:
    try:
        return upload_media(
            get_provider(sender.provider),
            credential=sender.credential(),
            phone_number_id=sender.phone_number_id,
            content=content,
            filename=filename,
            content_type=kind,
        )
    except (ProviderError, MissingCredential) as exc:
        raise _refusal(sender, exc) from exc


def _refresh_or_refuse(asset: MediaAsset) -> MediaAsset:
    try:
        return _refresh(asset.pk)
    except (ProviderError, MissingCredential) as exc:
        raise _refusal(asset.sender, exc) from exc


def _refusal(sender: SenderNumber, exc: ProviderError | MissingCredential) -> WaypostError:
    """What a failed upload means for the API's caller: the provider is away (503, retry), an
    operator must act (502), or the provider refused this file (400)."""
    if isinstance(exc, MissingCredential):
        return UpstreamError(
            f"The file was not uploaded: {exc}",
            code="provider_credential_missing",
            unavailable=False,
        )
    kind = (
        ErrorClass.AMBIGUOUS
        if exc.status is None
        else get_provider(sender.provider).classify(exc.code, exc.status).error_class
    )
    if kind in (ErrorClass.AMBIGUOUS, ErrorClass.RETRY_BACKOFF, ErrorClass.COOL_DOWN):
        return UpstreamError(
            f"The file was not uploaded: {exc}", code="provider_unavailable", unavailable=True
        )
    if kind == ErrorClass.ALERT_TENANT:
        return UpstreamError(
            f"The provider refused the sender's credential: {exc}",
            code="provider_refused",
            unavailable=False,
        )
    code = f" ({exc.code})" if exc.code else ""
    return ValidationFailed(
        f"The provider refused the file{code}: {exc}",
        code="media_refused",
        details=[{"field": "file", "code": "refused", "provider_code": exc.code}],
    )


# ==================================================================================================
# the upload again, under the row lock
# ==================================================================================================


def _refresh(asset_id) -> MediaAsset:
    """The asset with a provider id usable beyond the margin: as it is, or uploaded again.
    The upload runs under the row's lock, in a transaction of its own (so one upload per file
    at a time; never call this inside another transaction). A failure is recorded on the
    asset (``upload_error``) and raised: ``ProviderError`` or ``MissingCredential``."""
    failure: Exception | None = None
    with transaction.atomic():
        asset = (
            MediaAsset.objects.select_for_update(of=("self",))
            .select_related("sender__tenant")
            .get(pk=asset_id)
        )
        if _usable(asset, timezone.now()):
            return asset  # fresh, or uploaded by whoever held the lock before us
        started = timezone.now()
        try:
            provider_id = upload_media(
                get_provider(asset.sender.provider),
                credential=asset.sender.credential(),
                phone_number_id=asset.sender.phone_number_id,
                content=bytes(asset.file),
                filename=asset.filename,
                content_type=asset.content_type,
            )
        except (ProviderError, MissingCredential) as exc:
            failure = exc
            asset.upload_error = f"{started:%Y-%m-%d %H:%M:%S} UTC: {exc}"[:500]
            asset.save(update_fields=["upload_error"])
        else:
            asset.provider_media_id = provider_id
            asset.uploaded_at = started
            asset.expires_at = started + MEDIA_ID_LIFETIME
            asset.upload_error = ""
            asset.save(
                update_fields=["provider_media_id", "uploaded_at", "expires_at", "upload_error"]
            )
    if failure is not None:
        raise failure
    return asset


def refresh_margin() -> timedelta:
    return timedelta(seconds=settings.WAYPOST_MEDIA_REFRESH_MARGIN)


def _usable(asset: MediaAsset, now: datetime) -> bool:
    until = asset.usable_until(refresh_margin())
    return until is not None and until > now


# ==================================================================================================
# sends: check at intake, resolve at submit
# ==================================================================================================


def media_check_components(
    *, tenant: Tenant, components, field: str = "template.components"
) -> None:
    """Every Waypost ``media_id`` in a send's ``components`` names a file of ``tenant``'s, of
    the kind its parameter says (an ``image`` parameter, an image). Raises
    ``ValidationFailed`` — ``media_not_found`` (another tenant's file is not found either) or
    ``media_type_mismatch`` — naming the parameter (``field`` + its path). One query."""
    named = list(references(components))
    if not named:
        return
    ids = {ref.uuid for ref in named if ref.uuid is not None}
    found = {
        asset.pk: asset
        for asset in MediaAsset.objects.filter(tenant=tenant, pk__in=ids).only("id", "content_type")
    }
    for ref in named:
        asset = found.get(ref.uuid)
        where = f"{field}{ref.path}.media_id"
        if asset is None:
            raise ValidationFailed(
                f"No media {ref.media_id!r} for this tenant: upload the file with "
                "POST /api/v1/media and name the id it answers.",
                code="media_not_found",
                details=[{"field": where, "code": "not_found"}],
            )
        if asset.kind != ref.type:
            raise ValidationFailed(
                f"Media {ref.media_id} is {asset.content_type}, not a(n) {ref.type}.",
                code="media_type_mismatch",
                details=[{"field": where, "code": "type_mismatch", "expected": ref.type}],
            )


#: (Waypost media id as named, sender id) → (provider media id, its expiry, when it was read:
#: ``time.monotonic()``), per process.
_RESOLVED: dict[tuple[str, str], tuple[str, datetime, float]] = {}
_RESOLVED_MAX = 10_000
#: How long a process uses an id it read without reading it again.
REMEMBER_SECONDS = 60.0


def media_resolve_payload(*, sender: SenderNumber, payload: dict) -> dict:
    """``payload`` (a send's body, as built) with each Waypost ``media_id`` replaced by the
    provider's ``id`` for ``sender`` — uploaded again first when it is missing or expires
    within ``WAYPOST_MEDIA_REFRESH_MARGIN``. The same object when it names no Waypost media
    (no database access then). Runs in the submit threads, outside any transaction. Raises
    :class:`MediaUnavailable`."""
    named = list(references(payload))
    if not named:
        return payload
    provider_ids: dict[str, str] = {}
    for ref in named:
        if ref.media_id not in provider_ids:
            provider_ids[ref.media_id] = _provider_id(ref, sender)
    return substituted(payload, provider_ids)


def _provider_id(ref: Reference, sender: SenderNumber) -> str:
    key = (ref.media_id, str(sender.pk))
    known = _RESOLVED.get(key)
    if (
        known is not None
        and time.monotonic() - known[2] < REMEMBER_SECONDS
        and known[1] - refresh_margin() > timezone.now()
    ):
        return known[0]
    try:
        return _provider_id_stored(ref, sender, key)
    except DatabaseError as exc:  # past retry_transient's patience: nothing was sent, retry
        raise MediaUnavailable(
            f"the media file {ref.media_id} could not be read ({type(exc).__name__})",
            code="media_upload_failed",
        ) from exc


def _provider_id_stored(ref: Reference, sender: SenderNumber, key: tuple[str, str]) -> str:
    asset = (
        retry_transient(lambda: _asset_for(ref.uuid, sender), what="media lookup")
        if ref.uuid is not None
        else None
    )
    if asset is None:
        raise MediaUnavailable(
            f"media {ref.media_id} no longer exists (deleted after the message was accepted)",
            code="media_not_found",
        )
    if not _usable(asset, timezone.now()):
        try:
            asset = retry_transient(lambda: _refresh(asset.pk), what="media upload")
        except (ProviderError, MissingCredential) as exc:
            raise MediaUnavailable(
                f"uploading {asset.filename} to the provider again failed: {exc}",
                code="media_upload_failed",
            ) from exc
    if len(_RESOLVED) >= _RESOLVED_MAX:
        _RESOLVED.clear()
    _RESOLVED[key] = (asset.provider_media_id, asset.expires_at, time.monotonic())
    return asset.provider_media_id


def _asset_for(asset_id, sender: SenderNumber) -> MediaAsset | None:
    """The file ``asset_id`` names, as uploaded through ``sender``: itself, or — when it was
    uploaded through another of the tenant's numbers — that file's asset for ``sender``
    (created with its bytes, not yet uploaded). None when the tenant has no such file."""
    asset = MediaAsset.objects.defer("file").filter(pk=asset_id, tenant_id=sender.tenant_id).first()
    if asset is None or asset.sender_id == sender.pk:
        return asset
    sibling = _asset(tenant_id=sender.tenant_id, sender=sender, sha256=asset.sha256)
    if sibling is not None:
        return sibling
    source = MediaAsset.objects.get(pk=asset.pk)
    try:
        with transaction.atomic():
            return MediaAsset.objects.create(
                tenant_id=sender.tenant_id,
                sender=sender,
                file=bytes(source.file),
                filename=source.filename,
                content_type=source.content_type,
                size=source.size,
                sha256=source.sha256,
            )
    except IntegrityError:  # another thread made it first
        return _asset(tenant_id=sender.tenant_id, sender=sender, sha256=asset.sha256)

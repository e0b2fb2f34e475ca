"""Reads of a tenant's media files (never their bytes: they stay in the database)."""

from __future__ import annotations

from core.errors import NotFound
from media.models import MediaAsset
from tenants.models import Tenant


def media_get(*, tenant: Tenant, media_id) -> MediaAsset:
    """One of ``tenant``'s files, without its bytes; another tenant's is not found."""
    asset = (
        MediaAsset.objects.defer("file")
        .select_related("sender")
        .filter(tenant=tenant, pk=media_id)
        .first()
    )
    if asset is None:
        raise NotFound("No such media.", code="media_not_found")
    return asset

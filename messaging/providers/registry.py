"""Providers by slug (a sender's ``provider``). One instance, and so one pooled HTTP session,
per slug per process."""

from functools import cache

from django.conf import settings

from messaging.providers.base import Provider
from messaging.providers.dialog360 import Dialog360Provider
from messaging.providers.meta_cloud import MetaCloudProvider


@cache
def get_provider(slug: str) -> Provider:
    common = {
        "graph_version": settings.WHATSAPP_GRAPH_VERSION,
        "connect_timeout": settings.WAYPOST_PROVIDER_CONNECT_TIMEOUT,
        "read_timeout": settings.WAYPOST_PROVIDER_READ_TIMEOUT,
    }
    if slug == "meta":
        return MetaCloudProvider(base_url=settings.WHATSAPP_GRAPH_URL, **common)
    if slug == "sandbox":
        return MetaCloudProvider(base_url=settings.SANDBOX_URL, **common)
    if slug == "360dialog":
        return Dialog360Provider(base_url=settings.DIALOG360_BASE_URL, **common)
    raise KeyError(f"unknown provider {slug!r}")

"""The providers Waypost can send through: the ``Provider`` enum (what a sender's ``provider``
field holds) and the one mapping from it to a provider class. Nothing else branches on a
provider's name. One instance — so one pooled HTTP session — per provider per process."""

from __future__ import annotations

from enum import StrEnum
from functools import cache

from django.conf import settings

from whatsapp.base import BaseProvider
from whatsapp.dialog360 import Dialog360Provider
from whatsapp.errors import ErrorInfo
from whatsapp.meta import MetaCloudProvider, SandboxProvider


class Provider(StrEnum):
    META = "meta"
    DIALOG360 = "360dialog"
    SANDBOX = "sandbox"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    Provider.META: "Meta Cloud API",
    Provider.DIALOG360: "360dialog",
    Provider.SANDBOX: "Waypost sandbox",
}

PROVIDERS: dict[str, type[BaseProvider]] = {
    Provider.META: MetaCloudProvider,
    Provider.DIALOG360: Dialog360Provider,
    Provider.SANDBOX: SandboxProvider,
}

#: For a model field's ``choices``.
PROVIDER_CHOICES = [(provider.value, provider.label) for provider in Provider]


def provider_class(slug: str) -> type[BaseProvider]:
    try:
        return PROVIDERS[slug]
    except KeyError:
        raise KeyError(f"unknown provider {slug!r}") from None


def error_info(code: int | str | None, *, provider: str = Provider.META) -> ErrorInfo | None:
    """What an error code stored on a message means — title, meaning, who must act, class —
    in ``provider``'s table (every provider Waypost ships speaks Meta's codes), or for a reason
    stored without a code (``not_sent``, ``no_response``, ``http_<status>``). None for a code
    nobody defines (the pipeline's own, such as ``expired``). No settings, no instance."""
    return provider_class(provider).error_info(code)


@cache
def get_provider(slug: str) -> BaseProvider:
    """The configured instance for ``slug`` (base URL from the class's setting, the Graph API
    version and timeouts from Waypost's settings)."""
    cls = provider_class(slug)
    provider = cls(
        base_url=getattr(settings, cls.base_url_setting),
        graph_version=settings.WHATSAPP_GRAPH_VERSION,
        connect_timeout=settings.WAYPOST_PROVIDER_CONNECT_TIMEOUT,
        read_timeout=settings.WAYPOST_PROVIDER_READ_TIMEOUT,
    )
    provider.slug = slug
    return provider

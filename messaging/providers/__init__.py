"""Provider adapters: translate Waypost's canonical payloads to each provider's wire format.

A leaf package: it imports no models and no app code (callers hand it credentials and ids), so
both ``messaging`` (sends) and ``templates_registry`` (template submission) may use it.
``base`` owns the HTTP session, timeouts, the request sequence and the mapping of transport
failures; ``meta_cloud`` and ``dialog360`` only say where and how to send. The sandbox is
reached through ``meta_cloud`` pointed at ``SANDBOX_URL``: no special code path.
"""

from messaging.providers.base import (
    ParsedResponse,
    Provider,
    ProviderError,
    SubmitOutcome,
    SubmitResult,
)
from messaging.providers.registry import get_provider

__all__ = [
    "ParsedResponse",
    "Provider",
    "ProviderError",
    "SubmitOutcome",
    "SubmitResult",
    "get_provider",
]

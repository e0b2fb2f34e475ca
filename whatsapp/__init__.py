"""Everything Waypost knows about the providers' wire formats, in one leaf package.

Layout (django-anymail's shape: a thick base owns the sequences, each provider only translates)::

    whatsapp/
      errors.py    ErrorClass, Classification, ErrorInfo, WhoActs, Policy, ProviderError —
                   what an error means for the next step and for the people who read it
      meta_errors.py  Meta's error codes, one table: title, meaning, who acts, classification
      reports.py   the normalised facts a provider reports (statuses, inbound, templates…)
      base.py      BaseProvider: the pooled session and the sequences — build → post → parse
                   → classify for sends; request → parse for template management; verify →
                   parse for webhooks — and what a transport failure says about delivery
      meta.py      Meta's Cloud API (and the sandbox, which speaks it): send payloads, URLs,
                   error shape and code table, X-Hub-Signature-256, the webhook envelope
      dialog360.py 360dialog: its header, paths, own error shape and signature; Meta's
                   payloads, codes and envelope otherwise
      media.py     the media upload for template headers (the messages endpoint's sibling),
                   what a header takes, an uploaded id's 30 days
      registry.py  the ``Provider`` enum and the one mapping from it to a provider class

Rules:

* A leaf: no models (Django's choices enums only), no Django app, no import of any Waypost
  package. Only ``registry`` reads ``django.conf.settings`` (base URLs, timeouts). Callers
  hand in credentials and ids.
* Nothing outside this package builds a request body, reads a response body or a webhook
  body, or branches on a provider's name: they call a provider from :func:`get_provider`.
* Adding a provider is one module (a :class:`BaseProvider` subclass) and one line in
  ``registry.PROVIDERS``; ``tests/whatsapp/test_contract.py`` is the suite every provider passes.
"""

from whatsapp.base import (
    BaseProvider,
    OutboundMessage,
    SendAnswer,
    SubmitOutcome,
    SubmitResult,
)
from whatsapp.errors import (
    Classification,
    CoolDownScope,
    ErrorClass,
    ErrorInfo,
    Policy,
    ProviderError,
    WhoActs,
)
from whatsapp.registry import (
    PROVIDER_CHOICES,
    Provider,
    error_info,
    get_provider,
    provider_class,
)

__all__ = [
    "PROVIDER_CHOICES",
    "BaseProvider",
    "Classification",
    "CoolDownScope",
    "ErrorClass",
    "ErrorInfo",
    "OutboundMessage",
    "Policy",
    "Provider",
    "ProviderError",
    "SendAnswer",
    "SubmitOutcome",
    "SubmitResult",
    "WhoActs",
    "error_info",
    "get_provider",
    "provider_class",
]

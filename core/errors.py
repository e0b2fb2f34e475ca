"""One error hierarchy for the domain.

Services raise these; the API layer renders every one of them in the single error shape
``{"error": {"code": ..., "message": ..., "details": [...]}}`` (see ``core.api``). ``code`` is
stable and machine-readable; ``message`` is for humans and may change.
"""

from __future__ import annotations

from typing import Any


class WaypostError(Exception):
    """Base class: a refusal the caller can act on. A 4xx at the API — except
    :class:`UpstreamError`, which says the fault is not the caller's."""

    code = "error"
    status = 400
    default_message = "The request could not be processed."
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details or []
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationFailed(WaypostError):
    code = "validation_error"
    default_message = "The request is not valid."


class PayloadTooLarge(ValidationFailed):
    """A body (an upload) larger than the endpoint takes: 413."""

    code = "payload_too_large"
    status = 413


class NotFound(WaypostError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class Conflict(WaypostError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."


class UpstreamError(WaypostError):
    """The provider (Meta, 360dialog) could not do what was asked: not the caller's fault.

    ``unavailable=True`` (no answer, a timeout, a 5xx): 503 with ``Retry-After`` — try again
    later. Otherwise the provider refused (credentials, permissions, a missing credential
    variable): 502 — an operator must act first."""

    def __init__(self, message: str, *, code: str, unavailable: bool, retry_after: int = 30):
        super().__init__(message, code=code)
        self.status = 503 if unavailable else 502
        self.retry_after = retry_after if unavailable else None


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    """The one error shape of every answer under ``/api/`` and ``/webhooks/``."""
    return {"error": {"code": code, "message": message, "details": details or []}}

"""The provider base class: one pooled HTTP session, timeouts, the send sequence, and the
mapping of what went wrong on the wire to *whether the request may have reached the provider*.

That last point is what makes retries safe. Meta has no idempotency key (docs/meta-api.md
§1.6), so:

* ``not_sent``  — the connection was never made (refused, connect timeout): safe to retry;
* ``ambiguous`` — the request may have been received (read timeout, connection dropped after
  sending): never resend blindly;
* ``response``  — an HTTP answer, to be parsed and classified by the caller.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError


class SubmitOutcome(StrEnum):
    RESPONSE = "response"
    NOT_SENT = "not_sent"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class SubmitResult:
    outcome: SubmitOutcome
    http_status: int | None = None
    body: Any = None
    error: str = ""
    elapsed_ms: int = 0

    def as_detail(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ParsedResponse:
    """A provider answer in Meta's terms."""

    wamid: str = ""
    message_status: str = ""
    error_code: int | None = None
    error_title: str = ""
    error_details: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A management call (template create, list) failed; ``code`` is Meta's when known."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class Provider:
    slug = "base"

    def __init__(
        self,
        *,
        base_url: str,
        graph_version: str,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        pool_size: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.graph_version = graph_version
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # --- what subclasses translate -----------------------------------------------------------

    def message_request(self, *, credential: str, phone_number_id: str) -> tuple[str, dict]:
        """(url, headers) for a send."""
        raise NotImplementedError

    def templates_request(self, *, credential: str, waba_id: str) -> tuple[str, dict]:
        """(url, headers) for the template collection."""
        raise NotImplementedError

    def template_request(self, *, credential: str, template_id: str) -> tuple[str, dict]:
        """(url, headers) for one template (its edit endpoint)."""
        raise ProviderError(f"{self.slug} does not support editing templates", status=400)

    def parse_error(self, http_status: int, body: Any) -> ParsedResponse:
        """Meta's error shape (§1.5); subclasses add their own."""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return ParsedResponse(
                error_code=_int(error.get("code")),
                error_title=str(error.get("message", "")),
                error_details=str((error.get("error_data") or {}).get("details", "")),
                raw=body,
            )
        return ParsedResponse(error_title=f"HTTP {http_status}", raw=_as_dict(body))

    # --- the sequence ----------------------------------------------------------------------------

    def send_message(self, *, credential: str, phone_number_id: str, payload: dict) -> SubmitResult:
        url, headers = self.message_request(credential=credential, phone_number_id=phone_number_id)
        return self._post(url, headers, payload)

    def parse_send(self, result: SubmitResult) -> ParsedResponse:
        """A send's HTTP answer in Meta's terms (§1.3 success, §1.5 error)."""
        body = result.body
        if result.http_status == 200 and isinstance(body, dict) and body.get("messages"):
            message = body["messages"][0]
            return ParsedResponse(
                wamid=str(message.get("id", "")),
                message_status=str(message.get("message_status", "accepted")),
                raw=body,
            )
        return self.parse_error(result.http_status or 0, body)

    def create_template(self, *, credential: str, waba_id: str, definition: dict) -> dict:
        url, headers = self.templates_request(credential=credential, waba_id=waba_id)
        return self._manage(url, headers, definition, what="template submission")

    def edit_template(self, *, credential: str, template_id: str, changes: dict) -> dict:
        """Submit an edit of a template the provider knows (docs/meta-api.md §5.2): Meta
        reviews it again. ``changes`` holds ``components`` and, when it changes, ``category``."""
        url, headers = self.template_request(credential=credential, template_id=template_id)
        return self._manage(url, headers, changes, what="template edit")

    def _manage(self, url: str, headers: dict, body: dict, *, what: str) -> dict:
        """A management POST: the answer's body, or ProviderError (``status`` None when no
        answer came back)."""
        result = self._post(url, headers, body)
        if result.outcome != SubmitOutcome.RESPONSE:
            raise ProviderError(f"{what} failed: {result.error}")
        if result.http_status != 200:
            parsed = self.parse_error(result.http_status, result.body)
            raise ProviderError(
                parsed.error_details or parsed.error_title,
                code=parsed.error_code,
                status=result.http_status,
            )
        return _as_dict(result.body)

    def list_templates(self, *, credential: str, waba_id: str, page_size: int = 100):
        """Every template of the WABA, following Graph cursor paging (§5.5: stop when
        ``paging.next`` is absent, not when a page is short)."""
        url, headers = self.templates_request(credential=credential, waba_id=waba_id)
        params: dict | None = {"limit": page_size}
        while url:
            try:
                response = self.session.get(
                    url, params=params, headers=headers, timeout=self.timeout
                )
                body = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise ProviderError(f"template list failed: {_describe(exc)}") from exc
            if response.status_code != 200:
                parsed = self.parse_error(response.status_code, body)
                raise ProviderError(
                    parsed.error_details or parsed.error_title,
                    code=parsed.error_code,
                    status=response.status_code,
                )
            yield from self.templates_page(body)
            url, params = self.next_page(body), None

    def templates_page(self, body: dict) -> list[dict]:
        return list(body.get("data") or [])

    def next_page(self, body: dict) -> str:
        return str((body.get("paging") or {}).get("next") or "")

    def _post(self, url: str, headers: dict, payload: dict) -> SubmitResult:
        started = time.monotonic()
        try:
            response = self.session.post(url, json=payload, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return SubmitResult(
                outcome=_transport_outcome(exc), error=_describe(exc), elapsed_ms=_ms(started)
            )
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:2000]
        return SubmitResult(
            outcome=SubmitOutcome.RESPONSE,
            http_status=response.status_code,
            body=body,
            elapsed_ms=_ms(started),
        )


def _transport_outcome(exc: requests.RequestException) -> SubmitOutcome:
    """Did the request possibly reach the server? Only a failed connect proves it did not."""
    if isinstance(exc, requests.ConnectTimeout):
        return SubmitOutcome.NOT_SENT
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NewConnectionError | ConnectTimeoutError):
            return SubmitOutcome.NOT_SENT
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return SubmitOutcome.NOT_SENT
    return SubmitOutcome.AMBIGUOUS


def _describe(exc: Exception) -> str:
    # The exception text never contains the credential (headers are not part of it).
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_dict(body: Any) -> dict:
    return body if isinstance(body, dict) else {"text": str(body)[:2000]}

"""The provider base class: it owns every sequence, so a provider module only translates.

* **Send**: ``build_payload`` (translate) → :meth:`BaseProvider.send_message` (post over one
  pooled session) → :meth:`BaseProvider.answer` (``parse_send`` / ``parse_error`` translate,
  ``error_table`` classifies). The payload is built and stored before the send (the pipeline
  commits it before any request leaves), which is why building and posting are two calls.
* **Templates**: ``templates_request`` / ``template_request`` (translate) → create, edit or
  list with :class:`~whatsapp.errors.ProviderError` on any failure.
* **Number health** (the periodic poll): ``number_health_request`` (translate; None where the
  provider has no such request) → :meth:`BaseProvider.number_health` (GET) →
  ``parse_number_health`` (translate), ``ProviderError`` on any failure.
* **Webhooks**: ``verification_challenge`` (the provider's subscription handshake, a GET on its
  route, where it has one) and ``signature_valid`` (translate, constant time) at the door;
  ``parse_webhook`` (translate) later, into :mod:`whatsapp.reports`. The door itself is one
  view per provider on one base (``webhooks.views``), which asks these.

A transport failure is mapped once, here, to *whether the request may have reached the
provider* — what makes retries safe when the provider has no idempotency key:

* ``not_sent``  — the connection was never made (refused, connect timeout): safe to retry;
* ``ambiguous`` — the request may have been received (read timeout, connection dropped after
  sending): never resend blindly;
* ``response``  — an HTTP answer, parsed and classified by :meth:`BaseProvider.answer`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from whatsapp.errors import (
    Classification,
    ErrorClass,
    ErrorInfo,
    ProviderError,
    classify_by_http_status,
    reason_info,
)
from whatsapp.reports import NumberHealth, Parsed, RemoteTemplate


class SubmitOutcome(StrEnum):
    RESPONSE = "response"
    NOT_SENT = "not_sent"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class SubmitResult:
    """Exactly what happened on the wire (stored in the ledger as it is)."""

    outcome: SubmitOutcome
    http_status: int | None = None
    body: Any = None
    error: str = ""
    elapsed_ms: int = 0

    def as_detail(self) -> dict[str, Any]:
        """The ledger's detail: the fields as they are (``body`` not copied: it is stored, not
        changed), the outcome as its string."""
        return {
            "outcome": str(self.outcome),
            "http_status": self.http_status,
            "body": self.body,
            "error": self.error,
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> SubmitResult:
        return cls(
            outcome=SubmitOutcome(detail["outcome"]),
            http_status=detail.get("http_status"),
            body=detail.get("body"),
            error=detail.get("error", ""),
        )


@dataclass(frozen=True)
class OutboundMessage:
    """What to send, in Waypost's terms: a text, or a template with its filled components, to a
    phone number (``recipient``, E.164) or else a business-scoped user id."""

    recipient: str
    callback_data: str
    recipient_user_id: str = ""
    text: str | None = None
    template_name: str = ""
    template_language: str = ""
    components: list = field(default_factory=list)


@dataclass(frozen=True)
class SendAnswer:
    """A send's answer, interpreted: accepted (a wamid), or an error and what it means."""

    wamid: str = ""
    held: bool = False  # accepted, but held by the provider (pacing)
    message_status: str = ""
    wa_id: str = ""  # who the provider says it addressed (phone sends)
    user_id: str = ""  # … or its BSUID (BSUID sends)
    error_code: int | None = None
    error_title: str = ""
    error_details: str = ""
    classification: Classification | None = None
    reason: str = ""  # a stable code when there is no provider code (not_sent, no_response…)

    @property
    def accepted(self) -> bool:
        return bool(self.wamid)

    @property
    def code(self) -> str:
        """The error's code as stored on a message: the provider's, else ``reason``."""
        return str(self.error_code) if self.error_code else self.reason


class BaseProvider:
    #: The ``Provider`` value this class is registered under (set by the registry).
    slug: ClassVar[str] = ""
    #: The setting holding the provider's base URL.
    base_url_setting: ClassVar[str] = ""
    #: The request header carrying a webhook's signature, and the setting with its secret.
    signature_header: ClassVar[str] = ""
    webhook_secret_setting: ClassVar[str] = ""
    #: The setting with the token the provider's subscription handshake presents; "" when the
    #: provider has no handshake (a GET on its webhook route is then refused).
    verify_token_setting: ClassVar[str] = ""
    #: Do webhooks arrive on each sender's own route (a secret token in the URL authenticates
    #: it, a signature is checked too when a secret is configured), so that a delivery may only
    #: speak for that sender? False: one app-wide route, signed, speaking for every number.
    per_sender_webhooks: ClassVar[bool] = False
    #: Does a sender need a credential (token, API key)? The sandbox accepts any.
    credential_required: ClassVar[bool] = True
    #: Has the provider a Marketing Messages Lite endpoint for MARKETING templates?
    supports_marketing_lite: ClassVar[bool] = False
    #: The provider's error codes → what each means: title, meaning, who acts, classification
    #: (codes not in it are classified by HTTP status).
    error_table: ClassVar[Mapping[int, ErrorInfo]] = {}

    def __init__(
        self,
        *,
        base_url: str,
        graph_version: str = "",
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        pool_size: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.graph_version = graph_version
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        # The environment (proxy variables, REQUESTS_CA_BUNDLE) is read once, here, not on
        # every request: with trust_env requests looks for ~/.netrc and stats the CA path per
        # send — 7 % of the worker's time in a batch's submits (bench/NOTES.md, issue 21).
        environment = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self.session.proxies = environment["proxies"]
        self.session.verify, self.session.cert = environment["verify"], environment["cert"]
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # --- what a provider translates ----------------------------------------------------------

    def build_payload(self, message: OutboundMessage) -> dict:
        """The request body of a send."""
        raise NotImplementedError

    def message_request(
        self, *, credential: str, phone_number_id: str, marketing_lite: bool = False
    ) -> tuple[str, dict]:
        """(url, headers) for a send (``marketing_lite``: a MARKETING template through the
        provider's marketing endpoint, where it has one — see ``supports_marketing_lite``)."""
        raise NotImplementedError

    def templates_request(self, *, credential: str, waba_id: str) -> tuple[str, dict]:
        """(url, headers) for the template collection."""
        raise NotImplementedError

    def template_request(self, *, credential: str, template_id: str) -> tuple[str, dict]:
        """(url, headers) for one template (its edit endpoint)."""
        raise ProviderError(f"{self.slug} does not support editing templates", status=400)

    def parse_send(self, http_status: int, body: Any) -> SendAnswer:
        """A send's HTTP answer: accepted with a wamid, or :meth:`parse_error`'s reading."""
        raise NotImplementedError

    def parse_error(self, http_status: int, body: Any) -> SendAnswer:
        """An error answer's code, title and details (not yet classified)."""
        raise NotImplementedError

    def templates_page(self, body: dict) -> list[dict]:
        """The templates of one page of the template list."""
        raise NotImplementedError

    def parse_template(self, item: dict) -> RemoteTemplate:
        """One template as the provider describes it (list item, or a submission's answer)."""
        raise NotImplementedError

    def next_page(self, body: dict) -> str:
        """The next page's URL, or "" at the end."""
        return ""

    def number_health_request(
        self, *, credential: str, phone_number_id: str
    ) -> tuple[str, dict, dict] | None:
        """(url, headers, query) asking for a number's messaging limit and quality rating;
        None when the provider has no such request (the base: none)."""
        return None

    def parse_number_health(self, body: dict) -> NumberHealth:
        """The answer to :meth:`number_health_request`."""
        raise NotImplementedError

    def verification_challenge(self, params: Mapping[str, str], verify_token: str) -> str | None:
        """The provider's subscription handshake: given a GET's query ``params`` and the
        configured ``verify_token``, what to answer (200, as plain text), or None to refuse it.
        Constant time. The base has no handshake: it refuses every one."""
        return None

    def signature_valid(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        """Is ``body`` signed with ``secret``? (Constant time.)"""
        raise NotImplementedError

    def parse_webhook(self, body: bytes) -> Parsed:
        """A webhook body → reports. Never raises: a bad item is an ``ItemError``, a body that
        is not the provider's envelope is ``Parsed(invalid=...)``."""
        raise NotImplementedError

    def webhook_addresses(self, body: bytes) -> tuple[set[str], set[str]] | None:
        """(WABA ids, phone number ids) a webhook body names; None when it is unreadable."""
        raise NotImplementedError

    # --- classification ----------------------------------------------------------------------

    @classmethod
    def code_info(cls, code: int) -> ErrorInfo | None:
        """The provider's entry for one of its codes, or None (a provider with code ranges
        overrides this)."""
        return cls.error_table.get(code)

    @classmethod
    def error_info(cls, code: int | str | None) -> ErrorInfo | None:
        """What an error code as stored on a message means: the provider's code (``131026``)
        or the reason stored when there was none (``not_sent``, ``no_response``,
        ``http_503``). None for a code nobody defines (Waypost's own, such as ``expired``)."""
        text = str(code if code is not None else "").strip()
        if text.isdigit():
            return cls.code_info(int(text))
        return reason_info(text) if text else None

    def classify(self, code: int | None, http_status: int | None) -> Classification:
        info = self.code_info(code) if code is not None else None
        return info.classification if info else classify_by_http_status(http_status)

    def known_error_code(self, code: int | None) -> bool:
        """Is ``code`` one of this provider's listed codes? (Bounded metric labels.)"""
        return code is not None and code in self.error_table

    # --- the send sequence -------------------------------------------------------------------

    def send_message(
        self,
        *,
        credential: str,
        phone_number_id: str,
        payload: dict,
        marketing_lite: bool = False,
    ) -> SubmitResult:
        url, headers = self.message_request(
            credential=credential,
            phone_number_id=phone_number_id,
            marketing_lite=marketing_lite and self.supports_marketing_lite,
        )
        return self._post(url, headers, payload)

    def answer(self, result: SubmitResult) -> SendAnswer:
        """What a send's result means: accepted, or an error with its classification."""
        if result.outcome == SubmitOutcome.NOT_SENT:
            return SendAnswer(
                error_title=result.error,
                classification=Classification(ErrorClass.RETRY_BACKOFF),
                reason="not_sent",
            )
        if result.outcome == SubmitOutcome.AMBIGUOUS:
            return SendAnswer(
                error_title=result.error,
                classification=Classification(ErrorClass.AMBIGUOUS),
                reason="no_response",
            )
        status = result.http_status or 0
        parsed = self.parse_send(status, result.body)
        if parsed.accepted:
            return parsed
        return SendAnswer(
            error_code=parsed.error_code,
            error_title=parsed.error_title,
            error_details=parsed.error_details,
            classification=self.classify(parsed.error_code, status),
            reason=f"http_{status}",
        )

    # --- the template sequences --------------------------------------------------------------

    def create_template(self, *, credential: str, waba_id: str, definition: dict) -> RemoteTemplate:
        """Submit a template (Waypost's definition is Meta's creation JSON); the provider's id
        and review status."""
        url, headers = self.templates_request(credential=credential, waba_id=waba_id)
        answer = self._manage(url, headers, definition, what="template submission")
        return self.parse_template(answer)

    def edit_template(self, *, credential: str, template_id: str, changes: dict) -> dict:
        """Submit an edit of a template the provider knows: it is reviewed again. ``changes``
        holds ``components`` and, when it changes, ``category``."""
        url, headers = self.template_request(credential=credential, template_id=template_id)
        return self._manage(url, headers, changes, what="template edit")

    def list_templates(
        self, *, credential: str, waba_id: str, page_size: int = 100
    ) -> Iterator[RemoteTemplate]:
        """Every template of the WABA, page after page until ``next_page`` says the end
        (not when a page is short)."""
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
                raise self._management_error(response.status_code, body)
            yield from (self.parse_template(item) for item in self.templates_page(body))
            url, params = self.next_page(body), None

    # --- the number health sequence -----------------------------------------------------------

    def number_health(self, *, credential: str, phone_number_id: str) -> NumberHealth | None:
        """The number's portfolio messaging limit and its quality rating, as the provider
        answers now; None when the provider cannot be asked. Any failure — transport, an
        error answer, a body that is not JSON — is a :class:`ProviderError` (the poll logs it
        and asks again next time)."""
        request = self.number_health_request(credential=credential, phone_number_id=phone_number_id)
        if request is None:
            return None
        url, headers, params = request
        try:
            response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderError(f"number health request failed: {_describe(exc)}") from exc
        if response.status_code != 200:
            raise self._management_error(response.status_code, body)
        return self.parse_number_health(as_dict(body))

    def _manage(self, url: str, headers: dict, body: dict, *, what: str) -> dict:
        result = self._post(url, headers, body)
        if result.outcome != SubmitOutcome.RESPONSE:
            raise ProviderError(f"{what} failed: {result.error}")
        if result.http_status != 200:
            raise self._management_error(result.http_status or 0, result.body)
        return as_dict(result.body)

    def _management_error(self, http_status: int, body: Any) -> ProviderError:
        parsed = self.parse_error(http_status, body)
        return ProviderError(
            parsed.error_details or parsed.error_title,
            code=parsed.error_code,
            status=http_status,
        )

    # --- the wire ----------------------------------------------------------------------------

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
    if isinstance(exc, NEVER_LEFT):
        return SubmitOutcome.NOT_SENT
    return SubmitOutcome.AMBIGUOUS


# Refused while the request was being prepared: nothing left this process.
NEVER_LEFT = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)

# What a failed request is recorded as — in the ledger, a message's error, a template's
# submission error, an API answer: the exception's class and one of these fixed sentences,
# never the exception's text. That text can quote a request header (requests' InvalidHeader
# quotes the value: ``Bearer <token>``) or a URL. First match wins (subclasses first).
TRANSPORT_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (requests.exceptions.InvalidHeader, "a request header was refused before sending"),
    (requests.ConnectTimeout, "connecting to the provider timed out"),
    (requests.ReadTimeout, "the provider did not answer in time"),
    (requests.exceptions.SSLError, "the TLS connection to the provider failed"),
    (requests.exceptions.ProxyError, "the proxy failed the connection"),
    (requests.ConnectionError, "the connection to the provider failed"),
    (requests.exceptions.ChunkedEncodingError, "the provider's answer was cut off"),
    (requests.exceptions.ContentDecodingError, "the provider's answer could not be decoded"),
    (requests.exceptions.TooManyRedirects, "the provider redirected too many times"),
    (requests.exceptions.InvalidURL, "the URL is invalid"),
    (requests.exceptions.MissingSchema, "the URL is invalid"),
    (requests.exceptions.InvalidSchema, "the URL is invalid"),
    (requests.RequestException, "the request failed"),
    (ValueError, "the provider's answer is not JSON"),
)


def _describe(exc: Exception) -> str:
    """``<class> (<cause class>): <fixed sentence>`` for a failed request (see
    :data:`TRANSPORT_FAILURES`); the cause is urllib3's reason (``NewConnectionError``,
    ``NameResolutionError``…) when there is one — a class name carries no text."""
    sentence = next(
        (text for kind, text in TRANSPORT_FAILURES if isinstance(exc, kind)), "the request failed"
    )
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    cause = f" ({type(reason).__name__})" if isinstance(reason, Exception) else ""
    return f"{type(exc).__name__}{cause}: {sentence}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_dict(body: Any) -> dict:
    return body if isinstance(body, dict) else {"text": str(body)[:2000]}

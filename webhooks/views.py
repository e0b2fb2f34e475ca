"""Webhook endpoints: one view per provider's route, on one base that owns the sequence —
validate, store, answer (django-anymail's ``webhooks/base.py``).

* :class:`WebhookView` — a POST runs every ``validate_request`` of the view's classes, the
  base's first (each passes, or raises a :class:`Refusal` carrying the answer), then stores the
  raw delivery with one INSERT and answers 200 at once: processing is nudged, never awaited. A
  GET is the provider's subscription handshake (``BaseProvider.verification_challenge``),
  answered only on the route of a provider that has one; elsewhere a GET is a 405 (JSON, with
  ``Allow``), like any other method.
* :class:`SignedWebhookView` — a provider's app-wide route: every delivery is signed with the
  app's secret and may speak for every number.
* :class:`SenderRouteWebhookView` — a route per sender: the secret token in the path says which
  sender posted, and a delivery may speak only for that sender.
* One small subclass per provider's route names its provider (``webhooks.urls``; the paths are
  what Meta and 360dialog are configured with, never changed). Whatever differs between
  providers — the handshake, the signature, the numbers a body names — is asked of the provider
  (``whatsapp``), never branched on here.

======================================  ===========================  ===========================
Route                                   View                         Authenticated by
======================================  ===========================  ===========================
``GET  /webhooks/whatsapp``             :class:`MetaWebhookView`     the verify token (§4.1)
``POST /webhooks/whatsapp``             :class:`MetaWebhookView`     the app secret's signature
                                                                     (§4.2)
``POST /webhooks/360dialog/<token>``    :class:`Dialog360…View`      the route's token; its
                                                                     signature too when
                                                                     ``DIALOG360_WEBHOOK_SECRET``
                                                                     is set
======================================  ===========================  ===========================

The sandbox speaks Meta's format and signs as Meta does: it posts on Meta's route.

Missing or wrong authentication → 401, nothing processed; a refused handshake → 403
(``verification_failed``); a body naming a number or WABA other than its route's sender → 403;
a body over ``WEBHOOK_MAX_BYTES`` → 413; a method the route does not answer → 405; a database
briefly unavailable → 503 with ``Retry-After`` (``core.db``: the provider retries). Anything
authenticated is stored and answered 200 at once, even when it is not JSON (a retry would not
help; operators see it flagged ``invalid``).

Floods of unauthenticated calls cost little and store little:

* a call without its signature header (where a signature is required) is refused before its
  body is read, and leaves no row;
* a refused call (wrong signature, unknown route token, a body naming another sender) is
  recorded as a ``RejectedWebhook`` for security review only within a budget — per remote
  address (:data:`RECORD_PER_ADDRESS`) and overall (:data:`RECORD_OVERALL`), token buckets
  shared by every process (``core.ratelimit``). Past it the same 401 or 403 is answered
  without a row, and an unknown route token's body is not even read. (A wrong signature's body
  is read: only the HMAC over it can tell it from the provider's.) With the rate limiter
  unreachable nothing is recorded for ``OUTAGE_SECONDS``;
* authenticated deliveries are never throttled: a provider must not be refused, and behind a
  reverse proxy every caller may share one address. The budgets only ever decide whether a
  refusal is written down.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.utils.log import log_response
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError

from core import metrics
from core.coordination import OUTAGE_SECONDS, Outage
from core.errors import error_body
from core.ratelimit import get_rate_limiter
from tenants.models import SenderNumber
from webhooks import services
from whatsapp import BaseProvider, Provider, get_provider, provider_class

log = logging.getLogger(__name__)
OUTCOMES = {200: "stored", 401: "rejected", 403: "refused", 413: "too_large"}
# How many refused calls are recorded (rows per second, burst): per remote address, and
# overall. A sample for security review, not a log of every attempt.
RECORD_PER_ADDRESS = (1.0, 30)
RECORD_OVERALL = (5.0, 300)
recording_outage = Outage(OUTAGE_SECONDS)


class Refusal(Exception):
    """A request a route refuses: its answer (``status``, and the API's error shape), and what
    the security review keeps of it — ``reason``: recorded as a ``RejectedWebhook`` under that
    reason, within the budget ("": not recorded); ``body``: the body already read, or None: read
    only if it is recorded."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        reason: str = "",
        body: bytes | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.reason, self.body, self.details = reason, body, details

    @classmethod
    def unauthenticated(cls, reason: str = "", body: bytes | None = None) -> Refusal:
        message = "Missing or invalid signature."
        return cls(401, "invalid_signature", message, reason=reason, body=body)

    def response(self) -> JsonResponse:
        return JsonResponse(error_body(self.code, self.message, self.details), status=self.status)


def validators_of(cls: type) -> list:
    """Every ``validate_request`` defined along ``cls``'s MRO, the base's first: general checks
    (the size, before the body is read) before a route's own (django-anymail collects them the
    same way, and runs them all)."""
    return [
        klass.__dict__["validate_request"]
        for klass in reversed(cls.__mro__)
        if "validate_request" in klass.__dict__
    ]


@method_decorator(csrf_exempt, name="dispatch")  # authenticated by signature or route token
class WebhookView(View):
    """The sequence every provider's route follows. A subclass names its ``provider`` (a
    ``whatsapp.Provider``) and adds a ``validate_request(self, request)`` if it checks more."""

    provider: ClassVar[str] = ""
    validators: ClassVar[list] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.validators = validators_of(cls)
        if cls.provider:  # a GET only where the provider has a handshake; else 405
            handshake = bool(provider_class(cls.provider).verify_token_setting)
            cls.http_method_names = ["get", "post"] if handshake else ["post"]

    def setup(self, request, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.adapter: BaseProvider = get_provider(self.provider)
        #: The sender a per-sender route's token named (None on an app-wide route).
        self.sender: SenderNumber | None = None

    # --- the handshake -----------------------------------------------------------------------

    def get(self, request, *args: Any, **kwargs: Any) -> HttpResponse:
        """The handshake: the provider's challenge echoed as plain text, exactly as it asks
        (Meta reads the body as the challenge); a refused one is the API's JSON 403."""
        verify_token = getattr(settings, self.adapter.verify_token_setting, "")
        challenge = self.adapter.verification_challenge(request.GET, verify_token)
        if challenge is None:
            message = "The verification handshake was refused (wrong mode or verify token)."
            return Refusal(403, "verification_failed", message).response()
        return HttpResponse(challenge, content_type="text/plain")

    def http_method_not_allowed(self, request, *args: Any, **kwargs: Any) -> HttpResponse:
        """Any other method (a GET where the provider has no handshake, a HEAD, a PUT): the
        API's JSON 405, naming the allowed methods in ``Allow``."""
        allowed = ", ".join(self._allowed_methods())
        message = f"{request.method} is not allowed here; allowed: {allowed}."
        response = Refusal(405, "method_not_allowed", message).response()
        response["Allow"] = allowed
        log_response(  # as Django's own 405 is logged
            "Method Not Allowed (%s): %s",
            request.method,
            request.path,
            response=response,
            request=request,
        )
        return response

    # --- deliveries: validate, store, answer -------------------------------------------------

    def post(self, request, *args: Any, **kwargs: Any) -> HttpResponse:
        """Counted by outcome and timed (verify, store, answer)."""
        started = time.perf_counter()
        response = self.receive(request)
        metrics.webhook_ingest_seconds.observe(time.perf_counter() - started)
        outcome = OUTCOMES.get(response.status_code, str(response.status_code))
        metrics.webhook_requests.labels(outcome=outcome).inc()
        return response

    def receive(self, request) -> HttpResponse:
        try:
            for validate in self.validators:
                validate(self, request)
        except Refusal as refusal:
            if refusal.reason:
                _record(request, refusal.reason, refusal.body)
            return refusal.response()
        services.delivery_store(
            provider=self.provider,
            body=request.body,
            headers=services.kept_headers(request.headers),
            sender_id=self.sender.pk if self.sender is not None else None,
        )
        services.processing_kick()
        return HttpResponse("OK", content_type="text/plain")

    def validate_request(self, request) -> None:
        """A body over ``WEBHOOK_MAX_BYTES`` is a 413, before anything reads it."""
        try:
            fits = int(request.META.get("CONTENT_LENGTH") or 0) <= settings.WEBHOOK_MAX_BYTES
        except ValueError:
            fits = False
        if not fits:
            raise Refusal(413, "payload_too_large", "The body is too large.")

    def check_signature(self, request, secret: str) -> None:
        """The provider's signature over the body, with ``secret``. Unsigned: refused before
        the body is read, and not recorded; a wrong signature is recorded."""
        if not request.headers.get(self.adapter.signature_header):
            raise Refusal.unauthenticated()
        body = request.body
        if not self.adapter.signature_valid(body, request.headers, secret):
            raise Refusal.unauthenticated("missing_or_invalid_signature", body)


class SignedWebhookView(WebhookView):
    """A provider's app-wide route: every delivery signed with the app's secret (the
    provider's ``webhook_secret_setting``), speaking for every number."""

    def validate_request(self, request) -> None:
        self.check_signature(request, getattr(settings, self.adapter.webhook_secret_setting, ""))


class SenderRouteWebhookView(WebhookView):
    """A route per sender (``<token>`` in the path): the token proves which sender posted,
    its provider's signature is checked too when a secret is configured, and the body may only
    speak for that sender (403 otherwise: the route's token proves who posted, not whose data
    the body may change)."""

    def validate_request(self, request) -> None:
        self.sender = (
            SenderNumber.objects.filter(webhook_token=self.kwargs["token"], provider=self.provider)
            .only("pk", "provider", "phone_number_id", "waba_id")
            .first()
        )
        if self.sender is None:
            raise Refusal.unauthenticated("unknown_route_token")
        secret = getattr(settings, self.adapter.webhook_secret_setting, "")
        if secret:
            self.check_signature(request, secret)
        body = request.body
        foreign = services.foreign_addresses(body, sender=self.sender)
        if foreign:
            raise Refusal(
                403,
                "sender_mismatch",
                "The body names a phone number or WABA that is not this route's sender.",
                reason="body_names_another_sender",
                body=body,
                details=[
                    {"field": "entry", "code": "sender_mismatch", "value": value}
                    for value in foreign
                ],
            )


# --- one view per provider's route -----------------------------------------------------------


class MetaWebhookView(SignedWebhookView):
    """Meta's app-wide route: its subscription handshake, and deliveries signed with the app
    secret (the sandbox's too)."""

    provider = Provider.META


class Dialog360WebhookView(SenderRouteWebhookView):
    """360dialog's per-sender routes: 360dialog does not sign with Meta's app secret."""

    provider = Provider.DIALOG360


# --- recording refusals, within a budget -----------------------------------------------------


def _may_record(remote_addr: str) -> bool:
    """Is there budget left to record a refused call from ``remote_addr``? (Takes it.)"""
    if recording_outage.ongoing:
        return False
    limiter = get_rate_limiter()
    try:
        for key, (rate, burst) in (
            (f"webhooks:rejected:{remote_addr}", RECORD_PER_ADDRESS),
            ("webhooks:rejected", RECORD_OVERALL),
        ):
            granted, _wait = limiter.acquire(key, rate=rate, count=1, burst=float(burst))
            if not granted:
                return False
    except RedisError as exc:
        log.warning("rejected webhooks not recorded: rate limiter down (%s)", type(exc).__name__)
        recording_outage.failed()
        return False
    return True


def _record(request, reason: str, body: bytes | None) -> None:
    """Record a refused call within the budget; ``body`` None: read it only if recorded."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    if not _may_record(remote_addr):
        return
    services.rejected_record(
        path=request.path,
        reason=reason,
        remote_addr=remote_addr,
        headers=services.kept_headers(request.headers),
        body=request.body if body is None else body,
    )

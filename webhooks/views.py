"""Webhook endpoints: lean on purpose (the hot path is verify, store, answer).

* ``GET  /webhooks/whatsapp``  Meta's verification handshake (§4.1).
* ``POST /webhooks/whatsapp``  signed deliveries from Meta (§4.2).
* ``POST /webhooks/360dialog/<token>``  a sender's own route for 360dialog, which does not sign
  with Meta's app secret: the secret token in the path identifies the sender, and
  ``x-360dialog-signature`` is checked too when ``DIALOG360_WEBHOOK_SECRET`` is set.

Missing or wrong authentication → 401, nothing processed; a 360dialog body naming a number or
WABA other than its route's sender → 403; a body over ``WEBHOOK_MAX_BYTES`` → 413; anything
signed is stored and answered 200 at once, even when it is not JSON (a retry would not help;
operators see it flagged ``invalid``).

Floods of unauthenticated calls cost little and store little:

* a call without its signature header (where a signature is required) is refused before its
  body is read, and leaves no row;
* a refused call (wrong signature, unknown route token, a body naming another sender) is
  recorded as a ``RejectedWebhook`` for security review only within a budget — per remote
  address (:data:`RECORD_PER_ADDRESS`) and overall (:data:`RECORD_OVERALL`), token buckets
  shared by every process (``core.ratelimit``). Past it the same 401 or 403 is answered
  without a row, and an unknown route token's body is not even read. (A wrong signature's body
  is read: only the HMAC over it can tell it from Meta's.) With the rate limiter unreachable
  nothing is recorded for ``OUTAGE_SECONDS``;
* signed deliveries are never throttled: Meta must not be refused, and behind a reverse proxy
  every caller may share one address. The budgets only ever decide whether a refusal is
  written down.
"""

import functools
import logging
import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from redis.exceptions import RedisError

from core import metrics
from core.api import error_body
from core.coordination import OUTAGE_SECONDS, Outage
from core.ratelimit import get_rate_limiter
from tenants.models import SenderNumber
from webhooks import services
from whatsapp import Provider, get_provider, provider_class
from whatsapp.meta import MetaCloudProvider

log = logging.getLogger(__name__)
OUTCOMES = {200: "stored", 401: "rejected", 403: "refused", 413: "too_large"}
# How many refused calls are recorded (rows per second, burst): per remote address, and
# overall. A sample for security review, not a log of every attempt.
RECORD_PER_ADDRESS = (1.0, 30)
RECORD_OVERALL = (5.0, 300)
recording_outage = Outage(OUTAGE_SECONDS)


def _measured(view):
    """Count each POST by outcome and time it (verify, store, answer)."""

    @functools.wraps(view)
    def measured(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        started = time.perf_counter()
        response = view(request, *args, **kwargs)
        metrics.webhook_ingest_seconds.observe(time.perf_counter() - started)
        outcome = OUTCOMES.get(response.status_code, str(response.status_code))
        metrics.webhook_requests.labels(outcome=outcome).inc()
        return response

    return measured


def _too_large(request) -> JsonResponse | None:
    """A 413 for a body over ``WEBHOOK_MAX_BYTES``, before anything reads it; else None."""
    try:
        fits = int(request.META.get("CONTENT_LENGTH") or 0) <= settings.WEBHOOK_MAX_BYTES
    except ValueError:
        fits = False
    if fits:
        return None
    return JsonResponse(error_body("payload_too_large", "The body is too large."), status=413)


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


def _unauthorized() -> JsonResponse:
    return JsonResponse(
        error_body("invalid_signature", "Missing or invalid signature."), status=401
    )


def _reject(request, reason: str, body: bytes | None) -> JsonResponse:
    _record(request, reason, body)
    return _unauthorized()


def _accept(provider: str, request, body: bytes, sender_id=None) -> HttpResponse:
    services.delivery_store(
        provider=provider,
        body=body,
        headers=services.kept_headers(request.headers),
        sender_id=sender_id,
    )
    services.processing_kick()
    return HttpResponse("OK", content_type="text/plain")


def _receive(request, provider: Provider, *, secret: str, sender=None) -> HttpResponse:
    """Verify, store, answer — the same for every provider; the provider says how its
    signature looks and which numbers a body names. (The caller has refused a body too large.)"""
    adapter = get_provider(provider)
    signature_checked = sender is None or secret  # a sender's route: only with a secret
    if signature_checked and not request.headers.get(adapter.signature_header):
        return _unauthorized()  # unsigned: refused before its body is read, and not recorded
    body = request.body
    if signature_checked and not adapter.signature_valid(body, request.headers, secret):
        return _reject(request, "missing_or_invalid_signature", body)
    if sender is not None:
        # The route's token proves which sender posted; it may only speak for that sender.
        foreign = services.foreign_addresses(body, sender=sender)
        if foreign:
            _record(request, "body_names_another_sender", body)
            return JsonResponse(
                error_body(
                    "sender_mismatch",
                    "The body names a phone number or WABA that is not this route's sender.",
                    [{"field": "entry", "code": "sender_mismatch", "value": v} for v in foreign],
                ),
                status=403,
            )
    return _accept(provider, request, body, sender_id=sender.pk if sender else None)


@csrf_exempt
@require_http_methods(["GET", "POST"])
@_measured
def whatsapp(request):
    """Meta's app-wide route: its verification handshake, and deliveries signed with the app
    secret (the sandbox posts here too)."""
    if request.method == "GET":
        challenge = MetaCloudProvider.verification_challenge(
            request.GET, settings.WHATSAPP_VERIFY_TOKEN
        )
        if challenge is None:
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    if refused := _too_large(request):
        return refused
    secret = getattr(settings, MetaCloudProvider.webhook_secret_setting)
    return _receive(request, Provider.META, secret=secret)


@csrf_exempt
@require_http_methods(["POST"])
@_measured
def sender_route(request, provider: Provider, token: str):
    """A provider whose webhooks arrive on each sender's own route (360dialog: it does not sign
    with Meta's app secret): the secret token in the path identifies the sender."""
    if refused := _too_large(request):
        return refused
    sender = (
        SenderNumber.objects.filter(webhook_token=token, provider=provider)
        .only("pk", "provider", "phone_number_id", "waba_id")
        .first()
    )
    if sender is None:
        return _reject(request, "unknown_route_token", None)
    secret = getattr(settings, provider_class(provider).webhook_secret_setting, "")
    return _receive(request, provider, secret=secret, sender=sender)

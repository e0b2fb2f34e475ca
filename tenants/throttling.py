"""Per-tenant API throttling: a token bucket per tenant (``Tenant.api_requests_per_second``,
bursts of one second's worth), shared by every gunicorn worker through ``core.ratelimit`` (on
the process's one Redis client and its timeouts: ``core.coordination``).

A request costs one token; a view may say that one of its requests costs more
(``throttle_cost(request)``: ``POST /api/v1/messages/batch`` costs one token per message, so
1,000 messages cost 1,000 tokens whether they come as singles or as one batch). A request is let
through when the bucket holds what it costs — all or nothing — and one that costs more than the
bucket can hold (a batch larger than a second's worth) is let through when the bucket is full
and leaves it in debt for the rest: the tenant's next requests wait until the refill has repaid
it, so over any stretch of time its messages per second stay within its rate. Before a costly
request's body is even parsed, an empty bucket refuses it; a body that cannot be parsed costs
one token (and is answered ``400 malformed_request`` as usual).

Over the limit, DRF answers ``429`` with ``Retry-After`` (whole seconds, at least 1: when the
bucket will hold what the request costs, or all of it for a batch larger than the bucket) and
the API's error shape, code ``rate_limited``. One tenant's burst never spends another's tokens:
the bucket's key is the tenant's id. Unauthenticated requests are not throttled here (they are
refused with 401 before they cost anything but a key lookup).

Fails open: with Redis unreachable the request is let through (and logged) — the throttle
protects capacity, and refusing every tenant's sends because the limiter is down would turn a
Redis outage into an API outage — and the limiter is skipped for a few seconds
(``core.coordination.Outage``) rather than each request waiting for its timeout."""

from __future__ import annotations

import logging
import math

from redis.exceptions import RedisError
from rest_framework.exceptions import ParseError
from rest_framework.throttling import BaseThrottle

from core.coordination import OUTAGE_SECONDS, Outage
from core.ratelimit import get_rate_limiter
from tenants.authentication import TenantPrincipal

log = logging.getLogger(__name__)
limiter_outage = Outage(OUTAGE_SECONDS)


def api_request_allowed(tenant) -> bool:
    """One API request of ``tenant`` at one token: True when its bucket had it (now spent), or
    when nothing throttles (rate 0, Redis down: fails open). The lean single-send path
    (``messaging.apis``) asks this; DRF's throttle below answers the same for every view."""
    rate = tenant.api_requests_per_second
    if not rate or limiter_outage.ongoing:
        return True
    try:
        granted, _wait = get_rate_limiter().spend(
            f"api:{tenant.pk}", rate=float(rate), burst=float(rate), cost=1, need=1.0
        )
    except RedisError as exc:
        log.warning("API throttle unavailable (%s): request let through", type(exc).__name__)
        limiter_outage.failed()
        return True
    return granted


class TenantRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, TenantPrincipal):
            return True
        rate = principal.tenant.api_requests_per_second
        if not rate or limiter_outage.ongoing:
            return True
        key = f"api:{principal.tenant.pk}"
        cost_of = getattr(view, "throttle_cost", None)
        try:
            if cost_of is None:
                return self._spend(key, float(rate), cost=1)
            if not self._spend(key, float(rate), cost=0):  # empty: refused before parsing
                return False
            try:
                cost = max(1, int(cost_of(request)))
            except ParseError:
                self._spend(key, float(rate), cost=1, need=0)
                raise
            return self._spend(key, float(rate), cost=cost)
        except RedisError as exc:
            log.warning("API throttle unavailable (%s): request let through", type(exc).__name__)
            limiter_outage.failed()
            return True

    def _spend(self, key: str, rate: float, *, cost: int, need: float | None = None) -> bool:
        """Take ``cost`` tokens when the bucket holds them (or is full, for a cost larger than
        it); ``cost=0`` only asks whether it holds one."""
        if need is None:
            need = min(float(cost), rate) if cost else 1.0
        granted, wait = get_rate_limiter().spend(key, rate=rate, burst=rate, cost=cost, need=need)
        if not granted:
            self._wait = wait
        return granted

    def wait(self) -> float | None:
        return max(1, math.ceil(self._wait)) if self._wait is not None else None

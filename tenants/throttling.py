"""Per-tenant API throttling: a token bucket per tenant (``Tenant.api_requests_per_second``,
bursts of one second's worth), shared by every gunicorn worker through ``core.ratelimit``.

Over the limit, DRF answers ``429`` with ``Retry-After`` (whole seconds, at least 1) and the
API's error shape, code ``rate_limited``. One tenant's burst never spends another's tokens: the
bucket's key is the tenant's id. Unauthenticated requests are not throttled here (they are
refused with 401 before they cost anything but a key lookup).

Fails open: with Redis unreachable the request is let through (and logged) — the throttle
protects capacity, and refusing every tenant's sends because the limiter is down would turn a
Redis outage into an API outage — and the limiter is skipped for a few seconds
(``core.coordination.Outage``) rather than each request waiting for its timeout."""

from __future__ import annotations

import logging
import math

from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from core.coordination import OUTAGE_SECONDS, Outage
from core.ratelimit import get_rate_limiter
from tenants.authentication import TenantPrincipal

log = logging.getLogger(__name__)
limiter_outage = Outage(OUTAGE_SECONDS)


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
        try:
            granted, wait = get_rate_limiter().acquire(
                f"api:{principal.tenant.pk}", rate=float(rate), count=1, burst=float(rate)
            )
        except RedisError as exc:
            log.warning("API throttle unavailable (%s): request let through", type(exc).__name__)
            limiter_outage.failed()
            return True
        if granted:
            return True
        self._wait = wait
        return False

    def wait(self) -> float | None:
        return max(1, math.ceil(self._wait)) if self._wait is not None else None

"""Meta's error codes, classified once (docs/meta-api.md §2). The pipeline reads only this.

Classes:
* ``retry_backoff`` — transient: exponential backoff with jitter, capped per tenant;
* ``cool_down``     — a limit was hit: wait ``delay`` seconds (scope: recipient, sender or
                      template), then try again; does not count against the attempt cap;
* ``never_retry``   — the request itself is wrong or the user unreachable: rejected;
* ``alert_tenant``  — the sender's account/credentials need a human: stop sending for that
                      sender, keep its messages queued, surface it in the admin;
* ``ambiguous``     — the request may have been processed (5xx 131000/2): never resend blindly.

A code missing from the table is classified by HTTP status: 5xx ambiguous, 429 backoff,
401/403 alert, other 4xx never retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.states import ErrorClass

B, C, N, A, U = (
    ErrorClass.RETRY_BACKOFF,
    ErrorClass.COOL_DOWN,
    ErrorClass.NEVER_RETRY,
    ErrorClass.ALERT_TENANT,
    ErrorClass.AMBIGUOUS,
)


@dataclass(frozen=True)
class Classification:
    error_class: ErrorClass
    delay: float = 0.0  # cool-down seconds
    scope: str = ""  # recipient | sender | template


# code -> (class, cool-down seconds, scope)
TABLE: dict[int, Classification] = {
    # Throughput / limits
    130429: Classification(C, 1.0, "sender"),  # per-number throughput
    131056: Classification(C, 6.0, "recipient"),  # pair rate limit: 1 msg / 6 s (§3.2)
    131048: Classification(C, 900.0, "sender"),  # spam rate limit: no documented wait
    131057: Classification(C, 90.0, "sender"),  # maintenance mode, up to 1 minute
    132015: Classification(C, 600.0, "template"),  # paused template: until reinstated
    131049: Classification(C, 86_400.0, "recipient"),  # "wait at least 24 hours"
    4: Classification(B),
    80007: Classification(B),
    1: Classification(B),
    131016: Classification(B),
    133004: Classification(B),
    # Ambiguous: the request may have been processed
    131000: Classification(U),
    2: Classification(U),
    # Alert the tenant: a person must act before this sender can send again
    0: Classification(A),
    3: Classification(A),
    10: Classification(A),
    190: Classification(A),
    368: Classification(A),
    131005: Classification(A),
    131031: Classification(A),
    131037: Classification(A),
    131042: Classification(A),
    131045: Classification(A),
    133010: Classification(A),
    134011: Classification(A),
    # Never retry
    100: Classification(N),
    130472: Classification(N),
    130497: Classification(N),
    131008: Classification(N),
    131009: Classification(N),
    131021: Classification(N),
    131026: Classification(N),
    131047: Classification(N),
    131050: Classification(N),
    131051: Classification(N),
    131053: Classification(N),
    132000: Classification(N),
    132001: Classification(N),
    132005: Classification(N),
    132007: Classification(N),
    132012: Classification(N),
    132016: Classification(N),
    132018: Classification(N),
    132068: Classification(N),
    132069: Classification(N),
    135000: Classification(N),
}


def classify(code: int | None, http_status: int | None) -> Classification:
    if code is not None and code in TABLE:
        return TABLE[code]
    if code is not None and 200 <= code <= 299:  # permission errors (§2)
        return Classification(A)
    status = http_status or 0
    if status >= 500:
        return Classification(U)
    if status == 429:
        return Classification(B)
    if status in (401, 403):
        return Classification(A)
    return Classification(N)

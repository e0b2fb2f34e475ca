"""Prometheus metrics, defined once (prometheus-client). Every process records into them; the
``/metrics`` view (``operations.metrics``) exposes them.

Multiprocess mode: set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, the same for gunicorn's
workers, the Celery worker and the deliverer) before the processes start; each then writes its
values to files there and ``/metrics`` adds them up. Without it each process keeps its own
(fine for the embedded demo and tests).

Labels are bounded: a tenant's slug, a state, an outcome, a Meta error code from the
classification table (anything else is ``other``) — never a message, recipient or wamid.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SLOW_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 6 * 3600, 24 * 3600)

state_changes = Counter(
    "waypost_message_state_changes_total", "Messages entering a state.", ["tenant", "state"]
)
provider_errors = Counter(
    "waypost_provider_errors_total", "Error answers to sends, by Meta code.", ["code"]
)
submit_seconds = Histogram(
    "waypost_submit_seconds", "One send request to the provider.", buckets=LATENCY_BUCKETS
)
delivered_seconds = Histogram(
    "waypost_message_delivered_seconds",
    "From the API request to the `delivered` status.",
    buckets=SLOW_BUCKETS,
)
webhook_requests = Counter(
    "waypost_webhook_requests_total", "Webhook POSTs, by outcome.", ["outcome"]
)
webhook_ingest_seconds = Histogram(
    "waypost_webhook_ingest_seconds",
    "Verify, store and answer one webhook.",
    buckets=LATENCY_BUCKETS,
)
webhook_deliveries = Counter(
    "waypost_webhook_deliveries_processed_total", "Stored deliveries processed.", ["status"]
)
stalls = Counter("waypost_stalls_total", "Messages flagged stalled.", ["reason"])
callbacks = Counter("waypost_callbacks_total", "Callback attempts, by outcome.", ["outcome"])
callback_lag_seconds = Histogram(
    "waypost_callback_lag_seconds",
    "From the change that caused a callback to the receiver's 2xx.",
    buckets=SLOW_BUCKETS,
)

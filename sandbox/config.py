"""The sandbox's knobs. Each has a CLI flag (``--webhook-duplicate-rate``), an environment
variable (``SANDBOX_WEBHOOK_DUPLICATE_RATE``) and a JSON key for ``POST /_sandbox/config``
(``webhook_duplicate_rate``). Rates are probabilities in [0, 1]; times are milliseconds unless
the name says seconds."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

LATENCY_DISTRIBUTIONS = ("fixed", "uniform", "exponential")
RATE_FIELDS = (
    "http_500_rate",
    "http_503_rate",
    "timeout_after_accept_rate",
    "connection_reset_rate",
    "held_rate",
    "read_rate",
    "webhook_duplicate_rate",
    "webhook_drop_rate",
    "username_rate",
)


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    webhook_url: str = ""
    # Signs the webhooks it posts. Given explicitly (--app-secret, SANDBOX_APP_SECRET), never
    # taken from Waypost's WHATSAPP_APP_SECRET: required when webhook_url is set.
    app_secret: str = ""
    token: str = ""  # when set, the only accepted bearer token / D360-API-KEY
    # The control endpoints (/_sandbox/*, but ping) need `Authorization: Bearer <control_token>`;
    # without a token the sandbox refuses to start, unless open_control (the embedded demo).
    control_token: str = ""
    open_control: bool = False
    seed: int | None = None
    # Templates.
    approve_after: float = 2.0  # seconds; 0 = the create response already says APPROVED
    reject_templates: str = ""  # regex on the name: matching templates are REJECTED
    # Throughput (docs/meta-api.md §3.1, §3.2).
    default_mps: int = 80  # per phone number; 0 = unlimited
    pair_interval: float = 6.0  # seconds between messages to one recipient, on average
    pair_burst: int = 45  # messages allowed at once to one recipient
    # Faults on the send request.
    latency_ms: float = 0.0
    latency_spread_ms: float = 0.0
    latency_distribution: str = "fixed"
    error_rates: dict[str, float] = field(default_factory=dict)  # {"131000": 0.05, ...}
    http_500_rate: float = 0.0
    http_503_rate: float = 0.0
    timeout_after_accept_rate: float = 0.0
    hang_seconds: float = 120.0  # how long a timed-out request is held before the socket drops
    connection_reset_rate: float = 0.0
    held_rate: float = 0.0  # answer message_status held_for_quality_assessment (pacing, §1.3)
    # Status webhooks (offsets after acceptance).
    sent_after_ms: float = 50.0
    delivered_after_ms: float = 150.0
    read_after_ms: float = 400.0
    read_rate: float = 1.0
    webhook_delay_ms: float = 0.0  # added to every webhook
    webhook_duplicate_rate: float = 0.0
    webhook_reorder: bool = False
    webhook_drop_rate: float = 0.0
    webhook_batch_max: int = 50  # statuses in one POST when several are due together
    webhook_concurrency: int = 16
    webhook_retry_max: int = 8
    webhook_retry_base_ms: float = 500.0
    webhook_timeout_s: float = 10.0
    # Recipients that fail through a `failed` status webhook: [[regex, code], ...].
    fail_rules: list[list[Any]] = field(default_factory=list)
    # Users (2026, docs/meta-api.md §11.1): every user has a business-scoped user id; this
    # share of them has a username and arrives without a phone number.
    username_rate: float = 0.0
    parent_user_ids: bool = False  # add parent BSUIDs (Meta enables them per business)
    # Meta leaves `contacts` (and recipient_user_id for phone sends) out of `failed` statuses.
    failed_status_contacts: bool = False
    # Messaging limits (docs/meta-api.md §3.3): the moving window a portfolio's unique users
    # are counted in. Meta's is 24 hours; shorter lets a test see the window move.
    limit_window_seconds: float = 86400.0
    # Media (§12): how long an uploaded media id stays usable. Meta's is 30 days.
    media_ttl_seconds: float = 2592000.0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update (from JSON), coercing to each field's type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name, value in changes.items():
            setattr(self, name, _coerce(fields[name], value))
        self.validate()

    def check_startable(self) -> None:
        """Refuse a configuration that would let anyone on the machine drive the sandbox or
        forge webhooks (``ValueError`` naming what to give)."""
        if not self.control_token and not self.open_control:
            raise ValueError(
                "the control endpoints (/_sandbox/*) need a token: give --control-token "
                "(SANDBOX_CONTROL_TOKEN), or --open-control for a throw-away demo"
            )
        if self.webhook_url and not self.app_secret:
            raise ValueError(
                "webhooks are signed with --app-secret (SANDBOX_APP_SECRET): give the value the "
                "receiving stack verifies with (its WHATSAPP_APP_SECRET), explicitly"
            )

    def validate(self) -> None:
        if self.latency_distribution not in LATENCY_DISTRIBUTIONS:
            raise ValueError(f"latency_distribution must be one of {LATENCY_DISTRIBUTIONS}")
        rates = {name: getattr(self, name) for name in RATE_FIELDS}
        rates |= {f"error_rates.{code}": rate for code, rate in self.error_rates.items()}
        for name, rate in rates.items():
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("limit_window_seconds", "media_ttl_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        self.error_rates = {str(int(k)): float(v) for k, v in self.error_rates.items()}
        self.fail_rules = [[str(p), int(c)] for p, c in self.fail_rules]

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["app_secret"] = "***" if self.app_secret else ""
        data["token"] = "***" if self.token else ""
        data["control_token"] = "***" if self.control_token else ""
        return data

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SandboxConfig:
        environ = os.environ if environ is None else environ
        config = cls()
        changes = {}
        for f in dataclasses.fields(cls):
            key = f"SANDBOX_{f.name.upper()}"
            if key in environ:
                raw = environ[key]
                changes[f.name] = (
                    json.loads(raw) if f.name in ("error_rates", "fail_rules") else raw
                )
        config.update(changes)
        return config


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    kind = str(f.type)
    if value is None:
        return None
    if kind.startswith("bool"):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    if kind.startswith("dict"):
        return {str(k): float(v) for k, v in dict(value).items()}
    if kind.startswith("list"):
        return [list(item) for item in value]
    return str(value)

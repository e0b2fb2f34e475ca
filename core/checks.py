"""The deployment's consistency rules, as Django system checks.

They run with ``manage.py check`` and every management command, and — through
``core.startup`` — at the start of every process of the stack (gunicorn's workers, the Celery
worker and beat, the callback deliverer), which refuse to start on an error. Each error names
the setting to change.

=========  ===================================================================================
id         rule
=========  ===================================================================================
E001       ``WAYPOST_COORDINATION`` is ``redis`` or ``memory``
E002       a shared broker (Redis, AMQP) with coordination in process memory: each process
           would keep its own debounce keys and rate limits, so nudges are lost and limits are
           per process
E003       coordination in Redis needs ``REDIS_URL`` (defaults to a Redis broker's URL)
E004       ``WAYPOST_RATE_LIMITER`` (the old name) is still set: it is ``WAYPOST_COORDINATION``
E005       the development settings only with the in-process broker: with a real broker they
           would run a multi-process stack with debug on, a published key and callbacks
           allowed into private networks
E006       ``WAYPOST_COUNTDOWN_MAX`` below a Redis broker's visibility timeout
E007       the queues (``core.queues``): ``WAYPOST_SEND_QUEUES`` and ``WAYPOST_BULK_QUEUES`` at
           least 1, ``WORKER_LANES`` ``all`` or ``express``
E010       production: ``SECRET_KEY`` set, and not the development key
E011       production: ``WHATSAPP_APP_SECRET`` and ``WHATSAPP_VERIFY_TOKEN`` set
E012       production: a broker other than the in-process one (``CELERY_BROKER_URL``)
E013       production: ``DEBUG`` off
E014       production: no developer tools or sandbox among the installed apps
E015       production: the sandbox provider only when allowed explicitly
           (``WAYPOST_SANDBOX_PROVIDER=true`` in the environment)
E016       production: ``/metrics`` needs ``WAYPOST_METRICS_TOKEN``, or an explicit list of
           networks that may scrape without one (``WAYPOST_METRICS_ALLOW``) — never loopback,
           which behind a reverse proxy on the same host is every client
E017       production: PostgreSQL, not SQLite
W003       production: callbacks allowed over http, or into private networks
W001       production: the sandbox provider is allowed (senders may talk to ``SANDBOX_URL``)
=========  ===================================================================================
"""

from __future__ import annotations

import ipaddress
import os

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from core.coordination import BACKENDS, broker_in_process

PRODUCTION_FORBIDDEN_APPS = ("devtools", "sandbox")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _is_loopback(network: str) -> bool:
    """Whether ``network`` takes in a loopback address (0.0.0.0/0 does too)."""
    try:
        net = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
    return any(net.version == loop.version and net.overlaps(loop) for loop in LOOPBACK)


@register("waypost")
def coordination_check(app_configs=None, **kwargs) -> list:
    errors = []
    backend = settings.WAYPOST_COORDINATION
    broker = settings.CELERY_BROKER_URL
    if "WAYPOST_RATE_LIMITER" in os.environ:
        errors.append(
            Error(
                "WAYPOST_RATE_LIMITER is set, but the setting is now WAYPOST_COORDINATION.",
                hint="Remove WAYPOST_RATE_LIMITER: coordination follows the broker (Redis "
                "unless the broker is memory://); set WAYPOST_COORDINATION only to override.",
                id="waypost.E004",
            )
        )
    if backend not in BACKENDS:
        return [
            *errors,
            Error(
                f"WAYPOST_COORDINATION is {backend!r}; it must be one of {', '.join(BACKENDS)}.",
                hint="Leave it unset: it follows the broker.",
                id="waypost.E001",
            ),
        ]
    if backend == "memory" and not broker_in_process(broker):
        errors.append(
            Error(
                "The broker is shared by several processes but WAYPOST_COORDINATION=memory "
                "keeps debounce keys and rate limits in each process's memory: the processes "
                "would disagree (lost wake-ups, per-process rate limits).",
                hint="Unset WAYPOST_COORDINATION (it follows the broker) or set it to redis, "
                "with REDIS_URL.",
                id="waypost.E002",
            )
        )
    if settings.WAYPOST_DEPLOYMENT == "development" and not broker_in_process(broker):
        errors.append(
            Error(
                "The development settings (config.settings.local) are for the embedded demo, "
                "but the broker is shared: a stack of processes would run with DEBUG on, the "
                "published development key and callbacks allowed into private networks.",
                hint="Run the stack on config.settings.production (the default: unset "
                "DJANGO_SETTINGS_MODULE), or unset CELERY_BROKER_URL for the embedded demo.",
                id="waypost.E005",
            )
        )
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if (
        broker.startswith(("redis", "sentinel"))  # rediss:// too
        and visibility
        and visibility <= settings.WAYPOST_COUNTDOWN_MAX
    ):
        errors.append(
            Error(
                f"WAYPOST_COUNTDOWN_MAX ({settings.WAYPOST_COUNTDOWN_MAX:g} s) is not below "
                f"CELERY_VISIBILITY_TIMEOUT ({visibility} s): Redis would hand a delayed wake-up "
                "(a retry's, a campaign's next pass) to a worker again every visibility timeout "
                "until it is due, and it would run several times.",
                hint="Keep WAYPOST_COUNTDOWN_MAX below CELERY_VISIBILITY_TIMEOUT (longer waits "
                "are a chain of wake-ups).",
                id="waypost.E006",
            )
        )
    for name in ("WAYPOST_SEND_QUEUES", "WAYPOST_BULK_QUEUES"):
        if getattr(settings, name) < 1:
            errors.append(
                Error(
                    f"{name} is {getattr(settings, name)}: tenants are assigned one of these "
                    "shared queues by a hash, so there must be at least one.",
                    hint=f"Set {name} to 1 or more (the same on every process).",
                    id="waypost.E007",
                )
            )
    if settings.WORKER_LANES not in ("all", "express"):
        errors.append(
            Error(
                f"WORKER_LANES is {settings.WORKER_LANES!r}: a worker consumes 'all' the queues "
                "or the 'express' lanes only.",
                hint="Set WORKER_LANES to all (the default) or express.",
                id="waypost.E007",
            )
        )
    if backend == "redis" and not settings.REDIS_URL:
        errors.append(
            Error(
                "Coordination state lives in Redis, but REDIS_URL is not set.",
                hint="Set REDIS_URL (it defaults to CELERY_BROKER_URL when the broker is Redis).",
                id="waypost.E003",
            )
        )
    return errors


@register("waypost")
def production_check(app_configs=None, **kwargs) -> list:
    if settings.WAYPOST_DEPLOYMENT != "production":
        return []
    found = []
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to read an empty one
        secret_key = ""
    if not secret_key or secret_key == settings.INSECURE_DEVELOPMENT_KEY:
        found.append(
            Error(
                "Production needs its own SECRET_KEY.",
                hint="Set SECRET_KEY to a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(50))').",
                id="waypost.E010",
            )
        )
    missing = [
        n for n in ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN") if not getattr(settings, n)
    ]
    if missing:
        found.append(
            Error(
                f"Production needs {' and '.join(missing)} (webhook signatures and Meta's "
                "verification handshake).",
                hint=f"Set {', '.join(missing)}.",
                id="waypost.E011",
            )
        )
    if broker_in_process(settings.CELERY_BROKER_URL):
        found.append(
            Error(
                "Production cannot run on the in-process broker: the API and the worker are "
                "separate processes.",
                hint="Set CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0.",
                id="waypost.E012",
            )
        )
    if settings.DEBUG:
        found.append(Error("DEBUG is on in production.", hint="Unset DEBUG.", id="waypost.E013"))
    installed = [a for a in PRODUCTION_FORBIDDEN_APPS if a in settings.INSTALLED_APPS]
    if installed:
        found.append(
            Error(
                f"{', '.join(installed)} must not be installed in production.",
                hint="Add developer tools only in config.settings.local or test.",
                id="waypost.E014",
            )
        )
    if settings.WAYPOST_SANDBOX_PROVIDER:
        if "WAYPOST_SANDBOX_PROVIDER" not in os.environ:
            found.append(
                Error(
                    "The sandbox provider is enabled in production without being allowed "
                    "explicitly.",
                    hint="Set WAYPOST_SANDBOX_PROVIDER=true in the environment to allow it "
                    "(a staging stack without Meta credentials), or turn it off.",
                    id="waypost.E015",
                )
            )
        else:
            found.append(
                Warning(
                    f"The sandbox provider is allowed: senders of provider 'sandbox' send to "
                    f"{settings.SANDBOX_URL}, a test double, not to WhatsApp.",
                    hint="For a staging stack only; unset WAYPOST_SANDBOX_PROVIDER otherwise.",
                    id="waypost.W001",
                )
            )
    if not settings.WAYPOST_METRICS_TOKEN:
        loopback = [n for n in settings.WAYPOST_METRICS_ALLOW if _is_loopback(n)]
        if not settings.WAYPOST_METRICS_ALLOW or loopback:
            found.append(
                Error(
                    "Production needs WAYPOST_METRICS_TOKEN: /metrics is scraped with a bearer "
                    "token (behind a reverse proxy on the same host, every client's address is "
                    f"loopback{': ' + ', '.join(loopback) if loopback else ''}, so an address "
                    "is no proof).",
                    hint="Set WAYPOST_METRICS_TOKEN and scrape with 'Authorization: Bearer "
                    "<token>'; or opt out explicitly by listing the (non-loopback) networks "
                    "allowed to scrape without a token in WAYPOST_METRICS_ALLOW.",
                    id="waypost.E016",
                )
            )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        found.append(
            Error(
                "Production runs on PostgreSQL: SQLite cannot serve the API, the worker and the "
                "deliverer as separate processes.",
                hint="Set DATABASE_URL, e.g. postgres://waypost:pw@127.0.0.1:5432/waypost.",
                id="waypost.E017",
            )
        )
    weakened = [
        text
        for text, on in (
            (
                "over http (WAYPOST_CALLBACK_REQUIRE_HTTPS=False)",
                not settings.WAYPOST_CALLBACK_REQUIRE_HTTPS,
            ),
            (
                "into loopback and private networks (WAYPOST_CALLBACK_ALLOW_PRIVATE=True)",
                settings.WAYPOST_CALLBACK_ALLOW_PRIVATE,
            ),
        )
        if on
    ]
    if weakened:
        found.append(
            Warning(
                f"Client callbacks are allowed {' and '.join(weakened)}.",
                hint="For a stack whose receivers are on the same machine only; unset them.",
                id="waypost.W003",
            )
        )
    return found

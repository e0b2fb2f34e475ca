"""Every variable Waypost reads from the environment, declared once: its name, type, default in
each settings module, the integration it belongs to, and what it does.

The settings modules read them through :class:`SettingsEnv` — django-environ's ``Env`` holding
these declarations as its scheme — so a module names only the variable, never its type or
default again::

    env = SettingsEnv("base")
    WAYPOST_BATCH_SIZE = env("WAYPOST_BATCH_SIZE")

and reading one that is not declared here stops the process at start-up. ``.env.example`` and
the settings page of the documentation (``docs/operations/settings.md``) are written from these
declarations by ``python -m config.reference --write``; ``tests/test_settings.py`` fails when
either is stale, or when any code reads a variable not declared here.

Defaults per settings module
----------------------------
``default`` is what ``config.settings.base`` reads, and so what every module gets unless it
says otherwise; ``local``, ``production`` and ``test`` declare where that module differs (and
the module reads the variable again). :data:`REQUIRED`: the module refuses to start without a
value (:meth:`SettingsEnv.missing_required`). :class:`Derived`: the default is computed from
other settings where the variable is read, and the call passes it. A variable with no
``default`` is read only by the modules that declare one (the HTTPS settings: production).

Variables that are not Django settings — the Procfiles', the sandbox process's, the senders'
credentials — are declared too, with ``read_by`` naming who reads them, so that one list has
them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

# A default that is a fact about the product comes from where the product keeps it. These are
# imported while the settings load, before Django's apps: modules without models only.
from callbacks.transport import DEADLINE as CALLBACK_ATTEMPT_SECONDS
from config import DEFAULT_SETTINGS_MODULE
from whatsapp.meta import (
    CURRENT_GRAPH_VERSION,
    OLDEST_SUPPORTED_GRAPH_VERSION,
    THROUGHPUT_UPGRADE_MPS,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of the embedded defaults (SQLite database, collected static files, metrics).
VAR_DIR = BASE_DIR / "var"
# The development settings' key; core.checks refuses it (and an empty one) in production.
INSECURE_DEVELOPMENT_KEY = "insecure-local-development-key-do-not-use-in-production"

MODULES = ("base", "local", "production", "test")


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The module refuses to start without a value.
REQUIRED = _Marker("REQUIRED")
#: Not read by this settings module (nor inherited from ``base``).
NOT_READ = _Marker("NOT_READ")
#: The module inherits ``base``'s default.
INHERIT = _Marker("INHERIT")


@dataclass(frozen=True)
class Derived:
    """A default computed from other settings where the variable is read (the call passes
    it); ``what`` says how, for people."""

    what: str


@dataclass(frozen=True)
class Setting:
    name: str
    cast: type  # str, bool, int, float or list (comma-separated)
    default: Any = NOT_READ
    doc: str = ""
    local: Any = INHERIT
    production: Any = INHERIT
    test: Any = INHERIT
    # A value to show where the default is REQUIRED (``.env.example``).
    example: str = ""
    # Who reads it, when it is not a Django setting read by config/settings/.
    read_by: str = ""

    def default_in(self, module: str) -> Any:
        """The default of this variable where ``module`` runs (``NOT_READ`` if it ignores it)."""
        if module == "base":
            return self.default
        own = getattr(self, module)
        return self.default if own is INHERIT else own

    def overrides(self, module: str) -> bool:
        """Whether ``module`` declares its own default (and so reads the variable again)."""
        return module != "base" and getattr(self, module) is not INHERIT

    @property
    def is_pattern(self) -> bool:
        """A family of names (``WAYPOST_<SLUG>__<NAME>``), not one variable."""
        return "<" in self.name


@dataclass(frozen=True)
class Group:
    """The variables of one integration."""

    title: str
    intro: str
    settings: tuple[Setting, ...]
    # (title, path under docs/) of the page that explains the integration.
    see: tuple[str, str] | None = None


GROUPS: tuple[Group, ...] = (
    Group(
        "Django",
        "The settings module, the signing key, the hosts served, static files.",
        (
            Setting(
                "DJANGO_SETTINGS_MODULE",
                str,
                DEFAULT_SETTINGS_MODULE,
                read_by="config/__init__.py",
                doc="The settings module of every process: from the environment, else from "
                "`.env`, else production, which refuses to start without the variables marked "
                "required. `config.settings.local` runs the embedded demo's defaults (SQLite, "
                "the in-process broker) with no other variable.",
            ),
            Setting(
                "SECRET_KEY",
                str,
                "",
                local=INSECURE_DEVELOPMENT_KEY,
                production=REQUIRED,
                doc="Django's signing key; production refuses the development key.",
            ),
            Setting(
                "DEBUG",
                bool,
                False,
                local=True,
                doc="Django's debug mode; `config.settings.production` turns it off whatever "
                "this says.",
            ),
            Setting(
                "ALLOWED_HOSTS",
                list,
                ["127.0.0.1", "localhost"],
                doc="The host names this deployment answers to.",
            ),
            Setting(
                "CSRF_TRUSTED_ORIGINS",
                list,
                [],
                doc="Origins trusted by the admin's forms behind a proxy "
                "(`https://waypost.example.com`).",
            ),
            Setting(
                "STATIC_ROOT",
                str,
                str(VAR_DIR / "static"),
                doc="Where `collectstatic` puts the admin's and the API docs' files, served by "
                "WhiteNoise.",
            ),
        ),
        see=("Deployment", "operations/deployment.md"),
    ),
    Group(
        "HTTPS",
        "Read by `config.settings.production` only; `manage.py check --deploy` passes with "
        "the defaults.",
        (
            Setting("SECURE_SSL_REDIRECT", bool, production=True, doc="Redirect http to https."),
            Setting(
                "SECURE_HSTS_SECONDS",
                int,
                production=31_536_000,
                doc="HSTS: how long browsers remember to use only https here (a year). Lower it "
                "(3600) while trying https out; 0 sends no HSTS.",
            ),
            Setting(
                "SECURE_HSTS_INCLUDE_SUBDOMAINS",
                bool,
                production=True,
                doc="HSTS covers subdomains: set False when not every subdomain is served over "
                "https.",
            ),
            Setting(
                "SECURE_HSTS_PRELOAD",
                bool,
                production=True,
                doc="The HSTS header allows browsers' preload lists to include the domain "
                "(submitting it is up to you).",
            ),
        ),
    ),
    Group(
        "Processes",
        "Read by the commands of the `Procfile` (and `Procfile.sandbox`), not by Django.",
        (
            Setting(
                "PORT",
                int,
                8000,
                read_by="Procfile, Procfile.sandbox",
                doc="The port of the web process.",
            ),
            Setting(
                "WEB_BIND",
                str,
                "0.0.0.0",  # noqa: S104 (the Procfile's default: a server's web process)
                read_by="Procfile, Procfile.sandbox",
                doc="The address the web process listens on; `127.0.0.1` keeps it to this machine.",
            ),
            Setting(
                "WORKER_CONCURRENCY",
                int,
                2,
                read_by="Procfile, Procfile.sandbox",
                doc="Processes of the Celery worker (`--concurrency`).",
            ),
            Setting(
                "EXPRESS_CONCURRENCY",
                int,
                4,
                read_by="Procfile, Procfile.sandbox",
                doc="Threads of the express worker (`--pool threads --concurrency`): the drains "
                "of tenants without a backlog, side by side in one process (a drain mostly "
                "waits on PostgreSQL and the provider). 4 took a quiet tenant's p95 under a "
                "ten-tenant flood from over a second to under one on 2 cores, where a second "
                "process measured no better than one (`bench/NOTES.md`, issue 22).",
            ),
            Setting(
                "WORKER_NAME",
                str,
                "worker",
                read_by="Procfile, Procfile.sandbox",
                doc="The Celery worker's node name, before `@host` (`--hostname`): give each "
                "worker process group on one machine its own (`worker-a`, `worker-b`).",
            ),
        ),
        see=("Deployment", "operations/deployment.md"),
    ),
    Group(
        "Database",
        "PostgreSQL in production; the embedded demo runs on a SQLite file.",
        (
            Setting(
                "DATABASE_URL",
                str,
                f"sqlite:///{VAR_DIR / 'waypost.sqlite3'}",
                production=REQUIRED,
                test=REQUIRED,
                example="postgres://waypost:pw@127.0.0.1:5432/waypost",
                doc="The database; production refuses SQLite, the test suite needs PostgreSQL.",
            ),
            Setting(
                "CONN_MAX_AGE",
                int,
                60,
                doc="Seconds a database connection is kept for the next request (a new "
                "connection per request costs ~5x on the hot paths).",
            ),
            Setting(
                "CONN_HEALTH_CHECKS",
                bool,
                True,
                production=False,
                doc="A `SELECT 1` before a request reuses a connection. Off in production: it "
                "cost ~14 % on webhooks, and every write is safe to retry (a connection broken "
                "by a database restart fails one request and is replaced).",
            ),
            Setting(
                "DATABASE_REPLICA_URL",
                str,
                "",
                example="postgres://waypost:pw@replica.internal:5432/waypost",
                doc="Optional: a read-only streaming replica of `DATABASE_URL`. The admin's "
                "lists, the operations page and the reports read from it, so on-call work "
                "never competes with sending; everything else, and every write, uses the primary.",
            ),
            Setting(
                "DATABASE_POOLER",
                str,
                "",
                doc="`transaction` when `DATABASE_URL` is a pooler in transaction pooling mode "
                "(PgBouncer's `pool_mode = transaction`): no server-side prepared statements or "
                "cursors, which live in a server session a transaction may not get again. Set "
                "the database's time zone to UTC (`ALTER DATABASE … SET timezone TO 'UTC'`).",
            ),
            Setting(
                "WAYPOST_DB_RETRY_AFTER",
                int,
                5,
                doc="The `Retry-After` (seconds) of a `503 database_unavailable`: a request that "
                "met a database restart or a lost connection.",
            ),
        ),
    ),
    Group(
        "Redis and Celery",
        "The broker carries the tasks; Redis also holds the state the processes share "
        "(coordination, below).",
        (
            Setting(
                "CELERY_BROKER_URL",
                str,
                "memory://",
                production=REQUIRED,
                example="redis://127.0.0.1:6379/0",
                doc="The Celery broker: Redis or AMQP. `memory://` (the embedded demo) runs the "
                "API and the worker in one process.",
            ),
            Setting(
                "REDIS_URL",
                str,
                Derived("`CELERY_BROKER_URL` when that is Redis, else empty"),
                test=REQUIRED,
                doc="Redis for the state the processes share; set it with an AMQP broker.",
            ),
            Setting(
                "CELERY_BROKER_CONNECTION_TIMEOUT",
                float,
                2.0,
                doc="How long a publish keeps trying a dead broker: the API answers 202 after "
                "at most about this long, the message left `queued` for the re-drive.",
            ),
            Setting(
                "CELERY_VISIBILITY_TIMEOUT",
                int,
                3600,
                doc="Seconds before Redis redelivers the task of a worker that died (the tasks "
                "are acknowledged late).",
            ),
            Setting(
                "CELERY_UNACKED_RESTORE_INTERVAL",
                int,
                10,
                doc="kombu looks for such tasks every interval x throttle seconds.",
            ),
            Setting(
                "CELERY_UNACKED_RESTORE_THROTTLE",
                int,
                10,
                doc="See `CELERY_UNACKED_RESTORE_INTERVAL`.",
            ),
            Setting(
                "CELERY_UNACKED_MUTEX_EXPIRE",
                int,
                300,
                doc="Seconds the lock of one such look lasts (kombu's `unacked_mutex_expire`): "
                "a worker killed while it held the lock holds up every redelivery this long; "
                "set shorter than one look takes, two workers may redeliver the same task, "
                "which then runs twice.",
            ),
            Setting(
                "CELERY_DB_REUSE_MAX",
                int,
                1000,
                doc="Tasks a worker runs on one database connection (Celery's Django fix-up "
                "closes it around every task otherwise; reusing it measured ~3x on task "
                "chains).",
            ),
            Setting(
                "CELERY_IMPORTS",
                list,
                [],
                doc="Extra task modules for the worker (the benchmarks load `bench.tasks`).",
            ),
            Setting(
                "REDIS_SENTINEL_MASTER",
                str,
                "mymaster",
                doc="With Redis behind Sentinel — `CELERY_BROKER_URL` (and `REDIS_URL`) as "
                "`sentinel://host1:26379/0;sentinel://host2:26379/0`, one URL per sentinel — "
                "the name the sentinels monitor the primary under. After a failover every "
                "process finds the new primary by itself.",
            ),
            Setting(
                "REDIS_SENTINEL_PASSWORD",
                str,
                "",
                doc="The sentinels' own password, if they have one (`requirepass` in "
                "sentinel.conf); Redis's is the URL's, as for `redis://`.",
            ),
            Setting(
                "WAYPOST_SEND_QUEUES",
                int,
                4,
                doc="Shared express queues (`send.0`, `send.1`, …): tenants' drains and small "
                "batches, each tenant on one by a hash of its id. Not one queue per tenant: a "
                "worker's start and every broker poll grew with the tenant count "
                "(`core/queues.py`, `bench/results/tenants-*.md`). The same on every process.",
            ),
            Setting(
                "WORKER_LANES",
                str,
                "all",
                doc="The queues a Celery worker consumes: `all` (the default queue, every "
                "shared lane, the tenants' own queues) or `express` (the express lanes only: "
                "the Procfile's `express` worker, never busy with a backlog's batch).",
            ),
            Setting(
                "WAYPOST_BULK_QUEUES",
                int,
                2,
                doc="Shared bulk queues (`bulk.0`, …): the steps of full batches, a backlog's "
                "heavy work, kept out of the express queues' way. The same on every process.",
            ),
        ),
    ),
    Group(
        "Coordination",
        "Where the processes' shared state lives: the doorbells' rings, the per-sender and "
        "per-recipient rate limits, the API throttle.",
        (
            Setting(
                "WAYPOST_COORDINATION",
                str,
                Derived("`memory` with the `memory://` broker, else `redis`"),
                doc="`redis` (`REDIS_URL`), or `memory`: this process's memory, only for the "
                "embedded demo, whose API and worker are one process. Set it only to override; "
                "`memory` beside a shared broker is refused at start.",
            ),
            Setting(
                "WAYPOST_COUNTDOWN_MAX",
                float,
                300.0,
                doc="The longest broker countdown of a delayed ring (seconds); a longer wait "
                "is a chain of them.",
            ),
        ),
    ),
    Group(
        "WhatsApp (Meta)",
        "Meta's Cloud API and its webhooks.",
        (
            Setting(
                "WHATSAPP_APP_SECRET",
                str,
                "",
                production=REQUIRED,
                doc="The Meta app's secret: verifies the signature of every webhook Meta posts.",
            ),
            Setting(
                "WHATSAPP_VERIFY_TOKEN",
                str,
                "",
                production=REQUIRED,
                doc="Answers Meta's webhook verification handshake.",
            ),
            Setting(
                "WHATSAPP_GRAPH_VERSION",
                str,
                CURRENT_GRAPH_VERSION,
                doc="The Graph API version of every request (`whatsapp/meta.py`); "
                f"{OLDEST_SUPPORTED_GRAPH_VERSION}, the oldest Meta still supports, passes the "
                "same wire-format suite.",
            ),
            Setting(
                "WHATSAPP_GRAPH_URL",
                str,
                "https://graph.facebook.com",
                doc="Meta's Graph API base URL.",
            ),
        ),
        see=("Webhooks", "concepts/webhooks.md"),
    ),
    Group(
        "360dialog",
        "360dialog's hosted Cloud API; each sender's API key is a credential variable (below).",
        (
            Setting(
                "DIALOG360_BASE_URL",
                str,
                "https://waba-v2.360dialog.io",
                doc="360dialog's Cloud API base URL.",
            ),
            Setting(
                "DIALOG360_WEBHOOK_SECRET",
                str,
                "",
                doc="When set, 360dialog's deliveries must carry a valid "
                "`x-360dialog-signature` (the partner's platform secret).",
            ),
        ),
    ),
    Group(
        "Sender credentials",
        "Each sender names the variable that holds its secret; the secret is read when it is "
        "needed and never stored in the database.",
        (
            Setting(
                "WAYPOST_<SLUG>__<NAME>",
                str,
                read_by="tenants.models.SenderNumber.credential",
                example="WAYPOST_ACME__ACCESS_TOKEN=EAAG...",
                doc="A sender's access token (Meta) or API key (360dialog): `WAYPOST_`, the "
                "tenant's slug upper-cased (`-` as `_`), two underscores, a name.",
            ),
        ),
        see=("Tenants, senders and keys", "operations/tenants.md"),
    ),
    Group(
        "Sandbox",
        "A stand-in for Meta, for a stack without Meta credentials (`Procfile.sandbox`, "
        "`make stack`). Its other knobs each have a `SANDBOX_*` variable.",
        (
            Setting(
                "WAYPOST_SANDBOX_PROVIDER",
                bool,
                False,
                local=True,
                doc="Senders may use the provider `sandbox`, a test double. In production only "
                "when set explicitly, and reported at every start.",
            ),
            Setting(
                "SANDBOX_URL",
                str,
                "http://127.0.0.1:8025",
                test="http://127.0.0.1:9",
                doc="Where Waypost reaches senders of provider `sandbox` (the tests' default "
                "reaches nothing: never a demo running on this machine).",
            ),
            Setting(
                "SANDBOX_PORT",
                int,
                8025,
                read_by="Procfile.sandbox",
                doc="The sandbox process's port.",
            ),
            Setting(
                "SANDBOX_WEBHOOK_URL",
                str,
                "http://127.0.0.1:8000/webhooks/whatsapp",
                read_by="Procfile.sandbox",
                doc="Where the sandbox posts its webhooks.",
            ),
            Setting(
                "SANDBOX_APP_SECRET",
                str,
                "",
                read_by="the sandbox (python -m sandbox)",
                doc="The secret the sandbox signs its webhooks with: the stack's "
                "`WHATSAPP_APP_SECRET`. Required by `Procfile.sandbox`.",
            ),
            Setting(
                "SANDBOX_CONTROL_TOKEN",
                str,
                "",
                read_by="the sandbox (python -m sandbox)",
                doc="The bearer token of the sandbox's `/_sandbox/*` control endpoints. "
                "Required by `Procfile.sandbox`.",
            ),
        ),
        see=("The sandbox", "concepts/sandbox.md"),
    ),
    Group(
        "Send path",
        "How fast and how hard the workers send.",
        (
            Setting(
                "WAYPOST_PROVIDER_CONNECT_TIMEOUT",
                float,
                3.0,
                doc="Seconds to connect to Meta, 360dialog or the sandbox.",
            ),
            Setting(
                "WAYPOST_PROVIDER_READ_TIMEOUT",
                float,
                10.0,
                doc="Seconds to wait for the answer to a submit; past it the outcome is `unknown`.",
            ),
            Setting(
                "WAYPOST_RATE_BURST_SECONDS",
                float,
                0.5,
                doc="A sender's bucket holds this many seconds of its rate: below 1 s, so that "
                "jitter cannot overrun Meta's own bucket (`core/ratelimit.py`).",
            ),
            Setting(
                "WAYPOST_SENDER_MPS_CAP",
                int,
                THROUGHPUT_UPGRADE_MPS,
                doc="No sender sends more messages per second than this, a provider's "
                "`THROUGHPUT_UPGRADE` included (the default is Meta's most for one number).",
            ),
            Setting(
                "WAYPOST_PAIR_INTERVAL",
                float,
                6.0,
                doc="Seconds between messages to one recipient (Meta's pair rate limit).",
            ),
            Setting(
                "WAYPOST_PAIR_BURST",
                int,
                10,
                doc="Messages allowed at once to one recipient (Meta allows 45).",
            ),
            Setting(
                "WAYPOST_BATCH_SIZE",
                int,
                100,
                doc="Messages a drain claims and sends in one pass, a tenant's turn: another "
                "tenant's message waits at most one pass per worker process. With the chained "
                "steps, 100 sent 11 % more per second than 50, for another tenant's singles p95 "
                "172 ms instead of 136 ms under a 5,000-message flood (`bench/NOTES.md`).",
            ),
            Setting(
                "WAYPOST_CHAIN_MIN_BATCH",
                int,
                10,
                doc="A claimed batch of at least this many messages runs its transform, submit "
                "and check steps as chained Celery tasks; a smaller one (a lone OTP) runs them "
                "in the drain's own task: three task hops cost more than a few messages' work "
                "and would queue an OTP three more times (`bench/NOTES.md`). 1 chains every "
                "batch.",
            ),
            Setting(
                "WAYPOST_LOOKUP_CACHE_SECONDS",
                float,
                1.0,
                test=0.0,
                doc="How long a process may use an API key, tenant, template or sender it read "
                "from the database for a send before it reads it again (`core.lookups`): a key "
                "revoked or a template paused in another process takes effect within this time "
                "(at once in the process that changed it). 0 reads every time (the tests).",
            ),
            Setting(
                "WAYPOST_SUBMIT_CONCURRENCY",
                int,
                32,
                doc="Concurrent submits per worker process.",
            ),
            Setting(
                "WAYPOST_RECORD_PATIENCE",
                float,
                60.0,
                doc="Seconds a worker keeps trying to record the answers to a submit through "
                "database errors (only its memory holds them); past it the messages become "
                "`unknown`.",
            ),
        ),
        see=("The send pipeline", "concepts/pipeline.md"),
    ),
    Group(
        "Reconciler",
        "The thresholds of the reconciler's rules that are the same for every tenant; the "
        "per-tenant ones are in the tenant settings below.",
        (
            Setting(
                "WAYPOST_SUBMIT_LOST_AFTER",
                float,
                120.0,
                doc="A claimed batch whose submit step has not begun this long after the claim "
                "is taken as lost (its chained task was dropped: a broker that restarted "
                "empty): its messages are sent again — nothing of it left. Long enough for the "
                "busiest queue to reach a chained step.",
            ),
            Setting(
                "WAYPOST_SUBMIT_STUCK_AFTER",
                float,
                Derived("`WAYPOST_PROVIDER_CONNECT_TIMEOUT` + `WAYPOST_PROVIDER_READ_TIMEOUT` + 5"),
                doc="A message still `submitting` this long after its submit began lost its "
                "worker mid-request: it becomes `unknown`.",
            ),
            Setting(
                "WAYPOST_REDRIVE_AFTER",
                float,
                300.0,
                doc="A message due for longer than this is counted and marked `redriven` (the "
                "reconciler nudges every tenant with due messages every minute regardless); "
                "steps are idempotent, so it is processed twice, never sent twice.",
            ),
            Setting(
                "WAYPOST_ORPHAN_TTL",
                int,
                7 * 24 * 3600,
                doc="Seconds (7 days) after which parked statuses that no message claimed are "
                "expired.",
            ),
            Setting(
                "WAYPOST_WEBHOOK_LAG_ALERT",
                int,
                60,
                doc="A stored webhook delivery still pending after this many seconds is "
                "processed by the reconciler and logged as an error.",
            ),
            Setting(
                "WAYPOST_HEALTH_POLL_SECONDS",
                int,
                900,
                doc="Each active sender's messaging limit and quality rating are asked of the "
                "provider at most this often (`GET /{phone-number-id}`, the beat's "
                "`operations.poll_sender_health` job); webhooks tell changes in between.",
            ),
        ),
        see=("The reconciler", "concepts/reconciler.md"),
    ),
    Group(
        "Webhooks",
        "The deliveries Meta and 360dialog post to Waypost.",
        (
            Setting(
                "WEBHOOK_MAX_BYTES",
                int,
                3 * 1024 * 1024,
                doc="Larger webhook bodies are refused with 413 (Meta's are up to 3 MB).",
            ),
            Setting(
                "WAYPOST_WEBHOOK_RETENTION_DAYS",
                int,
                30,
                doc="`manage.py retention` deletes processed (and invalid) raw webhook "
                "deliveries older than this many days; 0 keeps them.",
            ),
        ),
        see=("Webhooks", "concepts/webhooks.md"),
    ),
    Group(
        "Callbacks",
        "The calls Waypost makes to its clients' URLs.",
        (
            Setting(
                "WAYPOST_CALLBACK_REQUIRE_HTTPS",
                bool,
                False,
                production=True,
                doc="Callback URLs must be https.",
            ),
            Setting(
                "WAYPOST_CALLBACK_ALLOW_PRIVATE",
                bool,
                False,
                local=True,
                doc="Let callbacks reach loopback, link-local (cloud metadata) or private "
                "addresses, on any port (the demo's receiver listens on loopback).",
            ),
            Setting(
                "WAYPOST_CALLBACK_LEASE",
                int,
                60,
                doc="Seconds a deliverer owns the callbacks it claimed, and the tenant it "
                "delivers (one deliverer of several at a time: in order); after a crash they go "
                f"out again, from another deliverer. Keep it above an attempt's "
                f"{CALLBACK_ATTEMPT_SECONDS:g} s: a deliverer hands back what it could not "
                "attempt within its lease.",
            ),
        ),
        see=("Client callbacks", "concepts/callbacks.md"),
    ),
    Group(
        "Campaigns",
        "How campaigns are paced beside the tenant's own traffic, and how big an audience may be.",
        (
            Setting(
                "WAYPOST_CAMPAIGN_SHARE",
                float,
                0.8,
                doc="The share of its sender's messages per second a campaign may use (unless "
                "the campaign sets its own, lower, rate): the rest is the room kept for the "
                "tenant's transactional messages.",
            ),
            Setting(
                "WAYPOST_CAMPAIGN_LEAD_SECONDS",
                float,
                1.0,
                doc="Seconds of a campaign's sending released ahead as queued messages: an OTP "
                "sent during a campaign waits behind at most this much campaign work; pause "
                "takes effect within it.",
            ),
            Setting(
                "WAYPOST_CAMPAIGN_MAX_ROWS",
                int,
                200_000,
                doc="The most rows one campaign's audience may have.",
            ),
            Setting(
                "WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES",
                int,
                100 * 1024 * 1024,
                doc="The largest audience file (CSV) one request may upload, in bytes; a "
                "larger one is refused (413) before it is read. JSON audiences are bounded by "
                "`WEBHOOK_MAX_BYTES` (the request body read into memory).",
            ),
        ),
        see=("Campaigns", "concepts/campaigns.md"),
    ),
    Group(
        "Media",
        "Files uploaded for template headers (`POST /api/v1/media`), kept in the database and "
        "uploaded to the provider again before their media id expires.",
        (
            Setting(
                "WAYPOST_MEDIA_MAX_BYTES",
                int,
                16 * 1024 * 1024,
                doc="The largest file `POST /api/v1/media` takes (413 above it); Meta's own "
                "limits still apply below it: images 5 MB, videos 16 MB, documents 100 MB.",
            ),
            Setting(
                "WAYPOST_MEDIA_REFRESH_MARGIN",
                int,
                86_400,
                doc="Seconds before a provider's media id expires (30 days after its upload) "
                "from which a send naming the file uploads it again first.",
            ),
        ),
    ),
    Group(
        "Metrics",
        "`/metrics`, for Prometheus.",
        (
            Setting(
                "WAYPOST_METRICS_TOKEN",
                str,
                "",
                doc="With a token, `/metrics` needs `Authorization: Bearer <token>`. Production "
                "needs one, unless `WAYPOST_METRICS_ALLOW` lists the networks that may scrape "
                "without it.",
            ),
            Setting(
                "WAYPOST_METRICS_ALLOW",
                list,
                ["127.0.0.1/32", "::1/128"],
                production=[],
                doc="The networks that may scrape `/metrics` without the token. None in "
                "production: behind a reverse proxy on the same host, every client comes from "
                "loopback.",
            ),
            Setting(
                "PROMETHEUS_MULTIPROC_DIR",
                str,
                production=str(VAR_DIR / "metrics"),
                doc="Where each process of this host writes its metrics for `/metrics` to add "
                "up (Prometheus' multiprocess mode).",
            ),
        ),
        see=("Metrics, alerts, logs", "operations/monitoring.md"),
    ),
    Group(
        "Logging",
        "Every line goes to the console; phone numbers are masked in every line.",
        (
            Setting("LOG_LEVEL", str, "INFO", doc="The root logger's level."),
            Setting(
                "LOG_FORMAT",
                str,
                "plain",
                doc="`json`: one JSON object per line; `plain` otherwise.",
            ),
        ),
    ),
    Group(
        "Sentry",
        "Off unless `SENTRY_DSN` is set; no personal data and no local variables are sent.",
        (
            Setting("SENTRY_DSN", str, "", doc="Switches Sentry on."),
            Setting("SENTRY_ENVIRONMENT", str, "development", doc="The events' environment."),
            Setting(
                "SENTRY_TRACES_SAMPLE_RATE",
                float,
                0.0,
                doc="The share of requests traced (0 to 1).",
            ),
        ),
    ),
    Group(
        "Fault injection",
        "For the crash tests only.",
        (
            Setting(
                "WAYPOST_CRASH_POINTS",
                list,
                [],
                doc="Names of the points where a worker kills itself (SIGKILL).",
            ),
            Setting(
                "WAYPOST_CRASH_MARKER_DIR",
                str,
                Derived("the system's temporary directory"),
                read_by="messaging/send/faults.py",
                doc="Where a crash point records that it fired (each fires once).",
            ),
        ),
    ),
)

SETTINGS: dict[str, Setting] = {s.name: s for group in GROUPS for s in group.settings}


class SettingsEnv(environ.Env):
    """django-environ's ``Env`` for one settings module (``base``, ``local``, ``production``,
    ``test``): casts and defaults come from the declarations above.

    It refuses, at the read, what would let this list drift from the code: a variable not
    declared here (or declared as read by something other than the settings), one this module
    declares no default for, a cast other than the declared one, and a default given at the
    call — except for a :class:`Derived` default, which the call must give.
    """

    def __init__(self, module: str):
        if module not in MODULES:
            raise ValueError(f"unknown settings module {module!r}: one of {MODULES}")
        self.module = module
        scheme = {}
        for s in SETTINGS.values():
            default = s.default_in(module)
            if s.read_by or default is NOT_READ:
                continue
            if default is REQUIRED or isinstance(default, Derived):
                scheme[s.name] = s.cast
            else:  # a list is copied: the settings may change theirs, never the declaration
                scheme[s.name] = (s.cast, list(default) if isinstance(default, list) else default)
        super().__init__(**scheme)
        self._depth = 0

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        # A value that starts with `$` names another variable (django-environ's proxy): that
        # inner read is the outer one's business, not a declaration of its own.
        if self._depth == 0:
            self._check(var, cast, default)
        self._depth += 1
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        finally:
            self._depth -= 1

    def _check(self, name: str, cast, default) -> None:
        where = f"config.settings.{self.module}"
        s = SETTINGS.get(name)
        if s is None or s.read_by:
            raise ImproperlyConfigured(
                f"{where} reads {name}, which config/env.py does not declare as a setting: "
                "declare it there (type, default, meaning), then run "
                "`python -m config.reference --write` for .env.example and the docs."
            )
        declared = s.default_in(self.module)
        if declared is NOT_READ:
            raise ImproperlyConfigured(
                f"{where} reads {name}, but config/env.py declares no default for it there."
            )
        if cast is not None and cast is not s.cast:
            raise ImproperlyConfigured(
                f"{where} reads {name} as {cast.__name__}; config/env.py declares "
                f"{s.cast.__name__}."
            )
        derived = isinstance(declared, Derived)
        if derived and default is self.NOTSET:
            raise ImproperlyConfigured(
                f"{where} reads {name} without its default, derived from other settings "
                f"({declared.what}): pass it."
            )
        if not derived and default is not self.NOTSET:
            raise ImproperlyConfigured(
                f"{where} gives {name} a default; its default is declared in config/env.py."
            )

    def missing_required(self) -> list[str]:
        """The variables this module requires that are unset or empty, in declaration order."""
        self._depth += 1  # a presence test, not one of the module's reads
        try:
            return [
                s.name
                for s in SETTINGS.values()
                if s.default_in(self.module) is REQUIRED
                and not self.get_value(s.name, cast=str, default="")
            ]
        finally:
            self._depth -= 1

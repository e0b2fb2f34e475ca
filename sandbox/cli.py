"""``python -m sandbox``: start the Cloud API sandbox (on 127.0.0.1 by default).

Every knob of :class:`sandbox.config.SandboxConfig` is a flag (``--webhook-duplicate-rate
0.2``), an environment variable (``SANDBOX_WEBHOOK_DUPLICATE_RATE``) and a key of ``POST
/_sandbox/config``; flags win over the environment. Two are required, on purpose:

* ``--control-token`` (``SANDBOX_CONTROL_TOKEN``): the bearer token of the control endpoints
  (``/_sandbox/*``), which change its behaviour and make it post signed webhooks — or
  ``--open-control``, for a throw-away demo;
* ``--app-secret`` (``SANDBOX_APP_SECRET``) when ``--webhook-url`` is given: what it signs
  webhooks with. It is never taken from Waypost's ``WHATSAPP_APP_SECRET`` by itself: a sandbox
  that signed with a production secret would let anyone who can reach it forge Meta webhooks.

No Django here: the sandbox is written independently of Waypost (and is not an installed app of
any settings module).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from sandbox.config import SandboxConfig
from sandbox.server import run

JSON_FIELDS = ("error_rates", "fail_rules")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="A local stand-in for Meta's WhatsApp Cloud API, with fault injection.",
    )
    for f in dataclasses.fields(SandboxConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "fail_rules":
            parser.add_argument(
                "--fail-pattern",
                action="append",
                dest="fail_pattern",
                default=None,
                metavar="REGEX[:CODE]",
                help="recipients matching REGEX fail via a `failed` status (CODE 131026)",
            )
        elif f.name in JSON_FIELDS:
            parser.add_argument(
                flag, dest=f.name, default=None, help='JSON, e.g. {"131000": 0.05, "130429": 0.01}'
            )
        elif str(f.type).startswith("bool"):
            parser.add_argument(flag, dest=f.name, action="store_true", default=None)
        else:
            parser.add_argument(flag, dest=f.name, default=None)
    return parser


def config_from(argv: list[str] | None = None, environ: dict | None = None) -> SandboxConfig:
    """The configuration: environment, then flags; ``ValueError`` when it cannot start."""
    options = vars(parser().parse_args(argv))
    config = SandboxConfig.from_env(environ)
    changes = {}
    for f in dataclasses.fields(SandboxConfig):
        value = options.get(f.name)
        if value is not None:
            changes[f.name] = json.loads(value) if f.name in JSON_FIELDS else value
    if options.get("fail_pattern"):
        changes["fail_rules"] = [_fail_rule(p) for p in options["fail_pattern"]]
    config.update(changes)
    config.check_startable()
    return config


def _fail_rule(pattern: str) -> list:
    regex, _, code = pattern.rpartition(":")
    if regex and code.isdigit():
        return [regex, int(code)]
    return [pattern, 131026]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = config_from(argv)
    except (ValueError, TypeError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(
        f"Sandbox on http://{config.host}:{config.port} "
        f"(seed {config.seed}; webhooks to {config.webhook_url or 'nowhere'})",
        flush=True,
    )
    run(config)

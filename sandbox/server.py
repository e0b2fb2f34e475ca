"""The sandbox's HTTP server (aiohttp): Meta's Cloud API routes, 360dialog's, and /_sandbox/.

Meta-shaped routes
  POST /{version}/{phone_number_id}/messages            send (Bearer token; `to` or, since
                                                        2026, a BSUID in `recipient`)
  POST /{version}/{phone_number_id}/marketing_messages  MM Lite: MARKETING templates only
  GET  /{version}/{waba_id}/message_templates           list, Graph cursor paging
  POST /{version}/{waba_id}/message_templates           create (PENDING, approved later)
  POST /{version}/{phone_number_id}/media               upload (multipart) → {"id"}
  GET  /{version}/{id}                                  a media's URL and metadata, or a
                                                        phone number's ?fields= (its limit,
                                                        quality_rating, throughput…)
  DELETE /{version}/{media_id}                          delete an upload
  GET  /whatsapp_business/attachments/?mid=             download an upload (the media URL)
360dialog-shaped
  POST /messages  (and /v1/messages)                    send (D360-API-KEY header)
Control and ground truth (``Authorization: Bearer <control token>``, all but ping; see
``SandboxConfig.control_token``)
  GET  /_sandbox/ping                                   liveness (also the benchmark baseline)
  GET  /_sandbox/messages[?biz_opaque_callback_data=]   every accepted message
  GET  /_sandbox/stats                                  counters
  GET/POST /_sandbox/config                             read / change knobs at run time
  POST /_sandbox/reset                                  forget messages, limits, counters
                                                        (``{"everything": true}``: templates too)
  POST /_sandbox/numbers                                register a number with its WABA
  POST /_sandbox/template_status                        change a template's status (+ webhook)
  POST /_sandbox/inbound                                a user "replies": inbound webhook
  POST /_sandbox/user_preferences                       a user stops/resumes marketing
  POST /_sandbox/template_category                      Meta recategorizes a template
  POST /_sandbox/template_components                    a template's body changes
  (POST /_sandbox/numbers with "throughput_upgrade": a THROUGHPUT_UPGRADE webhook)
  GET/POST /_sandbox/limits                             portfolios' messaging limits, counts
                                                        (+ business_capability_update)
  POST /_sandbox/quality                                quality rating (+ webhook)
  POST /_sandbox/account_alert                          an account_alerts webhook
  POST /_sandbox/spam_limit                             131048 on every send from a number
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hmac
import json
import logging
import random
import re
import socket
import struct
import time
from typing import Any

from aiohttp import web

from sandbox import checks, limits, wire
from sandbox.accounts import Accounts
from sandbox.config import SandboxConfig
from sandbox.media import MediaRoutes
from sandbox.state import MessageRecord, State, TokenBucket
from sandbox.users import Directory
from sandbox.webhooks import Dispatcher

log = logging.getLogger("sandbox")
JSON = "application/json"
# Settings POST /_sandbox/config may not change: where it listens and who may control it.
FIXED_AT_START = ("host", "port", "control_token", "open_control")
SERVICE_WINDOW_S = 24 * 3600  # §6


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.dumps(data), status=status, content_type=JSON)


def _needs_phone_number(template: dict) -> bool:
    """Copy-code, one-tap and zero-tap authentication templates (an OTP button) cannot go to
    a BSUID (§11.1: 131062)."""
    if str(template.get("category", "")).upper() != "AUTHENTICATION":
        return False
    return any(
        str(button.get("type", "")).upper() in ("OTP", "COPY_CODE")
        for component in template.get("components") or []
        if str(component.get("type", "")).upper() == "BUTTONS"
        for button in component.get("buttons") or []
    )


class Sandbox(Accounts, MediaRoutes):
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        if config.seed is None:
            config.seed = random.SystemRandom().randrange(2**31)
        self.rng = random.Random(config.seed)
        self.state = State()
        self.users = Directory(config)
        self.dispatcher = Dispatcher(config, lambda: self.state.stats, self.rng)
        self.pending_approvals: set[asyncio.Task] = set()

    # --- helpers -------------------------------------------------------------------------------

    def error(self, error: wire.MetaError) -> web.Response:
        self.state.stats.rejected[error.code] += 1
        return json_response(wire.error_body(error, self.rng), status=error.http_status)

    def version(self, request: web.Request) -> int:
        match = re.match(r"v(\d+)", request.match_info.get("version", ""))
        return int(match.group(1)) if match else 24

    def check_token(self, token: str) -> None:
        if not token or (self.config.token and token != self.config.token):
            raise wire.MetaError(190, "Invalid OAuth access token - Cannot parse access token")

    async def latency(self) -> None:
        cfg = self.config
        delay = cfg.latency_ms
        if cfg.latency_distribution == "uniform":
            delay += self.rng.uniform(0, cfg.latency_spread_ms)
        elif cfg.latency_distribution == "exponential" and cfg.latency_spread_ms > 0:
            delay += self.rng.expovariate(1 / cfg.latency_spread_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    @staticmethod
    def reset_connection(request: web.Request) -> web.Response:
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:  # SO_LINGER 0: close with RST, as a dropped connection does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if request.transport:
            request.transport.abort()
        return web.Response(status=500)

    # --- send ----------------------------------------------------------------------------------

    async def meta_send(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        number = self.state.number(request.match_info["phone_number_id"])
        return await self.send(request, token, number, self.version(request))

    async def marketing_send(self, request: web.Request) -> web.StreamResponse:
        """Marketing Messages Lite (§11.5): MARKETING templates only, same body and answer."""
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        number = self.state.number(request.match_info["phone_number_id"])
        return await self.send(
            request, token, number, self.version(request), endpoint="marketing_messages"
        )

    async def dialog360_send(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("D360-API-KEY", "")
        if not key or (self.config.token and key != self.config.token):
            self.state.stats.requests += 1
            self.state.stats.rejected["d360_auth"] += 1
            return json_response(wire.dialog360_error(401, "Invalid api key"), status=401)
        return await self.send(request, key, self.state.number_for_d360_key(key), 24)

    async def send(
        self, request: web.Request, token: str, number, version: int, endpoint: str = "messages"
    ) -> web.StreamResponse:
        cfg, stats, rng = self.config, self.state.stats, self.rng
        stats.requests += 1
        if cfg.connection_reset_rate and rng.random() < cfg.connection_reset_rate:
            stats.connection_resets += 1
            return self.reset_connection(request)
        await self.latency()
        for status, code, rate in ((500, 131000, cfg.http_500_rate), (503, 2, cfg.http_503_rate)):
            if rate and rng.random() < rate:
                stats.http_errors[status] += 1
                return json_response(wire.error_body(wire.MetaError(code), rng), status=status)
        try:
            self.check_token(token)
            if number.phone_number_id in self.state.spam_limited:  # POST /_sandbox/spam_limit
                raise wire.MetaError(131048)
            try:
                body = json.loads(await request.read())
            except ValueError:
                raise wire.MetaError(100, "The request body is not valid JSON.") from None
            message = checks.check_envelope(body)
            if message.user_id:  # a BSUID the sandbox issued resolves to its user's number
                message = dataclasses.replace(message, wa_id=self.users.wa_id_for(message.user_id))
            template = self.check_content(number, message)
            if endpoint == "marketing_messages" and (template or {}).get("category") != "MARKETING":
                raise wire.MetaError(
                    131009, "The marketing_messages endpoint sends MARKETING templates only."
                )
            self.check_rate_limits(number, message)
            for code, rate in cfg.error_rates.items():
                if rate and rng.random() < rate:
                    raise wire.MetaError(int(code))
        except wire.MetaError as exc:
            return self.error(exc)

        record = self.accept(number, message, template, body, version, endpoint)
        if cfg.timeout_after_accept_rate and rng.random() < cfg.timeout_after_accept_rate:
            # The ambiguous submit: accepted, webhooks on their way, no answer ever.
            record.answered = False
            stats.timeouts_after_accept += 1
            await asyncio.sleep(cfg.hang_seconds)
            return self.reset_connection(request)
        status = "accepted"
        if cfg.held_rate and rng.random() < cfg.held_rate:
            status = "held_for_quality_assessment"
        return json_response(
            wire.send_response(
                message.to, message.wa_id, record.wamid, status, user_id=record.user_id
            )
        )

    def in_service_window(self, number, message: checks.SendRequest) -> bool:
        """Whether the user wrote to this number in the last 24 hours (§6)."""
        user = message.wa_id or message.user_id
        last = self.state.last_inbound.get((number.phone_number_id, user))
        return last is not None and time.time() - last <= SERVICE_WINDOW_S

    def check_content(self, number, message: checks.SendRequest) -> dict | None:
        if message.type == "text":  # free-form: only inside the 24-hour window (§6)
            if not self.in_service_window(number, message):
                raise wire.MetaError(131047)
            return None
        template = self.state.find_template(number, message.template_name, message.language)
        if template is None:
            raise wire.MetaError(
                132001,
                f"template name ({message.template_name}) does not exist in {message.language}",
            )
        status = template["status"]
        if status == "PAUSED":
            raise wire.MetaError(132015)
        if status == "DISABLED":
            raise wire.MetaError(132016)
        if status != "APPROVED":
            raise wire.MetaError(
                132001, f"template ({message.template_name}) is {status}, not APPROVED"
            )
        if not message.to and _needs_phone_number(template):
            raise wire.MetaError(131062)
        checks.check_template_parameters(template, message.components)
        self.check_media_ids(message.components)
        return template

    def check_rate_limits(self, number, message: checks.SendRequest) -> None:
        cfg, now = self.config, time.monotonic()
        mps = number.mps if number.mps is not None else cfg.default_mps
        if mps:
            bucket = self.state.buckets.get(number.phone_number_id)
            if bucket is None:
                bucket = self.state.buckets[number.phone_number_id] = TokenBucket(mps, now)
            if not bucket.take(mps, now):
                raise wire.MetaError(130429)
        user = message.wa_id or message.user_id
        if cfg.pair_burst > 0 and not self.state.pairs.take(
            (number.phone_number_id, user), cfg.pair_interval, cfg.pair_burst, now
        ):
            raise wire.MetaError(131056)

    def accept(
        self,
        number,
        message: checks.SendRequest,
        template: dict | None,
        body: dict,
        version: int,
        endpoint: str = "messages",
    ) -> MessageRecord:
        user_id = message.user_id or self.users.user_id(number.waba_id or "0", message.wa_id)
        failure = self.delivery_failure(number, message, template)
        record = MessageRecord(
            wamid=wire.new_wamid(),
            phone_number_id=number.phone_number_id,
            to=message.to,
            wa_id=message.wa_id,
            type=message.type,
            template=(
                {"name": message.template_name, "language": message.language} if template else None
            ),
            biz_opaque_callback_data=message.biz_opaque_callback_data,
            logical_key=State.logical_key(
                number.phone_number_id, body, message.biz_opaque_callback_data
            ),
            accepted_at=time.time(),
            user_id=user_id,
            by_phone=bool(message.to),
            endpoint=endpoint,
            limit_refused=isinstance(failure, limits.LimitReached),
        )
        self.state.record(record)
        category = (template or {}).get("category", "SERVICE")
        self.plan_statuses(number, record, category, version, failure)
        return record

    def delivery_failure(
        self, number, message: checks.SendRequest, template: dict | None
    ) -> wire.MetaError | None:
        """Why an accepted message will end in a `failed` status, if it will: a fail rule on
        its recipient, or the portfolio's messaging limit — a template outside the user's
        service window to a user the portfolio has not reached in the moving window, when it
        has reached its limit (sandbox/limits.py). A message that will fail reaches no one, so
        only the others are counted."""
        code = next(
            (code for pattern, code in self.config.fail_rules if re.search(pattern, message.to)),
            None,
        )
        if code is not None:
            return wire.MetaError(code)
        if template is None or self.in_service_window(number, message):
            return None
        portfolio = self.state.portfolio(self.state.portfolio_key(number.waba_id))
        user = message.wa_id or message.user_id
        if portfolio.admit(user, time.time(), self.config.limit_window_seconds):
            return None
        self.state.stats.limit_refused += 1
        return limits.LimitReached()

    def plan_statuses(
        self,
        number,
        record: MessageRecord,
        category: str,
        version: int,
        failure: wire.MetaError | None = None,
    ) -> None:
        """sent → delivered → read (or one `failed` carrying ``failure``), at configured
        offsets; with reorder on, the same times are dealt to the statuses in shuffled order."""
        cfg = self.config
        if failure is not None:
            plan = [("failed", cfg.sent_after_ms)]
        else:
            plan = [("sent", cfg.sent_after_ms), ("delivered", cfg.delivered_after_ms)]
            if self.rng.random() < cfg.read_rate:
                plan.append(("read", cfg.read_after_ms))
        offsets = [offset for _, offset in plan]
        if cfg.webhook_reorder:
            self.rng.shuffle(offsets)
        pricing = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": category.lower(),
        }
        for (status, natural_offset), offset in zip(plan, offsets, strict=True):
            event: dict[str, Any] = {
                "id": record.wamid,
                "status": status,
                # The event's own time; reordering changes only when it is delivered.
                "timestamp": str(int(record.accepted_at + natural_offset / 1000)),
                "recipient_id": record.wa_id if record.by_phone else record.user_id,
            }
            # 2026 (§11.1): the BSUID on every status but a failed one to a phone number; a
            # contacts[] entry beside every status but a failed one.
            if status != "failed" or not record.by_phone:
                event["recipient_user_id"] = record.user_id
            contact = None
            if status != "failed" or cfg.failed_status_contacts:
                contact = self.status_contact(number, record, with_username=status != "sent")
            if record.biz_opaque_callback_data:
                event["biz_opaque_callback_data"] = record.biz_opaque_callback_data
            if status == "sent" and version <= 23:  # §4.9 (a): ≤v23 carries both on `sent`
                event["conversation"] = {
                    "id": record.wamid[-32:],
                    "expiration_timestamp": str(int(record.accepted_at) + 86400),
                    "origin": {"type": category.lower()},
                }
                event["pricing"] = pricing
            elif status == "delivered" and version > 23:  # §4.9 (b)/(c): v24 moves pricing
                event["pricing"] = pricing
            elif status == "failed":
                event["errors"] = [wire.webhook_error(failure)]
            record.statuses_planned.append(status)
            if not self.dispatcher.schedule_status(
                offset / 1000,
                phone_number_id=record.phone_number_id,
                waba_id=number.waba_id or "0",
                display=number.display_phone_number,
                status=event,
                contact=contact,
            ):
                record.statuses_dropped.append(status)

    def status_contact(self, number, record: MessageRecord, *, with_username: bool) -> dict:
        if not record.wa_id:  # a BSUID the sandbox never issued: all it knows is the BSUID
            return {"profile": {"name": "Sandbox User"}, "user_id": record.user_id}
        return self.users.contact(
            number.waba_id or "0",
            record.wa_id,
            show_number=record.by_phone,
            with_username=with_username,
        )

    # --- templates -----------------------------------------------------------------------------

    def _token_from(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        return auth[7:].strip() if auth.startswith("Bearer ") else ""

    async def list_templates(self, request: web.Request) -> web.Response:
        try:
            self.check_token(self._token_from(request))
        except wire.MetaError as exc:
            return self.error(exc)
        waba_id = request.match_info["waba_id"]
        query = request.query
        templates = sorted(
            self.state.templates.get(waba_id, {}).values(), key=lambda t: int(t["id"])
        )
        if query.get("name"):
            templates = [t for t in templates if t["name"] == query["name"]]
        if query.get("status"):
            templates = [t for t in templates if t["status"] == query["status"].upper()]
        limit = max(1, min(int(query.get("limit", 25)), 1000))
        start = _decode_cursor(query.get("after")) + 1 if query.get("after") else 0
        if query.get("before"):
            start = max(0, _decode_cursor(query["before"]) - limit)
        page = templates[start : start + limit]
        fields = [f for f in query.get("fields", "").split(",") if f]
        data = [
            {
                k: v
                for k, v in t.items()
                if k != "waba_id" and (not fields or k in fields or k == "id")
            }
            for t in page
        ]
        body: dict[str, Any] = {"data": data}
        if page:
            cursors = {
                "before": _encode_cursor(start),
                "after": _encode_cursor(start + len(page) - 1),
            }
            body["paging"] = {"cursors": cursors}
            if start + len(page) < len(templates):
                next_query = dict(query) | {"after": cursors["after"], "limit": str(limit)}
                body["paging"]["next"] = str(request.url.with_query(next_query))
            if start > 0:
                prev_query = dict(query) | {"before": cursors["before"], "limit": str(limit)}
                prev_query.pop("after", None)
                body["paging"]["previous"] = str(request.url.with_query(prev_query))
        return json_response(body)

    async def create_template(self, request: web.Request) -> web.Response:
        try:
            self.check_token(self._token_from(request))
            try:
                definition = json.loads(await request.read())
            except ValueError:
                raise wire.MetaError(100, "The request body is not valid JSON.") from None
            if not isinstance(definition, dict):
                raise wire.MetaError(100, "The request body must be a JSON object.")
            for key in ("name", "language", "category", "components"):
                if not definition.get(key):
                    raise wire.MetaError(100, f"The parameter {key} is required.")
            waba_id = request.match_info["waba_id"]
            key = (definition["name"], definition["language"])
            if key in self.state.templates.get(waba_id, {}):
                raise wire.MetaError(100, "Content in this language already exists.")
        except wire.MetaError as exc:
            return self.error(exc)
        rejected = bool(self.config.reject_templates) and bool(
            re.search(self.config.reject_templates, definition["name"])
        )
        final = "REJECTED" if rejected else "APPROVED"
        immediate = self.config.approve_after <= 0
        template = self.state.add_template(waba_id, definition, final if immediate else "PENDING")
        task = asyncio.create_task(
            self._decide(template, final, max(0.0, self.config.approve_after))
        )
        self.pending_approvals.add(task)
        task.add_done_callback(self.pending_approvals.discard)
        return json_response(
            {"id": template["id"], "status": template["status"], "category": template["category"]}
        )

    async def edit_template(self, request: web.Request) -> web.Response:
        """``POST /{version}/{template_id}``: Meta's template edit (docs/meta-api.md §5.2).
        Only APPROVED, REJECTED or PAUSED templates; the edit goes back to review (PENDING),
        then is decided like a new template, announced by a status webhook."""
        try:
            self.check_token(self._token_from(request))
            try:
                changes = json.loads(await request.read())
            except ValueError:
                raise wire.MetaError(100, "The request body is not valid JSON.") from None
            template_id = request.match_info["template_id"]
            template = next(
                (
                    t
                    for by_waba in self.state.templates.values()
                    for t in by_waba.values()
                    if t["id"] == template_id
                ),
                None,
            )
            if template is None:
                raise wire.MetaError(
                    100, f"Unsupported post request. Object {template_id} does not exist."
                )
            if template["status"] not in ("APPROVED", "REJECTED", "PAUSED"):
                raise wire.MetaError(
                    100, f"A template in status {template['status']} cannot be edited."
                )
            if not isinstance(changes, dict) or not changes.get("components"):
                raise wire.MetaError(100, "The parameter components is required.")
            category = str(changes.get("category") or template["category"]).upper()
            if template["status"] == "APPROVED" and category != template["category"]:
                raise wire.MetaError(100, "The category of an approved template cannot be edited.")
        except wire.MetaError as exc:
            return self.error(exc)
        template["components"] = changes["components"]
        template["category"] = category
        template["status"] = "PENDING"
        self.state.stats.templates_edited += 1
        task = asyncio.create_task(
            self._decide(template, "APPROVED", max(0.0, self.config.approve_after))
        )
        self.pending_approvals.add(task)
        task.add_done_callback(self.pending_approvals.discard)
        return json_response({"success": True})

    async def _decide(self, template: dict, status: str, delay: float) -> None:
        await asyncio.sleep(delay)
        reason = "INVALID_FORMAT" if status == "REJECTED" else "NONE"
        self.set_template_status(template, status, reason)

    def set_template_status(self, template: dict, status: str, reason: str = "NONE") -> None:
        """Change a template's status and announce it (§4.8, §4.9 (g))."""
        event = "APPROVED" if status == "REINSTATED" else status
        template["status"] = event
        value: dict[str, Any] = {
            "event": status,
            "message_template_id": int(template["id"]),
            "message_template_name": template["name"],
            "message_template_language": template["language"],
            "reason": reason,
            "message_template_category": template["category"],
        }
        if status == "REJECTED" and reason == "INVALID_FORMAT":
            value["rejection_info"] = {
                "reason": "The template was rejected by the sandbox's reject_templates knob.",
                "recommendation": "Change the template name or the knob.",
            }
        self.dispatcher.schedule_payload(
            0,
            wire.envelope(
                template["waba_id"], "message_template_status_update", value, time=int(time.time())
            ),
        )

    # --- Graph nodes: GET/DELETE /{version}/{id} ------------------------------------------------

    async def graph_node(self, request: web.Request) -> web.Response:
        """``GET /{version}/{id}``: an uploaded media's URL and metadata, or a phone number's
        fields (``?fields=a,b``; sandbox/accounts.py). Any other id is Graph's error 100."""
        node_id = request.match_info["node_id"]
        try:
            self.check_token(self._token_from(request))
            if (media := self.live_media(node_id)) is not None:
                return json_response(self.media_info(request, media))
            number = self.state.numbers.get(node_id)
            if number is None:
                raise _no_such_node("get", node_id)
            fields = [f.strip() for f in request.query.get("fields", "").split(",") if f.strip()]
            return json_response(self.number_fields(number, fields))
        except wire.MetaError as exc:
            return self.error(exc)

    async def delete_node(self, request: web.Request) -> web.Response:
        """``DELETE /{version}/{media-id}``: the media is gone (media reference)."""
        node_id = request.match_info["node_id"]
        try:
            self.check_token(self._token_from(request))
            if self.live_media(node_id) is None or not self.state.media.delete(node_id):
                raise _no_such_node("delete", node_id)
        except wire.MetaError as exc:
            return self.error(exc)
        return json_response({"success": True})

    # --- control -------------------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({"ok": True})

    async def messages(self, request: web.Request) -> web.Response:
        opaque = request.query.get("biz_opaque_callback_data")
        records = self.state.messages.values()
        if opaque is not None:
            records = [r for r in records if r.biz_opaque_callback_data == opaque]
        submissions = self.state.submissions
        data = [r.as_dict(submissions[r.logical_key]) for r in records]
        return json_response({"count": len(data), "data": data})

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self.state.stats.as_dict(self.dispatcher.pending))

    async def get_config(self, request: web.Request) -> web.Response:
        return json_response(self.config.as_dict())

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object of settings")
            fixed = sorted(set(changes) & set(FIXED_AT_START))
            if fixed:
                raise ValueError(f"{', '.join(fixed)} can only be set when the sandbox starts")
            if "seed" in changes:
                self.rng.seed(changes["seed"])
            self.config.update(changes)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(self.config.as_dict())

    async def reset(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.state.reset(everything=bool(body.get("everything")))
        self.dispatcher.clear()
        self.rng.seed(self.config.seed)
        return json_response({"ok": True})

    async def register_number(self, request: web.Request) -> web.Response:
        """``{phone_number_id, waba_id?, display_phone_number?, verified_name?, mps?,
        d360_api_key?, business_id?, throughput_upgrade?}``. ``business_id`` puts the number's
        WABA in that business portfolio: WABAs with the same business id share one messaging
        limit (sandbox/limits.py)."""
        body = await request.json()
        if not isinstance(body, dict) or not body.get("phone_number_id"):
            return json_response({"error": "phone_number_id is required"}, status=400)
        known = self.state.numbers.get(str(body["phone_number_id"]))
        waba_id = str(body.get("waba_id", known.waba_id if known else ""))
        if body.get("business_id") and not waba_id:
            return json_response({"error": "business_id needs the number's waba_id"}, 400)
        number = self.state.number(str(body["phone_number_id"]))
        number.waba_id = waba_id
        number.display_phone_number = str(
            body.get("display_phone_number", number.display_phone_number)
        )
        number.verified_name = str(body.get("verified_name", number.verified_name))
        if body.get("mps") is not None:
            number.mps = int(body["mps"])
            self.state.buckets.pop(number.phone_number_id, None)
        number.d360_api_key = str(body.get("d360_api_key", number.d360_api_key))
        if body.get("business_id"):
            self.state.businesses[number.waba_id] = str(body["business_id"])
        if body.get("throughput_upgrade"):  # §3.1, §11.4: the number moves to 1,000 mps
            self.raise_throughput(number)
            self.quality_update(
                number, "THROUGHPUT_UPGRADE", max_daily_conversations_per_business="TIER_UNLIMITED"
            )
        return json_response(
            {
                "phone_number_id": number.phone_number_id,
                "waba_id": number.waba_id,
                "business_id": self.state.businesses.get(number.waba_id),
                "mps": number.mps,
            }
        )

    async def template_status(self, request: web.Request) -> web.Response:
        body = await request.json()
        template = self.state.templates.get(str(body.get("waba_id")), {}).get(
            (body.get("name"), body.get("language"))
        )
        if template is None:
            return json_response({"error": "no such template"}, status=404)
        self.set_template_status(
            template, str(body.get("status", "")).upper(), str(body.get("reason", "NONE"))
        )
        return json_response({"id": template["id"], "status": template["status"]})

    async def inbound(self, request: web.Request) -> web.Response:
        """A user writes to a business number: ``{phone_number_id, from, text | button,
        context_wamid?, name?}`` → an inbound ``messages[]`` webhook (§4.6, §4.9 (e)/(f)). With
        2026's fields (§11.1): ``from_user_id`` and the contact's ``user_id``; a user with a
        username (``username_rate``, or ``"username": true``) comes without a phone number."""
        body = await request.json()
        if not isinstance(body, dict) or not body.get("phone_number_id") or not body.get("from"):
            return json_response({"error": "phone_number_id and from are required"}, status=400)
        number = self.state.number(str(body["phone_number_id"]))
        wa_id = re.sub(r"\D", "", str(body["from"]))
        waba = number.waba_id or "0"
        user_id = self.users.user_id(waba, wa_id)
        hidden = bool(body.get("username")) or self.users.has_username(wa_id)
        now = time.time()
        self.state.last_inbound[(number.phone_number_id, wa_id)] = now
        self.state.last_inbound[(number.phone_number_id, user_id)] = now
        message: dict[str, Any] = {} if hidden else {"from": wa_id}
        message |= {
            "from_user_id": user_id,
            "id": wire.new_wamid(),
            "timestamp": str(int(now)),
        }
        if body.get("button"):
            message |= {"type": "button", "button": body["button"]}
        else:
            message |= {"type": "text", "text": {"body": str(body.get("text", ""))}}
        if body.get("context_wamid"):
            message["context"] = {"from": number.display_phone_number, "id": body["context_wamid"]}
        contact = self.users.contact(
            waba, wa_id, name=body.get("name", ""), show_number=not hidden, with_username=True
        )
        if hidden and "username" not in contact["profile"]:
            contact["profile"]["username"] = f"@{body.get('username') or 'user'}"
        contacts = [contact]
        value = wire.messages_value(
            number.phone_number_id,
            number.display_phone_number,
            contacts=contacts,
            messages=[message],
        )
        self.dispatcher.schedule_payload(0, wire.envelope(number.waba_id or "0", "messages", value))
        return json_response({"id": message["id"], "user_id": user_id, "hidden_number": hidden})

    async def user_preferences(self, request: web.Request) -> web.Response:
        """A user stops or resumes marketing messages: ``{phone_number_id, from, value}`` → a
        ``user_preferences`` webhook (§11.2)."""
        body = await request.json()
        value = str(body.get("value", "")).lower() if isinstance(body, dict) else ""
        if (
            not body.get("phone_number_id")
            or not body.get("from")
            or value
            not in (
                "stop",
                "resume",
            )
        ):
            return json_response(
                {"error": "phone_number_id, from and value (stop|resume) are required"},
                status=400,
            )
        number = self.state.number(str(body["phone_number_id"]))
        wa_id = re.sub(r"\D", "", str(body["from"]))
        waba = number.waba_id or "0"
        hidden = self.users.has_username(wa_id)
        preference: dict[str, Any] = {} if hidden else {"wa_id": wa_id}
        preference |= {
            "detail": f"User requested to {value} marketing messages",
            "category": "marketing_messages",
            "value": value,
            "timestamp": int(time.time()),
        }
        contact = self.users.contact(waba, wa_id, show_number=not hidden, with_username=True)
        value_body = wire.messages_value(
            number.phone_number_id,
            number.display_phone_number,
            contacts=[contact],
            user_preferences=[preference],
        )
        self.dispatcher.schedule_payload(0, wire.envelope(waba, "user_preferences", value_body))
        return json_response({"ok": True, "user_id": contact["user_id"]})

    def _template_for(self, body: Any) -> dict | None:
        if not isinstance(body, dict):
            return None
        return self.state.templates.get(str(body.get("waba_id")), {}).get(
            (body.get("name"), body.get("language"))
        )

    async def template_category(self, request: web.Request) -> web.Response:
        """Meta recategorizes a template (§11.4): ``{waba_id, name, language, new_category}``
        (done) or ``{…, correct_category}`` (impending) → ``template_category_update``."""
        body = await request.json()
        template = self._template_for(body)
        if template is None:
            return json_response({"error": "no such template"}, status=404)
        value: dict[str, Any] = {
            "message_template_id": int(template["id"]),
            "message_template_name": template["name"],
            "message_template_language": template["language"],
            "previous_category": template["category"],
        }
        if body.get("new_category"):
            value["new_category"] = str(body["new_category"]).upper()
            template["category"] = value["new_category"]
        elif body.get("correct_category"):
            value["correct_category"] = str(body["correct_category"]).upper()
            value["category_update_timestamp"] = int(time.time()) + 86400
        else:
            return json_response({"error": "new_category or correct_category"}, status=400)
        self.dispatcher.schedule_payload(
            0,
            wire.envelope(
                template["waba_id"], "template_category_update", value, time=int(time.time())
            ),
        )
        return json_response({"ok": True})

    async def template_components(self, request: web.Request) -> web.Response:
        """A template's body text changes after an edit (§11.4): ``{waba_id, name, language,
        body}`` → ``message_template_components_update``."""
        body = await request.json()
        template = self._template_for(body)
        if template is None or not body.get("body"):
            return json_response({"error": "a known template and its new body"}, status=400)
        for component in template["components"]:
            if str(component.get("type", "")).upper() == "BODY":
                component["text"] = str(body["body"])
        value = {
            "message_template_id": int(template["id"]),
            "message_template_name": template["name"],
            "message_template_language": template["language"],
            "message_template_element": str(body["body"]),
        }
        self.dispatcher.schedule_payload(
            0,
            wire.envelope(
                template["waba_id"],
                "message_template_components_update",
                value,
                time=int(time.time()),
            ),
        )
        return json_response({"ok": True})

    # --- app -----------------------------------------------------------------------------------

    @web.middleware
    async def control_guard(self, request: web.Request, handler):
        """The control endpoints change what the sandbox does and make it post signed webhooks
        (an inbound ``STOP`` is an opt-out): only for the holder of the control token."""
        path = request.path
        guarded = path.startswith("/_sandbox/") and path != "/_sandbox/ping"
        if guarded and not self.config.open_control:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.config.control_token.encode()):
                return json_response({"error": "a valid control token is required"}, 401)
        return await handler(request)

    def app(self) -> web.Application:
        self.config.check_startable()
        app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[self.control_guard])
        app.add_routes(
            [
                web.get("/_sandbox/ping", self.ping),
                web.get("/_sandbox/messages", self.messages),
                web.get("/_sandbox/stats", self.stats),
                web.get("/_sandbox/config", self.get_config),
                web.post("/_sandbox/config", self.set_config),
                web.post("/_sandbox/reset", self.reset),
                web.post("/_sandbox/numbers", self.register_number),
                web.post("/_sandbox/template_status", self.template_status),
                web.post("/_sandbox/inbound", self.inbound),
                web.post("/messages", self.dialog360_send),
                web.post("/v1/messages", self.dialog360_send),
                web.post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", self.meta_send),
                web.post(
                    r"/{version:v\d+\.\d+}/{phone_number_id}/marketing_messages",
                    self.marketing_send,
                ),
                web.get("/_sandbox/limits", self.get_limits),
                web.post("/_sandbox/limits", self.set_limits),
                web.post("/_sandbox/quality", self.quality),
                web.post("/_sandbox/account_alert", self.account_alert),
                web.post("/_sandbox/spam_limit", self.spam_limit),
                web.post(r"/{version:v\d+\.\d+}/{phone_number_id}/media", self.upload_media),
                web.get("/whatsapp_business/attachments/", self.download_media),
                web.post("/_sandbox/user_preferences", self.user_preferences),
                web.post("/_sandbox/template_category", self.template_category),
                web.post("/_sandbox/template_components", self.template_components),
                web.get(r"/{version:v\d+\.\d+}/{waba_id}/message_templates", self.list_templates),
                web.post(r"/{version:v\d+\.\d+}/{waba_id}/message_templates", self.create_template),
                web.post(r"/{version:v\d+\.\d+}/{template_id:\d+}", self.edit_template),
                web.get(r"/{version:v\d+\.\d+}/{node_id}", self.graph_node),
                web.delete(r"/{version:v\d+\.\d+}/{node_id}", self.delete_node),
            ]
        )
        app.on_startup.append(lambda _app: self.dispatcher.start())
        app.on_cleanup.append(lambda _app: self.dispatcher.stop())
        return app


def _no_such_node(method: str, node_id: str) -> wire.MetaError:
    """Graph's answer for an id it does not know (error 100, subcode 33 in Graph's words)."""
    return wire.MetaError(
        100,
        f"Unsupported {method} request. Object with ID '{node_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
    )


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        return -1


def run(config: SandboxConfig) -> None:
    sandbox = Sandbox(config)
    log.info(
        "sandbox on http://%s:%s (seed %s, webhooks to %s)",
        config.host,
        config.port,
        config.seed,
        config.webhook_url or "nowhere",
    )
    web.run_app(
        sandbox.app(), host=config.host, port=config.port, access_log=None, print=None, backlog=1024
    )

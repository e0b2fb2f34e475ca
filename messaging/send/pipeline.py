"""The send pipeline: one drain pass over one batch of a tenant's due messages, in four steps —
the design card's chain, per claimed batch.

    validate (claim: validate → rate limit → submitting) ─commit─▶ transform (payloads)
        ─▶ submit (HTTP, once per batch) ─▶ check acceptance (record each answer) ─commit─▶
        schedule what comes next

The worker runs the steps after the claim as chained Celery tasks (``messaging.tasks``:
``messaging.drain`` → ``transform`` → ``submit`` → ``check``) on one of the tenant's queues
(``core.queues``: its express lane, or its bulk lane for a full batch), each handing the next
a :class:`Work` (ids, payloads, answers) as JSON; :func:`drain` runs all four in one process
(tests, a chain that could not be published). How a drain is started, and the locks it
shares with everyone else, are in ``messaging.send.dispatch``.

1. **Validate** (:func:`validate`, one transaction). Lock up to ``WAYPOST_BATCH_SIZE`` of the
   tenant's due messages, oldest first, ``FOR UPDATE SKIP LOCKED``, and re-check what can change
   after the API call — tenant active, template still sendable (:data:`TemplateStatus.SENDABLE`;
   PAUSED and not-yet-approved wait, DISABLED and the like are refused), recipient not
   suppressed, send window open; a due retry starts a new round. The sender's rate limit and
   the recipient pair limit decide what may go now: what the sender's bucket cannot take yet
   is left untouched (still due, the drain wakes when tokens are back); a recipient over the
   pair limit gets a later ``next_attempt_at``. What may go is moved to ``submitting`` — its
   ``submit_started`` event names the claim's batch — and **committed before any request
   leaves**, so no redelivery, race or crash can submit the same round twice.
2. **Transform** (:func:`transform`). The sender's provider builds each request body, with
   the message id as its callback data (a status webhook can be matched even when the send
   response is lost); it is kept once, in a ``payload_built`` event (one statement).
3. **Submit** (:func:`submit_step`). The batch's ``SubmitBatch`` row is inserted first: a
   step that finds it (a redelivered task; a batch the stuck rule retired) sends nothing. The
   requests go concurrently over the provider's pooled session; each exact answer or
   exception is kept. A Waypost media file a header names becomes the provider's media id
   first, in the submit thread (uploaded again when it would expire: ``media``).
4. **Check acceptance** (:func:`check`, one transaction, retried on transient database
   errors): each answer becomes a ``submit_responded`` event and is read and classified by its
   provider (``whatsapp``): accepted or held; retry with backoff, cool-down, refused, sender
   blocked (alert), or unknown (ambiguous). The answer is recorded whatever state the status
   webhooks have already reached — it is a fact, and the state projection ranks it; only the
   pipeline's own reactions (retry, refuse, block) are skipped for a message the provider has
   already reported on. Then the tenant's earliest future attempt gets a wake-up.

After the claim the drain nudges again if due messages remain (at once after a full batch), so
another worker process claims the next batch while this one's chain runs.

A message left ``submitting`` (:func:`submits_resolve_stuck`, run by each drain for its tenant
and by the sweep): its batch's submit began longer than ``WAYPOST_SUBMIT_STUCK_AFTER`` ago —
its worker died mid-request — so it is classified if its answer was recorded, else becomes
``unknown`` (never resent blindly); its batch's submit never began within
``WAYPOST_SUBMIT_LOST_AFTER`` — the chained task was dropped — so the batch is retired (its row
inserted) and the messages go again in a new round: none of them left.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from core import metrics
from core.db import retry_transient
from core.ratelimit import get_rate_limiter
from media.services import MediaUnavailable, media_resolve_payload
from messaging.models import Message, MessageEvent, MessageKind, SubmitBatch
from messaging.send import dispatch
from messaging.send.faults import crash_point
from messaging.send.windows import window_of
from messaging.states import (
    NOT_SUBMITTED,
    OWN_ERRORS,
    EventSource,
    EventType,
    MessageState,
    decided_by_provider,
)
from messaging.track.contacts import Identities, identities, marketing_preference_record, suppressed
from messaging.track.inbound import orphans_resolve
from messaging.track.ledger import NewEvent, append, lock_messages, record
from templates_registry.models import MessageTemplate, TemplateStatus
from templates_registry.rules.limits import TemplateCategory
from templates_registry.services import template_mark_paused
from tenants.models import MissingCredential, SenderNumber, SenderStatus, Tenant
from tenants.services import SPAM_RATE_LIMIT_CODE, sender_block, sender_spam_limited
from whatsapp import (
    Classification,
    CoolDownScope,
    ErrorClass,
    OutboundMessage,
    Policy,
    SendAnswer,
    SubmitOutcome,
    SubmitResult,
    get_provider,
)

log = logging.getLogger(__name__)

TEMPLATE_WAIT_SECONDS = 600.0
RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 300.0


@dataclass
class _Batch:
    """What one transaction decided: events and changed fields, written together."""

    events: list[NewEvent] = field(default_factory=list)
    changed: dict = field(default_factory=dict)  # message id -> Message with changed fields
    fields: set[str] = field(default_factory=set)
    # Senders Meta refused for its spam rate limit (131048): sender id -> (sender, messages).
    spam_limited: dict = field(default_factory=dict)

    def change(self, message: Message, **values) -> None:
        for name, value in values.items():
            setattr(message, name, value)
        self.changed[message.pk] = message
        self.fields.update(values)

    def event(self, message: Message, type_: str, **kw) -> None:
        self.events.append(
            NewEvent(
                message.pk,
                type_,
                kw.pop("source", EventSource.PIPELINE),
                round=kw.pop("round", message.round),
                **kw,
            )
        )

    def write(self) -> None:
        """Inside the transaction that holds the messages' locks; a sender that met the spam
        rate limit is reported once per batch (its campaigns pause: ``tenants.services``)."""
        record(
            self.events,
            locked=True,
            changed=list(self.changed.values()),
            fields=sorted(self.fields),
        )
        for sender, messages in self.spam_limited.values():
            sender_spam_limited(
                sender=sender, detail={"error_code": SPAM_RATE_LIMIT_CODE, "messages": messages}
            )


@dataclass
class Pass:
    """What one drain pass did (returned by the task, logged, used by tests)."""

    claimed: int = 0
    submitted: int = 0
    accepted: int = 0
    rate_wait: float = 0.0
    stuck: int = 0
    elapsed_ms: int = 0
    # Where the time went (the task's result, in the worker's log): claim, HTTP, record.
    claim_ms: int = 0
    submit_ms: int = 0
    record_ms: int = 0

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}

    def add(self, other: Pass) -> None:
        """A later step's figures into this pass's."""
        for name, value in other.__dict__.items():
            if value:
                setattr(self, name, getattr(self, name) + value)


# ==================================================================================================
# the drain
# ==================================================================================================


def drain(*, tenant_id) -> Pass:
    """One pass over one batch of the tenant's due messages, every step in this process (the
    worker runs the steps after the claim as chained tasks: ``messaging.tasks``)."""
    started = time.monotonic()
    result, work = validate(tenant_id=tenant_id)
    if work is not None:
        result.add(finish(work))
    result.elapsed_ms = int((time.monotonic() - started) * 1000)
    return result


def chains(work: Work) -> bool:
    """Whether the batch's steps after the claim run as chained tasks: from
    ``WAYPOST_CHAIN_MIN_BATCH`` messages on; fewer (a lone OTP) run in the drain's own task,
    where three task hops would cost more than their work and queue it three more times."""
    return len(work.ids) >= settings.WAYPOST_CHAIN_MIN_BATCH


def finish(work: Work) -> Pass:
    """transform → submit → check, in this process."""
    sent = submit_step(transform(work))
    return check(sent) if sent is not None else Pass()


@dataclass
class Work:
    """What one step of a batch hands the next — through the broker as JSON (``as_dict``) when
    the steps are chained tasks; ``messages`` rides along only within one process."""

    tenant_id: str
    queue: str
    batch: str  # the claim's id: its submit_started events and its SubmitBatch row name it
    ids: list[str]
    claimed_at: str  # what "due" meant for the claim (the wake-up after the pass starts there)
    payloads: list[dict] | None = None
    rounds: list[int] | None = None  # per message: the claimed round
    senders: list[list] | None = None  # per message: [sender id, template category]
    results: list[dict] | None = None
    messages: list[Message] | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """For the broker: the nested parts as one JSON text each — kombu's decoder calls a
        Python hook per JSON object, and a batch's payloads are hundreds of them."""
        data = {k: v for k, v in self.__dict__.items() if k != "messages"}
        for name in NESTED:
            if data[name] is not None:
                data[name] = json.dumps(data[name])
        return data

    @classmethod
    def of(cls, data: dict) -> Work:
        data = dict(data)
        for name in NESTED:
            if isinstance(data.get(name), str):
                data[name] = json.loads(data[name])
        return cls(**data)


NESTED = ("payloads", "rounds", "senders", "results")


def validate(*, tenant_id) -> tuple[Pass, Work | None]:
    """The drain's claim (validate, rate limit, commit ``submitting``): the first step. Returns
    what it did, and the batch for the next steps when it claimed messages to send.

    The drain answers its ring (``dispatch.drain_started``) before it reads what is due, as
    the doorbell asks — but first it looks whether its tenant's own batches in flight are at
    their limit, and then holds the ring instead (:func:`_held_back`): a stream of single
    sends' nudges would otherwise start drain after drain that claims nothing. A drain that
    fails before it answered answers anyway (no ring is left pending for a minute)."""
    result = Pass()
    try:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        busy = tenant is not None and tenant.active and _in_flight(tenant)
        if busy and _held_back(tenant):
            return result, None
    except BaseException:
        dispatch.drain_started(tenant_id)
        raise
    dispatch.drain_started(tenant_id)
    if tenant is None or not tenant.active:  # read again after the answer: activated since?
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None or not tenant.active:
            return result, None
        busy = True
    if _stuck_due(tenant.pk):
        result.stuck = submits_resolve_stuck(tenant=tenant)
    # Read again after the answer: a batch that ended since rang no drain (this one is running).
    full = busy and _in_flight(tenant)
    mark = time.monotonic()
    # With the tenant's campaigns' batches in flight, its own messages (an OTP) still go.
    claim = retry_transient(lambda: claim_batch(tenant=tenant, own_only=full), what="drain claim")
    result.claimed, result.rate_wait = len(claim.messages) + claim.settled, claim.rate_wait
    if not full:
        _nudge_for_more(tenant, claim)
    elif claim.full:  # more of its own: the campaigns' wait for a check step to ring
        dispatch.nudge(tenant_id=tenant.pk, queue=tenant.bulk_queue_name)
    result.claim_ms = int((time.monotonic() - mark) * 1000)
    if not claim.messages:
        _wake_for_later(tenant.pk, tenant.queue_name, after=claim.now)
        return result, None
    # A full batch (more is due behind it) or a campaign's is a backlog: its steps take the bulk
    # lane, out of the way of other tenants' drains (``core.queues``). Not the tenant's own
    # messages split off a claim ahead of its campaign's (``claim.full`` says more is due).
    backlog = (
        len(claim.messages) == settings.WAYPOST_BATCH_SIZE
        or claim.messages[0].campaign_id is not None
    )
    return result, Work(
        tenant_id=str(tenant.pk),
        queue=tenant.bulk_queue_name if backlog else tenant.queue_name,
        batch=claim.batch,
        ids=[str(m.pk) for m in claim.messages],
        claimed_at=claim.now.isoformat(),
        rounds=[m.round for m in claim.messages],
        messages=claim.messages,
    )


def transform(work: Work) -> Work:
    """Each claimed message's request body, built by its sender's provider and kept once, in
    its ``payload_built`` event (one statement; the message row, which PostgreSQL copies on
    every state change, does not hold it). As a chained task it reads the fields a payload
    needs, not whole rows. The batch is claimed and waits for this step: a database restart
    is waited out (``WAYPOST_RECORD_PATIENCE``), not left to the lost-batch rule."""
    return retry_transient(lambda: _transform(work), what="building payloads", patience=_patience())


def _patience() -> float:
    return settings.WAYPOST_RECORD_PATIENCE


def _transform(work: Work) -> Work:
    if work.messages is not None:
        rows = [
            ({name: getattr(m, name) for name in PAYLOAD_FIELDS}, m.sender.provider, m.round)
            for m in work.messages
        ]  # the submit step sends these same instances: it needs no senders list
    else:
        found = {
            str(row["id"]): row
            for row in Message.objects.filter(pk__in=work.ids).values(
                *PAYLOAD_FIELDS, "round", "sender_id", "sender__provider", "template_category"
            )
        }
        claimed_round = dict(zip(work.ids, work.rounds, strict=True))
        ordered = [
            found[pk] for pk in work.ids if pk in found and found[pk]["round"] == claimed_round[pk]
        ]
        work.ids = [str(row["id"]) for row in ordered]
        rows = [(row, row["sender__provider"], row["round"]) for row in ordered]
        work.senders = [[str(row["sender_id"]), row["template_category"]] for row in ordered]
    work.payloads = [payload_of(row, provider) for row, provider, _round in rows]
    work.rounds = [round_ for _row, _provider, round_ in rows]  # the claim's, as checked
    append(
        [
            NewEvent(
                row["id"],
                EventType.PAYLOAD_BUILT,
                EventSource.PIPELINE,
                round=round_,
                detail={"payload": payload},
            )
            for (row, _provider, round_), payload in zip(rows, work.payloads, strict=True)
        ]
    )
    return work


def submit_step(work: Work) -> Work | None:
    """The requests, once per batch: the batch's ``SubmitBatch`` row is inserted first, and a
    step that finds it already there (a redelivered task; the stuck-submit rule retired the
    batch) sends nothing and returns None."""
    chained = work.messages is None  # the check step runs in another task
    messages = work.messages or retry_transient(
        lambda: _sendable(work), what="reading a batch to send", patience=_patience()
    )
    began = retry_transient(
        lambda: batch_begin(work.batch, by="submit"), what="starting a submit", patience=_patience()
    )
    if not began:
        log.warning("batch %s: its submit already began elsewhere; not sent again", work.batch)
        return None
    for message, payload in zip(messages, work.payloads, strict=True):
        message.payload = payload  # a plain attribute: Message has no such column
    results = submit(messages)
    crash_point("after_http")
    # The answers (Meta's wamids among them) are stored at once, not only handed to the check
    # step through the broker: lost with it, the stuck-submit rule still classifies each. (In
    # one task, the check follows at once, as it always did.)
    if chained:  # only in memory until stored: worth waiting out a database restart for
        answers = [
            NewEvent(
                m.pk,
                EventType.SUBMIT_RESPONDED,
                EventSource.PIPELINE,
                round=r,
                detail=result.as_detail(),
            )
            for m, r, result in zip(messages, work.rounds, results, strict=True)
        ]
        retry_transient(lambda: append(answers), what="storing send answers", patience=_patience())
    work.results = [r.as_detail() for r in results]
    return work


def check(work: Work) -> Pass:
    """Record every answer and check acceptance; then the tenant's next wake-up."""
    mark = time.monotonic()
    claimed = work.messages or [Message(pk=uuid.UUID(pk)) for pk in work.ids]
    results = [SubmitResult.from_detail(d) for d in work.results]
    # The answers exist only here (Meta's wamids among them): worth waiting out a database
    # restart for, rather than leaving the messages to be resolved as unknown.
    accepted = retry_transient(
        lambda: record_answers(claimed, results, work.rounds),
        what="recording send answers",
        patience=settings.WAYPOST_RECORD_PATIENCE,
    )
    crash_point("after_record")
    dispatch.batch_done(work.tenant_id)  # out of flight: a drain held back may claim again
    if Message.objects.filter(
        dispatch.due_messages(now=timezone.now()), tenant_id=work.tenant_id
    ).exists():
        dispatch.nudge(tenant_id=work.tenant_id, queue=work.queue)  # claims waited for this one
    _wake_for_later(work.tenant_id, work.queue, after=datetime.fromisoformat(work.claimed_at))
    return Pass(
        submitted=len(claimed),
        accepted=len(accepted),
        submit_ms=sum(int(d.get("elapsed_ms", 0)) for d in work.results) // max(1, len(claimed)),
        record_ms=int((time.monotonic() - mark) * 1000),
    )


def batch_begin(batch: str, *, by: str) -> bool:
    """Insert the batch's ``SubmitBatch`` row; True when this call inserted it. One statement,
    committed at once outside a transaction: the row must outlive a step that dies
    mid-request."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_submitbatch (id, started_at, started_by) VALUES (%s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            [
                uuid.UUID(batch).hex if connection.vendor != "postgresql" else uuid.UUID(batch),
                timezone.now(),
                by,
            ],
        )
        return cursor.rowcount == 1


def _sendable(work: Work) -> list[Message]:
    """What a submit reads of each message — its sender (with the sender's tenant, for the
    credential) and template category — as unsaved shells: the senders are one query. Only
    messages still ``submitting`` in the claimed round are kept (the step's own guard, beside
    the batch's row: whatever happened since, a message that moved on is not sent)."""
    current = {
        (str(pk), round_)
        for pk, round_ in Message.objects.filter(
            pk__in=work.ids, state=MessageState.SUBMITTING
        ).values_list("pk", "round")
    }
    keep = [i for i, key in enumerate(zip(work.ids, work.rounds, strict=True)) if key in current]
    if len(keep) < len(work.ids):
        log.warning(
            "batch %s: %d message(s) moved on; not sent", work.batch, len(work.ids) - len(keep)
        )
        work.ids = [work.ids[i] for i in keep]
        work.rounds = [work.rounds[i] for i in keep]
        work.senders = [work.senders[i] for i in keep]
        work.payloads = [work.payloads[i] for i in keep]
    senders = {
        str(sender.pk): sender
        for sender in SenderNumber.objects.filter(
            pk__in={sender_id for sender_id, _category in work.senders}
        ).select_related("tenant")
    }
    return [
        Message(pk=uuid.UUID(pk), sender=senders[sender_id], template_category=category)
        for pk, (sender_id, category) in zip(work.ids, work.senders, strict=True)
    ]


@dataclass
class Claim:
    messages: list[Message] = field(default_factory=list)  # committed `submitting`
    settled: int = 0  # claimed and settled without a submit (refused, waiting, pair limit)
    full: bool = False  # the batch was full: more may be due
    rate_wait: float = 0.0  # the sender's bucket was empty for this long
    now: datetime | None = None  # what "due" meant for this claim
    batch: str = field(default_factory=lambda: uuid.uuid4().hex)  # names the claimed batch


def claim_batch(*, tenant: Tenant, now=None, own_only: bool = False) -> Claim:
    """Claim, validate and rate-limit one batch; commit what may go as ``submitting``.
    Everything else is written in the same transaction, or left untouched. ``own_only``: the
    tenant's own messages, none of its campaigns'."""
    now = now or timezone.now()
    size = settings.WAYPOST_BATCH_SIZE
    batch, claim = _Batch(), Claim(now=now)
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(dispatch.due_messages(now=now), tenant=tenant)
            .filter(**({"campaign_id__isnull": True} if own_only else {}))
            .select_related("sender")
            # The tenant's own messages before its campaigns': an OTP sent during a campaign
            # goes in the next claim, not behind the campaign's lead (``campaigns``).
            .order_by(F("campaign_id").desc(nulls_first=True), "created_at")[:size]
        )
        claim.full = len(messages) == size
        if messages and messages[0].campaign_id is None and messages[-1].campaign_id is not None:
            # The tenant's own messages (claimed first) go in a batch of their own: one claimed
            # beside 49 of a campaign's would be accepted only once all 50 were submitted and
            # recorded. The campaign's go in the next drain, rung at once (``full``).
            messages = [m for m in messages if m.campaign_id is None]
            claim.full = True
        for message in messages:
            message.tenant = tenant
            if message.sender.tenant_id == tenant.pk:  # credential() reads it in submit threads
                message.sender.tenant = tenant
        known = identities(messages)  # who each recipient is (messaging.track.contacts)
        verdicts, statuses = _verdicts(messages, known, now)
        ready = [m for m in messages if verdicts[m.pk] is None]
        allowed, pair_waits, claim.rate_wait = _rate_limit(ready, known)
        for message in messages:
            verdict = verdicts[message.pk]
            if verdict is None and message.pk not in allowed and message.pk not in pair_waits:
                continue  # the sender's bucket is empty: untouched, still due
            if message.state == MessageState.RETRY_SCHEDULED:  # a due retry starts a new round
                batch.change(message, round=message.round + 1, next_attempt_at=None)
                batch.event(message, EventType.REQUEUED, detail={"reason": "retry due"})
            if verdict is not None:
                verdict(batch, message, now)
                claim.settled += 1
            elif message.pk in pair_waits:  # over the pair limit: this one again later
                wait = pair_waits[message.pk]
                batch.change(message, next_attempt_at=now + timedelta(seconds=wait))
                claim.settled += 1
            else:
                _prepare_submit(batch, message, statuses.get(message.pk), claim.batch)
                claim.messages.append(message)
        batch.write()
        crash_point("before_claim_commit")
    return claim


_stuck_checked: dict = {}  # tenant id -> when this process last looked for its stuck submits


def _stuck_due(tenant_id) -> bool:
    """Whether this process's drain should look for the tenant's stuck submits: at most every
    half ``WAYPOST_SUBMIT_STUCK_AFTER`` (a query per drain otherwise, on every single send's
    drain); the reconciler's sweep looks too."""
    now = time.monotonic()
    if now - _stuck_checked.get(tenant_id, float("-inf")) < settings.WAYPOST_SUBMIT_STUCK_AFTER / 2:
        return False
    _stuck_checked[tenant_id] = now
    return True


IN_FLIGHT_BATCHES = 2  # a tenant's claimed batches whose steps are still running, at most


def _in_flight(tenant: Tenant, *, own: bool = False) -> bool:
    """Whether the tenant already has ``IN_FLIGHT_BATCHES`` full batches claimed and not yet
    checked (``own``: of its own messages, not its campaigns') — claimed within the stuck time
    (older ones are the stuck rule's). A drain then claims no more of them: its chained steps
    would queue behind theirs while the claimed messages wait ``submitting``; their check
    step rings for the next claim instead. Two batches keep a worker process submitting while
    another records."""
    limit = IN_FLIGHT_BATCHES * settings.WAYPOST_BATCH_SIZE
    recent = timezone.now() - timedelta(seconds=settings.WAYPOST_SUBMIT_STUCK_AFTER)
    in_flight = Message.objects.filter(
        tenant=tenant, state=MessageState.SUBMITTING, state_changed_at__gte=recent
    )
    if own:
        in_flight = in_flight.filter(campaign_id__isnull=True)
    return in_flight[:limit].count() >= limit


def _held_back(tenant: Tenant) -> bool:
    """Whether the tenant's own batches in flight are at their limit: then this drain claims
    nothing and holds the doorbell instead of answering it (``dispatch.hold``) — a nudge
    meanwhile would start another drain that claims nothing, one per single send — until a
    batch's check step ends the hold and looks for due messages itself. Looked at again once
    the hold is set: a check step that ended just before it is seen, and the drain goes on."""
    if not _in_flight(tenant, own=True):
        return False
    # Two batches in flight are a backlog: its wake-up, which claims a batch, takes the bulk
    # lane (on the express one a quiet tenant's drain waited behind it).
    dispatch.hold(tenant_id=tenant.pk, queue=tenant.bulk_queue_name)
    return _in_flight(tenant, own=True)


def _nudge_for_more(tenant: Tenant, claim: Claim) -> None:
    """More due messages than this pass took? Another drain takes them — at once after a full
    batch (another worker process works in parallel), shortly when rows were held by others."""
    if claim.rate_wait > 0:  # more due than the sender's rate lets go: a backlog, bulk lane
        dispatch.wake(tenant_id=tenant.pk, queue=tenant.bulk_queue_name, delay=claim.rate_wait)
        return
    if claim.full:
        dispatch.nudge(tenant_id=tenant.pk, queue=tenant.bulk_queue_name)
        return
    if Message.objects.filter(dispatch.due_messages(now=timezone.now()), tenant=tenant).exists():
        # Rows another transaction held were skipped: look again once it has committed.
        dispatch.wake(tenant_id=tenant.pk, queue=tenant.queue_name, delay=dispatch.RECHECK_DELAY)


def _wake_for_later(tenant_id, queue: str, *, after) -> None:
    """Schedule a drain for the tenant's earliest attempt that was not yet due when this pass
    claimed (retries, cool-downs, pair limits) — including one that fell due while this pass
    was busy submitting: that one gets a drain at once."""
    earliest = Message.objects.filter(
        tenant_id=tenant_id,
        state__in=NOT_SUBMITTED,
        next_attempt_at__gt=after,
        next_attempt_at__lt=dispatch.PARKED,  # a paused campaign's: no wake-up until resumed
        sender__status=SenderStatus.ACTIVE,
    ).aggregate(at=Min("next_attempt_at"))["at"]
    if earliest is not None:
        delay = (earliest - timezone.now()).total_seconds()
        dispatch.wake(tenant_id=tenant_id, queue=queue, delay=delay)


# ==================================================================================================
# validate and transform
# ==================================================================================================


def _verdicts(messages: list[Message], known: Identities, now) -> tuple[dict, dict]:
    """({message id: None if it may go on, else a function writing why it does not},
    {message id: its template's current status}), as of the claim's ``now``."""
    templates = _current_templates(messages)
    refused = suppressed(messages, known)
    expired = {m.pk for m in messages if m.expires_at is not None and m.expires_at <= now}
    stopped = {
        m.pk
        for m in messages
        if m.template_category == TemplateCategory.MARKETING
        and (contact := known.contact(m.tenant_id, m.recipient, m.recipient_user_id))
        and contact.marketing_stopped_at
    }
    statuses = {}
    for m in messages:
        if m.kind != MessageKind.TEXT:
            template = templates.get((m.tenant_id, m.template_name, m.template_language))
            statuses[m.pk] = template.status if template else "DELETED"
    verdicts = {
        m.pk: _expire
        if m.pk in expired
        else _window_closed(m, now) or _verdict(m, statuses.get(m.pk), refused, stopped)
        for m in messages
    }
    return verdicts, statuses


WINDOW_RECHECK = timedelta(hours=1)  # a window that never opens again: look again, until expiry


def _window_closed(message: Message, now):
    """None while the message's send window is open (or it has none); else a verdict moving
    it to the window's next opening — still queued (or a retry), its time to live counting."""
    if not message.send_window:
        return None
    window, zones = window_of(message.send_window)
    if window.is_open(now, zones):
        return None
    opens = window.next_open(now, zones) or now + WINDOW_RECHECK

    def wait(batch, message, now):
        batch.change(message, next_attempt_at=opens)

    return wait


def _current_templates(messages: list[Message]) -> dict:
    wanted = {
        (m.tenant_id, m.template_name, m.template_language)
        for m in messages
        if m.kind != MessageKind.TEXT
    }
    if not wanted:
        return {}
    query = Q()
    for tenant_id, name, language in wanted:
        query |= Q(tenant_id=tenant_id, name=name, language=language)
    return {(t.tenant_id, t.name, t.language): t for t in MessageTemplate.objects.filter(query)}


def _verdict(message: Message, status: str | None, suppressed: set, stopped: set):
    if message.pk in suppressed:
        return _refuse("recipient_suppressed", "recipient suppressed")
    if message.pk in stopped:  # the user's "stop marketing messages" (user_preferences, §11.2)
        return _refuse("marketing_stopped", "marketing stopped")
    if message.kind == MessageKind.TEXT:  # no template; the provider enforces the window (§6)
        return None
    if status in TemplateStatus.WAITING:

        def wait(batch, message, now):
            _own_error(batch, message, f"template_{status.lower()}")
            _schedule(batch, message, TEMPLATE_WAIT_SECONDS, now, f"template {status}")

        return wait
    if status not in TemplateStatus.SENDABLE:
        return _refuse("template_not_sendable", f"template {status}", title=f"Template is {status}")
    return None


def _expire(batch, message, now):
    """Its time to live passed before it could be sent: never sent, ``expired``."""
    _own_error(batch, message, "expired")
    batch.event(
        message,
        EventType.EXPIRED,
        detail={"expires_at": message.expires_at.isoformat() if message.expires_at else None},
    )


def _refuse(code: str, reason: str, *, title: str = ""):
    def refuse(batch, message, now):
        _own_error(batch, message, code, title=title)
        batch.event(message, EventType.REJECTED, detail={"reason": reason})

    return refuse


PAYLOAD_FIELDS = (
    "id",
    "kind",
    "recipient",
    "recipient_user_id",
    "template_name",
    "template_language",
    "parameters",
    "text_body",
)


def payload_of(row: dict, provider: str) -> dict:
    """The request body of a message's send, in its sender's provider's format, from the
    message's ``PAYLOAD_FIELDS`` alone (a chained step reads those, not whole rows)."""
    if row["kind"] == MessageKind.TEXT:
        outbound = OutboundMessage(
            recipient=row["recipient"],
            recipient_user_id=row["recipient_user_id"],
            callback_data=str(row["id"]),
            text=row["text_body"],
        )
    else:
        outbound = OutboundMessage(
            recipient=row["recipient"],
            recipient_user_id=row["recipient_user_id"],
            callback_data=str(row["id"]),
            template_name=row["template_name"],
            template_language=row["template_language"],
            components=row["parameters"] or [],
        )
    return get_provider(provider).build_payload(outbound)


def _prepare_submit(
    batch: _Batch, message: Message, template_status: str | None, batch_id: str
) -> None:
    """validated → submit started (the claim), in the claim's transaction; the payload is the
    next step's (``transform``)."""
    detail = (
        {"kind": "text"}
        if message.kind == MessageKind.TEXT
        else {"template_status": template_status}
    )
    batch.event(message, EventType.VALIDATED, detail=detail)
    batch.change(message, attempts=message.attempts + 1)
    detail = {"attempt": message.attempts, "batch": batch_id}
    if _marketing_lite(message):
        detail["endpoint"] = "marketing_messages"
    batch.event(message, EventType.SUBMIT_STARTED, detail=detail)


# ==================================================================================================
# rate limits
# ==================================================================================================


def _rate_limit(messages: list[Message], known: Identities) -> tuple[set, dict, float]:
    """(ids that may go now, {id: seconds to wait for the pair limit}, seconds until the
    sender's bucket has tokens for the rest — 0.0 when nothing waits for it)."""
    limiter = get_rate_limiter()  # the pair limit is per user, whichever identifier
    allowed: set = set()
    pair_waits: dict = {}
    sender_wait = 0.0
    by_sender: dict = defaultdict(list)
    for m in messages:
        by_sender[m.sender_id].append(m)
    for group in by_sender.values():
        sender = group[0].sender
        rate = sender.messages_per_second
        granted, wait = limiter.acquire(
            f"sender:{sender.phone_number_id}",
            rate=rate,
            count=len(group),
            burst=max(1.0, rate * settings.WAYPOST_RATE_BURST_SECONDS),
        )
        if granted < len(group):
            sender_wait = max(sender_wait, max(wait, 0.05))
        waits = limiter.pair_acquire_many(
            [
                f"{sender.phone_number_id}:"
                + known.key(m.tenant_id, m.recipient, m.recipient_user_id)
                for m in group[:granted]
            ],
            interval=settings.WAYPOST_PAIR_INTERVAL,
            burst=settings.WAYPOST_PAIR_BURST,
        )
        for m, pair_wait in zip(group[:granted], waits, strict=True):
            if pair_wait > 0:
                pair_waits[m.pk] = round(pair_wait, 3)
            else:
                allowed.add(m.pk)
    return allowed, pair_waits, round(sender_wait, 3)


# ==================================================================================================
# submit
# ==================================================================================================


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=settings.WAYPOST_SUBMIT_CONCURRENCY, thread_name_prefix="submit"
    )


def submit(messages: list[Message]) -> list[SubmitResult]:
    """Post each claimed message to its provider, concurrently; one result per message."""
    results = list(_executor().map(_send_one, messages))
    for result in results:
        metrics.submit_seconds.observe(result.elapsed_ms / 1000)
    return results


MISSING_CREDENTIAL = "MissingCredential"
MEDIA_ERRORS = ("media_upload_failed", "media_not_found")  # MediaUnavailable's codes
MARKETING_LIMIT_WAIT = 86_400.0  # the per-user marketing limit: one more try a day later


def _send_one(message: Message) -> SubmitResult:
    sender = message.sender
    try:
        credential = sender.credential()
    except MissingCredential as exc:
        return SubmitResult(outcome=SubmitOutcome.NOT_SENT, error=f"{MISSING_CREDENTIAL}: {exc}")
    try:
        payload = _with_provider_media(message)
    except MediaUnavailable as exc:  # nothing was sent: retried, or refused (OWN_ERRORS)
        return SubmitResult(outcome=SubmitOutcome.NOT_SENT, error=f"{exc.code}: {exc}")
    provider = get_provider(sender.provider)
    return provider.send_message(
        credential=credential,
        phone_number_id=sender.phone_number_id,
        payload=payload,
        marketing_lite=_marketing_lite(message),
    )


def _with_provider_media(message: Message) -> dict:
    """The payload with the provider's ids for the Waypost media files it names, uploaded again
    first when theirs expire (``media.services``); the ``payload_built`` event keeps Waypost's
    ids. A lookup opens this submit thread's own database connection: it is closed again, so
    the submit threads hold no connection between sends."""
    try:
        return media_resolve_payload(sender=message.sender, payload=message.payload)
    finally:
        if connection.connection is not None and not connection.in_atomic_block:
            connection.close()


def _marketing_lite(message: Message) -> bool:
    """MARKETING templates go through Marketing Messages Lite when the sender is set to."""
    return (
        message.sender.marketing_messages_lite
        and message.template_category == TemplateCategory.MARKETING
    )


# ==================================================================================================
# record the answers and check acceptance
# ==================================================================================================


# The message's content, JSON decoded on every read: not read when an answer is recorded.
SENT_CONTENT = ("parameters", "template_components", "metadata", "send_window", "text_body")


def record_answers(
    claimed: list[Message], results: list[SubmitResult], rounds: list[int] | None = None
) -> list:
    """Record every answer as a fact and react to it; returns the accepted message ids.
    ``rounds``: the round each message was claimed in (default: the instances'). Safe to run
    twice (a check task redelivered, or retried after its commit): a message that has left
    its claimed round, or that a check already moved on from ``submitting`` in it, is not
    touched — its answer was recorded, and reacting again could send it again."""
    rounds = rounds or [m.round for m in claimed]
    now = timezone.now()
    batch, accepted = _Batch(), []
    blocked: dict = {}
    with transaction.atomic():
        fresh = {  # locked in id order (the ledger's lock order) and read in one query
            m.pk: m
            for m in Message.objects.select_for_update(of=("self",))
            .select_related("tenant", "sender")
            .defer(*SENT_CONTENT)  # what was sent is not what its answer is read against
            .filter(pk__in=[m.pk for m in claimed])
            .order_by("pk")
        }
        for claimed_message, result, round_ in zip(claimed, results, rounds, strict=True):
            message = fresh.get(claimed_message.pk)
            if message is None or not _awaits_answer(message, round_):
                continue
            batch.event(message, EventType.SUBMIT_RESPONDED, detail=result.as_detail())
            if _check_one(batch, message, result, now, blocked):
                accepted.append(message)
        batch.write()
        _block_senders(blocked)
        wamids = [m.provider_message_id for m in accepted]
        if wamids:  # statuses that beat the send response were parked: apply them now
            transaction.on_commit(lambda: orphans_resolve(wamids=wamids))
    return [m.pk for m in accepted]


def _awaits_answer(message: Message, claimed_round: int) -> bool:
    """Still in the round it was claimed in, and either ``submitting`` or moved on by the
    provider alone (a status webhook that beat the answer): then its answer is to be
    recorded. Anything else — a new round, a retry or refusal a check already wrote — means
    this answer was recorded before."""
    return message.round == claimed_round and (
        message.state == MessageState.SUBMITTING or decided_by_provider(message.state_rank)
    )


def _block_senders(blocked: dict) -> None:
    for sender, reason in blocked.values():
        sender_block(sender=sender, reason=reason, by="pipeline")


def _check_one(batch: _Batch, message: Message, result: SubmitResult, now, blocked: dict) -> bool:
    """Record what the answer means; True when the message was accepted."""
    provider = get_provider(message.sender.provider)
    if result.error.startswith(MISSING_CREDENTIAL):  # nothing was sent: a person must act
        answer = SendAnswer(
            error_title=result.error,
            classification=OWN_ERRORS["missing_credential"].classification,
            reason="missing_credential",
        )
    elif (media := result.error.partition(":")[0]) in MEDIA_ERRORS:  # nothing was sent
        answer = SendAnswer(
            error_title=result.error,
            classification=OWN_ERRORS[media].classification,
            reason=media,
        )
    else:
        answer = provider.answer(result)
    if answer.accepted:
        batch.change(
            message,
            provider_message_id=message.provider_message_id or answer.wamid,
            next_attempt_at=None,
        )
        if message.state != MessageState.FAILED:  # else a failed status beat it: its error stands
            _error(batch, message, code="", error_class="")  # an earlier round's error cleared
        batch.event(
            message,
            EventType.ACCEPTED,
            source=EventSource.PROVIDER,
            detail={"wamid": answer.wamid, "message_status": answer.message_status},
        )
        if answer.held:  # held_for_quality_assessment (pacing)
            batch.event(
                message,
                EventType.HELD,
                source=EventSource.PROVIDER,
                detail={"message_status": answer.message_status},
            )
        return True
    if result.outcome == SubmitOutcome.RESPONSE:
        label = str(answer.error_code) if provider.known_error_code(answer.error_code) else "other"
        metrics.provider_errors.labels(code=label).inc()
    kind = answer.classification
    if kind.policy == Policy.MARKETING_STOPPED:  # the provider knows the user said stop
        marketing_preference_record(
            tenant=message.tenant,
            wa_id=message.recipient,
            user_id=message.recipient_user_id,
            stop=True,
            at=now,
        )
    if decided_by_provider(message.state_rank):
        # A status webhook already said what happened to it: the answer is in the ledger, but
        # retrying, refusing or blocking on its account would act against the provider's word.
        return False
    if (
        kind.policy == Policy.MARKETING_LIMIT
        and message.tenant.marketing_limit_retry
        and message.error_code != answer.code  # once only: the last try ended the same way
    ):  # the tenant's policy: one more try after Meta's 24 hours
        kind = Classification(
            ErrorClass.COOL_DOWN, MARKETING_LIMIT_WAIT, CoolDownScope.RECIPIENT, kind.policy
        )
    _error(
        batch,
        message,
        code=answer.code,
        title=answer.error_title,
        details=answer.error_details,
        error_class=kind.error_class,
    )
    _apply_classification(batch, message, kind, now, blocked)
    return False


def _error(batch: _Batch, message: Message, *, code, title="", details="", error_class):
    batch.change(
        message,
        error_code=str(code or "")[:32],
        error_title=str(title)[:255],
        error_details=details,
        error_class=error_class,
    )


def _own_error(batch: _Batch, message: Message, code: str, *, title: str = "") -> None:
    """One of Waypost's own errors (``OWN_ERRORS``: its title and class), ``title`` when the
    message's says more."""
    info = OWN_ERRORS[code]
    _error(batch, message, code=code, title=title or info.title, error_class=info.error_class)


def _schedule(batch: _Batch, message: Message, delay: float, now, reason: str) -> None:
    """retry_scheduled in this round; the drain that finds it due starts a new round."""
    if message.expires_at is not None and now + timedelta(seconds=delay) >= message.expires_at:
        _expire(batch, message, now)  # the next attempt would come too late
        return
    batch.change(message, next_attempt_at=now + timedelta(seconds=delay))
    batch.event(
        message,
        EventType.RETRY_SCHEDULED,
        detail={
            "reason": reason,
            "delay_seconds": round(delay, 3),
            "next_attempt_at": message.next_attempt_at.isoformat(),
        },
    )


def backoff_delay(attempts: int) -> float:
    """Exponential backoff with jitter: 2 s, 4 s, 8 s … capped at 5 minutes, ±50 %."""
    base = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return base / 2 + random.uniform(0, base / 2)  # noqa: S311 — jitter, not security


def _apply_classification(batch, message, kind: Classification, now, blocked) -> None:
    tenant = message.tenant
    if kind.error_class == ErrorClass.NEVER_RETRY:
        batch.event(message, EventType.REJECTED, detail={"error_code": message.error_code})
    elif kind.error_class == ErrorClass.AMBIGUOUS:
        batch.event(
            message,
            EventType.SUBMIT_UNKNOWN,
            detail={
                "error_code": message.error_code,
                "grace_seconds": tenant.ambiguous_grace_seconds,
            },
        )
    elif kind.error_class == ErrorClass.ALERT_TENANT:
        # Stop this sender; the message goes back to queued (a new round) and waits for it.
        blocked[message.sender_id] = (
            message.sender,
            f"{message.error_code}: {message.error_title}",
        )
        batch.change(message, round=message.round + 1)
        batch.event(
            message,
            EventType.REQUEUED,
            detail={"reason": "sender blocked", "error_code": message.error_code},
        )
        batch.event(message, EventType.SENDER_BLOCKED, detail={"reason": message.error_code})
    elif kind.error_class == ErrorClass.COOL_DOWN:
        if message.error_code == SPAM_RATE_LIMIT_CODE:  # 131048: stop the sender's campaigns
            _, count = batch.spam_limited.get(message.sender_id, (message.sender, 0))
            batch.spam_limited[message.sender_id] = (message.sender, count + 1)
        if kind.scope == CoolDownScope.TEMPLATE and message.template_id:
            template_mark_paused(
                template_id=message.template_id,
                reason=f"{message.error_code}: {message.error_title}",
                by="pipeline",
            )
        _schedule(batch, message, kind.delay, now, f"cool-down ({kind.scope})")
    else:  # retry with backoff, within the tenant's caps
        window_ends = message.created_at + timedelta(seconds=tenant.retry_window_seconds)
        delay = backoff_delay(message.attempts)
        if message.attempts >= tenant.max_attempts or now + timedelta(seconds=delay) > window_ends:
            batch.change(message, error_class=ErrorClass.RETRIES_EXHAUSTED)
            batch.event(
                message,
                EventType.DEAD_LETTERED,
                detail={"attempts": message.attempts, "last_error": message.error_code},
            )
        else:
            _schedule(batch, message, delay, now, "backoff")


# ==================================================================================================
# submits whose worker died
# ==================================================================================================


def submits_resolve_stuck(*, tenant: Tenant | None = None, now=None, limit: int = 1000) -> int:
    """Messages ``submitting`` for longer than ``WAYPOST_SUBMIT_STUCK_AFTER``: their worker
    died. One whose answer was recorded is classified; one without becomes ``unknown`` (the
    request may have reached Meta: never resend blindly). Returns how many were resolved."""
    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.WAYPOST_SUBMIT_STUCK_AFTER)
    query = Message.objects.filter(state=MessageState.SUBMITTING, state_changed_at__lt=stuck_before)
    if tenant is not None:
        query = query.filter(tenant=tenant)
    claimed = dict(query.order_by("pk").values_list("pk", "state_changed_at")[:limit])
    if not claimed:
        return 0
    ids, resent = _batches_not_begun(claimed, now)
    if not ids:
        return resent

    def resolve() -> int:
        batch, blocked = _Batch(), {}
        with transaction.atomic():
            lock_messages(ids)
            messages = list(
                Message.objects.filter(pk__in=ids, state=MessageState.SUBMITTING).select_related(
                    "tenant", "sender"
                )
            )
            answers = _answers(messages)
            for message in messages:
                answer = answers.get(message.pk)
                if answer is not None:  # the answer was stored, the check never ran
                    _check_one(batch, message, SubmitResult.from_detail(answer), now, blocked)
                    continue
                _own_error(batch, message, "worker_lost")
                batch.event(
                    message, EventType.SUBMIT_UNKNOWN, detail={"reason": "worker lost mid-submit"}
                )
            batch.write()
            _block_senders(blocked)
        return len(messages)

    return resent + retry_transient(resolve, what="resolving stuck submits")


# Who inserts a batch's row to retire it (its requests never began): the stuck rule, and a
# campaign's pause recalling it. A batch retired so whose messages are still ``submitting``
# never left: its resend was interrupted.
RETIRED_BY = ("reconciler", "recall")


def _batches_not_begun(claimed: dict, now) -> tuple[list, int]:
    """Sort the messages left ``submitting`` (id → when they were claimed) by their batch:
    one whose submit step began (its ``SubmitBatch`` row) longer ago than the stuck time lost
    its worker mid-request — returned, for the stuck rule; one whose step began recently is
    still sending — left alone. A batch whose submit step never began is waiting in the queue
    or was dropped with its task: after ``WAYPOST_SUBMIT_LOST_AFTER`` it is retired (its row
    inserted here, so a late step sends nothing) and its messages go again in a new round —
    nothing of it left. Returns (ids for the stuck rule, how many were sent again)."""
    stuck_before = now - timedelta(seconds=settings.WAYPOST_SUBMIT_STUCK_AFTER)
    lost_before = now - timedelta(seconds=settings.WAYPOST_SUBMIT_LOST_AFTER)
    batch_of = _batches_of(list(claimed))
    began = {
        pk: (started_at, by)
        for pk, started_at, by in SubmitBatch.objects.filter(
            pk__in={b for b in batch_of.values() if b}
        ).values_list("pk", "started_at", "started_by")
    }
    stuck, lost = [], defaultdict(list)
    for message_id, claimed_at in claimed.items():
        batch = batch_of.get(message_id)
        if not batch:  # claimed before batches were named: the stuck rule, as then
            stuck.append(message_id)
        elif uuid.UUID(batch) not in began:
            if claimed_at < lost_before:
                lost[batch].append(message_id)
        elif began[uuid.UUID(batch)][1] in RETIRED_BY:  # retired, its resend interrupted
            lost[batch].append(message_id)
        elif began[uuid.UUID(batch)][0] < stuck_before:
            stuck.append(message_id)
    resent = 0
    for batch, message_ids in lost.items():
        retired = uuid.UUID(batch) in began
        if retired or batch_begin(batch, by="reconciler"):  # else its step began just now
            resent += retry_transient(
                lambda message_ids=message_ids, batch=batch: _send_again(message_ids, batch),
                what="sending a lost batch again",
            )
    return stuck, resent


def _batches_of(message_ids: list) -> dict:
    """{message id: the batch its latest round was claimed in} (rounds ascending: the last
    wins; a message claimed before batches were named has none)."""
    return {
        message_id: detail.get("batch")
        for message_id, detail in MessageEvent.objects.filter(
            message_id__in=message_ids, type=EventType.SUBMIT_STARTED
        )
        .order_by("round")
        .values_list("message_id", "detail")
    }


def _send_again(
    ids: list,
    batch: str,
    *,
    reason: str = "its batch's submit step never began",
    source: str = EventSource.RECONCILER,
    parked: bool = False,
) -> int:
    """A new round for the retired batch's messages still ``submitting``: due at once, or
    ``parked`` (a paused campaign's: due again when it is resumed)."""
    events, queues = [], {}
    with transaction.atomic():
        lock_messages(ids)
        messages = list(
            Message.objects.filter(pk__in=ids, state=MessageState.SUBMITTING).select_related(
                "tenant"
            )
        )
        for message in messages:
            message.round = message.round + 1
            message.next_attempt_at = dispatch.PARKED if parked else None
            queues[message.tenant_id] = message.tenant.queue_name
            events.append(
                NewEvent(
                    message.pk,
                    EventType.REQUEUED,
                    source,
                    round=message.round,
                    detail={"reason": reason, "batch": batch},
                )
            )
        record(events, locked=True, changed=messages, fields=["round", "next_attempt_at"])
        if not parked:  # due at once: their drains
            for tenant_id, queue in queues.items():
                transaction.on_commit(
                    lambda tenant_id=tenant_id, queue=queue: dispatch.nudge(
                        tenant_id=tenant_id, queue=queue
                    )
                )
    # Lost work found is a warning; a pause's recall is an operator's doing.
    log.log(
        logging.INFO if parked else logging.WARNING,
        "batch %s: %s; %d message(s) go again",
        batch,
        reason,
        len(messages),
    )
    return len(messages)


def batches_recall(*, message_ids: list, reason: str) -> int:
    """Claimed messages whose batch's requests have not begun go back to waiting, parked (a
    paused or cancelled campaign's: nothing of it leaves once the pause has answered, however
    long a claimed batch waits in the broker for its submit step). Each such batch is retired
    in the same transaction — its ``SubmitBatch`` row inserted, so a submit step that comes
    later sends nothing; one that began first keeps the row, and its batch is on its way to
    the provider and left alone. A retired batch's other messages (a claim can hold another
    campaign's, or the tenant's own) go again at once. Returns how many messages went back."""
    by_batch: dict[str, list] = defaultdict(list)
    for message_id, batch in _batches_of(message_ids).items():
        if batch:
            by_batch[batch].append(message_id)
    return sum(
        retry_transient(
            lambda batch=batch, ids=ids: _recall(batch, set(ids), reason), what="recalling a batch"
        )
        for batch, ids in by_batch.items()
    )


def _recall(batch: str, parked: set, reason: str) -> int:
    with transaction.atomic():
        if not batch_begin(batch, by="recall"):  # its requests began: on their way
            return 0
        tenants = Message.objects.filter(pk__in=parked).values("tenant_id")
        claimed = Message.objects.filter(tenant_id__in=tenants, state=MessageState.SUBMITTING)
        members = [
            pk
            for pk, of in _batches_of(list(claimed.values_list("pk", flat=True))).items()
            if of == batch
        ]
        others = [pk for pk in members if pk not in parked]
        mine = [pk for pk in members if pk in parked]
        count = 0
        if mine:
            count += _send_again(
                mine, batch, reason=reason, source=EventSource.PIPELINE, parked=True
            )
        if others:
            count += _send_again(
                others,
                batch,
                reason=f"its batch was recalled ({reason})",
                source=EventSource.PIPELINE,
            )
        return count


def _answers(messages: list[Message]) -> dict:
    """{message id: recorded answer} for the messages' current rounds, in one query."""
    rounds = Q(*[Q(message_id=m.pk, round=m.round) for m in messages], _connector=Q.OR)
    return dict(
        MessageEvent.objects.filter(rounds, type=EventType.SUBMIT_RESPONDED).values_list(
            "message_id", "detail"
        )
    )

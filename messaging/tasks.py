"""Celery tasks: thin wrappers that take ids, call one pipeline function or service, and own
only retry policy. Every task is ``acks_late``: a task whose worker dies is redelivered, and
every step is idempotent (the submit step by its batch's ``SubmitBatch`` row).

A drain is the design card's chain, per claimed batch (``messaging.send.pipeline``):
``messaging.drain`` claims and validates; ``messaging.transform`` → ``messaging.submit`` →
``messaging.check`` follow as chained tasks on the tenant's lane (``core.queues``), so Celery's
own tooling shows each step, and one worker process submits a batch while another records the
previous one.
A batch smaller than ``WAYPOST_CHAIN_MIN_BATCH`` (a lone OTP) runs the steps in the drain's own
task: the hops would cost more than its work, and queue it three more times.
When the chain cannot be published (the broker went away after the claim), the drain runs the
steps itself rather than leave the claimed batch waiting for the stuck-submit rule.

A transient database error (deadlock, lost connection) inside a step is retried there
(``core.db.retry_transient``); one that still escapes retries the task with backoff. A
``DatabaseError`` that is not transient is a bug and is raised, not retried."""

import logging

from celery import chain, shared_task
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from core.db import retries_transient_errors
from messaging.send import pipeline

log = logging.getLogger(__name__)
TASK_OPTIONS = {"acks_late": True, "ignore_result": True}
# A step hands its batch (payloads, answers) to the next as its return value, which the worker
# logs at INFO: a line's worth is enough.
STEP_OPTIONS = TASK_OPTIONS | {"resultrepr_maxsize": 160}


@shared_task(name="messaging.drain", bind=True, **TASK_OPTIONS)
@retries_transient_errors
def drain(tenant_id: str) -> dict:
    """Validate: claim one batch of the tenant's due messages, then chain the other steps."""
    result, work = pipeline.validate(tenant_id=tenant_id)
    if work is not None and not pipeline.chains(work):
        result.add(pipeline.finish(work))  # a few messages: cheaper, and sooner, right here
    elif work is not None:
        queue, data = work.queue, work.as_dict()
        steps = [transform.s(data), submit.s(), check.s()]
        chained = chain(*(step.set(queue=queue) for step in steps))
        try:
            chained.apply_async()
        except (BrokerError, RedisError) as exc:
            log.warning("batch %s: chain not published (%r); its steps run here", work.batch, exc)
            result.add(pipeline.finish(work))
    return result.as_dict()


@shared_task(name="messaging.transform", bind=True, **STEP_OPTIONS)
@retries_transient_errors
def transform(work: dict) -> dict:
    """Build each claimed message's request body."""
    return pipeline.transform(pipeline.Work.of(work)).as_dict()


@shared_task(name="messaging.submit", bind=True, **STEP_OPTIONS)
@retries_transient_errors
def submit(work: dict) -> dict | None:
    """Send the batch's requests, once (None when its submit already began elsewhere)."""
    sent = pipeline.submit_step(pipeline.Work.of(work))
    return sent.as_dict() if sent is not None else None


@shared_task(name="messaging.check", bind=True, **STEP_OPTIONS)
@retries_transient_errors
def check(work: dict | None) -> dict:
    """Record the answers and check acceptance."""
    return pipeline.check(pipeline.Work.of(work)).as_dict() if work is not None else {}

"""Waiting for something a test cannot make happen synchronously (a worker's drain, a webhook,
a process's start line): poll the thing awaited, never sleep a guessed time."""

import time


def wait_for(
    predicate, timeout: float = 20.0, what: str = "the condition", *, every=0.05, describe=None
):
    """``predicate()``'s first truthy value within ``timeout`` seconds; else AssertionError
    naming ``what`` and, from ``describe()``, where things stood."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    where = f"; {describe()}" if describe else ""
    raise AssertionError(f"not within {timeout} s: {what}{where}")


def wait_while_moving(
    progress, done, *, stall: float, what: str, every: float = 0.5, describe=None
):
    """Until ``done(progress())`` is truthy, for as long as ``progress()`` (a value that
    changes while the awaited work goes on: counts, say) keeps changing — at least every
    ``stall`` seconds. A machine busy with other tests slows the work down; a stuck one stops
    changing it. On a stall: AssertionError naming ``what`` and, from ``describe()``, where it
    stood. Returns the last ``progress()``."""
    value = progress()
    moved = time.monotonic()
    while not done(value):
        time.sleep(every)
        now_value = progress()
        if now_value != value:
            value, moved = now_value, time.monotonic()
        elif time.monotonic() - moved > stall:
            where = f"; {describe()}" if describe else ""
            raise AssertionError(f"no progress for {stall} s: {what} (at {value}){where}")
    return value

"""Waiting for something a test cannot make happen synchronously (a worker's drain, a webhook,
a process's start line): poll the thing awaited, never sleep a guessed time."""

import time


def wait_for(predicate, timeout: float = 20.0, what: str = "the condition", *, every=0.05):
    """``predicate()``'s first truthy value within ``timeout`` seconds; else AssertionError
    naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {what}")

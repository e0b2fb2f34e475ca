"""Crash points for the crash-recovery tests — inert unless ``WAYPOST_CRASH_POINTS`` names one.

At a named point the whole worker (its process group: the main process and every pool child)
is killed with SIGKILL — no cleanup, no ack — the way an OOM kill or a lost machine would, so
the tests prove a message survives it. Each point fires
once per ``WAYPOST_CRASH_MARKER_DIR`` (a marker file records that it fired).
"""

import os
import signal
import tempfile
from pathlib import Path

from django.conf import settings


def crash_point(name: str) -> None:
    if name not in settings.WAYPOST_CRASH_POINTS:
        return
    marker = Path(os.environ.get("WAYPOST_CRASH_MARKER_DIR", tempfile.gettempdir()))
    marker = marker / f"crashed-{name}"
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    os.killpg(os.getpgrp(), signal.SIGKILL)

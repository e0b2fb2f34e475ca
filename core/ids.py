"""Time-ordered ids: UUID version 7 (RFC 9562 §5.7).

The first 48 bits are the Unix time in milliseconds, then the version, 12 random bits, the
variant and 62 random bits. PostgreSQL compares ``uuid`` values byte by byte, so ids made in a
month form one range of values: the ledger is partitioned on its message's id by month
(``core.partitions``), and every event of a message lands in its message's month.

Python has ``uuid.uuid7`` from 3.14 on; this is the same layout, for 3.11.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime

VERSION = 7


def uuid7(at: datetime | None = None) -> uuid.UUID:
    """A new UUIDv7 for now, or for the moment ``at`` (aware), with 74 random bits."""
    ms = int(at.timestamp() * 1000) if at is not None else time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    rand_a = random >> 68  # 12 bits
    rand_b = random & ((1 << 62) - 1)  # 62 bits
    value = (ms & ((1 << 48) - 1)) << 80 | VERSION << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def uuid7_floor(at: datetime) -> uuid.UUID:
    """The lowest UUIDv7 of the millisecond ``at`` (aware): a range bound, never an id."""
    return uuid.UUID(int=(int(at.timestamp() * 1000) & ((1 << 48) - 1)) << 80)


def short(value) -> str:
    """Eight hex digits that tell ids apart at a glance (admin lists, logs, the demo): a UUIDv7's
    last eight (its random tail — its first eight are the time, shared by a whole minute of
    messages), any other UUID's first eight."""
    text = str(value)
    return text[-8:] if uuid.UUID(text).version == VERSION else text[:8]

"""Keeping the database small: the partitioned tables' months made ahead (``core.partitions``).

The ledger and the stored webhook deliveries have a partition a month on PostgreSQL. The beat's
``waypost: partitions`` row runs ``partitions_ensure`` every day, so the next two months
always exist before their first row; ``manage.py retention`` runs it too. A month that was not
made in time costs nothing but speed: its rows go to the default partition, and are moved into
the month's own table when it is made."""

from __future__ import annotations

from core import partitions
from messaging.track.retention import LEDGER
from webhooks.services import DELIVERIES

AHEAD = 2  # months made ahead of this one


def partitions_ensure() -> dict[str, list[str]]:
    """Make the missing partitions of this month and the next ``AHEAD``; the ones made."""
    return {scheme.table: partitions.ensure(scheme, ahead=AHEAD) for scheme in (LEDGER, DELIVERIES)}

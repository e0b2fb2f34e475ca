"""The broker queues of tenants' work (``core.queues``): a few shared lanes, chosen by a hash
that every process computes alike, and a queue of its own for a tenant that has one."""

import subprocess
import sys
import uuid

from core.queues import is_dedicated, queue_for, shared_queues, slot

COUNTS = (4, 2)


def test_the_lanes_are_a_fixed_few_whatever_the_tenant_count():
    assert shared_queues(*COUNTS) == ["send.0", "send.1", "send.2", "send.3", "bulk.0", "bulk.1"]
    tenants = [uuid.uuid4() for _ in range(10_000)]
    express = {
        queue_for(tenant_id=t, slug="x", dedicated=False, bulk=False, counts=COUNTS)
        for t in tenants
    }
    bulk = {
        queue_for(tenant_id=t, slug="x", dedicated=False, bulk=True, counts=COUNTS) for t in tenants
    }
    assert express == {"send.0", "send.1", "send.2", "send.3"}
    assert bulk == {"bulk.0", "bulk.1"}


def test_tenants_spread_evenly_over_the_lanes():
    tenants = [uuid.uuid4() for _ in range(8_000)]
    per_lane = [sum(slot(t, 4) == lane for t in tenants) for lane in range(4)]
    assert all(1_800 < n < 2_200 for n in per_lane), per_lane


def test_a_tenant_with_a_queue_of_its_own_keeps_both_lanes_there():
    t = uuid.uuid4()
    for bulk in (False, True):
        queue = queue_for(tenant_id=t, slug="bigco", dedicated=True, bulk=bulk, counts=COUNTS)
        assert queue == "tenant.bigco" and is_dedicated(queue)
    assert not is_dedicated(
        queue_for(tenant_id=t, slug="bigco", dedicated=False, bulk=False, counts=COUNTS)
    )


def test_every_process_assigns_a_tenant_the_same_lane():
    """Not Python's ``hash``, which is salted per process: the API and the worker would publish
    and claim one tenant's work on different lanes."""
    t = "3f0c2b1e-8d4a-4c55-9a63-0d1b2c3d4e5f"
    here = [slot(t, n) for n in (3, 4, 16)]
    code = f"from core.queues import slot; print([slot({t!r}, n) for n in (3, 4, 16)])"
    for _ in range(2):
        there = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert there.stdout.strip() == str(here)

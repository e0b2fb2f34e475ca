"""Which reads ``core.replica`` sends to the replica: the product's tables inside ``on_replica``
only — never who may see what (sessions, users, API keys, staff scopes), never a write."""

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from core import replica
from messaging.models import Message
from tenants.models import ApiKey, StaffScope, Tenant

ROUTER = replica.ReplicaRouter()


@pytest.fixture
def configured(monkeypatch):
    monkeypatch.setattr(replica, "configured", lambda: True)


def test_reads_go_to_the_replica_only_inside_on_replica(configured):
    assert ROUTER.db_for_read(Message) == "default"
    with replica.on_replica():
        assert ROUTER.db_for_read(Message) == "replica"
        assert ROUTER.db_for_read(Tenant) == "replica"
        for model in (ApiKey, StaffScope, User, Session):
            assert ROUTER.db_for_read(model) == "default", model
        assert ROUTER.db_for_write(Message) == "default"
        # A staff user's tenants, through their scope: the membership is the primary's.
        assert ROUTER.db_for_read(Tenant, instance=StaffScope()) == "default"
        assert ROUTER.db_for_read(StaffScope.tenants.through) == "default"
    assert ROUTER.db_for_read(Message) == "default"


def test_without_a_replica_on_replica_changes_nothing():
    with replica.on_replica():
        assert ROUTER.db_for_read(Message) == "default"
    assert not ROUTER.allow_migrate("replica", "messaging")
    assert ROUTER.allow_migrate("default", "messaging")

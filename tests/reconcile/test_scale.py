"""The hourly check at a network's scale (bench/reconcile.py measures it): ownership is kept as
keys, not rows; system lists are read in pages; GenieACS is not asked again for what is known."""

from __future__ import annotations

import tracemalloc
import uuid

from sqlalchemy import insert

from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.engine import db_now
from orchestrator.models import (
    Customer,
    Subscriber,
    SubscriberStatus,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from orchestrator.reconcile.inventory import (
    NETBOX_PAGE,
    Device,
    GenieAcsInventory,
    NetBoxInventory,
    OnosInventory,
)
from orchestrator.reconcile.ownership import read_ownership
from tests.reconcile.conftest import Tenant

SUBSCRIBERS = 1000
#: What a completed provisioning's steps record besides their intents (outputs, undo data): the
#: check needs none of it.
STEP_OUTPUT = {"detail": "x" * 2000}


def live_subscribers(tenant: Tenant, count: int) -> list[str]:
    """``count`` subscribers whose provisioning completed, with nine recorded steps each."""
    customer_id = uuid.uuid4()
    workflows, steps, subscribers = [], [], []
    for n in range(count):
        workflow_id, subscriber_id = uuid.uuid4(), uuid.uuid4()
        workflows.append(
            {
                "id": workflow_id,
                "tenant_id": tenant.id,
                "workflow_type": "provision_subscriber",
                "definition_version": 3,
                "status": WorkflowStatus.COMPLETED,
                "subscriber_id": subscriber_id,
                "input": {"username": f"scale-{n}"},
                "context": STEP_OUTPUT,
                "output": STEP_OUTPUT,
            }
        )
        steps += [
            {
                "workflow_id": workflow_id,
                "position": position,
                "name": f"step_{position}",
                "system": "database",
                "intent": {"idempotency_key": f"{workflow_id}:step_{position}"},
                "output": STEP_OUTPUT,
            }
            for position in range(9)
        ]
        subscribers.append(
            {
                "id": subscriber_id,
                "tenant_id": tenant.id,
                "customer_id": customer_id,
                "service_plan_id": tenant.plan.id,
                "username": f"scale-{uuid.uuid4().hex[:12]}",
                "service_address": "1 Scale Street",
                "status": SubscriberStatus.ACTIVE,
                "workflow_id": workflow_id,
                "resources": {"netbox": {"key": f"{workflow_id}:allocate_ip"}},
            }
        )
    with transaction() as session:
        session.add(
            Customer(
                id=customer_id, tenant_id=tenant.id, first_name="S", last_name="C", email="s@c.x"
            )
        )
        session.flush()
        for table, rows in (
            (Workflow, workflows),
            (WorkflowStep, steps),
            (Subscriber, subscribers),
        ):
            session.execute(insert(table), rows)
    return [str(w["id"]) for w in workflows]


def test_ownership_is_kept_as_keys_not_as_rows(database, acme):
    # Given a thousand live subscribers, each named by a marker, with their workflows' history
    referenced = live_subscribers(acme, SUBSCRIBERS)

    # When the check reads who owns what
    with transaction() as session:
        started = db_now(session)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            owners = read_ownership(session, started, referenced, [])
            grown = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()

    # Then it knows them all, and its peak is a few KiB per subscriber: their keys, not their
    # workflows' steps, context and output (ORM rows dragged those along: over 30 KiB each)
    assert set(referenced) <= owners.workflows.keys()
    assert sum(s.live for s in owners.subscribers.values()) >= SUBSCRIBERS
    assert grown < SUBSCRIBERS * 5 * 1024, grown


def test_netbox_lists_are_read_in_pages_of_its_largest_size(sim, database):
    # Given NetBox's addresses and prefixes
    inventory = NetBoxInventory.from_settings(get_settings())

    # When the check reads them
    inventory.marked_addresses(["100.64.0.0/24"])
    inventory.marked_prefixes()

    # Then every list request asks for pages of NETBOX_PAGE objects
    lists = [r for r in sim.requests("netbox") if r["method"] == "GET"]
    assert lists and all(f"limit={NETBOX_PAGE}" in r["query"] for r in lists), lists


def test_genieacs_is_asked_only_for_serials_no_known_device_has(sim, database):
    # Given a CPE GenieACS knows, which the check has read already (it carries our tag), and
    # one it has not read
    for serial in ("KNOWN0001", "OTHER0001"):
        sim.add_cpe(serial)
    known = Device("A4230F-SimCPE-KNOWN0001", "KNOWN0001", ("subscriber-x",))
    inventory = GenieAcsInventory(get_settings().genieacs_url)

    # When the devices of both serials are looked up
    found = inventory.devices_by_serial(["KNOWN0001", "OTHER0001"], known=[known])

    # Then the known one is taken as read, and GenieACS is asked for the other one alone
    assert found["KNOWN0001"] is known
    assert found["OTHER0001"].serial == "OTHER0001"
    (asked,) = sim.requests("genieacs")
    assert "OTHER0001" in asked["query"] and "KNOWN0001" not in asked["query"]


def test_onos_ports_are_read_one_device_at_a_time(sim, database):
    # Given ONOS's ports (the simulators' demo network) and a port our intents named
    inventory = OnosInventory.from_settings(get_settings())

    # When the check reads the services on it
    inventory.programmed_on(["BBSM00000001-1"])

    # Then it asks for the devices, then each device's ports, never every port in one answer
    paths = [r["path"] for r in sim.requests("onos")]
    assert paths[0] == "/onos/v1/devices", paths
    assert "/onos/v1/devices/ports" not in paths
    assert any(p.startswith("/onos/v1/devices/of") and p.endswith("/ports") for p in paths)

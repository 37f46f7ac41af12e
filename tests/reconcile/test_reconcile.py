"""`orchestrator reconcile` on real workers, FreeRADIUS and the simulators: orphans made by hand
in every system are listed with their reasons, `--fix` removes them through cleanup workflows,
what someone else made is never listed nor touched, and the API answers the same, per tenant."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, select, text

from orchestrator import cli, faults
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.integrations.genieacs import GenieAcsClient
from orchestrator.integrations.netbox import NetBoxClient
from orchestrator.integrations.radius import RadiusStore
from orchestrator.models import (
    BillingService,
    BillingStatus,
    Subscriber,
    SubscriberStatus,
    Workflow,
    WorkflowStatus,
)
from orchestrator.reconcile import periodic
from orchestrator.reconcile.check import check
from orchestrator.reconcile.inventory import GenieAcsInventory, Inventory
from tests.reconcile.conftest import Tenant
from tests.support.requests import (
    provision_body,
    submit,
    submit_lost,
    unique_cpe_serial,
    unique_serial,
)
from tests.support.workflows import events, wait_terminal

RECONCILIATION = "/api/v1/reconciliation"
PREFIX = "100.64.1.0/24"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def reconcile(capsys, *args: str) -> tuple[int, dict[str, Any]]:
    status = cli.main(["reconcile", "--json", *args])
    return status, json.loads(capsys.readouterr().out)


def provision(sim, client, tenant: Tenant, *, cpe: bool = True) -> list[dict[str, Any]]:
    """Subscribers provisioned everywhere (submitted together, waited for together)."""
    bodies = []
    for with_cpe in [cpe] * 2 if cpe else [False]:
        extra = {"cpe_serial": unique_cpe_serial()} if with_cpe else {}
        body = provision_body(tenant.plan.id, discovered=False, onu_serial=unique_serial(), **extra)
        sim.add_onu(body["onu_serial"])
        if with_cpe:
            sim.add_cpe(body["cpe_serial"], data_model="tr181")
        body["workflow_id"], _ = submit(client, tenant.operator, body)
        bodies.append(body)
    for body in bodies:
        assert wait_terminal(body["workflow_id"]).value == "completed"
        with transaction() as session:
            row = session.scalars(
                select(Subscriber).where(Subscriber.workflow_id == body["workflow_id"])
            ).one()
            body["subscriber_id"], body["customer_id"] = row.id, row.customer_id
    return bodies


def radius_sql(statement: str, **params: Any) -> list[Any]:
    engine = create_engine(os.environ["RADIUS_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def a_rolled_back_maker(tenant: Tenant, customer_id: uuid.UUID) -> dict[str, Any]:
    """A provisioning that rolled back, with a subscriber row, its billing, a NetBox address, a
    RADIUS account and a queued CPE push that its undo "missed": as if injected by a bug."""
    maker = {
        "workflow_id": uuid.uuid4(),
        "subscriber_id": uuid.uuid4(),
        "username": f"ppp-{uuid.uuid4().hex[:10]}",
    }
    with transaction() as session:
        session.add(
            Workflow(
                id=maker["workflow_id"],
                tenant_id=tenant.id,
                workflow_type="provision_subscriber",
                definition_version=3,
                status=WorkflowStatus.ROLLED_BACK,
                subscriber_id=maker["subscriber_id"],
                input={"username": maker["username"]},
                context={},
                output={},
            )
        )
        session.flush()
        session.add(
            Subscriber(
                id=maker["subscriber_id"],
                tenant_id=tenant.id,
                customer_id=customer_id,
                service_plan_id=tenant.plan.id,
                username=maker["username"],
                service_address="1 Orphan Lane",
                status=SubscriberStatus.ACTIVE,
                workflow_id=maker["workflow_id"],
                resources={},
            )
        )
        session.flush()
        session.add(
            BillingService(
                tenant_id=tenant.id,
                subscriber_id=maker["subscriber_id"],
                service_plan_id=tenant.plan.id,
                status=BillingStatus.ACTIVE,
                workflow_id=maker["workflow_id"],
            )
        )
    settings = get_settings()
    netbox = NetBoxClient.from_settings(settings)
    maker["address"] = netbox.allocate_ip(PREFIX, f"{maker['workflow_id']}:allocate_ip").address
    RadiusStore.from_settings(settings).create_account(
        username=maker["username"],
        password="not-shown",
        group=tenant.plan.radius_group,
        framed_ip=None,
        owner=str(maker["workflow_id"]),
    )
    return maker


def someone_elses(sim, offline_cpe: str) -> None:
    """Resources made by another tool, without our markers, beside ours."""
    settings = get_settings()
    NetBoxClient.from_settings(settings).allocate_ip(PREFIX, "reserved for the NOC")
    radius_sql(
        "INSERT INTO radcheck (username, attribute, op, value) "
        "VALUES ('noc-admin', 'Cleartext-Password', ':=', 'x')"
    )
    genieacs = GenieAcsClient.from_settings(settings)
    device = genieacs.find_device(offline_cpe)
    genieacs.add_tag(device, "vip")
    genieacs.push_pppoe_credentials(device, "noc-user", "not-shown", "noc-firmware")


def netbox_descriptions() -> set[str]:
    netbox = NetBoxClient.from_settings(get_settings())
    return {r.description for r in netbox._api.ipam.ip_addresses.filter(parent=PREFIX)}


def test_orphans_everywhere_are_listed_fixed_and_others_left_alone(
    sim, client, worker, acme, globex, capsys
):
    # Given two subscribers provisioned everywhere (ONU service, CPE, address, account)
    kept, lost = provision(sim, client, acme)
    # ... when the rows of one are deleted by hand: nothing owns its resources any more
    with transaction() as session:
        session.execute(
            delete(BillingService).where(BillingService.subscriber_id == lost["subscriber_id"])
        )
        session.execute(delete(Subscriber).where(Subscriber.id == lost["subscriber_id"]))
    # ... and a rolled-back provisioning left a row, billing, address, account and CPE push
    offline = unique_cpe_serial()
    sim.add_cpe(offline, data_model="tr181", online=False)
    maker = a_rolled_back_maker(acme, kept["customer_id"])
    genieacs = GenieAcsClient.from_settings(get_settings())
    genieacs.push_pppoe_credentials(
        genieacs.find_device(offline),
        maker["username"],
        "not-shown",
        f"{maker['workflow_id']}:configure_cpe",
    )
    # ... and someone else made an address, an account, a tag and a task without our markers
    someone_elses(sim, offline)

    # When the tenant is reconciled
    status, report = reconcile(capsys, "--tenant", acme.id)

    # Then exactly those orphans are listed, each with its maker and a reason, nothing missing
    assert status == 3
    assert report["missing"] == []
    found = {
        (o["system"], o["workflow_id"], o["resource"].split(" (")[0]): o for o in report["orphans"]
    }
    lost_wf, maker_wf = str(lost["workflow_id"]), str(maker["workflow_id"])
    expected_kinds = [
        ("netbox", lost_wf),
        ("netbox", maker_wf),
        ("radius", lost_wf),
        ("radius", maker_wf),
        ("onos", lost_wf),
        ("genieacs", lost_wf),
        ("genieacs", maker_wf),
        ("database", maker_wf),
        ("database", maker_wf),
    ]
    assert sorted((s, w) for s, w, _ in found) == sorted(expected_kinds), report
    assert len(report["orphans"]) == len(expected_kinds)
    by_resource = {o["resource"]: o for o in report["orphans"]}
    assert f"account {lost['username']}" in by_resource
    assert f"account {maker['username']}" in by_resource
    assert f"service {lost['onu_serial']}-1 s100/c200/tp64" in by_resource
    assert f"tag subscriber-{lost['subscriber_id']} on CPE {lost['cpe_serial']}" in by_resource
    assert "no longer exists" in by_resource[f"account {lost['username']}"]["reason"]
    assert "rolled_back" in by_resource[f"account {maker['username']}"]["reason"]
    everything = json.dumps(report)
    assert kept["username"] not in everything and kept["onu_serial"] not in everything
    assert "noc" not in everything and "vip" not in everything and "reserved" not in everything
    assert "not-shown" not in everything and lost["password"] not in everything

    # And the API tells an admin the same, refuses operators and viewers, and keeps tenants apart
    answer = client.get(RECONCILIATION, headers=auth(acme.admin))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == report
    for key in (acme.operator, acme.viewer):
        assert client.get(RECONCILIATION, headers=auth(key)).status_code == 403
    other = client.get(RECONCILIATION, headers=auth(globex.admin))
    assert other.get_json() == {"orphans": [], "missing": []}
    assert reconcile(capsys, "--tenant", globex.id) == (0, {"orphans": [], "missing": []})

    # When it is fixed
    status, fixed = reconcile(capsys, "--tenant", acme.id, "--fix")

    # Then one cleanup workflow per subscriber removes them, audited like any workflow
    assert status == 3 and fixed["orphans"] == report["orphans"]
    cleanups = fixed["cleanup"]
    assert {c["subscriber_id"] for c in cleanups} == {
        str(lost["subscriber_id"]),
        str(maker["subscriber_id"]),
    }
    for cleanup in cleanups:
        assert cleanup["refused"] is None
        workflow_id = uuid.UUID(cleanup["workflow_id"])
        assert wait_terminal(workflow_id).value == "completed"
        kinds = {e.kind for e in events(workflow_id)}
        assert {"workflow_created", "step_completed"} <= kinds

    # And the tenant is clean
    assert reconcile(capsys, "--tenant", acme.id) == (0, {"orphans": [], "missing": []})
    # ... its live subscriber untouched, and nothing of anyone else's removed
    assert RadiusStore.from_settings(get_settings()).owner_of(kept["username"]) == str(
        kept["workflow_id"]
    )
    descriptions = netbox_descriptions()
    assert f"{kept['workflow_id']}:allocate_ip" in descriptions
    assert "reserved for the NOC" in descriptions
    assert f"{lost['workflow_id']}:allocate_ip" not in descriptions
    assert radius_sql("SELECT username FROM radcheck WHERE username = 'noc-admin'")
    device = next(d for d in sim.state()["genieacs"]["devices"] if d["serial"] == offline)
    assert "vip" in device["tags"]
    keys = {t.get("uniqueKey") for t in genieacs._query("tasks", {}, operation="test")}
    assert "noc-firmware" in keys and f"{maker['workflow_id']}:configure_cpe" not in keys
    with transaction() as session:
        row = session.get(Subscriber, maker["subscriber_id"])
        assert row is not None and row.status == SubscriberStatus.TERMINATED  # kept, for history
    assert sim.state()["onos"]["programmed_subscribers"] and all(
        s["port_name"] != f"{lost['onu_serial']}-1"
        for s in sim.state()["onos"]["programmed_subscribers"]
    )


@pytest.mark.leaves_behind("the RADIUS account is deleted by hand: reconcile reports it")
def test_a_live_subscribers_account_deleted_by_hand_is_missing(sim, client, worker, acme, capsys):
    # Given a provisioned subscriber whose RADIUS account someone deleted by hand
    (body,) = provision(sim, client, acme, cpe=False)
    for table in ("radcheck", "radreply", "radusergroup", "orchestrator_radius_account"):
        radius_sql(f"DELETE FROM {table} WHERE username = :u", u=body["username"])  # noqa: S608

    # When the tenant is reconciled
    status, report = reconcile(capsys, "--tenant", acme.id)

    # Then the subscriber shows in "missing", and nothing is an orphan
    assert status == 3
    assert report["orphans"] == []
    assert report["missing"] == [
        {
            "system": "radius",
            "resource": f"account {body['username']}",
            "workflow_id": str(body["workflow_id"]),
            "subscriber_id": str(body["subscriber_id"]),
            "reason": "no RADIUS account owned by its provisioning",
        }
    ]
    assert client.get(RECONCILIATION, headers=auth(acme.admin)).get_json() == report


def test_what_an_in_flight_workflow_makes_is_not_an_orphan(sim, worker, acme, capsys):
    # Given a provisioning accepted but not yet run, whose address step has (by hand) taken
    # its address already, as a step in flight would have
    body = provision_body(acme.plan.id)
    # (a step that needs the address will fail for good once the sweeper runs the workflow)
    faults.arm("assign_framed_ip", ["permanent"], username=body["username"])
    workflow_id = submit_lost(acme.id, body)
    key = f"{workflow_id}:allocate_ip"
    NetBoxClient.from_settings(get_settings()).allocate_ip(PREFIX, key)

    # When the tenant is reconciled, the address is its workflow's: nothing to report
    assert reconcile(capsys, "--tenant", acme.id) == (0, {"orphans": [], "missing": []})

    # (the sweeper runs it later: its address step adopts the address, and the step that
    # needs it fails for good, so the rollback releases it; a failure in a stage beside the
    # address step could come before that step ever ran, and an address no attempt took is
    # not undone)
    try:
        assert wait_terminal(workflow_id).value == "rolled_back"
    finally:
        faults.clear()
    assert key not in netbox_descriptions()
    # ... and the periodic check counts what it finds, in the log and in /metrics
    counts = periodic.run()
    assert all(kind in ("orphan", "missing") for kind, _ in (k.split(":") for k in counts))
    assert periodic.FINDINGS.labels("orphan", "netbox")._value.get() == counts.get(
        "orphan:netbox", 0
    )


def test_genieacs_is_read_for_a_networks_worth_of_serials(sim, database):
    # Given three CPEs GenieACS knows among 2,000 serials a check asks about: one URL of them
    # all is past what GenieACS's Node server reads (431)
    known = [f"RECON{n:08d}" for n in range(3)]
    for serial in known:
        sim.add_cpe(serial)
    asked = known + [f"ABSENT{n:08d}" for n in range(1997)]
    inventory = GenieAcsInventory(get_settings().genieacs_url)

    # When the inventory looks them up
    found = inventory.devices_by_serial(asked)

    # Then it asks in batches GenieACS accepts, and finds exactly the known ones
    assert sorted(found) == known
    assert len(sim.requests("genieacs")) > 1


def test_a_system_that_cannot_be_read_is_named_not_judged(sim, database, acme):
    # Given GenieACS unreachable (a closed port) and every other system up
    settings = get_settings()
    inventory = Inventory.from_settings(settings)
    inventory.genieacs = GenieAcsInventory("http://127.0.0.1:9")

    # When the check runs
    report = check(inventory).for_tenant(acme.id)

    # Then GenieACS is named as unread, nothing is claimed about it, and the status is an error
    assert report.unavailable == ("genieacs",)
    assert report.exit_status == 1
    assert report.to_json() == {"orphans": [], "missing": [], "unavailable": ["genieacs"]}
    inventory.close()


@pytest.mark.leaves_behind("deletes an account by hand to show the suite's check sees it")
def test_the_suites_check_names_what_a_test_left_and_only_that_tests(sim, client, worker, acme):
    # The check every test on the worker ends with (tests/conftest.py, nothing_left_behind)
    from tests.support.left_behind import left_behind_since, now

    # Given a subscriber provisioned during this test, whose RADIUS account is then removed
    started = now()
    (body,) = provision(sim, client, acme, cpe=False)
    assert left_behind_since(started) == []
    radius_sql("DELETE FROM orchestrator_radius_account WHERE username = :u", u=body["username"])

    # Then the check names it; and a later test (one started after it) is not blamed for it
    assert left_behind_since(started) == [
        f"missing from radius: account {body['username']} "
        "(no RADIUS account owned by its provisioning)"
    ]
    assert left_behind_since(now()) == []

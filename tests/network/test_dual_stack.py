"""Dual-stack subscribers (issue 11): an IPv4 address and IPv6 prefixes from NetBox, delegated
through FreeRADIUS, undone like everything else.

The plans here use pools no other module allocates from; the simulators forget them at every
reset, so each test adds them back (``pools``).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orchestrator import faults
from orchestrator.config import get_settings
from orchestrator.integrations.radius import RadiusStore
from orchestrator.models import ServicePlan
from tests.support.plans import create_plan
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit, unique_cpe_serial, unique_serial
from tests.support.workflows import steps, wait_terminal

POOL = "2001:db8:a00::/40"
WAN_POOL = "2001:db8:b00::/48"
OTHER_POOL = "2001:db8:c00::/40"
#: Room for two /56s only.
TINY_POOL = "2001:db8:d00::/55"
ORCHESTRATION = "/api/v1/orchestration"


@pytest.fixture(scope="module")
def dual_plan(tenant: str) -> ServicePlan:
    return create_plan(
        tenant,
        "dual-stack",
        ipv4_prefix="100.64.1.0/24",
        ipv6_delegation_pool=POOL,
        ipv6_delegated_length=56,
        ipv6_wan_pool=WAN_POOL,
    )


@pytest.fixture(scope="module")
def other_pool_plan(tenant: str) -> ServicePlan:
    return create_plan(
        tenant,
        "dual-stack-other-pool",
        download_mbps=500,
        ipv4_prefix="100.64.1.0/24",
        ipv6_delegation_pool=OTHER_POOL,
        ipv6_delegated_length=60,
    )


@pytest.fixture(scope="module")
def tiny_pool_plan(tenant: str) -> ServicePlan:
    return create_plan(
        tenant,
        "dual-stack-tiny-pool",
        ipv4_prefix="100.64.1.0/24",
        ipv6_delegation_pool=TINY_POOL,
        ipv6_delegated_length=56,
    )


@pytest.fixture
def pools(sim) -> dict[str, int]:
    """The IPv6 pools in the (freshly reset) NetBox simulator: prefix -> id."""
    return {
        pool: sim.control("POST", "prefixes", {"prefix": pool}, expect=201)["id"]
        for pool in (POOL, WAN_POOL, OTHER_POOL, TINY_POOL)
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_body(sim, plan_id: int) -> dict[str, Any]:
    body = provision_body(
        plan_id, discovered=False, onu_serial=unique_serial(), cpe_serial=unique_cpe_serial()
    )
    sim.add_onu(body["onu_serial"])
    sim.add_cpe(body["cpe_serial"], data_model="tr181")
    return body


def carrying(sim, key: str) -> list[str]:
    """What NetBox holds with ``key`` in its description: addresses and prefixes."""
    netbox = sim.state()["netbox"]
    return [ip["address"] for ip in netbox["ip_addresses"] if ip["description"] == key] + [
        p["prefix"] for p in netbox["prefixes"] if p["description"] == key
    ]


def ours(sim, workflow_id: uuid.UUID) -> list[str]:
    netbox = sim.state()["netbox"]
    return [
        o.get("address") or o["prefix"]
        for o in netbox["ip_addresses"] + netbox["prefixes"]
        if str(workflow_id) in o["description"]
    ]


def output(client, key: str, workflow_id: uuid.UUID) -> dict[str, Any]:
    detail = client.get(f"{ORCHESTRATION}/workflows/{workflow_id}", headers=auth(key))
    return detail.get_json()["output"]


def test_a_dual_stack_subscriber_gets_an_address_and_prefixes_radius_hands_out(
    sim, pools, client, worker, dual_plan, operator_key, radius_server
):
    # Given a plan with a delegation pool (/56s) and a WAN pool (/64s)
    body = new_body(sim, dual_plan.id)

    # When the subscriber is provisioned
    workflow_id, _ = submit(client, operator_key, body)

    # Then NetBox holds one address, one /56 and one /64, each carrying the workflow's key
    assert wait_terminal(workflow_id).value == "completed"
    [address] = carrying(sim, f"{workflow_id}:allocate_ip")
    [delegated] = carrying(sim, f"{workflow_id}:allocate_ipv6_prefix")
    [wan] = carrying(sim, f"{workflow_id}:allocate_ipv6_prefix:wan")
    assert delegated.startswith("2001:db8:a") and delegated.endswith("/56")
    assert wan.startswith("2001:db8:b00:") and wan.endswith("/64")
    # and FreeRADIUS hands out all three in its Access-Accept
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.accepted
    assert reply.first("Framed-IP-Address") == address.split("/")[0]
    assert reply.first("Delegated-IPv6-Prefix") == delegated
    assert reply.first("Framed-IPv6-Prefix") == wan
    # and the workflow's output and the subscriber's resources name them
    out = output(client, operator_key, workflow_id)
    assert (out["ipv6_delegated_prefix"], out["ipv6_wan_prefix"]) == (delegated, wan)
    view = client.get(f"/api/v1/subscribers/{out['subscriber_id']}", headers=auth(operator_key))
    ipv6 = view.get_json()["resources"]["ipv6"]
    assert ipv6["delegated_prefix"] == delegated
    assert ipv6["wan_prefix"] == wan
    assert ipv6["key"] == f"{workflow_id}:allocate_ipv6_prefix"


def test_an_ipv4_only_plan_skips_the_prefix_step(
    sim, pools, client, worker, network_plan, operator_key, radius_server
):
    body = new_body(sim, network_plan.id)
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["allocate_ipv6_prefix"].status.value == "skipped"
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.first("Delegated-IPv6-Prefix") is None


def test_a_static_prefix_skips_netbox_and_goes_to_radius(
    sim, pools, client, worker, dual_plan, operator_key, radius_server
):
    body = new_body(sim, dual_plan.id)
    body["static_ipv6_prefix"] = "2001:db8:ff00::/56"
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["allocate_ipv6_prefix"].status.value == "skipped"
    assert [p for p in ours(sim, workflow_id) if ":" in p] == []
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.first("Delegated-IPv6-Prefix") == "2001:db8:ff00::/56"


@pytest.mark.parametrize("step", ["assign_framed_ip", "create_billing_service"])
def test_a_failure_after_the_prefixes_releases_them_all(
    step, sim, pools, client, worker, dual_plan, operator_key, radius_server
):
    # Given a step after the allocations fails for good
    body = new_body(sim, dual_plan.id)
    faults.arm(step, ["permanent"], username=body["username"])

    workflow_id, _ = submit(client, operator_key, body)

    # Then the workflow rolls back: address and prefixes released, radreply empty, rejected
    assert wait_terminal(workflow_id, timeout=90).value == "rolled_back"
    assert steps(workflow_id)["allocate_ipv6_prefix"].status.value == "compensated"
    assert ours(sim, workflow_id) == []
    store = RadiusStore.from_settings(get_settings())
    assert store.account_rows(body["username"])["radreply"] == 0
    host, port = radius_server
    assert not authenticate(body["username"], body["password"], host=host, port=port).accepted


def test_a_full_pool_fails_for_good_naming_it_and_rolls_back(
    sim, pools, client, worker, tiny_pool_plan, operator_key
):
    # Given the pool's two /56s are taken
    for key in ("someone", "someone-else"):
        sim.session.post(
            f"{sim.netbox_url}/api/ipam/prefixes/{pools[TINY_POOL]}/available-prefixes/",
            json={"prefix_length": 56, "description": key},
            headers={"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"},
            timeout=5,
        ).raise_for_status()
    body = new_body(sim, tiny_pool_plan.id)

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id, timeout=90).value == "rolled_back"
    failed = steps(workflow_id)["allocate_ipv6_prefix"]
    assert failed.attempts == 1  # permanent: not retried
    assert TINY_POOL in failed.error["message"]
    assert ours(sim, workflow_id) == []


def test_a_redelivered_prefix_step_makes_one_prefix(
    sim, pools, client, worker, dual_plan, operator_key
):
    # Given NetBox carves the prefix but its answer is lost
    sim.fault(
        "netbox", f"^POST /api/ipam/prefixes/{pools[POOL]}/available-prefixes/", "after_effect"
    )
    body = new_body(sim, dual_plan.id)

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id, timeout=60).value == "completed"
    assert steps(workflow_id)["allocate_ipv6_prefix"].attempts == 2
    assert len(carrying(sim, f"{workflow_id}:allocate_ipv6_prefix")) == 1


def test_twenty_concurrent_provisionings_get_twenty_prefixes(
    sim, pools, client, worker, dual_plan, operator_key
):
    bodies = [new_body(sim, dual_plan.id) for _ in range(20)]
    ids = [submit(client, operator_key, body)[0] for body in bodies]
    # all twenty run side by side in the workers; waiting for them in turn costs nothing
    statuses = [wait_terminal(w, timeout=120).value for w in ids]
    assert statuses == ["completed"] * 20
    delegated = [carrying(sim, f"{w}:allocate_ipv6_prefix") for w in ids]
    assert all(len(d) == 1 for d in delegated)
    assert len({d[0] for d in delegated}) == 20


def test_deprovision_releases_the_prefixes(
    sim, pools, client, worker, dual_plan, operator_key, radius_server
):
    body = new_body(sim, dual_plan.id)
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "completed"
    subscriber_id = output(client, operator_key, workflow_id)["subscriber_id"]
    assert len(ours(sim, workflow_id)) == 3

    response = client.post(
        f"{ORCHESTRATION}/deprovision-subscriber",
        json={"subscriber_id": subscriber_id},
        headers=auth(operator_key),
    )
    assert response.status_code == 202, response.get_json()
    deprovision = uuid.UUID(response.get_json()["workflow_id"])

    assert wait_terminal(deprovision).value == "completed"
    assert steps(deprovision)["release_ipv6_prefix"].output == {"released": 2}
    assert ours(sim, workflow_id) == []


def change_plan(client, key: str, subscriber_id: str, plan_id: int) -> uuid.UUID:
    response = client.post(
        f"{ORCHESTRATION}/change-service-plan",
        json={"subscriber_id": subscriber_id, "service_plan_id": plan_id},
        headers=auth(key),
    )
    assert response.status_code == 202, response.get_json()
    return uuid.UUID(response.get_json()["workflow_id"])


def test_a_plan_change_to_another_pool_moves_the_prefixes(
    sim, pools, client, worker, dual_plan, other_pool_plan, operator_key, radius_server
):
    # Given a dual-stack subscriber on the first pool
    body = new_body(sim, dual_plan.id)
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "completed"
    subscriber_id = output(client, operator_key, workflow_id)["subscriber_id"]

    # When it moves to a plan on another pool (a /60, no WAN pool)
    change = change_plan(client, operator_key, subscriber_id, other_pool_plan.id)

    # Then it holds a /60 from the new pool, RADIUS says so, and the old prefixes are free
    assert wait_terminal(change).value == "completed"
    [moved] = carrying(sim, f"{change}:move_ipv6_prefix")
    assert moved.startswith("2001:db8:c") and moved.endswith("/60")
    assert [p for p in ours(sim, workflow_id) if ":" in p] == []
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.first("Delegated-IPv6-Prefix") == moved
    assert reply.first("Framed-IPv6-Prefix") is None
    view = client.get(f"/api/v1/subscribers/{subscriber_id}", headers=auth(operator_key))
    assert view.get_json()["resources"]["ipv6"]["delegated_prefix"] == moved


def test_a_failed_plan_change_keeps_the_old_prefixes(
    sim, pools, client, worker, dual_plan, other_pool_plan, operator_key, radius_server
):
    body = new_body(sim, dual_plan.id)
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "completed"
    subscriber_id = output(client, operator_key, workflow_id)["subscriber_id"]
    before = sorted(ours(sim, workflow_id))
    faults.arm("change_billing_plan", ["permanent"], username=body["username"])

    change = change_plan(client, operator_key, subscriber_id, other_pool_plan.id)

    assert wait_terminal(change, timeout=90).value == "rolled_back"
    assert carrying(sim, f"{change}:move_ipv6_prefix") == []
    assert sorted(ours(sim, workflow_id)) == before
    delegated = next(p for p in before if p.endswith("/56"))
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.first("Delegated-IPv6-Prefix") == delegated

"""Service plans: admins write, everyone reads, tenants never see each other's, and a plan in
use cannot be pulled from under a subscriber."""

from __future__ import annotations

import secrets
import uuid

import pytest

from orchestrator.db import transaction
from orchestrator.models import Customer, ServicePlan, Subscriber, WorkflowStatus
from tests.api.helpers import auth, seed_workflow

PLANS = "/api/v1/service-plans"


def plan_body(**overrides):  # type: ignore[no-untyped-def]
    suffix = secrets.token_hex(4)
    return {
        "name": f"fiber-{suffix}",
        "download_mbps": 1000,
        "upload_mbps": 500,
        "radius_group": f"group-{suffix}",
        "ipv4_prefix": "100.66.0.0/22",
        "s_tag": 10,
        "c_tag": 20,
        "tech_profile_id": 64,
        **overrides,
    }


@pytest.fixture
def new_plan(api, admin_key):  # type: ignore[no-untyped-def]
    response = api.post(PLANS, json=plan_body(), headers=auth(admin_key))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_read_change_delete(api, admin_key, viewer_key):
    body = plan_body(ipv4_prefix=None, s_tag=None)
    created = api.post(PLANS, json=body, headers=auth(admin_key))
    assert created.status_code == 201
    plan = created.get_json()
    assert created.headers["Location"] == f"{PLANS}/{plan['id']}"
    assert {k: plan[k] for k in body} == body

    assert api.get(created.headers["Location"], headers=auth(viewer_key)).get_json() == plan
    listed = api.get(PLANS, headers=auth(viewer_key)).get_json()["items"]
    assert plan in listed

    changed = api.patch(
        f"{PLANS}/{plan['id']}",
        json={"download_mbps": 2000, "ipv4_prefix": "100.67.0.0/24", "c_tag": None},
        headers=auth(admin_key),
    )
    assert changed.status_code == 200
    assert changed.get_json() == {
        **plan,
        "download_mbps": 2000,
        "ipv4_prefix": "100.67.0.0/24",
        "c_tag": None,
    }
    assert api.patch(f"{PLANS}/{plan['id']}", json={}, headers=auth(admin_key)).status_code == 200

    deleted = api.delete(f"{PLANS}/{plan['id']}", headers=auth(admin_key))
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    assert api.get(f"{PLANS}/{plan['id']}", headers=auth(viewer_key)).status_code == 404
    assert api.delete(f"{PLANS}/{plan['id']}", headers=auth(admin_key)).status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("download_mbps", 0),
        ("upload_mbps", -5),
        ("download_mbps", 1.5),
        ("s_tag", 0),
        ("s_tag", 4095),
        ("c_tag", 5000),
        ("ipv4_prefix", "100.66.0.1/22"),  # host bits set
        ("ipv4_prefix", "100.66.0.0"),
        ("ipv4_prefix", "2001:db8::/32"),
        ("ipv4_prefix", "300.0.0.0/8"),
        ("tech_profile_id", -1),
        ("radius_group", "has space"),
        ("name", ""),
        ("name", "tab\there"),
    ],
)
def test_invalid_plans_are_422_naming_the_field(api, admin_key, field, value):
    response = api.post(PLANS, json=plan_body(**{field: value}), headers=auth(admin_key))
    assert response.status_code == 422
    assert list(response.get_json()["error"]["details"]) == [field]


def test_invalid_changes_are_422(api, admin_key, new_plan):
    response = api.patch(
        f"{PLANS}/{new_plan['id']}", json={"s_tag": 4095, "colour": "red"}, headers=auth(admin_key)
    )
    assert response.status_code == 422
    assert set(response.get_json()["error"]["details"]) == {"s_tag", "colour"}
    response = api.patch(
        f"{PLANS}/{new_plan['id']}", json={"download_mbps": None}, headers=auth(admin_key)
    )
    assert response.status_code == 422


def test_a_radius_group_in_use_is_409_even_in_another_tenant(
    api, admin_key, globex_admin_key, new_plan
):
    clash = plan_body(radius_group=new_plan["radius_group"])
    for key in (admin_key, globex_admin_key):
        response = api.post(PLANS, json=clash, headers=auth(key))
        assert response.status_code == 409
        assert list(response.get_json()["error"]["details"]) == ["radius_group"]

    other = api.post(PLANS, json=plan_body(), headers=auth(admin_key)).get_json()
    changed = api.patch(
        f"{PLANS}/{other['id']}",
        json={"radius_group": new_plan["radius_group"]},
        headers=auth(admin_key),
    )
    assert changed.status_code == 409


def test_a_name_in_use_is_409_in_the_same_tenant_only(api, admin_key, globex_admin_key, new_plan):
    same_name = plan_body(name=new_plan["name"])
    assert api.post(PLANS, json=same_name, headers=auth(admin_key)).status_code == 409
    assert api.post(PLANS, json=same_name, headers=auth(globex_admin_key)).status_code == 201


def test_another_tenants_plan_is_not_found(api, globex_admin_key, new_plan):
    path = f"{PLANS}/{new_plan['id']}"
    missing = f"{PLANS}/2147483647"
    key = auth(globex_admin_key)
    for method, kwargs in (("get", {}), ("patch", {"json": {"name": "mine"}}), ("delete", {})):
        theirs = getattr(api, method)(path, headers=key, **kwargs)
        absent = getattr(api, method)(missing, headers=key, **kwargs)
        assert theirs.status_code == absent.status_code == 404
        assert theirs.get_json()["error"]["code"] == absent.get_json()["error"]["code"]
    assert new_plan not in api.get(PLANS, headers=key).get_json()["items"]
    with transaction() as session:
        assert session.get(ServicePlan, new_plan["id"]).name == new_plan["name"]


def test_plan_ids_beyond_the_column_are_404(api, viewer_key):
    assert api.get(f"{PLANS}/2147483648", headers=auth(viewer_key)).status_code == 404
    assert api.get(f"{PLANS}/-1", headers=auth(viewer_key)).status_code == 404


def test_a_plan_used_by_an_active_workflow_cannot_be_deleted(api, admin_key, new_plan):
    workflow_id = seed_workflow("acme", WorkflowStatus.RUNNING, plan_id=new_plan["id"])

    response = api.delete(f"{PLANS}/{new_plan['id']}", headers=auth(admin_key))

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    # Nor can its RADIUS group change; other fields can
    regroup = api.patch(
        f"{PLANS}/{new_plan['id']}", json={"radius_group": "renamed"}, headers=auth(admin_key)
    )
    assert regroup.status_code == 409
    assert list(regroup.get_json()["error"]["details"]) == ["radius_group"]
    speed = api.patch(
        f"{PLANS}/{new_plan['id']}", json={"download_mbps": 10}, headers=auth(admin_key)
    )
    assert speed.status_code == 200
    assert workflow_id


def test_a_plan_used_by_a_subscriber_cannot_be_deleted(api, admin_key, new_plan):
    with transaction() as session:
        customer = Customer(tenant_id="acme", first_name="A", last_name="B", email="a@b.net")
        session.add(customer)
        session.flush()
        session.add(
            Subscriber(
                tenant_id="acme",
                customer_id=customer.id,
                service_plan_id=new_plan["id"],
                username=f"plan-user-{uuid.uuid4().hex[:8]}",
                service_address="x",
                workflow_id=uuid.uuid4(),
            )
        )

    response = api.delete(f"{PLANS}/{new_plan['id']}", headers=auth(admin_key))

    assert response.status_code == 409


def test_a_finished_workflow_does_not_hold_a_plan(api, admin_key, new_plan):
    seed_workflow("acme", WorkflowStatus.ROLLED_BACK, plan_id=new_plan["id"])
    assert api.delete(f"{PLANS}/{new_plan['id']}", headers=auth(admin_key)).status_code == 204

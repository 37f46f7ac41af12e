"""Reading workflows (list with filters and pages, detail), and the states retry and cancel
accept or refuse."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from orchestrator import engine
from orchestrator.db import transaction
from orchestrator.models import StepStatus, Workflow, WorkflowStatus
from tests.api.helpers import (
    PROVISION,
    WORKFLOWS,
    auth,
    make_key,
    request_body,
    seed_workflow,
    snapshot,
)

S = WorkflowStatus


@pytest.fixture(scope="module")
def listing(tenant, plan):  # type: ignore[no-untyped-def]
    """A tenant of its own with ten workflows an hour apart, the newest first in ``ids``."""
    now = engine.utcnow().replace(microsecond=0)
    statuses = [S.COMPLETED, S.FAILED, S.ROLLED_BACK, S.COMPLETED, S.RUNNING] * 2
    ids = [
        seed_workflow(
            "listing",
            status,
            plan_id=plan.id,
            created_at=now - timedelta(hours=index),
            workflow_type="suspend_service" if index == 3 else None,
            output={"subscriber_id": f"00000000-0000-4000-8000-00000000000{index}"},
        )
        for index, status in enumerate(statuses)
    ]
    return {"key": make_key("listing", "viewer"), "ids": [str(i) for i in ids], "now": now}


def _list(api, listing, query: str = ""):  # type: ignore[no-untyped-def]
    response = api.get(f"{WORKFLOWS}?{query}", headers=auth(listing["key"]))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_list_is_newest_first_with_the_total(api, listing):
    page = _list(api, listing)
    assert [item["id"] for item in page["items"]] == listing["ids"]
    assert (page["total"], page["limit"], page["offset"], page["next_offset"]) == (10, 50, 0, None)
    assert "steps" not in page["items"][0] and "input" not in page["items"][0]


def test_list_pages(api, listing):
    first = _list(api, listing, "limit=4")
    second = _list(api, listing, f"limit=4&offset={first['next_offset']}")
    last = _list(api, listing, f"limit=4&offset={second['next_offset']}")
    seen = [item["id"] for page in (first, second, last) for item in page["items"]]
    assert seen == listing["ids"]
    assert (first["next_offset"], second["next_offset"], last["next_offset"]) == (4, 8, None)
    assert all(page["total"] == 10 for page in (first, second, last))
    assert _list(api, listing, "offset=50")["items"] == []


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("status=failed", [1, 6]),
        ("status=failed&status=running", [1, 4, 6, 9]),
        ("workflow_type=suspend_service", [3]),
        ("workflow_type=provision_subscriber&status=completed", [0, 5, 8]),
        ("subscriber_id=00000000-0000-4000-8000-000000000002", [2]),
        ("subscriber_id=00000000-0000-4000-8000-0000000000ff", []),
    ],
)
def test_list_filters(api, listing, query, indexes):
    page = _list(api, listing, query)
    assert [item["id"] for item in page["items"]] == [listing["ids"][i] for i in indexes]
    assert page["total"] == len(indexes)


def test_list_filters_by_time(api, listing):
    now = listing["now"]
    after = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    before = (now - timedelta(hours=7)).isoformat()
    assert [i["id"] for i in _list(api, listing, f"created_after={after}")["items"]] == listing[
        "ids"
    ][:3]
    window = _list(api, listing, f"created_before={before.replace('+', '%2B')}")
    assert [i["id"] for i in window["items"]] == listing["ids"][8:]
    # Without an offset a time is UTC
    naive = (now - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert _list(api, listing, f"created_after={naive}")["total"] == 2


def test_list_filters_by_the_subscriber_a_workflow_acts_on(api, listing, plan):
    # A workflow about an existing subscriber (a suspension, say) names it only as the
    # subscriber it acts on: its output holds no subscriber id
    subscriber_id = uuid.uuid4()
    workflow_id = seed_workflow("listing", S.COMPLETED, plan_id=plan.id, workflow_type="x")
    with transaction() as session:
        session.get(Workflow, workflow_id).subscriber_id = subscriber_id
    page = _list(api, listing, f"subscriber_id={subscriber_id}")
    assert [item["id"] for item in page["items"]] == [str(workflow_id)]
    assert page["items"][0]["subscriber_id"] == str(subscriber_id)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "offset=-1",
        "limit=ten",
        "status=done",
        "created_after=yesterday",
        "created_after=1900-01-01T00:00:00Z",
        "subscriber_id=42",
        "workflow_type=",
    ],
)
def test_bad_list_parameters_are_422_naming_them(api, viewer_key, query):
    response = api.get(f"{WORKFLOWS}?{query}", headers=auth(viewer_key))
    assert response.status_code == 422
    assert list(response.get_json()["error"]["details"]) == [query.split("=")[0]]


def test_detail_has_steps_events_and_no_secret(api, operator_key, plan):
    body = request_body(plan.id)
    submitted = api.post(PROVISION, json=body, headers=auth(operator_key)).get_json()

    detail = api.get(f"{WORKFLOWS}/{submitted['id']}", headers=auth(operator_key))

    assert detail.status_code == 200
    workflow = detail.get_json()
    assert workflow["id"] == submitted["id"]
    assert [e["kind"] for e in workflow["events"]] == ["workflow_created"]
    assert workflow["events"][0]["run"] == 1
    step = workflow["steps"][0]
    assert {"name", "system", "status", "attempts", "started_at", "finished_at", "error"} <= set(
        step
    )
    assert workflow["input"]["onu_serial"] == body["onu_serial"]
    assert body["password"] not in detail.get_data(as_text=True)


def test_detail_of_an_unknown_workflow_is_404(api, viewer_key):
    response = api.get(f"{WORKFLOWS}/{uuid.uuid4()}", headers=auth(viewer_key))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "status", [S.PENDING, S.RUNNING, S.COMPLETED, S.ROLLING_BACK, S.COMPENSATED]
)
def test_retry_refuses_other_states_with_409(api, operator_key, plan, status):
    workflow_id = seed_workflow("acme", status, plan_id=plan.id)
    before = snapshot(workflow_id)

    response = api.post(f"{WORKFLOWS}/{workflow_id}/retry", headers=auth(operator_key))

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "invalid_state"
    assert snapshot(workflow_id) == before


@pytest.mark.parametrize(
    "status", [S.COMPLETED, S.ROLLED_BACK, S.COMPENSATED, S.FAILED, S.ROLLING_BACK]
)
def test_cancel_refuses_finished_workflows_with_409(api, operator_key, plan, status):
    workflow_id = seed_workflow("acme", status, plan_id=plan.id)
    before = snapshot(workflow_id)

    response = api.post(f"{WORKFLOWS}/{workflow_id}/cancel", headers=auth(operator_key))

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "invalid_state"
    assert snapshot(workflow_id) == before


def test_cancel_of_a_running_workflow_is_202_and_recorded(api, operator_key, plan):
    workflow_id = seed_workflow("acme", S.RUNNING, plan_id=plan.id)

    response = api.post(f"{WORKFLOWS}/{workflow_id}/cancel", headers=auth(operator_key))

    assert response.status_code == 202
    assert response.get_json()["cancel_requested_at"] is not None
    # Asking twice is harmless: still 202, the first request time stands
    again = api.post(f"{WORKFLOWS}/{workflow_id}/cancel", headers=auth(operator_key))
    assert again.status_code == 202
    assert again.get_json()["cancel_requested_at"] == response.get_json()["cancel_requested_at"]


def test_retry_of_a_rolled_back_workflow_starts_a_new_run(api, operator_key, plan, dispatcher):
    submitted = api.post(PROVISION, json=request_body(plan.id), headers=auth(operator_key))
    workflow_id = uuid.UUID(submitted.get_json()["id"])
    with transaction() as session:  # as if it had failed and been undone
        workflow = session.get(Workflow, workflow_id)
        engine.set_workflow_status(session, workflow, S.ROLLED_BACK)
        engine.release_claims(session, workflow)

    response = api.post(f"{WORKFLOWS}/{workflow_id}/retry", headers=auth(operator_key))

    assert response.status_code == 202
    assert (response.get_json()["status"], response.get_json()["run"]) == ("pending", 2)
    assert dispatcher.started.count(workflow_id) == 2


def test_retry_of_a_failed_workflow_resumes_its_compensations(api, operator_key, plan, dispatcher):
    # Given a rollback that could not remove the RADIUS account
    workflow_id = seed_workflow("acme", S.FAILED, plan_id=plan.id)
    with transaction() as session:
        workflow = session.get(Workflow, workflow_id)
        for step in workflow.steps:
            if step.name == "create_radius_account":
                step.status, step.attempts = StepStatus.COMPENSATION_FAILED, 1

    response = api.post(f"{WORKFLOWS}/{workflow_id}/retry", headers=auth(operator_key))

    assert response.status_code == 202
    assert response.get_json()["status"] == "rolling_back"
    assert workflow_id in dispatcher.compensated


def test_retry_after_the_plan_was_deleted_is_409(api, operator_key, admin_key, plan):
    created = api.post(
        "/api/v1/service-plans",
        json={
            "name": f"short-lived-{uuid.uuid4().hex[:6]}",
            "download_mbps": 10,
            "upload_mbps": 10,
            "radius_group": f"short-lived-{uuid.uuid4().hex[:6]}",
        },
        headers=auth(admin_key),
    ).get_json()
    workflow_id = seed_workflow("acme", S.ROLLED_BACK, plan_id=created["id"])
    assert (
        api.delete(f"/api/v1/service-plans/{created['id']}", headers=auth(admin_key)).status_code
        == 204
    )
    before = snapshot(workflow_id)

    response = api.post(f"{WORKFLOWS}/{workflow_id}/retry", headers=auth(operator_key))

    assert response.status_code == 409
    assert "no longer exists" in response.get_json()["error"]["message"]
    assert snapshot(workflow_id) == before

"""Submitting a provisioning: 202 + Location, idempotency per tenant, and one winner when two
requests race for the same ONU or username."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select

from orchestrator.db import transaction
from orchestrator.models import ResourceClaim, Workflow
from tests.api.helpers import PROVISION, auth, request_body
from tests.support.requests import unique_serial


def test_submission_is_202_with_location_and_who_submitted_it(
    api, api_app, operator_key, plan, dispatcher
):
    body = request_body(plan.id)

    response = api.post(PROVISION, json=body, headers=auth(operator_key))

    assert response.status_code == 202
    workflow = response.get_json()
    assert response.headers["Location"] == f"/api/v1/orchestration/workflows/{workflow['id']}"
    assert workflow["status"] == "pending"
    assert workflow["run"] == 1
    assert [s["status"] for s in workflow["steps"]] == ["pending"] * len(workflow["steps"])
    assert uuid.UUID(workflow["id"]) in dispatcher.started
    assert "password" not in workflow["input"]
    assert body["password"] not in response.get_data(as_text=True)
    with transaction() as session:
        key_id = session.scalar(select(Workflow.api_key_id).where(Workflow.id == workflow["id"]))
    assert workflow["submitted_by"] == str(key_id)
    assert operator_key not in response.get_data(as_text=True)
    # The Location answers
    assert api.get(response.headers["Location"], headers=auth(operator_key)).status_code == 200


def test_same_idempotency_key_and_body_returns_the_first_workflow(api, operator_key, plan):
    body = request_body(plan.id)
    headers = auth(operator_key, **{"Idempotency-Key": f"order-{uuid.uuid4()}"})

    first = api.post(PROVISION, json=body, headers=headers)
    again = api.post(PROVISION, json=body, headers=headers)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]


def test_same_idempotency_key_with_another_body_is_422(api, operator_key, plan):
    headers = auth(operator_key, **{"Idempotency-Key": f"order-{uuid.uuid4()}"})
    assert api.post(PROVISION, json=request_body(plan.id), headers=headers).status_code == 202

    reused = api.post(PROVISION, json=request_body(plan.id), headers=headers)

    assert reused.status_code == 422
    error = reused.get_json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert list(error["details"]) == ["Idempotency-Key"]


def test_idempotency_keys_are_per_tenant(api, operator_key, globex_key, plan, globex_plan):
    key = f"order-{uuid.uuid4()}"
    ours = api.post(
        PROVISION,
        json=request_body(plan.id),
        headers=auth(operator_key, **{"Idempotency-Key": key}),
    )
    theirs = api.post(
        PROVISION,
        json=request_body(globex_plan.id),
        headers=auth(globex_key, **{"Idempotency-Key": key}),
    )
    assert (ours.status_code, theirs.status_code) == (202, 202)
    assert ours.get_json()["id"] != theirs.get_json()["id"]


def _race(api_app, key: str, bodies: list[dict], headers: dict | None = None) -> list:  # type: ignore[type-arg]
    """Send the bodies at the same instant, one thread each; return the responses."""
    barrier = threading.Barrier(len(bodies))
    responses: list = [None] * len(bodies)  # type: ignore[type-arg]

    def send(index: int) -> None:
        client = api_app.test_client()
        barrier.wait()
        responses[index] = client.post(
            PROVISION, json=bodies[index], headers=auth(key, **(headers or {}))
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return responses


def _workflows_claiming(kind: str, value: str) -> int:
    with transaction() as session:
        return session.scalar(
            select(func.count()).where(ResourceClaim.kind == kind, ResourceClaim.value == value)
        )


def test_two_submissions_for_one_onu_one_wins(api_app, operator_key, plan, dispatcher):
    serial = unique_serial()
    bodies = [request_body(plan.id, onu_serial=serial) for _ in range(2)]
    started_before = len(dispatcher.started)

    responses = _race(api_app, operator_key, bodies)

    assert sorted(r.status_code for r in responses) == [202, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.get_json()["error"]["code"] == "conflict"
    # Only the winner exists, and only the winner was ever started: no step of the loser ran.
    assert _workflows_claiming("onu_serial", serial) == 1
    assert len(dispatcher.started) == started_before + 1
    loser_username = next(b for b, r in zip(bodies, responses, strict=True) if r is loser)[
        "username"
    ]
    assert _workflows_claiming("username", loser_username) == 0


def test_two_submissions_for_one_username_one_wins(api_app, operator_key, plan):
    username = f"race-{uuid.uuid4().hex[:8]}"
    bodies = [request_body(plan.id, username=username) for _ in range(2)]

    responses = _race(api_app, operator_key, bodies)

    assert sorted(r.status_code for r in responses) == [202, 409]
    assert _workflows_claiming("username", username) == 1


def test_two_identical_submissions_with_one_idempotency_key_make_one_workflow(
    api_app, operator_key, plan
):
    body = request_body(plan.id)
    headers = {"Idempotency-Key": f"race-{uuid.uuid4()}"}

    responses = _race(api_app, operator_key, [body, body], headers)

    assert sorted(r.status_code for r in responses) == [200, 202]
    assert len({r.get_json()["id"] for r in responses}) == 1


def test_an_onu_serial_in_flight_elsewhere_is_409(api, operator_key, plan):
    serial = unique_serial()
    first = request_body(plan.id, onu_serial=serial)
    assert api.post(PROVISION, json=first, headers=auth(operator_key)).status_code == 202

    again = api.post(
        PROVISION, json=request_body(plan.id, onu_serial=serial), headers=auth(operator_key)
    )

    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "conflict"

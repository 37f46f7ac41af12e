"""Bearer keys, roles and tenants: who may do what, and what a stranger learns (nothing)."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.apikeys import create_key, revoke_key
from orchestrator.db import transaction
from orchestrator.models import WorkflowStatus
from tests.api.helpers import PROVISION, WORKFLOWS, auth, seed_workflow, snapshot

# One request per endpoint, each needing at least a viewer key.
ENDPOINTS = [
    ("post", PROVISION),
    ("get", WORKFLOWS),
    ("get", f"{WORKFLOWS}/{uuid.uuid4()}"),
    ("post", f"{WORKFLOWS}/{uuid.uuid4()}/retry"),
    ("post", f"{WORKFLOWS}/{uuid.uuid4()}/cancel"),
    ("get", "/api/v1/orchestration/statistics"),
    ("get", "/api/v1/service-plans"),
    ("post", "/api/v1/service-plans"),
    ("get", "/api/v1/service-plans/1"),
    ("patch", "/api/v1/service-plans/1"),
    ("delete", "/api/v1/service-plans/1"),
    ("get", "/api/v1/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("get", f"/api/v1/api-keys/{uuid.uuid4()}"),
    ("delete", f"/api/v1/api-keys/{uuid.uuid4()}"),
]


def _unauthenticated(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"]["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_key(api, method, path):
    _unauthenticated(getattr(api, method)(path, json={}))
    _unauthenticated(getattr(api, method)(path, json={}, headers={"Authorization": "Basic eDp5"}))
    _unauthenticated(getattr(api, method)(path, json={}, headers={"Authorization": "Bearer "}))
    _unauthenticated(getattr(api, method)(path, json={}, headers=auth("osk_not-a-real-key")))
    _unauthenticated(getattr(api, method)(path, json={}, headers=auth("x" * 5000)))


def test_a_revoked_key_is_refused_at_once(api, tenant):
    with transaction() as session:
        row, key = create_key(session, tenant, "viewer")
    assert api.get(WORKFLOWS, headers=auth(key)).status_code == 200

    with transaction() as session:
        revoke_key(session, row.id)

    _unauthenticated(api.get(WORKFLOWS, headers=auth(key)))


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("viewer", "post", PROVISION),
        ("viewer", "post", f"{WORKFLOWS}/{uuid.uuid4()}/retry"),
        ("viewer", "post", f"{WORKFLOWS}/{uuid.uuid4()}/cancel"),
        ("viewer", "post", "/api/v1/service-plans"),
        ("operator", "post", "/api/v1/service-plans"),
        ("operator", "patch", "/api/v1/service-plans/1"),
        ("operator", "delete", "/api/v1/service-plans/1"),
        ("operator", "get", "/api/v1/api-keys"),
        ("operator", "post", "/api/v1/api-keys"),
        ("operator", "delete", f"/api/v1/api-keys/{uuid.uuid4()}"),
    ],
)
def test_a_role_too_low_is_forbidden(api, viewer_key, operator_key, role, method, path):
    key = viewer_key if role == "viewer" else operator_key
    # The role is checked before the body: even a valid-looking request learns nothing more.
    response = getattr(api, method)(path, json={"anything": 1}, headers=auth(key))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_a_viewer_reads(api, viewer_key, plan):
    workflow_id = seed_workflow("acme", plan_id=plan.id)
    assert api.get(WORKFLOWS, headers=auth(viewer_key)).status_code == 200
    assert api.get(f"{WORKFLOWS}/{workflow_id}", headers=auth(viewer_key)).status_code == 200
    stats = api.get("/api/v1/orchestration/statistics", headers=auth(viewer_key))
    assert stats.status_code == 200
    assert api.get(f"/api/v1/service-plans/{plan.id}", headers=auth(viewer_key)).status_code == 200


def test_another_tenants_workflow_is_not_found_and_untouched(api, globex_key, operator_key, plan):
    # Given a running and a rolled-back workflow of acme
    running = seed_workflow("acme", WorkflowStatus.RUNNING, plan_id=plan.id)
    rolled_back = seed_workflow("acme", WorkflowStatus.ROLLED_BACK, plan_id=plan.id)
    before = {w: snapshot(w) for w in (running, rolled_back)}
    missing = uuid.uuid4()

    # When globex reads, retries and cancels them, and the same for a workflow that does not exist
    def answers(workflow_id: uuid.UUID) -> list[tuple[int, dict]]:
        responses = [
            api.get(f"{WORKFLOWS}/{workflow_id}", headers=auth(globex_key)),
            api.post(f"{WORKFLOWS}/{workflow_id}/retry", headers=auth(globex_key)),
            api.post(f"{WORKFLOWS}/{workflow_id}/cancel", headers=auth(globex_key)),
        ]
        return [
            (r.status_code, r.get_data(as_text=True).replace(str(workflow_id), "<id>"))
            for r in responses
        ]

    # Then every answer is a 404, word for word the one for a workflow that does not exist
    absent = answers(missing)
    assert [status for status, _ in absent] == [404, 404, 404]
    assert answers(running) == absent
    assert answers(rolled_back) == absent

    # And nothing changed
    assert {w: snapshot(w) for w in (running, rolled_back)} == before
    # And they are not in globex's list, but in acme's
    listed = api.get(f"{WORKFLOWS}?limit=200", headers=auth(globex_key)).get_json()["items"]
    assert {str(running), str(rolled_back)}.isdisjoint(item["id"] for item in listed)
    mine = api.get(f"{WORKFLOWS}?limit=200", headers=auth(operator_key)).get_json()["items"]
    assert {str(running), str(rolled_back)} <= {item["id"] for item in mine}


def test_health_and_the_api_document_need_no_key(api):
    assert api.get("/healthz").status_code == 200
    document = api.get("/api/v1/openapi.json")
    assert document.status_code == 200
    assert document.get_json()["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    page = api.get("/api/v1/docs")
    assert page.status_code == 200
    assert "swagger" in page.get_data(as_text=True).lower()

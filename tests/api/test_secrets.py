"""No answer, log line or stored plain column holds a PPPoE password or an API key."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import text

from orchestrator.db import transaction
from orchestrator.models import Base
from tests.api.helpers import PROVISION, WORKFLOWS, auth
from tests.conftest import VAR
from tests.support.requests import provision_body
from tests.support.workflows import wait_terminal


def test_no_password_or_api_key_is_shown_logged_or_stored(
    client, worker, plan, operator_key, viewer_key, admin_key, caplog
):
    caplog.set_level(logging.DEBUG)
    body = provision_body(plan.id)
    password = body["password"]
    answers = []

    # A whole provisioning, read every way, by every role
    submitted = client.post(PROVISION, json=body, headers=auth(operator_key))
    answers.append(submitted)
    workflow_id = submitted.get_json()["id"]
    assert wait_terminal(workflow_id).value == "completed"
    for key in (operator_key, viewer_key, admin_key):
        answers.append(client.get(f"{WORKFLOWS}/{workflow_id}", headers=auth(key)))
        answers.append(client.get(WORKFLOWS, headers=auth(key)))
        answers.append(client.get("/api/v1/orchestration/statistics", headers=auth(key)))
        answers.append(client.get("/api/v1/service-plans", headers=auth(key)))
    # errors, which echo what they were sent when careless
    answers.append(
        client.post(PROVISION, json={**body, "extra": password}, headers=auth(operator_key))
    )
    answers.append(client.post(PROVISION, json=body, headers=auth(viewer_key)))
    answers.append(client.post(PROVISION, json=body, headers=auth(operator_key)))  # 409
    answers.append(client.get(WORKFLOWS, headers=auth(operator_key + "x")))
    # keys, listed and revoked: only the creation answer may hold its own key
    created = client.post("/api/v1/api-keys", json={"role": "viewer"}, headers=auth(admin_key))
    new_key = created.get_json()["key"]
    answers.append(client.get("/api/v1/api-keys", headers=auth(admin_key)))
    answers.append(client.get(WORKFLOWS, headers=auth(new_key)))
    key_id = created.get_json()["id"]
    answers.append(client.delete(f"/api/v1/api-keys/{key_id}", headers=auth(admin_key)))
    answers.append(client.get(WORKFLOWS, headers=auth(new_key)))

    secrets = {
        "password": password,
        "operator key": operator_key,
        "viewer key": viewer_key,
        "admin key": admin_key,
        "new key": new_key,
    }
    assert [a.status_code for a in answers[-8:]] == [422, 403, 409, 401, 200, 200, 204, 401]

    # Answers (bodies and headers)
    for answer in answers:
        shown = answer.get_data(as_text=True) + str(answer.headers)
        for name, secret in secrets.items():
            assert secret not in shown, f"{name} in an answer"
    assert password not in created.get_data(as_text=True)

    # Log lines of this process (the API), the worker and beat
    logged = "\n".join(record.getMessage() for record in caplog.records)
    logged += "\n".join(
        log.read_text(errors="replace") for log in (VAR / "worker.log", VAR / "beat.log")
    )
    for name, secret in secrets.items():
        assert secret not in logged, f"{name} in a log"

    # Every column of every table of ours, as text (sealed secrets are ciphertext)
    with transaction() as session:
        for table in Base.metadata.sorted_tables:
            for name, secret in secrets.items():
                hits = session.execute(
                    text(f"SELECT count(*) FROM {table.name} t WHERE t::text LIKE :needle"),  # noqa: S608
                    {"needle": f"%{secret}%"},
                ).scalar_one()
                assert hits == 0, f"{name} found in {table.name}"

    # PostgreSQL's own logs (our engines hide bound parameters)
    for log in Path("/var/log/postgresql").glob("*.log"):
        content = log.read_text(errors="replace")
        for name, secret in secrets.items():
            assert secret not in content, f"{name} in {log}"

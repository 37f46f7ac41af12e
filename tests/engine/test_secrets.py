"""The PPPoE password appears in no task argument, log line, API response or plain column."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.integrations.radius import RadiusStore
from orchestrator.models import Base
from tests.conftest import VAR
from tests.support.event_spy import TaskEventSpy
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit
from tests.support.workflows import wait_terminal


def test_password_never_leaves_the_vault(
    client, worker, celery_app, plan, operator_key, radius_server
):
    body = provision_body(plan.id)
    password = body["password"]

    with TaskEventSpy(celery_app) as spy:
        workflow_id, response = submit(client, operator_key, body)
        assert wait_terminal(workflow_id).value == "completed"
        detail = client.get(
            f"/api/v1/orchestration/workflows/{workflow_id}",
            headers={"Authorization": f"Bearer {operator_key}"},
        )

    # What Flower shows: the spy saw our tasks, with ids only
    ours = [e for e in spy.task_events() if str(workflow_id) in str(e.get("args", ""))]
    assert {e["type"] for e in ours} >= {"task-sent", "task-received"}
    assert all(password not in str(event) for event in spy.events)

    # FreeRADIUS logs the login in radpostauth, without the password it was given
    host, port = radius_server
    assert authenticate(body["username"], password, host=host, port=port).accepted
    assert not authenticate(body["username"], password + "x", host=host, port=port).accepted
    store = RadiusStore.from_settings(get_settings())
    with store._engine.connect() as radius:
        logged = (
            radius.execute(
                text("SELECT pass FROM radpostauth WHERE username = :u"), {"u": body["username"]}
            )
            .scalars()
            .all()
        )
    assert len(logged) == 2
    assert all(password not in value for value in logged)

    # API responses
    assert password not in response.get_data(as_text=True)
    assert password not in detail.get_data(as_text=True)

    # Log files of the worker and beat
    for log in (VAR / "worker.log", VAR / "beat.log"):
        assert password not in log.read_text(errors="replace")

    # Every column of every table of ours, as text (the sealed secrets are ciphertext)
    with transaction() as session:
        for table in Base.metadata.sorted_tables:
            hits = session.execute(
                text(f"SELECT count(*) FROM {table.name} t WHERE t::text LIKE :needle"),  # noqa: S608
                {"needle": f"%{password}%"},
            ).scalar_one()
            assert hits == 0, f"password found in {table.name}"

    # And PostgreSQL's own logs did not get it either (hide_parameters on our engines)
    for log in Path("/var/log/postgresql").glob("*.log"):
        assert password not in log.read_text(errors="replace")

"""While the broker or PostgreSQL is down: stored work is accepted (202), unstored work is a 503
with Retry-After, never a 500."""

from __future__ import annotations

import socket
import uuid

import pytest
from celery import Celery
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from orchestrator import db
from orchestrator.db import transaction
from orchestrator.models import Workflow
from tasks.dispatch import CeleryDispatcher
from tests.api.helpers import PROVISION, auth, request_body
from webapp import create_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_stored_submission_is_accepted_while_the_broker_is_down(database, operator_key, plan):
    # Given a web app whose broker does not answer (nothing listens on its port)
    dead_broker = Celery("dead", broker=f"redis://127.0.0.1:{_closed_port()}/0")
    dead_broker.conf.broker_connection_timeout = 0.5
    app = create_app({"TESTING": True, "DISPATCHER": CeleryDispatcher(dead_broker)})
    body = request_body(plan.id)

    # When a provisioning is submitted
    response = app.test_client().post(
        PROVISION, json=body, headers=auth(operator_key, **{"Idempotency-Key": str(uuid.uuid4())})
    )

    # Then it is accepted work: stored, answered 202, left for the sweeper to publish
    assert response.status_code == 202, response.get_data(as_text=True)
    workflow_id = response.get_json()["id"]
    with transaction() as session:
        assert session.get(Workflow, uuid.UUID(workflow_id)) is not None


def test_a_submission_that_cannot_be_stored_is_503_with_retry_after(
    database, operator_key, plan, monkeypatch: pytest.MonkeyPatch
):
    # Given a PostgreSQL that does not answer (nothing listens on its port)
    dead = create_engine(
        f"postgresql+psycopg2://nobody:nothing@127.0.0.1:{_closed_port()}/none",
        connect_args={"connect_timeout": 1},
    )
    app = create_app({"TESTING": True})
    monkeypatch.setattr(db, "get_sessionmaker", lambda url=None: sessionmaker(bind=dead))

    response = app.test_client().post(
        PROVISION, json=request_body(plan.id), headers=auth(operator_key)
    )

    # Then the client is told to come back, not that the server broke
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"].isdigit()
    assert response.get_json()["error"]["code"] == "database_unavailable"

"""The portal overtakes bulk work, and a per-system cap holds across every worker process."""

from __future__ import annotations

import uuid

import redis
from celery import Celery
from sqlalchemy import func, select

from orchestrator import engine
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.integrations import concurrency
from orchestrator.models import WorkflowEvent
from orchestrator.queues import BULK_PRIORITY, priority_keys
from orchestrator.workflows import workflow_types
from tasks.dispatch import publish
from tests.bulk.conftest import BULK, auth, job_url, rows, wait_job
from tests.support.requests import provision_body, submit
from tests.support.workflows import steps, wait_terminal, wait_until, workflow_status


def _job_counts(client, key, job_id):  # type: ignore[no-untyped-def]
    return client.get(job_url(job_id), headers=auth(key)).get_json()["counts"]


def test_a_bulk_workflows_messages_yield_to_interactive_ones(redis_clean):
    """Published to the priority list a worker reads last; interactive ones to the first."""
    url = get_settings().broker_url.rsplit("/", 1)[0] + "/8"  # a database no worker reads
    app = Celery("probe", broker=url)
    app.conf.task_routes = {"tasks.database.*": {"queue": "database"}}
    store = redis.Redis.from_url(url)
    store.flushdb()
    definition = workflow_types.get("provision_subscriber").definition
    first = [step.name for step in definition.steps if not step.depends_on]
    for bulk in (True, False):
        publish(engine.Dispatch(uuid.uuid4(), definition, 1, tuple(first), bulk=bulk), app)

    database_steps = [n for n in first if definition.step(n).system == "database"]
    assert database_steps, "the probe needs a first step on the database queue"
    plain, *_, lowest = priority_keys("database")
    assert store.llen(lowest) == len(database_steps)  # the bulk copy: served last
    assert store.llen(plain) == len(database_steps)  # the interactive copy: served first
    assert BULK_PRIORITY == 9
    store.flushdb()


def test_a_portal_request_completes_while_a_300_row_backlog_waits(
    client, worker, sim, operator_key, plan
):
    response = client.post(BULK, json={"rows": rows(plan.id, 300)}, headers=auth(operator_key))
    job_id = response.get_json()["id"]
    wait_until(
        lambda: _job_counts(client, operator_key, job_id)["completed"] >= 1, 120, "bulk rows"
    )

    workflow_id, _ = submit(client, operator_key, provision_body(plan.id))
    status = wait_terminal(workflow_id, timeout=60)

    counts = _job_counts(client, operator_key, job_id)
    try:
        assert status == "completed"
        assert counts["waiting"] > 100, counts  # the backlog is far from drained
        # and it finishes rows steadily, not all at the end
        assert counts["completed"] >= 1
    finally:
        client.post(f"{job_url(job_id)}/cancel", headers=auth(operator_key))
        wait_until(
            lambda: (
                sum(
                    _job_counts(client, operator_key, job_id)[s]
                    for s in ("running", "rolling_back")
                )
                == 0
            ),
            120,
            "the cancelled backlog to settle",
        )


def test_a_cap_of_3_on_onos_holds_across_workers_and_every_row_completes(
    client, worker, sim, operator_key, plan
):
    concurrency.set_limit("onos", 3)
    try:
        # Slow enough that four worker processes would overlap on ONOS without the cap.
        sim.control("POST", "latency", {"system": "onos", "ms": 150}, expect=201)
        response = client.post(
            BULK, json={"rows": rows(plan.id, 50), "max_in_flight": 50}, headers=auth(operator_key)
        )
        job_id = response.get_json()["id"]
        wait_job(job_id, timeout=300)
    finally:
        concurrency.set_limit("onos", None)

    counts = _job_counts(client, operator_key, job_id)
    assert counts["completed"] == 50, counts
    seen = sim.state()["max_concurrent"]["onos"]
    assert 2 <= seen <= 3


def _events(workflow_id: str, step: str, kind: engine.EventKind) -> int:
    with transaction() as session:
        return session.scalar(
            select(func.count())
            .select_from(WorkflowEvent)
            .where(
                WorkflowEvent.workflow_id == uuid.UUID(str(workflow_id)),
                WorkflowEvent.step_name == step,
                WorkflowEvent.kind == kind.value,
            )
        )


def test_a_step_waiting_for_a_slot_never_uses_up_its_attempts(
    client, worker, sim, operator_key, plan
):
    # Given ONOS's only slot held elsewhere (another host's call) for longer than a step's
    # attempts and its time limit would last
    definition = workflow_types.get("provision_subscriber").definition
    max_attempts = definition.step("activate_onu").max_attempts
    concurrency.set_limit("onos", 1)
    try:
        with concurrency.ConcurrencyLimit.for_system("onos", 120.0).slot():
            workflow_id, _ = submit(client, operator_key, provision_body(plan.id))

            # When activate_onu has waited its turn more times than it has attempts
            wait_until(
                lambda: (
                    _events(workflow_id, "activate_onu", engine.EventKind.STEP_DEFERRED)
                    > max_attempts
                ),
                60,
                "activate_onu deferred more often than it has attempts",
            )
            assert workflow_status(workflow_id) == "running"
    finally:
        concurrency.set_limit("onos", None)

    # Then, once the slot is free, it completes on its first attempt, and no ONOS call was
    # ever made while the slot was held
    assert wait_terminal(workflow_id, timeout=60) == "completed"
    activate = steps(workflow_id)["activate_onu"]
    assert activate.attempts == 1
    assert _events(workflow_id, "activate_onu", engine.EventKind.STEP_RETRY_SCHEDULED) == 0
    assert sim.state()["max_concurrent"]["onos"] == 1

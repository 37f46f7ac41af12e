"""A new definition version deployed while workflows of the old one are in flight: each runs,
retries and compensates with the version it started on; new submissions take the new one."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from orchestrator import engine, faults
from orchestrator.db import transaction
from orchestrator.definitions import registry
from orchestrator.models import Workflow, WorkflowStatus
from orchestrator.service import OrchestrationService
from orchestrator.vault import seal
from orchestrator.workflows import workflow_types
from tasks.dispatch import CeleryDispatcher, publish
from tests.support import versioned_workflow
from tests.support.processes import VAR, WorkerProcess
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body
from tests.support.workflows import (
    step_running,
    steps,
    wait_terminal,
    wait_until,
    workflow_status,
)

pytestmark = pytest.mark.slow

V1_STEPS = {s.name for s in versioned_workflow.V1.steps}
V2_STEPS = {s.name for s in versioned_workflow.V2.steps}


def version_of(workflow_id: uuid.UUID) -> int:
    with transaction() as session:
        return session.get(Workflow, workflow_id).definition_version


def test_v1_workflows_finish_on_v1_while_new_ones_run_v2(
    worker, celery_app, tenant, plan, radius_server
):
    service = OrchestrationService(CeleryDispatcher(celery_app))

    def submit(**faulted: list[str]) -> tuple[uuid.UUID, dict]:
        body = provision_body(plan.id)
        for step, modes in faulted.items():
            compensation = step.startswith("undo_")
            faults.arm(
                step.removeprefix("undo_"),
                modes,
                username=body["username"],
                compensation=compensation,
            )
        return service.submit(versioned_workflow.NAME, tenant, body).workflow.id, body

    # Given v1 workflows in flight when the deploy happens: going forward (a step that hangs
    # until its time limit), rolling back (a failed step, an undo that fails for a while) ...
    forward = [submit(activate_onu=["hang"])[0] for _ in range(2)]
    backward = [
        submit(create_billing_service=["permanent"], undo_create_customer=["transient"] * 4)[0]
        for _ in range(2)
    ]
    wait_until(
        lambda: all(workflow_status(w) == WorkflowStatus.ROLLING_BACK for w in backward),
        30,
        "the failing ones to be rolling back",
    )
    wait_until(
        lambda: all(step_running(w, "activate_onu") for w in forward), 30, "the hanging steps"
    )

    # ... when the old worker goes away, and more v1 work is queued while no worker runs
    worker.stop()
    queued = [submit()[0] for _ in range(2)]

    # When v2 is deployed: a worker that knows both versions, and a service that submits v2
    versioned_workflow.deploy_v2()
    new_worker = WorkerProcess(
        app=celery_app, log_path=VAR / "worker-v2.log", env={"VERSIONED_WORKFLOW_MAX": "2"}
    )
    new_worker.start()
    try:
        fresh = [submit()[0] for _ in range(2)]

        # Then every old workflow finishes on v1, forward or backward, and the new ones on v2
        for workflow_id in forward + queued:
            assert wait_terminal(workflow_id, timeout=90).value == "completed"
            assert (version_of(workflow_id), set(steps(workflow_id))) == (1, V1_STEPS)
        for workflow_id in backward:
            assert wait_terminal(workflow_id, timeout=90).value == "rolled_back"
            assert version_of(workflow_id) == 1
            assert steps(workflow_id)["create_customer"].status.value == "compensated"
        for workflow_id in fresh:
            assert wait_terminal(workflow_id, timeout=90).value == "completed"
            assert (version_of(workflow_id), set(steps(workflow_id))) == (2, V2_STEPS)
    finally:
        new_worker.stop()
        worker.start()


def test_a_provisioning_started_on_the_old_chain_still_completes_on_it(
    worker, celery_app, tenant, plan, radius_server
):
    # Given a provisioning written by the code before the graph (definition version 1)
    body = provision_body(plan.id)
    kind = workflow_types.get("provision_subscriber")
    with transaction() as session:
        prepared = kind.prepare(session, tenant, body)
        old_input = {k: v for k, v in prepared.input.items() if k != "subscriber_id"}
        workflow = engine.new_workflow(
            session,
            registry.get("provision_subscriber", 1),
            tenant_id=tenant,
            input_data=old_input,
            sealed_secrets=seal(prepared.secrets),
            deadline=timedelta(minutes=5),
            claims=kind.claims(prepared.input),
        )
        dispatch = engine.start(workflow)
    publish(dispatch, celery_app)

    # Then it runs its own seven steps, one after another, and RADIUS gets the address
    assert wait_terminal(workflow.id).value == "completed"
    assert set(steps(workflow.id)) == {
        s.name for s in registry.get("provision_subscriber", 1).steps
    }
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.accepted and reply.first("Framed-IP-Address")

"""The saga's decisions driven directly against PostgreSQL, without a worker: redeliveries,
claims that fail, cancels and retries that must not do harm."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from orchestrator import engine
from orchestrator.db import transaction
from orchestrator.definitions import registry
from orchestrator.errors import ConflictError, InvalidTransition
from orchestrator.models import Customer, Subscriber, SubscriberStatus, WorkflowStatus
from orchestrator.service import OrchestrationService
from orchestrator.step import Step, StepResult


def never_gone(owner: str | None) -> bool:
    return False


class Nothing(Step):
    """A step whose business logic is not under test."""


class Recording:
    def __init__(self) -> None:
        self.published: list[engine.Dispatch] = []

    def publish(self, dispatch: engine.Dispatch) -> None:
        self.published.append(dispatch)

    def sync_plan(self, plan_id: int) -> None:
        pass


def new_workflow(workflow_type: str, tenant: str, input_data: dict[str, Any]) -> uuid.UUID:
    with transaction() as session:
        workflow = engine.new_workflow(
            session,
            registry.get(workflow_type),
            tenant_id=tenant,
            input_data=input_data,
            sealed_secrets=None,
            deadline=timedelta(hours=1),
        )
        return workflow.id


def claim(workflow_id: uuid.UUID, step: str, owner: str) -> engine.ClaimOutcome:
    with transaction() as session:
        return engine.claim(
            session, engine.FORWARD, Nothing(), workflow_id, step, owner, never_gone
        )


def complete(claimed: engine.Claimed, owner: str) -> engine.Dispatch:
    with transaction() as session:
        workflow, step = engine.relock(session, claimed, owner)
        return engine.record_success(session, claimed, workflow, step, StepResult(), never_gone)


def test_a_redelivered_finished_step_publishes_what_it_unblocked_again(database, tenant):
    # Given a step recorded as done whose worker died before publishing what follows
    workflow_id = new_workflow("provision_subscriber", tenant, {"username": "x"})
    claimed = claim(workflow_id, "create_customer", "A").claimed
    assert complete(claimed, "A").forward == ("create_subscriber",)

    # When its message is delivered again
    again = claim(workflow_id, "create_customer", "B")

    # Then nothing runs twice, and what follows is published again
    assert again.claimed is None and again.dispatch.forward == ("create_subscriber",)


def test_a_claim_that_fails_leaves_a_step_another_copy_holds_alone(database, tenant):
    # Given a step in flight on copy A
    workflow_id = new_workflow("provision_subscriber", tenant, {"username": "x"})
    assert claim(workflow_id, "allocate_ip", "A").claimed is not None

    # When copy B meets an unexpected error while claiming it
    with transaction() as session:
        outcome = engine.fail_unclaimable(
            session, engine.FORWARD, workflow_id, "allocate_ip", RuntimeError("boom"), never_gone
        )

    # Then B steps aside: the step is not failed, and no rollback undoes it under A
    assert outcome.stop is None and outcome.aside == "leased by A"
    with transaction() as session:
        assert engine.start_rollback(session, workflow_id, never_gone) is None


def test_new_steps_do_not_start_after_a_sibling_failed(database, tenant):
    # Given a sibling failed for good (its on-error link not yet run)
    workflow_id = new_workflow("provision_subscriber", tenant, {"username": "x"})
    failing = claim(workflow_id, "allocate_ip", "A").claimed
    running = claim(workflow_id, "create_customer", "B").claimed
    with transaction() as session:
        workflow, step = engine.relock(session, failing, "A")
        outcome = engine.record_failure(
            session, failing, workflow, step, ValueError("bad"), never_gone
        )
    assert outcome.stop is not None

    # When another step completes
    dispatch = complete(running, "B")

    # Then it starts nothing new: the rollback begins and undoes what may have acted
    assert dispatch.forward == ()
    assert set(dispatch.backward) == {"allocate_ip", "create_customer"}


def test_a_deprovisioning_cannot_be_cancelled(database, tenant):
    workflow_id = new_workflow("deprovision_subscriber", tenant, {"subscriber_id": "x"})
    service = OrchestrationService(Recording())
    with pytest.raises(InvalidTransition, match="cannot be cancelled"):
        service.cancel(tenant, workflow_id)


def subscriber_row(tenant: str, plan_id: int) -> uuid.UUID:
    with transaction() as session:
        customer = Customer(tenant_id=tenant, first_name="A", last_name="B", email="a@b.net")
        session.add(customer)
        session.flush()
        row = Subscriber(
            tenant_id=tenant,
            customer_id=customer.id,
            service_plan_id=plan_id,
            username=f"s-{uuid.uuid4().hex[:8]}",
            service_address="x",
            status=SubscriberStatus.ACTIVE,
            workflow_id=uuid.uuid4(),
            resources={"radius": {"group": "g"}},
        )
        session.add(row)
        session.flush()
        return row.id


def test_a_lifecycle_retry_is_refused_once_the_subscriber_changed(database, tenant, plan):
    # Given a suspension that was rolled back
    subscriber_id = subscriber_row(tenant, plan.id)
    service = OrchestrationService(Recording())
    workflow = service.submit("suspend_service", tenant, {"subscriber_id": subscriber_id}).workflow
    with transaction() as session:
        row = engine.lock_workflow(session, workflow.id)
        engine.set_workflow_status(session, row, WorkflowStatus.ROLLED_BACK)
        engine.release_claims(session, row)

    # When the subscriber changes meanwhile (another workflow suspended it)
    with transaction() as session:
        session.get(Subscriber, subscriber_id).status = SubscriberStatus.SUSPENDED

    # Then a retry of the old one is refused: its undo would restore a state long gone
    with pytest.raises(ConflictError, match="has changed since"):
        service.retry(tenant, workflow.id)

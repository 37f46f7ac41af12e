"""Builds and publishes the Celery canvases of a workflow (forward chain, compensations).

Only ids travel in messages. Every publish happens after the transaction that wrote the
rows it refers to has committed; a publish that is lost is found by the sweeper.
"""

from __future__ import annotations

import uuid

from celery import chain
from celery.canvas import Signature

from orchestrator import engine
from orchestrator.db import transaction
from orchestrator.models import Workflow
from tasks.app import app
from tasks.base import time_limits


def _forward_signatures(workflow: Workflow) -> list[Signature]:
    definition = engine.definition_of(workflow)
    first = engine.first_unfinished_step(workflow)
    if first is None:
        return []
    signatures = []
    for step in workflow.steps[first.position :]:
        step_def = definition.step(step.name)
        soft, hard = time_limits(step_def)
        signatures.append(
            app.signature(
                step_def.task,
                args=(str(workflow.id), step.name),
                immutable=True,
                soft_time_limit=soft,
                time_limit=hard,
            )
        )
    return signatures


def forward_chain(workflow: Workflow) -> Signature:
    """The chain from the first unfinished step to the end, with the on-error link."""
    workflow_id = str(workflow.id)
    signatures = _forward_signatures(workflow)
    signatures.append(
        app.signature("tasks.saga.complete_workflow", args=(workflow_id,), immutable=True)
    )
    on_error = app.signature("tasks.saga.on_step_failed", args=(workflow_id,), immutable=True)
    return chain(*signatures).on_error(on_error)


def compensation_chain(workflow: Workflow) -> Signature:
    """Compensations of every step that may have acted, last first, then the finalizer."""
    definition = engine.definition_of(workflow)
    workflow_id = str(workflow.id)
    signatures = []
    for step in engine.compensation_plan(workflow):
        step_def = definition.step(step.name)
        soft, hard = time_limits(step_def)
        signatures.append(
            app.signature(
                step_def.compensation,  # type: ignore[arg-type] - plan holds reversible steps
                args=(workflow_id, step.name),
                immutable=True,
                soft_time_limit=soft,
                time_limit=hard,
            )
        )
    signatures.append(
        app.signature("tasks.saga.finalize_rollback", args=(workflow_id,), immutable=True)
    )
    return chain(*signatures)


class CeleryDispatcher:
    """Publishes workflows' canvases; the service layer depends only on this shape."""

    def start(self, workflow_id: uuid.UUID) -> None:
        with transaction() as session:
            workflow = session.get(Workflow, workflow_id)
            canvas = forward_chain(workflow) if workflow else None
        if canvas is not None:
            canvas.apply_async()

    def sync_plan(self, plan_id: int) -> None:
        app.signature("tasks.radius.sync_plan_group", args=(plan_id,)).apply_async()

    def compensate(self, workflow_id: uuid.UUID) -> None:
        with transaction() as session:
            workflow = session.get(Workflow, workflow_id)
            canvas = compensation_chain(workflow) if workflow else None
        if canvas is not None:
            canvas.apply_async()

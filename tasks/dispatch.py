"""The one place that turns the engine's decisions into Celery messages.

Only ids travel: ``(workflow_id, step_name, generation)``. Every publish happens after the
transaction that decided it has committed; a publish that is lost (a crash in between) is found
by the sweeper. Each forward step message carries the on-error link, a queued task (not an
in-process errback), so a step that fails for good starts the rollback even if its worker dies.
With tracing on, a workflow's messages are published inside its trace, whichever process
publishes them (see orchestrator/tracing): the headers carry the context, never an argument.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from celery import Celery, current_app
from celery.canvas import Signature

from orchestrator import engine, tracing
from orchestrator.queues import BULK_PRIORITY, INTERACTIVE_PRIORITY

ON_ERROR_TASK = "tasks.saga.on_step_failed"
DELIVER_TASK = "tasks.webhooks.deliver"
FEED_TASK = "tasks.bulk.feed"


def _signatures(app: Celery, dispatch: engine.Dispatch) -> list[Signature]:
    workflow_id = str(dispatch.workflow_id)
    priority = BULK_PRIORITY if dispatch.bulk else INTERACTIVE_PRIORITY
    signatures = []
    for direction, step_def in dispatch.messages():
        soft, hard = step_def.time_limits()
        signature = app.signature(
            direction.task(step_def),
            args=(workflow_id, step_def.name, dispatch.generation),
            immutable=True,
            soft_time_limit=soft,
            time_limit=hard,
            priority=priority,
        )
        if direction is engine.FORWARD:
            signature.on_error(
                app.signature(ON_ERROR_TASK, args=(workflow_id,), immutable=True, priority=priority)
            )
        signatures.append(signature)
    return signatures


def publish(dispatch: engine.Dispatch | None, app: Celery | None = None) -> None:
    """Publish the messages the engine decided on (nothing if it decided on none)."""
    if not dispatch:
        return
    # Side by side: each is an independent message (no Celery group or chord: those need a
    # result backend, a second store of truth; the join is the engine's, under a row lock).
    with tracing.continuing(dispatch.traceparent):
        for signature in _signatures(app or current_app, dispatch):
            signature.apply_async()


class CeleryDispatcher:
    """What the service layer publishes through (see orchestrator.service.Dispatcher)."""

    def __init__(self, app: Celery | None = None) -> None:
        if app is None:
            from tasks.app import app as default_app  # the web process only publishes

            app = default_app
        self._app = app

    def publish(self, dispatch: engine.Dispatch) -> None:
        publish(dispatch, self._app)

    def sync_plan(self, plan_id: int) -> None:
        self._app.signature("tasks.radius.sync_plan_group", args=(plan_id,)).apply_async()


def publish_delivery(
    delivery_id: str,
    *,
    countdown: float | None = None,
    app: Celery | None = None,
    bulk: bool = False,
) -> None:
    """Publish one webhook delivery attempt (routed to the ``webhooks`` queue), by id only.

    ``bulk``: the event is a bulk job's (one of its workflows, or the job itself); its delivery
    yields to interactive ones like the rest of the job's messages.
    """
    (app or current_app).signature(DELIVER_TASK, args=(delivery_id,)).apply_async(
        countdown=countdown, priority=BULK_PRIORITY if bulk else INTERACTIVE_PRIORITY
    )


def publish_deliveries(
    app: Celery, delivery_ids: Sequence[uuid.UUID], *, bulk: bool = False
) -> None:
    """What orchestrator.webhooks.outbox publishes new events with, after their commit."""
    for delivery_id in delivery_ids:
        publish_delivery(str(delivery_id), app=app, bulk=bulk)


def publish_feed(job_id: uuid.UUID, *, app: Celery | None = None) -> None:
    """Ask a worker to start a bulk job's next rows (routed to the ``bulk`` queue).

    At bulk priority: a worker serving the ``bulk`` queue beside others takes their
    interactive messages first (a feed's retries keep the priority it was published with).
    """
    (app or current_app).signature(FEED_TASK, args=(str(job_id),)).apply_async(
        priority=BULK_PRIORITY
    )

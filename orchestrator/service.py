"""The service layer: what the API (and the CLI) can ask of the orchestrator.

Each public method is one unit of work: it opens the transaction, writes, commits, and only
then asks the dispatcher to publish (so a worker never sees an id whose rows are not yet
visible). Nothing here knows about Flask or Celery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis.exceptions
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, raiseload

from orchestrator import engine, statistics, tracing
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.definitions import Recovery
from orchestrator.errors import ConflictError, IdempotencyMismatch, InvalidTransition, NotFound
from orchestrator.models import ResourceClaim, Workflow, WorkflowEvent, WorkflowStatus
from orchestrator.paging import Page
from orchestrator.vault import seal
from orchestrator.workflows import workflow_types

log = logging.getLogger(__name__)

#: What a publish raises while the broker is down: kombu's OperationalError once Celery gave up
#: its publish retries, redis-py's errors, or a bare socket error.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class Dispatcher(Protocol):
    """Publishes what the engine decided; the service depends only on this shape."""

    def publish(self, dispatch: engine.Dispatch) -> None: ...

    def sync_plan(self, plan_id: int) -> None: ...


@dataclass(frozen=True)
class Submission:
    workflow: Workflow
    #: False when an Idempotency-Key matched an earlier, identical submission.
    created: bool


@dataclass(frozen=True)
class WorkflowDetail:
    workflow: Workflow
    events: list[WorkflowEvent]


@dataclass(frozen=True)
class WorkflowFilter:
    """What a workflow list is narrowed to; every criterion is optional, all must hold."""

    statuses: tuple[WorkflowStatus, ...] = ()
    workflow_type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    subscriber_id: uuid.UUID | None = None


WorkflowPage = Page[Workflow]


def request_fingerprint(workflow_type: str, body: dict[str, Any]) -> str:
    """HMAC of the canonical request: compares bodies without storing (or leaking) them."""
    key = (get_settings().secret_key or "unset").encode()
    canonical = json.dumps(
        {"type": workflow_type, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def create_workflow(
    session: Session,
    workflow_type: str,
    tenant_id: str,
    request: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    api_key_id: uuid.UUID | None = None,
    bulk_job_id: uuid.UUID | None = None,
) -> tuple[Workflow, engine.Dispatch]:
    """Write a new workflow for a validated request in the caller's transaction; publish the
    returned dispatch once it commits. The one way a workflow comes to be (a portal request,
    a bulk job's row)."""
    kind = workflow_types.get(workflow_type)
    prepared = kind.prepare(session, tenant_id, request)
    # A portal request's workflow continues the request's trace; a bulk job's row is a trace
    # of its own (linked to the job's), not one more branch of the job's feed.
    traceparent = tracing.begin_workflow(kind.definition.name, fresh=bulk_job_id is not None)
    workflow = engine.new_workflow(
        session,
        kind.definition,
        tenant_id=tenant_id,
        input_data=prepared.input,
        sealed_secrets=seal(prepared.secrets) if prepared.secrets else None,
        deadline=timedelta(seconds=get_settings().workflow_deadline_seconds),
        claims=prepared.claims,
        subscriber_id=prepared.subscriber_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        api_key_id=api_key_id,
        bulk_job_id=bulk_job_id,
        traceparent=traceparent,
    )
    return workflow, engine.start(workflow)


def _requested(requested_by: str | None, reason: str | None) -> dict[str, Any] | None:
    """The event details of an operator's request: the API key id that asked, and why."""
    details = {"requested_by": requested_by, "reason": reason}
    return {key: value for key, value in details.items() if value} or None


def _add_reason(session: Session, workflow: Workflow, kind: engine.EventKind, reason: str) -> None:
    """Add ``reason`` to the ``kind`` event the engine has just recorded in this transaction.

    The engine's request_cancel records who asked but takes no reason; its event is still
    pending in the session (the log is append-only once committed), so it is completed here.
    Nothing pending (a repeated request records no event) means nothing to add.
    """
    for pending in session.new:
        if (
            isinstance(pending, WorkflowEvent)
            and pending.workflow_id == workflow.id
            and pending.kind == kind.value
        ):
            # Replaced, not mutated: an in-place change to a JSON column is not tracked.
            pending.details = {**(pending.details or {}), "reason": reason}


def _never_gone(owner: str | None) -> bool:
    # The web process cannot tell whether a worker's process is alive; leases decide.
    return False


class OrchestrationService:
    def __init__(
        self,
        dispatcher: Dispatcher,
        unit_of_work: Callable[[], AbstractContextManager[Session]] = transaction,
    ) -> None:
        self._dispatcher = dispatcher
        self._unit_of_work = unit_of_work

    def submit(
        self,
        workflow_type: str,
        tenant_id: str,
        request: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        api_key_id: uuid.UUID | None = None,
    ) -> Submission:
        """Start a workflow of ``workflow_type`` for the validated ``request``."""
        workflow_types.get(workflow_type)  # an unknown type fails before anything is read
        fingerprint = request_fingerprint(workflow_type, request)
        if idempotency_key:
            earlier = self._find_by_idempotency_key(tenant_id, idempotency_key, fingerprint)
            if earlier is not None:
                return Submission(earlier, created=False)
        try:
            with self._unit_of_work() as session:
                workflow, dispatch = create_workflow(
                    session,
                    workflow_type,
                    tenant_id,
                    request,
                    idempotency_key=idempotency_key,
                    request_hash=fingerprint,
                    api_key_id=api_key_id,
                )
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
            if constraint == "uq_workflows_tenant_idempotency" and idempotency_key:
                # A concurrent twin with the same key won the race: answer with its workflow.
                earlier = self._find_by_idempotency_key(tenant_id, idempotency_key, fingerprint)
                if earlier is not None:
                    return Submission(earlier, created=False)
            if constraint == "pk_resource_claims":
                raise ConflictError(self._claim_holder_message(tenant_id, exc)) from exc
            raise
        self._publish_committed(workflow, dispatch)
        return Submission(workflow, created=True)

    def _publish_committed(self, workflow: Workflow, dispatch: engine.Dispatch) -> None:
        """Publishes after the commit; a broker that is down does not undo accepted work.

        The workflow is stored, so it is accepted: the sweeper re-drives a workflow whose
        messages never reached the broker, and an answer of 500 would only make the client
        submit again.
        """
        try:
            self._dispatcher.publish(dispatch)
        except BROKER_ERRORS as exc:
            log.warning(
                "workflow %s stored but not published (broker unavailable: %s); the sweeper "
                "will re-drive it",
                workflow.id,
                type(exc).__name__,
            )

    def _claim_holder_message(self, tenant_id: str, exc: IntegrityError) -> str:
        """Which workflow holds the resource a submission collided on, for the 409."""
        detail = getattr(getattr(exc.orig, "diag", None), "message_detail", None) or ""
        match = re.search(r"\(kind, value\)=\(([^,]+), ([^)]+)\)", detail)
        if match is None:
            return "another workflow for this subscriber is in progress"
        kind, value = match.groups()
        with self._unit_of_work() as session:
            # Another tenant's workflow is not named (nor is its existence confirmed by an id).
            holder = session.scalar(
                select(ResourceClaim.workflow_id)
                .join(Workflow, Workflow.id == ResourceClaim.workflow_id)
                .where(
                    ResourceClaim.kind == kind,
                    ResourceClaim.value == value,
                    Workflow.tenant_id == tenant_id,
                )
            )
        what = {
            "username": "username",
            "onu_serial": "ONU serial",
            "cpe_serial": "CPE",
            "cpe_mac": "CPE MAC",
            "subscriber": "subscriber",
        }
        return (
            f"{what.get(kind, kind)} {value} is held by workflow {holder}, still in progress"
            if holder
            else "another workflow for this subscriber is in progress"
        )

    def _find_by_idempotency_key(
        self, tenant_id: str, key: str, fingerprint: str
    ) -> Workflow | None:
        with self._unit_of_work() as session:
            workflow = session.scalar(
                select(Workflow).where(
                    Workflow.tenant_id == tenant_id, Workflow.idempotency_key == key
                )
            )
        if workflow is not None and workflow.request_hash != fingerprint:
            raise IdempotencyMismatch("this Idempotency-Key was used with a different request body")
        return workflow

    def get_workflow(self, tenant_id: str, workflow_id: uuid.UUID) -> WorkflowDetail:
        with self._unit_of_work() as session:
            workflow = session.scalar(
                select(Workflow).where(Workflow.id == workflow_id, Workflow.tenant_id == tenant_id)
            )
            if workflow is None:
                # Another tenant's workflow is indistinguishable from a missing one.
                raise NotFound(f"workflow {workflow_id} not found")
            events = list(
                session.scalars(
                    select(WorkflowEvent)
                    .where(WorkflowEvent.workflow_id == workflow_id)
                    .order_by(WorkflowEvent.id)
                )
            )
            return WorkflowDetail(workflow, events)

    def list_workflows(
        self, tenant_id: str, filters: WorkflowFilter, *, limit: int, offset: int
    ) -> WorkflowPage:
        """One page of the tenant's workflows, newest first, with the number of matches."""
        conditions = [Workflow.tenant_id == tenant_id, *self._conditions(tenant_id, filters)]
        with self._unit_of_work() as session:
            total = session.scalar(select(func.count()).select_from(Workflow).where(*conditions))
            items = list(
                session.scalars(
                    select(Workflow)
                    .where(*conditions)
                    # The list shows no steps: loading them would be a query per page for nothing.
                    .options(raiseload(Workflow.steps))
                    .order_by(Workflow.created_at.desc(), Workflow.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
        return WorkflowPage(items=items, total=total or 0, limit=limit, offset=offset)

    @staticmethod
    def _conditions(tenant_id: str, filters: WorkflowFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if filters.statuses:
            conditions.append(Workflow.status.in_(filters.statuses))
        if filters.workflow_type is not None:
            conditions.append(Workflow.workflow_type == filters.workflow_type)
        if filters.created_after is not None:
            conditions.append(Workflow.created_at >= filters.created_after)
        if filters.created_before is not None:
            conditions.append(Workflow.created_at < filters.created_before)
        if filters.subscriber_id is not None:
            # Every workflow records the subscriber it acts on (a provisioning, the one it
            # creates, also after a rollback removed the row).
            conditions.append(Workflow.subscriber_id == filters.subscriber_id)
        return conditions

    def statistics(
        self, tenant_id: str, window: statistics.Window, workflow_type: str | None = None
    ) -> statistics.Statistics:
        with self._unit_of_work() as session:
            return statistics.compute(session, tenant_id, window, workflow_type)

    def retry(
        self,
        tenant_id: str,
        workflow_id: uuid.UUID,
        *,
        requested_by: str | None = None,
        reason: str | None = None,
    ) -> Workflow:
        """Run a rolled-back workflow again as a new run, or finish what a failed one left.

        Who asked (an API key id) and why go into the event log with the request.
        """
        try:
            with self._unit_of_work() as session:
                workflow = self._locked(session, tenant_id, workflow_id)
                if workflow.status not in (WorkflowStatus.ROLLED_BACK, WorkflowStatus.FAILED):
                    raise InvalidTransition(
                        f"a {workflow.status.value} workflow cannot be retried "
                        "(only rolled_back or failed ones)"
                    )
                kind = workflow_types.get(workflow.workflow_type)
                engine.record_event(
                    session,
                    workflow,
                    engine.EventKind.RETRY_REQUESTED,
                    details=_requested(requested_by, reason),
                )
                if workflow.status == WorkflowStatus.ROLLED_BACK:
                    kind.check_retry(session, workflow)
                    # Claims went with the rollback; a new run holds them again.
                    engine.add_claims(session, workflow, kind.claims(workflow.input))
                dispatch = engine.retry(
                    session, workflow, get_settings().workflow_deadline_seconds, _never_gone
                )
        except IntegrityError as exc:
            raise ConflictError(
                "the subscriber, username or ONU serial is now held by another workflow"
            ) from exc
        self._publish_committed(workflow, dispatch)
        return workflow

    def cancel(
        self,
        tenant_id: str,
        workflow_id: uuid.UUID,
        *,
        requested_by: str | None = None,
        reason: str | None = None,
    ) -> Workflow:
        """Ask a pending or running workflow to stop at the next step boundary and compensate.

        Who asked and why go into the event log; asking again changes nothing (nor the reason).
        """
        with self._unit_of_work() as session:
            workflow = self._locked(session, tenant_id, workflow_id)
            if workflow.status not in WorkflowStatus.forward():
                raise InvalidTransition(f"a {workflow.status.value} workflow cannot be cancelled")
            if engine.definition_of(workflow).recovery == Recovery.FORWARD:
                # Half a deprovisioning cannot be put back: it can only be finished.
                raise InvalidTransition(
                    f"a {workflow.workflow_type} workflow cannot be cancelled (it removes, and "
                    "what it removed is not put back); let it finish"
                )
            engine.request_cancel(session, workflow, requested_by=requested_by)
            if reason:
                _add_reason(session, workflow, engine.EventKind.CANCEL_REQUESTED, reason)
        return workflow

    @staticmethod
    def _locked(session: Session, tenant_id: str, workflow_id: uuid.UUID) -> Workflow:
        workflow = session.scalar(
            select(Workflow)
            .where(Workflow.id == workflow_id, Workflow.tenant_id == tenant_id)
            .with_for_update()
        )
        if workflow is None:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow

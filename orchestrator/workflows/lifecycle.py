"""What the lifecycle workflow types share: they act on one existing subscriber, one at a time.

Each type names the subscriber statuses it may start from; the subscriber row is locked while
the request is checked, and the workflow claims the subscriber, so a second lifecycle request
while one is in flight is refused (409, naming the workflow that holds it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import subscribers
from orchestrator.errors import ConflictError
from orchestrator.models import Subscriber, SubscriberStatus, Workflow
from orchestrator.workflows.base import Claims, Prepared, WorkflowType


class LifecycleWorkflow(WorkflowType):
    #: The subscriber statuses this workflow may start from.
    allowed: ClassVar[frozenset[SubscriberStatus]]
    #: What the workflow does, for the 409 ("cannot suspend a subscriber that is ...").
    action: ClassVar[str]

    def prepare(self, session: Session, tenant_id: str, request: Mapping[str, Any]) -> Prepared:
        subscriber = subscribers.lock_for_lifecycle(
            session, tenant_id, uuid.UUID(str(request["subscriber_id"])), self.allowed, self.action
        )
        base = subscribers.lifecycle_input(session, subscriber)
        input_data = {**base, **self.extra_input(session, tenant_id, base, request)}
        return Prepared(
            input=input_data, subscriber_id=subscriber.id, claims=self.claims(input_data)
        )

    def extra_input(
        self,
        session: Session,
        tenant_id: str,
        base: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> dict[str, Any]:
        """What this type adds to ``base`` (the subscriber as it is now) from its request."""
        return {}

    def claims(self, input_data: Mapping[str, Any]) -> Claims:
        return subscribers.lifecycle_claims(input_data)

    def check_retry(self, session: Session, workflow: Workflow) -> None:
        """A new run acts (and would undo) on the subscriber as it was at submission: refused
        once anything about it has changed since (another workflow ran); submit anew then."""
        base = workflow.input
        subscriber = session.scalar(
            select(Subscriber)
            .where(Subscriber.id == uuid.UUID(base["subscriber_id"]))
            .with_for_update()
        )
        if (
            subscriber is None
            or subscriber.status.value != base["subscriber_status"]
            or subscriber.service_plan_id != base["plan"]["id"]
            or (subscriber.resources or {}) != (base["resources"] or {})
        ):
            raise ConflictError(
                "the subscriber has changed since this workflow was submitted; submit a new "
                f"{self.name} instead of retrying this one"
            )

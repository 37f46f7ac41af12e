"""suspend_service: a subscriber who may not use the service for now (a non-payer, say).

The RADIUS account moves to the plan's suspended profile (by default a group FreeRADIUS
rejects), then the live session is disconnected so the profile applies at once; optionally the
ONU is disabled in VOLTHA too. On failure everything returns to where it was::

    move_to_suspended_group ──┐
    disable_onu ──────────────┴──▶ mark_suspended ──▶ disconnect_sessions

The disconnect comes last (see catalogue.disconnect_sessions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from orchestrator import subscribers
from orchestrator.definitions import WorkflowDefinition, registry
from orchestrator.models import SubscriberStatus
from orchestrator.workflows.catalogue import (
    disable_onu,
    disconnect_sessions,
    move_radius_group,
    set_subscriber_status,
)
from orchestrator.workflows.lifecycle import LifecycleWorkflow

NAME = "suspend_service"

DEFINITION = registry.register(
    WorkflowDefinition(
        name=NAME,
        version=1,
        steps=(
            move_radius_group("move_to_suspended_group"),
            disable_onu("disable_onu"),
            set_subscriber_status(
                "mark_suspended", depends_on=("move_to_suspended_group", "disable_onu")
            ),
            disconnect_sessions("disconnect_sessions", depends_on=("mark_suspended",)),
        ),
    )
)


class SuspendService(LifecycleWorkflow):
    name = NAME
    allowed = frozenset({SubscriberStatus.ACTIVE})
    action = "suspend"

    def extra_input(
        self,
        session: Session,
        tenant_id: str,
        base: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {
            "reason": request.get("reason"),
            "disable_onu": bool(request.get("disable_onu")),
            "target_radius_group": subscribers.suspended_group(base["plan"]),
            "target_status": SubscriberStatus.SUSPENDED.value,
        }


WORKFLOW = SuspendService()

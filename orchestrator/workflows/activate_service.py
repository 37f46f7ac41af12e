"""activate_service: a suspended subscriber gets the service back.

The RADIUS account returns to the plan's group, a session in the suspended profile (a walled
garden) is disconnected so it logs in again with the plan, and an ONU the suspension disabled
is enabled again::

    move_to_plan_group ──┐
    enable_onu ──────────┴──▶ mark_active ──▶ disconnect_sessions

The disconnect comes last (see catalogue.disconnect_sessions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from orchestrator.definitions import WorkflowDefinition, registry
from orchestrator.models import SubscriberStatus
from orchestrator.workflows.catalogue import (
    disconnect_sessions,
    enable_onu,
    move_radius_group,
    set_subscriber_status,
)
from orchestrator.workflows.lifecycle import LifecycleWorkflow

NAME = "activate_service"

DEFINITION = registry.register(
    WorkflowDefinition(
        name=NAME,
        version=1,
        steps=(
            move_radius_group("move_to_plan_group"),
            enable_onu("enable_onu"),
            set_subscriber_status("mark_active", depends_on=("move_to_plan_group", "enable_onu")),
            disconnect_sessions("disconnect_sessions", depends_on=("mark_active",)),
        ),
    )
)


class ActivateService(LifecycleWorkflow):
    name = NAME
    allowed = frozenset({SubscriberStatus.SUSPENDED})
    action = "activate"

    def extra_input(
        self,
        session: Session,
        tenant_id: str,
        base: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {
            "target_radius_group": base["plan"]["radius_group"],
            "target_status": SubscriberStatus.ACTIVE.value,
        }


WORKFLOW = ActivateService()

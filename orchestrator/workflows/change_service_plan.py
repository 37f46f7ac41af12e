"""change_service_plan: a subscriber moves to another plan (speeds, VLANs, tech profile).

The RADIUS account moves to the new plan's group (its rate), the ONOS service is re-programmed
when the new plan's tags or tech profile differ, the live session is disconnected so the new
rate applies now, and billing follows. On failure everything returns to the old plan::

    move_to_new_plan_group ────────────────────────────┐
    reprogram_onu ─────────────────────────────────────┤
    move_ipv6_prefix ──▶ reassign_ipv6_prefix ─────────┴──▶ change_billing_plan ──┐
                                                                                  │
                          release_old_ipv6_prefix ◀───────────────────────────────┤
                          disconnect_sessions ◀───────────────────────────────────┘

(v2; v1, without the IPv6 steps, stays registered for workflows started on it.) When the new
plan's IPv6 pools differ from the old one's, move_ipv6_prefix takes prefixes from the new pools
(none if the new plan is IPv4-only) and reassign_ipv6_prefix puts them in RADIUS; both are
undone on failure. The old prefixes are released only once the change has committed: a release
cannot be undone (NetBox may hand the prefix to someone else at once), so, like the disconnect,
it comes after everything that could still fail, and is retried patiently.

The disconnect comes last (see catalogue.disconnect_sessions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from orchestrator import plans
from orchestrator.definitions import StepDefinition, WorkflowDefinition, registry
from orchestrator.errors import ConflictError
from orchestrator.models import SubscriberStatus
from orchestrator.steps.netbox import ipv6_moves
from orchestrator.workflows.catalogue import PATIENT, disconnect_sessions, move_radius_group
from orchestrator.workflows.lifecycle import LifecycleWorkflow

NAME = "change_service_plan"

V1_STEPS = (
    move_radius_group("move_to_new_plan_group"),
    StepDefinition(
        name="reprogram_onu",
        system="access",
        task="tasks.access.reprogram_onu",
        compensation="tasks.access.restore_onu_service",
        # ONOS programs asynchronously: removal and activation are both confirmed.
        timeout=60,
    ),
    StepDefinition(
        name="change_billing_plan",
        system="database",
        task="tasks.database.change_billing_plan",
        compensation="tasks.database.restore_billing_plan",
        depends_on=("move_to_new_plan_group", "reprogram_onu"),
        timeout=15,
    ),
    disconnect_sessions("disconnect_sessions", depends_on=("change_billing_plan",)),
)
registry.register(WorkflowDefinition(name=NAME, version=1, steps=V1_STEPS))

V2_STEPS = (
    V1_STEPS[0],
    V1_STEPS[1],
    StepDefinition(
        name="move_ipv6_prefix",
        system="netbox",
        task="tasks.netbox.move_ipv6_prefix",
        compensation="tasks.netbox.release_moved_ipv6_prefix",
        timeout=30,
    ),
    StepDefinition(
        name="reassign_ipv6_prefix",
        system="radius",
        task="tasks.radius.reassign_ipv6_prefix",
        compensation="tasks.radius.restore_ipv6_prefix",
        depends_on=("move_ipv6_prefix",),
        timeout=15,
    ),
    replace(
        V1_STEPS[2],
        depends_on=("move_to_new_plan_group", "reprogram_onu", "reassign_ipv6_prefix"),
    ),
    StepDefinition(
        name="release_old_ipv6_prefix",
        system="netbox",
        task="tasks.netbox.release_old_ipv6_prefix",
        compensation=None,
        irreversible=True,
        max_attempts=PATIENT,
        depends_on=("change_billing_plan",),
        timeout=30,
    ),
    V1_STEPS[3],
)
DEFINITION = registry.register(WorkflowDefinition(name=NAME, version=2, steps=V2_STEPS))


def new_service_tags(
    current: Mapping[str, Any] | None, old_plan: Mapping[str, Any], new_plan: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The ONOS service on the new plan, or None when the subscriber has no service to move.

    The S-tag and tech profile are the plan's; a C-tag that differs from the old plan's was
    given for this subscriber and stays with it, otherwise the new plan's is taken.
    """
    if not current:
        return None
    own_c_tag = current.get("c_tag") not in (None, old_plan.get("c_tag"))
    return {
        "port_name": current["port_name"],
        "s_tag": new_plan.get("s_tag") or current["s_tag"],
        "c_tag": current["c_tag"] if own_c_tag else (new_plan.get("c_tag") or current["c_tag"]),
        "tp_id": new_plan.get("tech_profile_id") or current["tp_id"],
    }


class ChangeServicePlan(LifecycleWorkflow):
    name = NAME
    allowed = frozenset({SubscriberStatus.ACTIVE})
    action = "change the plan of"

    def extra_input(
        self,
        session: Session,
        tenant_id: str,
        base: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> dict[str, Any]:
        plan = plans.plan_for_workflow(
            session, tenant_id, request["service_plan_id"], "service_plan_id"
        )
        if plan.id == base["plan"]["id"]:
            raise ConflictError(
                f"the subscriber is already on plan {plan.id}",
                {"service_plan_id": ["the subscriber's current plan"]},
            )
        new_plan = plans.snapshot(plan)
        current_service = (base["resources"] or {}).get("onos")
        held_ipv6 = (base["resources"] or {}).get("ipv6")
        return {
            "new_plan": new_plan,
            "ipv6_moves": ipv6_moves(base["plan"], new_plan, held_ipv6),
            "target_radius_group": new_plan["radius_group"],
            "onos_service": current_service,
            "new_onos_service": new_service_tags(current_service, base["plan"], new_plan),
        }


WORKFLOW = ChangeServicePlan()

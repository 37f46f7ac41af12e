"""deprovision_subscriber: the contract ends; every system lets go of the subscriber.

Removal runs in the reverse of the provisioning's dependency order: billing ends first (the
commit point, last to be made), then the CPE, the ONOS service, the NetBox address and the
RADIUS account side by side, then the live session is disconnected (after the account is gone,
so it cannot log in again), and the subscriber is ``terminated`` (its row and its customer
stay, for history)::

    end_billing ─┬─▶ clear_cpe ─────────────────────────────────────┐
                 ├─▶ remove_onu_service ────────────────────────────┤
                 ├─▶ release_ip ────────────────────────────────────┤
                 ├─▶ release_ipv6_prefix ───────────────────────────┼─▶ mark_terminated
                 └─▶ remove_radius_account ─▶ disconnect_sessions ──┘

(release_ipv6_prefix, the NetBox IPv6 prefixes, since v2; v1 stays registered for workflows
started on it.)

This is forward recovery: a removal that cannot reach its system is retried with backoff until
the workflow's deadline, never answered by re-creating what was removed. What could not be
removed by then ends the workflow ``failed`` with ``error.left_behind``; a retry carries on.
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.definitions import Recovery, StepDefinition, WorkflowDefinition, registry
from orchestrator.models import SubscriberStatus
from orchestrator.workflows.catalogue import PATIENT, disconnect_sessions
from orchestrator.workflows.lifecycle import LifecycleWorkflow

NAME = "deprovision_subscriber"


def _removal(
    name: str, system: str, task: str, *depends_on: str, timeout: float = 30
) -> StepDefinition:
    return StepDefinition(
        name=name,
        system=system,
        task=task,
        compensation=None,
        irreversible=True,
        max_attempts=PATIENT,
        depends_on=depends_on,
        timeout=timeout,
    )


V1_STEPS = (
    _removal("end_billing", "database", "tasks.database.end_billing", timeout=15),
    _removal("clear_cpe", "genieacs", "tasks.genieacs.clear_cpe", "end_billing", timeout=60),
    _removal(
        "remove_onu_service",
        "access",
        "tasks.access.remove_onu_service",
        "end_billing",
        timeout=60,
    ),
    _removal("release_ip", "netbox", "tasks.netbox.release_subscriber_ip", "end_billing"),
    _removal(
        "remove_radius_account",
        "radius",
        "tasks.radius.remove_account",
        "end_billing",
        timeout=15,
    ),
    replace(
        disconnect_sessions("disconnect_sessions", depends_on=("remove_radius_account",)),
        max_attempts=PATIENT,
    ),
    _removal(
        "mark_terminated",
        "database",
        "tasks.database.mark_terminated",
        "clear_cpe",
        "remove_onu_service",
        "release_ip",
        "disconnect_sessions",
        timeout=15,
    ),
)
registry.register(
    WorkflowDefinition(name=NAME, version=1, recovery=Recovery.FORWARD, steps=V1_STEPS)
)

_RELEASE_IPV6 = _removal(
    "release_ipv6_prefix", "netbox", "tasks.netbox.release_subscriber_prefixes", "end_billing"
)
V2_STEPS = (
    *V1_STEPS[:4],
    _RELEASE_IPV6,
    *V1_STEPS[4:6],
    replace(V1_STEPS[6], depends_on=(*V1_STEPS[6].depends_on, _RELEASE_IPV6.name)),
)
DEFINITION = registry.register(
    WorkflowDefinition(name=NAME, version=2, recovery=Recovery.FORWARD, steps=V2_STEPS)
)


class DeprovisionSubscriber(LifecycleWorkflow):
    name = NAME
    allowed = frozenset({SubscriberStatus.ACTIVE, SubscriberStatus.SUSPENDED})
    action = "deprovision"


WORKFLOW = DeprovisionSubscriber()

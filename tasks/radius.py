"""Step and compensation tasks for FreeRADIUS (queue ``radius``), and plan group updates."""

from sqlalchemy.exc import OperationalError

from orchestrator.db import transaction
from orchestrator.errors import TransientError
from orchestrator.integrations.radius import plan_group_attributes, shared_store
from orchestrator.models import ServicePlan
from orchestrator.steps.radius import (
    AssignFramedIp,
    CreateRadiusAccount,
    MoveRadiusGroup,
    ReassignIpv6Prefix,
    RemoveRadiusAccount,
)
from tasks.app import app
from tasks.base import compensation_task, step_task

_account = CreateRadiusAccount()

create_account = step_task(app, "tasks.radius.create_account", _account)
delete_account = compensation_task(app, "tasks.radius.delete_account", _account)

_framed_ip = AssignFramedIp()

assign_framed_ip = step_task(app, "tasks.radius.assign_framed_ip", _framed_ip)
clear_framed_ip = compensation_task(app, "tasks.radius.clear_framed_ip", _framed_ip)

_move = MoveRadiusGroup()

move_group = step_task(app, "tasks.radius.move_group", _move)
move_group_back = compensation_task(app, "tasks.radius.move_group_back", _move)

_reassign_ipv6 = ReassignIpv6Prefix()

reassign_ipv6_prefix = step_task(app, "tasks.radius.reassign_ipv6_prefix", _reassign_ipv6)
restore_ipv6_prefix = compensation_task(app, "tasks.radius.restore_ipv6_prefix", _reassign_ipv6)

remove_account = step_task(app, "tasks.radius.remove_account", RemoveRadiusAccount())


@app.task(
    name="tasks.radius.sync_plan_group",
    autoretry_for=(TransientError, OperationalError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=None,
)
def sync_plan_group(plan_id: int) -> None:
    """Write the plan's current speeds into its RADIUS group (idempotent: a full rewrite).

    Reads the plan when it runs, so of several quick edits the last one wins.
    """
    with transaction() as session:
        plan = session.get(ServicePlan, plan_id)
        if plan is None:
            return  # deleted since: nothing subscribes to its group any more
        group = plan.radius_group
        attributes = plan_group_attributes(plan.download_mbps, plan.upload_mbps)
    shared_store().ensure_group(group, attributes)

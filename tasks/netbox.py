"""Step and compensation tasks for NetBox IPAM (queue ``netbox``)."""

from orchestrator.steps.netbox import (
    AllocateIp,
    AllocateIpAndFramedIp,
    AllocateIpv6Prefix,
    MoveIpv6Prefix,
    ReleaseOldIpv6Prefix,
    ReleaseSubscriberIp,
    ReleaseSubscriberPrefixes,
)
from tasks.app import app
from tasks.base import compensation_task, step_task

_allocate = AllocateIp()

allocate_ip = step_task(app, "tasks.netbox.allocate_ip", _allocate)
release_ip = compensation_task(app, "tasks.netbox.release_ip", _allocate)
# provision_subscriber v1 (see its module); its undo is release_ip (by the same key)
allocate_ip_and_framed_ip = step_task(
    app, "tasks.netbox.allocate_ip_and_framed_ip", AllocateIpAndFramedIp()
)

release_subscriber_ip = step_task(app, "tasks.netbox.release_subscriber_ip", ReleaseSubscriberIp())

_ipv6 = AllocateIpv6Prefix()

allocate_ipv6_prefix = step_task(app, "tasks.netbox.allocate_ipv6_prefix", _ipv6)
release_ipv6_prefix = compensation_task(app, "tasks.netbox.release_ipv6_prefix", _ipv6)

release_subscriber_prefixes = step_task(
    app, "tasks.netbox.release_subscriber_prefixes", ReleaseSubscriberPrefixes()
)

_move_ipv6 = MoveIpv6Prefix()

move_ipv6_prefix = step_task(app, "tasks.netbox.move_ipv6_prefix", _move_ipv6)
release_moved_ipv6_prefix = compensation_task(
    app, "tasks.netbox.release_moved_ipv6_prefix", _move_ipv6
)
release_old_ipv6_prefix = step_task(
    app, "tasks.netbox.release_old_ipv6_prefix", ReleaseOldIpv6Prefix()
)

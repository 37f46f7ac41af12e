"""Step and compensation tasks for NetBox IPAM (queue ``netbox``)."""

from orchestrator.steps.netbox import AllocateIp, AllocateIpAndFramedIp, ReleaseSubscriberIp
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

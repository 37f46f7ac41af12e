"""Step and compensation tasks for VOLTHA/ONOS (queue ``access``)."""

from orchestrator.steps.access import (
    ActivateOnu,
    DisableOnu,
    EnableOnu,
    RemoveOnuService,
    ReprogramOnu,
)
from tasks.app import app
from tasks.base import compensation_task, step_task

_activate = ActivateOnu()

activate_onu = step_task(app, "tasks.access.activate_onu", _activate)
deactivate_onu = compensation_task(app, "tasks.access.deactivate_onu", _activate)

_disable = DisableOnu()
disable_onu = step_task(app, "tasks.access.disable_onu", _disable)
enable_onu_again = compensation_task(app, "tasks.access.enable_onu_again", _disable)

_enable = EnableOnu()
enable_onu = step_task(app, "tasks.access.enable_onu", _enable)
disable_onu_again = compensation_task(app, "tasks.access.disable_onu_again", _enable)

_reprogram = ReprogramOnu()
reprogram_onu = step_task(app, "tasks.access.reprogram_onu", _reprogram)
restore_onu_service = compensation_task(app, "tasks.access.restore_onu_service", _reprogram)

remove_onu_service = step_task(app, "tasks.access.remove_onu_service", RemoveOnuService())

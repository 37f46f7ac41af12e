"""Step and compensation tasks for VOLTHA/ONOS (queue ``access``)."""

from orchestrator.steps.access import ActivateOnu
from tasks.app import app
from tasks.base import compensation_task, step_task

_activate = ActivateOnu()

activate_onu = step_task(app, "tasks.access.activate_onu", _activate)
deactivate_onu = compensation_task(app, "tasks.access.deactivate_onu", _activate)

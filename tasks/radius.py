"""Step and compensation tasks for FreeRADIUS (queue ``radius``)."""

from orchestrator.steps.radius import CreateRadiusAccount
from tasks.app import app
from tasks.base import compensation_task, step_task

_account = CreateRadiusAccount()

create_account = step_task(app, "tasks.radius.create_account", _account)
delete_account = compensation_task(app, "tasks.radius.delete_account", _account)

"""Step and compensation tasks for GenieACS (queue ``genieacs``)."""

from orchestrator.steps.genieacs import ClearCpe, ConfigureCpe
from tasks.app import app
from tasks.base import compensation_task, step_task

_configure = ConfigureCpe()

configure_cpe = step_task(app, "tasks.genieacs.configure_cpe", _configure)
unconfigure_cpe = compensation_task(app, "tasks.genieacs.unconfigure_cpe", _configure)

clear_cpe = step_task(app, "tasks.genieacs.clear_cpe", ClearCpe())

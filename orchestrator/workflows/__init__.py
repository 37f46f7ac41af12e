"""Every workflow type, one module each. Importing this package registers their definitions,
and then those of the modules ORCHESTRATOR_WORKFLOW_MODULES names (an operator's own types)."""

import importlib

from orchestrator.config import get_settings
from orchestrator.workflows import (
    activate_service,
    change_service_plan,
    cleanup_orphans,
    deprovision_subscriber,
    provision_subscriber,
    suspend_service,
)
from orchestrator.workflows.base import Prepared, WorkflowType, WorkflowTypes

workflow_types = WorkflowTypes(
    [
        provision_subscriber.WORKFLOW,
        deprovision_subscriber.WORKFLOW,
        suspend_service.WORKFLOW,
        activate_service.WORKFLOW,
        change_service_plan.WORKFLOW,
        cleanup_orphans.WORKFLOW,
    ]
)

for _module in get_settings().workflow_modules:
    importlib.import_module(_module)

__all__ = ["Prepared", "WorkflowType", "WorkflowTypes", "workflow_types"]

"""A workflow type with two versions, to deploy v2 while v1 workflows are in flight.

``provision_versioned`` provisions like provision_subscriber (same request, same tasks). v1 is
its graph; v2 drops the framed-address step. Which versions a process knows is set by
VERSIONED_WORKFLOW_MAX (1 or 2) when this module is imported; a process can learn v2 later
with :func:`deploy_v2`, as a new deploy would.
"""

from __future__ import annotations

import os
from dataclasses import replace

from orchestrator.definitions import WorkflowDefinition, registry
from orchestrator.workflows import workflow_types
from orchestrator.workflows.provision_subscriber import STEPS, ProvisionSubscriber

NAME = "provision_versioned"

V1 = WorkflowDefinition(name=NAME, version=1, steps=STEPS)
V2 = WorkflowDefinition(
    name=NAME,
    version=2,
    steps=tuple(
        replace(step, depends_on=tuple(d for d in step.depends_on if d != "assign_framed_ip"))
        for step in STEPS
        if step.name != "assign_framed_ip"
    ),
)


class ProvisionVersioned(ProvisionSubscriber):
    name = NAME  # type: ignore[assignment]


def deploy_v2() -> None:
    if 2 not in {d.version for d in registry if d.name == NAME}:
        registry.register(V2)


registry.register(V1)
workflow_types.add(ProvisionVersioned())
if os.environ.get("VERSIONED_WORKFLOW_MAX", "1") == "2":
    deploy_v2()

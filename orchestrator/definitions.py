"""Workflow definitions are data: ordered steps, each naming its task and its compensation.

A definition is checked when it is declared (unknown dependency, cycle, duplicate name, missing
compensation) and again when the Celery app loads (every task name must be registered), so a
mistake fails at import time, never half-way through a subscriber's provisioning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Predicate on the workflow's input and context; True means "skip this step".
SkipCondition = Callable[[Mapping[str, Any]], bool]


class DefinitionError(Exception):
    """Raised when a workflow definition is inconsistent."""


@dataclass(frozen=True)
class StepDefinition:
    name: str
    system: str
    task: str
    #: Task that undoes the step. ``None`` only with ``irreversible=True`` said out loud.
    compensation: str | None
    max_attempts: int = 5
    compensation_max_attempts: int = 8
    #: Per-attempt time limit in seconds (soft limit; the hard limit adds a grace period).
    timeout: float = 30.0
    skip_if: SkipCondition | None = None
    depends_on: tuple[str, ...] = ()
    irreversible: bool = False


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    version: int
    steps: tuple[StepDefinition, ...]
    _by_name: dict[str, StepDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, StepDefinition] = {}
        for step in self.steps:
            if step.name in by_name:
                raise DefinitionError(f"{self.name}: step {step.name!r} declared twice")
            for dependency in step.depends_on:
                # Dependencies may only point backwards, which rules out cycles by construction.
                if dependency not in by_name:
                    raise DefinitionError(
                        f"{self.name}: step {step.name!r} depends on {dependency!r}, "
                        "which is not an earlier step (unknown or a cycle)"
                    )
            if step.compensation is None and not step.irreversible:
                raise DefinitionError(
                    f"{self.name}: step {step.name!r} has no compensation; "
                    "declare irreversible=True if that is intended"
                )
            if step.max_attempts < 1 or step.compensation_max_attempts < 1:
                raise DefinitionError(f"{self.name}: step {step.name!r} needs >= 1 attempt")
            by_name[step.name] = step
        object.__setattr__(self, "_by_name", by_name)

    def step(self, name: str) -> StepDefinition:
        return self._by_name[name]

    def task_names(self) -> Iterator[str]:
        for step in self.steps:
            yield step.task
            if step.compensation:
                yield step.compensation


class DefinitionRegistry:
    """Definitions by name. Registering a name twice is an error, never a silent overwrite."""

    def __init__(self) -> None:
        self._definitions: dict[str, WorkflowDefinition] = {}

    def register(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        if definition.name in self._definitions:
            raise DefinitionError(f"workflow {definition.name!r} is already registered")
        self._definitions[definition.name] = definition
        return definition

    def get(self, name: str) -> WorkflowDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise DefinitionError(f"unknown workflow type {name!r}") from None

    def __iter__(self) -> Iterator[WorkflowDefinition]:
        return iter(self._definitions.values())

    def verify_tasks(self, registered: Callable[[str], bool]) -> None:
        missing = sorted({name for d in self for name in d.task_names() if not registered(name)})
        if missing:
            raise DefinitionError(f"definitions name unregistered tasks: {', '.join(missing)}")


registry = DefinitionRegistry()


PROVISION_SUBSCRIBER = registry.register(
    WorkflowDefinition(
        name="provision_subscriber",
        version=1,
        steps=(
            StepDefinition(
                name="create_customer",
                system="database",
                task="tasks.database.create_customer",
                compensation="tasks.database.delete_customer",
                timeout=15,
            ),
            StepDefinition(
                name="create_subscriber",
                system="database",
                task="tasks.database.create_subscriber",
                compensation="tasks.database.delete_subscriber",
                depends_on=("create_customer",),
                timeout=15,
            ),
            StepDefinition(
                name="create_radius_account",
                system="radius",
                task="tasks.radius.create_account",
                compensation="tasks.radius.delete_account",
                depends_on=("create_subscriber",),
                timeout=15,
            ),
            StepDefinition(
                name="allocate_ip",
                system="netbox",
                task="tasks.netbox.allocate_ip",
                compensation="tasks.netbox.release_ip",
                depends_on=("create_radius_account",),
                timeout=30,
            ),
            StepDefinition(
                name="activate_onu",
                system="access",
                task="tasks.access.activate_onu",
                compensation="tasks.access.deactivate_onu",
                depends_on=("create_subscriber",),
                # ONOS only queues the request; confirmation polls programmed-subscribers.
                timeout=60,
            ),
            StepDefinition(
                name="configure_cpe",
                system="genieacs",
                task="tasks.genieacs.configure_cpe",
                compensation="tasks.genieacs.unconfigure_cpe",
                depends_on=("create_subscriber",),
                # A connection request makes GenieACS wait for the CPE's session.
                timeout=60,
            ),
            StepDefinition(
                name="create_billing_service",
                system="database",
                task="tasks.database.create_billing_service",
                compensation="tasks.database.delete_billing_service",
                depends_on=("allocate_ip", "activate_onu", "configure_cpe"),
                timeout=15,
            ),
        ),
    )
)

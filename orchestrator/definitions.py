"""Workflow definitions are data: steps, each naming its task, its compensation and what it needs.

``depends_on`` is the one source of order. A step may run once every step it depends on is done,
so steps with no path between them run side by side; undo is the mirror image, a step is undone
once every step built on it is undone. Stages (the depth of each step in that graph) are what an
operator sees drawn; the engine never orders by position.

A definition is checked when it is declared (unknown dependency, cycle, duplicate name, missing
compensation) and again when the Celery app loads (every task name must be registered), so a
mistake fails at import time, never half-way through a subscriber's provisioning.

The registry keeps every version of a workflow type: a workflow runs, retries and compensates
with the version it started on; new submissions take the latest.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from orchestrator.config import get_settings
from orchestrator.errors import DefinitionError

#: Added to a step's timeout for its hard time limit, and again for its lease: a lease can
#: only expire after Celery has killed the attempt that held it.
GRACE_SECONDS = 5.0


class Recovery(enum.StrEnum):
    """What a workflow does when a step fails for good."""

    #: Undo what was done, in reverse dependency order (provisioning, suspend, change plan).
    COMPENSATE = "compensate"
    #: Stop and report what is left; a retry carries on forward (deprovisioning: its steps
    #: delete, and a failed delete is never answered by re-creating what was removed).
    FORWARD = "forward"


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
    depends_on: tuple[str, ...] = ()
    irreversible: bool = False

    def attempt_seconds(self) -> float:
        """The soft time limit of one attempt (capped by configuration, for tests)."""
        return min(self.timeout, get_settings().step_timeout_cap)

    def time_limits(self) -> tuple[float, float]:
        """(soft, hard) Celery time limits of one attempt."""
        soft = self.attempt_seconds()
        return soft, soft + GRACE_SECONDS

    def lease_seconds(self) -> float:
        return self.attempt_seconds() + 2 * GRACE_SECONDS


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    version: int
    steps: tuple[StepDefinition, ...]
    recovery: Recovery = Recovery.COMPENSATE
    _by_name: dict[str, StepDefinition] = field(init=False, repr=False, compare=False)
    _dependents: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _stage: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, StepDefinition] = {}
        stage: dict[str, int] = {}
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
            stage[step.name] = 1 + max((stage[d] for d in step.depends_on), default=-1)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_stage", stage)
        object.__setattr__(
            self,
            "_dependents",
            {name: tuple(s.name for s in self.steps if name in s.depends_on) for name in by_name},
        )

    def step(self, name: str) -> StepDefinition:
        try:
            return self._by_name[name]
        except KeyError:
            raise DefinitionError(f"{self.name} v{self.version} has no step {name!r}") from None

    def dependents(self, name: str) -> tuple[str, ...]:
        """The steps that depend on ``name`` directly."""
        return self._dependents[name]

    def stage(self, name: str) -> int:
        """The step's depth in the graph: 0 for a step that depends on nothing."""
        return self._stage[name]

    def stages(self) -> list[tuple[str, ...]]:
        """Steps grouped by depth: each group can run side by side."""
        depth = max(self._stage.values(), default=-1) + 1
        return [tuple(s.name for s in self.steps if self._stage[s.name] == d) for d in range(depth)]

    def task_names(self) -> Iterator[str]:
        for step in self.steps:
            yield step.task
            if step.compensation:
                yield step.compensation


class DefinitionRegistry:
    """Definitions by name and version. Registering a version twice is an error, never a silent
    overwrite; a new version must be newer than every one registered before it."""

    def __init__(self) -> None:
        self._definitions: dict[str, dict[int, WorkflowDefinition]] = {}

    def register(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        versions = self._definitions.setdefault(definition.name, {})
        if definition.version in versions:
            raise DefinitionError(
                f"workflow {definition.name!r} v{definition.version} is already registered"
            )
        if versions and definition.version < max(versions):
            raise DefinitionError(
                f"workflow {definition.name!r} v{definition.version} is older than "
                f"v{max(versions)}, registered already"
            )
        versions[definition.version] = definition
        return definition

    def get(self, name: str, version: int | None = None) -> WorkflowDefinition:
        """The given version of ``name``, or its latest."""
        versions = self._definitions.get(name)
        if not versions:
            raise DefinitionError(f"unknown workflow type {name!r}")
        if version is None:
            return versions[max(versions)]
        try:
            return versions[version]
        except KeyError:
            raise DefinitionError(
                f"workflow {name!r} v{version} is not registered (known: "
                f"{', '.join(f'v{v}' for v in sorted(versions))}); keep every version that "
                "unfinished workflows use"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._definitions)

    def __iter__(self) -> Iterator[WorkflowDefinition]:
        for versions in self._definitions.values():
            yield from versions.values()

    def verify_tasks(self, registered: Callable[[str], bool]) -> None:
        missing = sorted({name for d in self for name in d.task_names() if not registered(name)})
        if missing:
            raise DefinitionError(f"definitions name unregistered tasks: {', '.join(missing)}")


registry = DefinitionRegistry()

"""What a workflow step is: the interface every step's business logic implements.

Steps know nothing of Celery. The task layer claims the step row, calls :meth:`Step.plan`
(recorded before any side effect), then :meth:`Step.execute`, and stores the result; on
rollback it calls :meth:`Step.compensate`, which must cope with "nothing happened".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from orchestrator.vault import Secrets, unseal


@dataclass(frozen=True)
class StepContext:
    workflow_id: uuid.UUID
    tenant_id: str
    step_name: str
    run: int
    attempt: int
    #: The workflow's input merged with what earlier steps added to its context.
    data: Mapping[str, Any]
    #: The workflow's encrypted secrets; opened only by a step that reads :attr:`secrets`.
    sealed_secrets: bytes | None = None
    #: What :meth:`Step.plan` recorded before the first attempt.
    intent: Mapping[str, Any] = field(default_factory=dict)
    #: What :meth:`Step.execute` returned for compensation (empty if it never finished).
    compensation: Mapping[str, Any] = field(default_factory=dict)
    #: Only for local steps: the transaction that also records the step's result.
    session: Session | None = None

    @cached_property
    def secrets(self) -> Secrets:
        # Lazily: a compensation never needs the password, so a key problem cannot block one.
        return unseal(self.sealed_secrets)

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}:{self.step_name}"

    def require_session(self) -> Session:
        if self.session is None:
            raise RuntimeError(f"step {self.step_name} is local but got no session")
        return self.session


@dataclass(frozen=True)
class StepResult:
    #: Shown to operators on the step.
    output: dict[str, Any] = field(default_factory=dict)
    #: What the compensation needs to find and undo the effect.
    compensation: dict[str, Any] = field(default_factory=dict)
    #: Merged into the workflow's context for later steps.
    context: dict[str, Any] = field(default_factory=dict)
    #: Merged into the workflow's output (ids the caller wants back).
    workflow_output: dict[str, Any] = field(default_factory=dict)


class Step:
    """Base of every step's business logic."""

    #: A local step writes only our own database: it runs inside the transaction that records
    #: its result, so its effect and its bookkeeping commit together or not at all.
    local: ClassVar[bool] = False

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        """Return how to find what this step is about to create (intent before effect)."""
        return {"idempotency_key": ctx.idempotency_key}

    def skip(self, ctx: StepContext) -> str | None:
        """Return a reason to skip this step, or None to run it."""
        return None

    def execute(self, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def compensate(self, ctx: StepContext) -> None:
        """Undo the effect if present. Must succeed when nothing was ever created."""
        raise NotImplementedError

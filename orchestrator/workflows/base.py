"""What every workflow type provides beside its definitions: how a request becomes a workflow.

A workflow type's module owns its definition (every version still in use), how a validated
request becomes the workflow's input, its sealed secrets and the unique resources it claims,
and the checks a retry needs. The service knows none of this: it calls :meth:`prepare`.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from orchestrator.definitions import WorkflowDefinition, registry
from orchestrator.models import Workflow

Claims = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Prepared:
    """A request made ready to run: nothing secret in ``input``, secrets apart."""

    input: dict[str, Any]
    #: The subscriber the workflow acts on (every workflow records it).
    subscriber_id: uuid.UUID
    secrets: dict[str, str] | None = None
    claims: Claims = field(default=())


class WorkflowType(ABC):
    #: The workflow type's name, as stored on the workflow and used in the API.
    name: ClassVar[str]

    @property
    def definition(self) -> WorkflowDefinition:
        """The latest definition: the one new submissions run."""
        return registry.get(self.name)

    @abstractmethod
    def prepare(self, session: Session, tenant_id: str, request: Mapping[str, Any]) -> Prepared:
        """Check the request against the database and make it ready to run.

        Raises ValidationError (a field is wrong) or ConflictError (the state forbids it).
        """

    @abstractmethod
    def claims(self, input_data: Mapping[str, Any]) -> Claims:
        """The unique resources the workflow holds while it runs (also on a retry)."""

    def check_retry(self, session: Session, workflow: Workflow) -> None:  # noqa: B027
        """Refuse a new run that could no longer succeed (ConflictError). Default: allow."""


class WorkflowTypes:
    """Workflow types by name; a name registered twice is an error, never an overwrite."""

    def __init__(self, types: Iterable[WorkflowType] = ()) -> None:
        self._types: dict[str, WorkflowType] = {}
        for workflow_type in types:
            self.add(workflow_type)

    def add(self, workflow_type: WorkflowType) -> None:
        if workflow_type.name in self._types:
            raise ValueError(f"workflow type {workflow_type.name!r} is already registered")
        self._types[workflow_type.name] = workflow_type

    def get(self, name: str) -> WorkflowType:
        return self._types[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._types.values())

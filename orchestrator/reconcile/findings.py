"""What a reconciliation finds: orphans (ours, owned by nothing) and missing resources (a live
subscriber's, gone from a system). Plain data: no secrets, printable as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Exit statuses of ``orchestrator reconcile``.
CLEAN = 0
ERROR = 1
NOT_CLEAN = 3


@dataclass(frozen=True)
class Undo:
    """How the cleanup removes an orphan: the undo of ``step`` (the step that made it), run on
    behalf of the workflow that made it, with what that step had recorded as its intent.
    ``data`` stands for the workflow's data the undo reads (a username, a subscriber id)."""

    step: str
    intent: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "intent": self.intent, "data": self.data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Undo:
        return cls(step=raw["step"], intent=dict(raw["intent"]), data=dict(raw["data"]))


@dataclass(frozen=True)
class Orphan:
    system: str
    #: What it is and how to find it, for a person: "account ppp-1a2b", "ip-address 100.64.1.7/24".
    resource: str
    #: The workflow whose marker it carries (None when the marker names no workflow we know).
    workflow_id: str | None
    reason: str
    tenant_id: str | None
    #: The subscriber it was made for, when known: a cleanup acts on one subscriber.
    subscriber_id: str | None
    #: None: nothing we can run removes it (its maker is unknown to us).
    undo: Undo | None

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "resource": self.resource,
            "workflow_id": self.workflow_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Missing:
    system: str
    resource: str
    #: The workflow that made the subscriber (its provisioning).
    workflow_id: str | None
    reason: str
    tenant_id: str
    subscriber_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "resource": self.resource,
            "workflow_id": self.workflow_id,
            "subscriber_id": self.subscriber_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Report:
    orphans: tuple[Orphan, ...] = ()
    missing: tuple[Missing, ...] = ()
    #: Systems that could not be read (nothing is known about them): the check is incomplete.
    unavailable: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.missing and not self.unavailable

    @property
    def exit_status(self) -> int:
        if self.unavailable:
            return ERROR
        return CLEAN if self.clean else NOT_CLEAN

    def for_tenant(self, tenant_id: str | None) -> Report:
        """Only what belongs to ``tenant_id`` (None: everything, unattributed findings too)."""
        if tenant_id is None:
            return self
        return Report(
            tuple(o for o in self.orphans if o.tenant_id == tenant_id),
            tuple(m for m in self.missing if m.tenant_id == tenant_id),
            self.unavailable,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "orphans": [o.to_json() for o in self.orphans],
            "missing": [m.to_json() for m in self.missing],
        }
        if self.unavailable:
            document["unavailable"] = list(self.unavailable)
        return document

    def counts(self) -> dict[tuple[str, str], int]:
        """How many of each kind ("orphan", "missing") per system (for logs and metrics)."""
        counted: dict[tuple[str, str], int] = {}
        for kind, items in (("orphan", self.orphans), ("missing", self.missing)):
            for item in items:
                counted[(kind, item.system)] = counted.get((kind, item.system), 0) + 1
        return counted

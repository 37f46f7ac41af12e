"""The steps of ``cleanup_orphans``: each removes one system's orphans, every orphan with the
undo of the step that made it, run on behalf of the workflow that made it.

Nothing here knows how to delete an address, an account, a service or a tag: that lives once,
in the step that made it (its ``compensate``, written for "maybe nothing happened" and checked
against our markers: a RADIUS account is deleted only if the ownership row names that workflow,
a NetBox object only by that workflow's key, credentials on a CPE only if they are that
subscriber's). Our own rows are ended by deprovisioning's own steps (billing ended, subscriber
terminated; the rows stay, for history).

Every undo is idempotent, so a step that is delivered twice, or retried after removing half of
its orphans, simply runs them all again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from orchestrator.reconcile.findings import Undo
from orchestrator.reconcile.markers import CLEANUP_STEPS
from orchestrator.step import Step, StepContext, StepResult
from orchestrator.steps.access import ActivateOnu
from orchestrator.steps.database import EndBilling, MarkTerminated
from orchestrator.steps.genieacs import ConfigureCpe
from orchestrator.steps.netbox import AllocateIp, AllocateIpv6Prefix, MoveIpv6Prefix
from orchestrator.steps.radius import CreateRadiusAccount

#: What made an orphan -> the step whose undo removes it.
_UNDO: dict[str, Step] = {
    "allocate_ip": AllocateIp(),
    "allocate_ipv6_prefix": AllocateIpv6Prefix(),
    "move_ipv6_prefix": MoveIpv6Prefix(),
    "create_radius_account": CreateRadiusAccount(),
    "activate_onu": ActivateOnu(),
    "configure_cpe": ConfigureCpe(),
}
#: Our own rows: deprovisioning's steps end them, billing first (as deprovisioning does).
_FORWARD: dict[str, Step] = {"end_billing": EndBilling(), "mark_terminated": MarkTerminated()}
_ORDER = {"end_billing": 0, "mark_terminated": 1}
assert set(_UNDO) | set(_FORWARD) == CLEANUP_STEPS, "markers.CLEANUP_STEPS and cleanup disagree"


def _on_behalf(ctx: StepContext, orphan: Mapping[str, Any], undo: Undo) -> StepContext:
    """The context the maker's step had: its workflow id (so its idempotency key and its
    ownership checks are the maker's), its recorded intent, and the data its undo reads."""
    return StepContext(
        workflow_id=uuid.UUID(orphan["workflow_id"]),
        tenant_id=ctx.tenant_id,
        step_name=undo.step,
        run=1,
        attempt=ctx.attempt,
        data=undo.data,
        intent=undo.intent,
        session=ctx.session,
    )


class RemoveOrphans(Step):
    """One system's orphans, removed."""

    def __init__(self, system: str) -> None:
        self.system = system

    def _orphans(self, ctx: StepContext) -> list[dict[str, Any]]:
        seen: set[str] = set()
        mine = []
        for orphan in ctx.data.get("orphans", []):
            if orphan["system"] != self.system or not orphan.get("undo"):
                continue
            # Two findings, one undo (a CPE's tag and its queued push): run it once.
            same = json.dumps([orphan["workflow_id"], orphan["undo"]], sort_keys=True)
            if same not in seen:
                seen.add(same)
                mine.append(orphan)
        return sorted(mine, key=lambda o: _ORDER.get(o["undo"]["step"], 0))

    def skip(self, ctx: StepContext) -> str | None:
        return None if self._orphans(ctx) else f"no orphan in {self.system}"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "orphans": self._orphans(ctx)}

    def execute(self, ctx: StepContext) -> StepResult:
        removed = []
        for orphan in ctx.intent["orphans"]:
            undo = Undo.from_dict(orphan["undo"])
            maker = _on_behalf(ctx, orphan, undo)
            if undo.step in _UNDO:
                _UNDO[undo.step].compensate(maker)
            else:
                _FORWARD[undo.step].execute(maker)
            removed.append(orphan["resource"])
        return StepResult(output={"removed": removed})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")


class EndOrphanRows(RemoveOrphans):
    """Our own rows: in the transaction that records the step, like every database step."""

    local: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__("database")

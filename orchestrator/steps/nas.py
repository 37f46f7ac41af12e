"""The NAS step: end the subscriber's live PPPoE sessions (RFC 5176 Disconnect-Request).

The NAS keeps a session up until it is told otherwise: a subscriber moved to another RADIUS
group (suspended, re-activated, on a new plan) or removed only meets the change when it logs in
again. Disconnecting makes it log in now. A disconnect cannot be undone, and need not be: the
subscriber's router logs in again by itself.
"""

from __future__ import annotations

from functools import cached_property

from orchestrator.config import get_settings
from orchestrator.integrations.nas import NasClient
from orchestrator.step import Step, StepContext, StepResult


class DisconnectSessions(Step):
    @cached_property
    def nas(self) -> NasClient:
        return NasClient.from_settings(get_settings())

    def plan(self, ctx: StepContext) -> dict[str, str]:
        return {"idempotency_key": ctx.idempotency_key, "username": ctx.data["username"]}

    def execute(self, ctx: StepContext) -> StepResult:
        # Safe to repeat: a session already ended answers "no session" (NAK 503).
        outcome = self.nas.disconnect(ctx.intent["username"])
        return StepResult(output={"outcome": outcome.value})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("a disconnect is not undone")  # declared irreversible

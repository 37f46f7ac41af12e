"""The CPE step: PPPoE credentials pushed to the subscriber's router through GenieACS.

The push task carries the step's idempotency key as its GenieACS ``uniqueKey``. The undo deletes
the push if it is still queued; otherwise it sends the clearing task with the same key: GenieACS
replaces a queued task that has the same key, so a push still waiting for the CPE's next inform
can never land after the rollback.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from orchestrator.config import get_settings
from orchestrator.errors import ResourceNotFound
from orchestrator.integrations.genieacs import GenieAcsClient
from orchestrator.step import Step, StepContext, StepResult


def subscriber_tag(subscriber_id: str) -> str:
    # GenieACS tags allow [A-Za-z0-9-_%]: a UUID fits as it is.
    return f"subscriber-{subscriber_id}"


class ConfigureCpe(Step):
    @cached_property
    def genieacs(self) -> GenieAcsClient:
        return GenieAcsClient.from_settings(get_settings())

    def skip(self, ctx: StepContext) -> str | None:
        return None if ctx.data.get("cpe_serial") else "no CPE serial was given"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "cpe_serial": ctx.data["cpe_serial"],
            "tag": subscriber_tag(ctx.data["subscriber_id"]),
        }

    def execute(self, ctx: StepContext) -> StepResult:
        device = self.genieacs.find_device(ctx.intent["cpe_serial"])
        outcome = self.genieacs.push_pppoe_credentials(
            device, ctx.data["username"], ctx.secrets["password"], ctx.idempotency_key
        )
        self.genieacs.add_tag(device, ctx.intent["tag"])
        return StepResult(
            output={
                "device_id": device.device_id,
                "data_model": device.data_model,
                "task_id": outcome.task_id,
                "applied": outcome.applied,
            },
            compensation={
                "device_id": device.device_id,
                "task_id": outcome.task_id,
                "applied": outcome.applied,
            },
            workflow_output={"cpe_device_id": device.device_id},
        )

    def compensate(self, ctx: StepContext) -> None:
        try:
            device = self.genieacs.find_device(ctx.intent["cpe_serial"])
        except ResourceNotFound:
            return  # the CPE is gone from GenieACS, and our parameters and tag with it
        queued = ctx.compensation.get("task_id") and not ctx.compensation.get("applied")
        if not (queued and self.genieacs.delete_task(ctx.compensation["task_id"])):
            # The push may have reached the CPE (or no attempt reported back): clear it, under
            # the push's own uniqueKey so a copy still queued is replaced, never applied.
            self.genieacs.clear_pppoe_credentials(device, ctx.idempotency_key)
        self.genieacs.remove_tag(device, ctx.intent["tag"])

"""The address step: the next free IPv4 of the plan's NetBox prefix, also put into RADIUS.

The address is stamped with the step's idempotency key (its description in NetBox), so a retry
or a redelivery first finds the address an earlier attempt got, and the compensation finds it
even when that attempt died before recording it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from orchestrator.config import get_settings
from orchestrator.errors import PermanentError
from orchestrator.integrations.netbox import NetBoxClient
from orchestrator.integrations.radius import RadiusStore
from orchestrator.step import Step, StepContext, StepResult


class AllocateIp(Step):
    @cached_property
    def netbox(self) -> NetBoxClient:
        return NetBoxClient.from_settings(get_settings())

    @cached_property
    def radius(self) -> RadiusStore:
        return RadiusStore.from_settings(get_settings())

    def skip(self, ctx: StepContext) -> str | None:
        if ctx.data.get("static_ipv4"):
            return "a static IPv4 address was given"
        return None

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "prefix": ctx.data["plan"]["ipv4_prefix"]}

    def execute(self, ctx: StepContext) -> StepResult:
        prefix = ctx.intent.get("prefix")
        if not prefix:
            raise PermanentError(
                f"service plan {ctx.data['plan']['name']!r} has no IPv4 prefix",
                system="netbox",
                operation="allocate_ip",
            )
        allocation = self.netbox.allocate_ip(prefix, ctx.idempotency_key)
        # The RADIUS account exists (an earlier step); it now learns its address.
        self.radius.set_framed_ip(
            username=ctx.data["username"], framed_ip=allocation.ip, owner=str(ctx.workflow_id)
        )
        return StepResult(
            output={"ip_id": allocation.id, "address": allocation.address},
            compensation={"ip_id": allocation.id},
            context={"ipv4_address": allocation.ip},
            workflow_output={"ipv4_address": allocation.ip, "netbox_ip_id": allocation.id},
        )

    def compensate(self, ctx: StepContext) -> None:
        # By key, not by the recorded id: it also finds an address whose attempt never reported.
        self.netbox.release_by_key(ctx.idempotency_key)

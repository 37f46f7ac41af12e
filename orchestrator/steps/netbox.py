"""The address step: the next free IPv4 of the plan's NetBox prefix (RADIUS learns it in a
step of its own, assign_framed_ip: each step touches one system).

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
        return StepResult(
            output={"ip_id": allocation.id, "address": allocation.address},
            compensation={"ip_id": allocation.id},
            context={
                "ipv4_address": allocation.ip,
                "netbox_ip": {
                    "key": ctx.idempotency_key,
                    "ip_id": allocation.id,
                    "address": allocation.address,
                },
            },
            workflow_output={"ipv4_address": allocation.ip, "netbox_ip_id": allocation.id},
        )

    def compensate(self, ctx: StepContext) -> None:
        # By key, not by the recorded id: it also finds an address whose attempt never reported.
        self.netbox.release_by_key(ctx.idempotency_key)


class AllocateIpAndFramedIp(AllocateIp):
    """Version 1 of provision_subscriber's address step, which also wrote the address into
    RADIUS (since v2 that is assign_framed_ip's). Kept for workflows started on v1."""

    @cached_property
    def radius(self) -> RadiusStore:
        return RadiusStore.from_settings(get_settings())

    def execute(self, ctx: StepContext) -> StepResult:
        result = super().execute(ctx)
        self.radius.set_framed_ip(
            username=ctx.data["username"],
            framed_ip=result.context["ipv4_address"],
            owner=str(ctx.workflow_id),
        )
        return result


class ReleaseSubscriberIp(Step):
    """Deprovisioning: the subscriber's NetBox address is released (found by its key)."""

    @cached_property
    def netbox(self) -> NetBoxClient:
        return NetBoxClient.from_settings(get_settings())

    @staticmethod
    def _address(ctx: StepContext) -> dict[str, Any] | None:
        return (ctx.data.get("resources") or {}).get("netbox")

    def skip(self, ctx: StepContext) -> str | None:
        return None if self._address(ctx) else "the subscriber has no NetBox address (static)"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "address": self._address(ctx)}

    def execute(self, ctx: StepContext) -> StepResult:
        released = self.netbox.release_by_key(ctx.intent["address"]["key"])
        return StepResult(output={"released": released})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")

"""The address steps: the next free IPv4 of the plan's NetBox prefix, and the IPv6 prefixes
(a delegated prefix, and a WAN /64 if the plan has a WAN pool) from the plan's pools. RADIUS
learns them in a step of its own, assign_framed_ip: each step touches one system.

Each object is stamped with a key (its description in NetBox): the step's idempotency key, and
``<key>:wan`` for the WAN /64. A retry or a redelivery first finds what an earlier attempt got,
and the compensation finds it even when that attempt died before recording it.

The two IPv6 prefixes are one step, not two: they come from one system, are needed together by
one consumer (the framed addresses), and fail and roll back together; a second step would add a
task round trip and bookkeeping, not parallelism worth having.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from orchestrator.config import get_settings
from orchestrator.errors import PermanentError
from orchestrator.integrations.netbox import NetBoxClient
from orchestrator.integrations.radius import RadiusStore
from orchestrator.plans import WAN_PREFIX_LENGTH
from orchestrator.step import Step, StepContext, StepResult


def ipv6_pools(plan: Mapping[str, Any]) -> tuple[str | None, int | None, str | None]:
    """(delegation pool, delegated length, WAN pool) of a plan snapshot; all None: IPv4-only.
    Snapshots taken before plans had IPv6 lack the keys."""
    return (
        plan.get("ipv6_delegation_pool"),
        plan.get("ipv6_delegated_length"),
        plan.get("ipv6_wan_pool"),
    )


def ipv6_intent(plan: Mapping[str, Any], key: str) -> dict[str, Any]:
    pool, length, wan_pool = ipv6_pools(plan)
    return {
        "idempotency_key": key,
        "delegation_pool": pool,
        "delegated_length": length,
        "wan_pool": wan_pool,
        "wan_key": f"{key}:wan",
    }


def allocate_ipv6(netbox: NetBoxClient, intent: Mapping[str, Any]) -> dict[str, Any]:
    """The prefixes an intent (``ipv6_intent``) asks for, found or made; the subscriber's
    ``resources["ipv6"]``."""
    key = intent["idempotency_key"]
    delegated = netbox.allocate_prefix(intent["delegation_pool"], intent["delegated_length"], key)
    resource: dict[str, Any] = {
        "delegated_prefix": delegated.prefix,
        "key": key,
        "prefix_id": delegated.id,
    }
    if intent.get("wan_pool"):
        wan = netbox.allocate_prefix(intent["wan_pool"], WAN_PREFIX_LENGTH, intent["wan_key"])
        resource.update(wan_prefix=wan.prefix, wan_key=intent["wan_key"], wan_prefix_id=wan.id)
    return resource


def release_ipv6(netbox: NetBoxClient, *keys: str | None) -> int:
    """Releases every prefix carrying one of ``keys`` (the delegated one's, the WAN one's)."""
    return sum(netbox.release_prefixes_by_key(key) for key in keys if key)


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


class AllocateIpv6Prefix(Step):
    """Provisioning: the delegated prefix (and the WAN /64) from the plan's IPv6 pools."""

    @cached_property
    def netbox(self) -> NetBoxClient:
        return NetBoxClient.from_settings(get_settings())

    def skip(self, ctx: StepContext) -> str | None:
        if ctx.data.get("static_ipv6_prefix"):
            return "a static IPv6 prefix was given"
        if not ipv6_pools(ctx.data["plan"])[0]:
            return "the service plan is IPv4-only"
        return None

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return ipv6_intent(ctx.data["plan"], ctx.idempotency_key)

    def execute(self, ctx: StepContext) -> StepResult:
        resource = allocate_ipv6(self.netbox, ctx.intent)
        prefixes = {
            "ipv6_delegated_prefix": resource["delegated_prefix"],
            "ipv6_wan_prefix": resource.get("wan_prefix"),
        }
        return StepResult(
            output=resource,
            compensation={k: resource[k] for k in ("prefix_id", "wan_prefix_id") if k in resource},
            context={"netbox_ipv6": resource, **prefixes},
            workflow_output=prefixes,
        )

    def compensate(self, ctx: StepContext) -> None:
        # By key, not by the recorded ids: it also finds prefixes whose attempt never reported.
        release_ipv6(self.netbox, ctx.intent["idempotency_key"], ctx.intent["wan_key"])


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


class ReleaseSubscriberPrefixes(Step):
    """Deprovisioning: the subscriber's IPv6 prefixes are released (found by their keys)."""

    @cached_property
    def netbox(self) -> NetBoxClient:
        return NetBoxClient.from_settings(get_settings())

    @staticmethod
    def _prefixes(ctx: StepContext) -> dict[str, Any] | None:
        return (ctx.data.get("resources") or {}).get("ipv6")

    def skip(self, ctx: StepContext) -> str | None:
        # a static prefix (no key) is not NetBox's to release
        return None if (self._prefixes(ctx) or {}).get("key") else "no NetBox IPv6 prefix"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "ipv6": self._prefixes(ctx)}

    def execute(self, ctx: StepContext) -> StepResult:
        held = ctx.intent["ipv6"]
        released = release_ipv6(self.netbox, held["key"], held.get("wan_key"))
        return StepResult(output={"released": released})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")


def ipv6_moves(
    old_plan: Mapping[str, Any], new_plan: Mapping[str, Any], held: Mapping[str, Any] | None
) -> bool:
    """A plan change moves the subscriber's IPv6 prefixes when the plans' pools (or lengths)
    differ; a static prefix (one NetBox did not give: no key) stays where it is."""
    static = bool(held) and not (held or {}).get("key")
    return not static and ipv6_pools(old_plan) != ipv6_pools(new_plan)


class MoveIpv6Prefix(Step):
    """A plan change: prefixes from the new plan's pools (none if it is IPv4-only), while the
    old ones stay until the change has committed (release_old_ipv6_prefix); undo releases the
    new ones."""

    @cached_property
    def netbox(self) -> NetBoxClient:
        return NetBoxClient.from_settings(get_settings())

    def skip(self, ctx: StepContext) -> str | None:
        return None if ctx.data.get("ipv6_moves") else "the IPv6 pools stay the same"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return ipv6_intent(ctx.data["new_plan"], ctx.idempotency_key)

    def execute(self, ctx: StepContext) -> StepResult:
        new = allocate_ipv6(self.netbox, ctx.intent) if ctx.intent["delegation_pool"] else None
        return StepResult(output={"ipv6": new}, context={"new_ipv6": new})

    def compensate(self, ctx: StepContext) -> None:
        release_ipv6(self.netbox, ctx.intent["idempotency_key"], ctx.intent["wan_key"])


class ReleaseOldIpv6Prefix(Step):
    """A plan change, once committed: the prefixes from the old plan's pools go back."""

    @cached_property
    def netbox(self) -> NetBoxClient:
        return NetBoxClient.from_settings(get_settings())

    @staticmethod
    def _old(ctx: StepContext) -> dict[str, Any] | None:
        return (ctx.data.get("resources") or {}).get("ipv6")

    def skip(self, ctx: StepContext) -> str | None:
        if ctx.data.get("ipv6_moves") and (self._old(ctx) or {}).get("key"):
            return None
        return "no IPv6 prefix to give back"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "ipv6": self._old(ctx)}

    def execute(self, ctx: StepContext) -> StepResult:
        old = ctx.intent["ipv6"]
        return StepResult(
            output={"released": release_ipv6(self.netbox, old["key"], old.get("wan_key"))}
        )

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("the last step of a committed change: never undone")

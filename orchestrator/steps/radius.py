"""FreeRADIUS steps: the account (password and plan group), and its framed addresses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import PermanentError
from orchestrator.integrations.radius import (
    DELEGATED_IPV6_PREFIX,
    FRAMED_IP,
    FRAMED_IPV6_PREFIX,
    RadiusStore,
    plan_group_attributes,
    shared_store,
)
from orchestrator.step import Step, StepContext, StepResult
from orchestrator.subscribers import DEFAULT_SUSPENDED_GROUP


class RadiusStep(Step):
    """A step on FreeRADIUS's database, through the process's one pool (see shared_store)."""

    @property
    def store(self) -> RadiusStore:
        return shared_store()


class CreateRadiusAccount(RadiusStep):
    def plan(self, ctx: StepContext) -> dict[str, str]:
        return {"idempotency_key": ctx.idempotency_key, "username": ctx.data["username"]}

    def execute(self, ctx: StepContext) -> StepResult:
        plan = ctx.data["plan"]
        username = ctx.intent["username"]
        # The group is the plan's, shared by all its subscribers, and kept current by plan
        # edits (tasks.radius.sync_plan_group): a provisioning only creates it if missing, never
        # rewrites it from the (possibly older) plan snapshot it carries.
        self.store.ensure_group(
            plan["radius_group"],
            plan_group_attributes(plan["download_mbps"], plan["upload_mbps"]),
            replace=False,
        )
        created = self.store.create_account(
            username=username,
            password=ctx.secrets["password"],
            group=plan["radius_group"],
            framed_ip=None,
            owner=str(ctx.workflow_id),
        )
        return StepResult(
            output={"username": username, "group": plan["radius_group"], "created": created},
            compensation={"username": username},
            workflow_output={"radius_username": username},
        )

    def compensate(self, ctx: StepContext) -> None:
        # The intent is enough: it was recorded before the account could exist.
        self.store.delete_account(username=ctx.intent["username"], owner=str(ctx.workflow_id))


def ipv6_reply(ipv6: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The IPv6 radreply attributes of a subscriber's ``resources["ipv6"]`` (None: removed)."""
    ipv6 = ipv6 or {}
    return {
        DELEGATED_IPV6_PREFIX: ipv6.get("delegated_prefix"),
        FRAMED_IPV6_PREFIX: ipv6.get("wan_prefix"),
    }


class AssignFramedIp(RadiusStep):
    """The account's addresses: Framed-IP-Address (the NetBox address, or the static one
    requested) and, on a dual-stack plan, Delegated-IPv6-Prefix and Framed-IPv6-Prefix (the
    NetBox prefixes, or the static delegated prefix requested)."""

    def plan(self, ctx: StepContext) -> dict[str, str]:
        return {"idempotency_key": ctx.idempotency_key, "username": ctx.data["username"]}

    def execute(self, ctx: StepContext) -> StepResult:
        framed_ip = ctx.data.get("ipv4_address") or ctx.data.get("static_ipv4")
        if not framed_ip:
            raise PermanentError(
                "no IPv4 address to assign", system="radius", operation="assign_framed_ip"
            )
        prefixes = {
            "ipv6_delegated_prefix": ctx.data.get("ipv6_delegated_prefix")
            or ctx.data.get("static_ipv6_prefix"),
            "ipv6_wan_prefix": ctx.data.get("ipv6_wan_prefix"),
        }
        values = {
            FRAMED_IP: framed_ip,
            **ipv6_reply(
                {
                    "delegated_prefix": prefixes["ipv6_delegated_prefix"],
                    "wan_prefix": prefixes["ipv6_wan_prefix"],
                }
            ),
        }
        self.store.set_framed(
            username=ctx.intent["username"], owner=str(ctx.workflow_id), values=values
        )
        present = {k: v for k, v in prefixes.items() if v}
        return StepResult(
            output={"framed_ip": framed_ip, **present},
            compensation={"username": ctx.intent["username"]},
            context={"ipv4_address": framed_ip, **present},
            workflow_output={"ipv4_address": framed_ip, **present},
        )

    def compensate(self, ctx: StepContext) -> None:
        self.store.clear_framed_ip(username=ctx.intent["username"], owner=str(ctx.workflow_id))


class ReassignIpv6Prefix(RadiusStep):
    """A plan change's IPv6 move, in RADIUS: the account's IPv6 attributes name the prefixes
    from the new plan's pools (none, if it is IPv4-only); undo names the old ones again."""

    def skip(self, ctx: StepContext) -> str | None:
        return None if ctx.data.get("ipv6_moves") else "the IPv6 pools stay the same"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "username": ctx.data["username"],
            "owner": ctx.data["radius_owner"],
            "old": (ctx.data.get("resources") or {}).get("ipv6"),
        }

    def execute(self, ctx: StepContext) -> StepResult:
        new = ctx.data.get("new_ipv6")
        self.store.set_framed(
            username=ctx.intent["username"], owner=ctx.intent["owner"], values=ipv6_reply(new)
        )
        return StepResult(output={"ipv6": new})

    def compensate(self, ctx: StepContext) -> None:
        intent = ctx.intent
        if self.store.owner_of(intent["username"]) != intent["owner"]:
            return  # no account of ours: nothing can have changed on it
        self.store.set_framed(
            username=intent["username"], owner=intent["owner"], values=ipv6_reply(intent["old"])
        )


class MoveRadiusGroup(RadiusStep):
    """The account moves to another group (a plan's, or the suspended profile); undo moves it
    back. The groups are the workflow's: ``radius_group`` now, ``target_radius_group`` after."""

    def plan(self, ctx: StepContext) -> dict[str, str]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "username": ctx.data["username"],
            "owner": ctx.data["radius_owner"],
            "from": ctx.data["radius_group"],
            "to": ctx.data["target_radius_group"],
        }

    def execute(self, ctx: StepContext) -> StepResult:
        intent = ctx.intent
        self._ensure_group(intent["to"], ctx.data)
        self.store.set_group(username=intent["username"], group=intent["to"], owner=intent["owner"])
        return StepResult(
            output={"from": intent["from"], "to": intent["to"]},
            compensation={"group": intent["from"]},
            context={"radius_group": intent["to"]},
        )

    def compensate(self, ctx: StepContext) -> None:
        intent = ctx.intent
        if self.store.owner_of(intent["username"]) != intent["owner"]:
            return  # no account of ours: the move cannot have happened to it
        self.store.set_group(
            username=intent["username"], group=intent["from"], owner=intent["owner"]
        )

    def _ensure_group(self, group: str, data: Mapping[str, Any]) -> None:
        if group == DEFAULT_SUSPENDED_GROUP:
            self.store.ensure_reject_group(group)
            return
        for plan in (data.get("new_plan"), data.get("plan")):
            if plan and plan["radius_group"] == group:
                # Created if missing; kept current by plan edits (never rewritten from here).
                self.store.ensure_group(
                    group,
                    plan_group_attributes(plan["download_mbps"], plan["upload_mbps"]),
                    replace=False,
                )
                return
        # Any other group (a plan's own suspended profile, a walled garden) is the operator's.


class RemoveRadiusAccount(RadiusStep):
    """Deprovisioning: the account goes, with all its rows (the provisioning owns it)."""

    def plan(self, ctx: StepContext) -> dict[str, str]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "username": ctx.data["username"],
            "owner": ctx.data["radius_owner"],
        }

    def execute(self, ctx: StepContext) -> StepResult:
        deleted = self.store.delete_account(
            username=ctx.intent["username"], owner=ctx.intent["owner"]
        )
        return StepResult(output={"deleted": deleted})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")

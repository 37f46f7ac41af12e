"""The FreeRADIUS account step: password, plan group and (when known) the framed address."""

from __future__ import annotations

from functools import cached_property

from orchestrator.config import get_settings
from orchestrator.integrations.radius import RadiusStore, plan_group_attributes
from orchestrator.step import Step, StepContext, StepResult


class CreateRadiusAccount(Step):
    @cached_property
    def store(self) -> RadiusStore:
        # Built on first use in the worker, not at import time.
        return RadiusStore.from_settings(get_settings())

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
        framed_ip = ctx.data.get("ipv4_address") or ctx.data.get("static_ipv4")
        created = self.store.create_account(
            username=username,
            password=ctx.secrets["password"],
            group=plan["radius_group"],
            framed_ip=framed_ip,
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

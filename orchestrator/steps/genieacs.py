"""The CPE step: PPPoE credentials pushed to the subscriber's router through GenieACS.

The push task carries the step's idempotency key as its GenieACS ``uniqueKey``. The undo (and
deprovisioning) first deletes every task and fault of ours on the CPE, found by device + key and
by the username a fault's provisions set, never by an id an attempt may not have lived to
record: a faulted push's fault outlives its task and GenieACS would re-apply it on its own after
its retry delay. Only then, if the CPE still holds the credentials, is a clearing task queued.
The push does not wait for the CPE's session (see orchestrator/integrations/genieacs.py), so an
attempt takes a few seconds, well inside the step's 60 s limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from orchestrator.config import get_settings
from orchestrator.errors import PermanentError, ResourceNotFound
from orchestrator.integrations.genieacs import CpeDevice, GenieAcsClient
from orchestrator.step import Step, StepContext, StepResult

_TAG_PREFIX = "subscriber-"


def subscriber_tag(subscriber_id: str) -> str:
    # GenieACS tags allow [A-Za-z0-9-_%]: a UUID fits as it is.
    return f"{_TAG_PREFIX}{subscriber_id}"


def _refuse_if_someone_elses(device: CpeDevice, ours: str) -> None:
    """A CPE tagged for another subscriber is that subscriber's router: pushing to it would
    replace their PPPoE credentials. A serial given in the request is checked against live
    subscribers before anything starts, but a MAC names its CPE only here, in GenieACS."""
    others = sorted(t for t in device.tags if t.startswith(_TAG_PREFIX) and t != ours)
    if others:
        owner = others[0].removeprefix(_TAG_PREFIX)
        raise PermanentError(
            f"genieacs configure_cpe: CPE {device.serial} belongs to subscriber {owner} "
            "(tagged in GenieACS); deprovision it first or give another CPE",
            system="genieacs",
            operation="configure_cpe",
        )


class ConfigureCpe(Step):
    @cached_property
    def genieacs(self) -> GenieAcsClient:
        return GenieAcsClient.from_settings(get_settings())

    def skip(self, ctx: StepContext) -> str | None:
        if ctx.data.get("cpe_serial") or ctx.data.get("cpe_mac"):
            return None
        return "neither a CPE serial nor a CPE MAC was given"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "cpe_serial": ctx.data.get("cpe_serial"),
            "cpe_mac": ctx.data.get("cpe_mac"),
            "tag": subscriber_tag(ctx.data["subscriber_id"]),
        }

    def _device(self, intent: Mapping[str, Any]) -> CpeDevice:
        """The CPE by its serial, or else by its WAN MAC (unknown or ambiguous: permanent)."""
        if intent.get("cpe_serial"):
            return self.genieacs.find_device(intent["cpe_serial"])
        return self.genieacs.find_device_by_mac(intent["cpe_mac"])

    def execute(self, ctx: StepContext) -> StepResult:
        device = self._device(ctx.intent)
        _refuse_if_someone_elses(device, ctx.intent["tag"])
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
            context={
                "cpe": {
                    "serial": device.serial,
                    "device_id": device.device_id,
                    "tag": ctx.intent["tag"],
                    # The key every later task on these parameters reuses (see module doc).
                    "unique_key": ctx.idempotency_key,
                }
            },
            workflow_output={"cpe_device_id": device.device_id},
        )

    def compensate(self, ctx: StepContext) -> None:
        try:
            device = self._device(ctx.intent)
        except ResourceNotFound:
            return  # the CPE is gone from GenieACS, and our parameters and tag with it
        except PermanentError:
            # An ambiguous MAC: the attempt stopped at this same lookup, before any push.
            return
        username = ctx.data.get("username")
        # Every push of ours first (queued, faulted, or replaced but with its fault still
        # waiting to be retried by GenieACS): nothing of it may run after this.
        self.genieacs.remove_pushes(device, ctx.idempotency_key, username)
        if username and self.genieacs.pppoe_username(device) == username:
            # A push did reach the CPE: clear it (under the same key, so a compensation that is
            # run again finds this task as its own).
            self.genieacs.clear_pppoe_credentials(device, ctx.idempotency_key)
        self.genieacs.remove_tag(device, ctx.intent["tag"])


class ClearCpe(Step):
    """Deprovisioning: the CPE forgets the subscriber's PPPoE credentials and tag."""

    @cached_property
    def genieacs(self) -> GenieAcsClient:
        return GenieAcsClient.from_settings(get_settings())

    def skip(self, ctx: StepContext) -> str | None:
        return None if self._cpe(ctx) else "the subscriber has no CPE"

    @staticmethod
    def _cpe(ctx: StepContext) -> dict[str, Any] | None:
        return (ctx.data.get("resources") or {}).get("cpe")

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "cpe": self._cpe(ctx)}

    def execute(self, ctx: StepContext) -> StepResult:
        cpe = ctx.intent["cpe"]
        try:
            device = self.genieacs.find_device(cpe["serial"])
        except ResourceNotFound:
            return StepResult(output={"cleared": False, "reason": "CPE gone from GenieACS"})
        # The provisioning's tasks and faults go first: a fault GenieACS retried later would
        # bring the credentials back. Then the clearing task, under the same key.
        self.genieacs.remove_pushes(device, cpe["unique_key"], ctx.data.get("username"))
        outcome = self.genieacs.clear_pppoe_credentials(device, cpe["unique_key"])
        self.genieacs.remove_tag(device, cpe["tag"])
        return StepResult(output={"cleared": True, "task_id": outcome.task_id})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")

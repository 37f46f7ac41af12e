"""The access-network step: the subscriber's service on its ONU, through VOLTHA and ONOS.

VOLTHA tells where the ONU is (it discovered it; ONUs are not created through the API); the ONOS
olt app programs the service on the ONU's UNI port. ONOS answers 200 when it has only queued
the request, so the client confirms against programmed-subscribers before the step counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from orchestrator.config import get_settings
from orchestrator.errors import PermanentError, ResourceNotFound
from orchestrator.integrations.onos import OnosClient
from orchestrator.integrations.voltha import VolthaClient
from orchestrator.step import Step, StepContext, StepResult

DEFAULT_TECH_PROFILE = 64


def service_tags(data: dict[str, Any] | Any) -> dict[str, Any]:
    """The service's tags: S-tag and tech profile from the plan, C-tag from the request or plan."""
    plan = data["plan"]
    tags = {
        "onu_serial": data["onu_serial"],
        "s_tag": plan.get("s_tag"),
        "c_tag": data.get("c_tag") or plan.get("c_tag"),
        "tp_id": plan.get("tech_profile_id") or DEFAULT_TECH_PROFILE,
    }
    missing = [name for name in ("s_tag", "c_tag") if not tags[name]]
    if missing:
        raise PermanentError(
            f"no {' or '.join(missing)} for the ONU service (set it on the plan or request)",
            system="onos",
            operation="activate_service",
        )
    return tags


class AccessStep(Step):
    """A step on the access network: VOLTHA finds the ONU, ONOS programs its service."""

    @cached_property
    def voltha(self) -> VolthaClient:
        return VolthaClient.from_settings(get_settings())

    @cached_property
    def onos(self) -> OnosClient:
        return OnosClient.from_settings(get_settings())


def uni_port_name(onu_serial: str) -> str:
    """The first UNI's name, as the openonu adapter names it and ONOS knows it: ``<serial>-1``.

    Deterministic, so the step records it before anything is sent and its undo can ask ONOS
    alone, never VOLTHA (a system the step may not even have reached).
    """
    return f"{onu_serial}-1"


class ActivateOnu(AccessStep):
    def plan(self, ctx: StepContext) -> dict[str, Any]:
        tags = service_tags(ctx.data)
        return {
            "idempotency_key": ctx.idempotency_key,
            **tags,
            "port_name": uni_port_name(tags["onu_serial"]),
        }

    def execute(self, ctx: StepContext) -> StepResult:
        intent = ctx.intent
        port_name = _port_name(intent)
        # A disabled, unreachable or still activating ONU cannot carry the service: ONOS would
        # take the request and never program it, so refuse now with the ONU's states.
        onu = self.voltha.find_onu(intent["onu_serial"], require_usable=True)
        if onu.uni_port_name != port_name:
            # the undo looks for the service on the recorded name: never program another one
            raise PermanentError(
                f"ONU {intent['onu_serial']}'s first UNI is {onu.uni_port_name}, not "
                f"{port_name} as the openonu adapter names it",
                system="voltha",
                operation="find_onu",
            )
        if onu.onos_location:
            self.onos.learn_location(port_name, onu.onos_location)
        self.onos.activate_service(port_name, intent["s_tag"], intent["c_tag"], intent["tp_id"])
        service = {
            "port_name": port_name,
            "s_tag": intent["s_tag"],
            "c_tag": intent["c_tag"],
            "tp_id": intent["tp_id"],
        }
        return StepResult(
            output={"onu_device_id": onu.device_id, "olt_id": onu.olt_id, **service},
            compensation=service,
            context={"onos_service": service, "onu_device_id": onu.device_id},
            workflow_output={"onu_device_id": onu.device_id, "uni_port": port_name},
        )

    def compensate(self, ctx: StepContext) -> None:
        # ONOS only: the port name was recorded before the first attempt, and ONOS itself says
        # whether anything is programmed there (an unknown port or service counts as done).
        port_name = ctx.compensation.get("port_name") or _port_name(ctx.intent)
        self.onos.deactivate_service(
            port_name, ctx.intent["s_tag"], ctx.intent["c_tag"], ctx.intent["tp_id"]
        )


def _port_name(intent: Mapping[str, Any]) -> str:
    # intents recorded before the port name was part of them: the same deterministic name
    return str(intent.get("port_name") or uni_port_name(intent["onu_serial"]))


class _OnuStep(AccessStep):
    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "onu_serial": ctx.data["onu_serial"]}

    def _device_id(self, ctx: StepContext) -> str:
        # Found again by serial (not a stored id): VOLTHA's ids change if an ONU is re-ranged.
        return self.voltha.find_onu(ctx.intent["onu_serial"]).device_id


class DisableOnu(_OnuStep):
    """Suspension with ``disable_onu``: the ONU is admin-locked in VOLTHA (its UNIs go down)."""

    def skip(self, ctx: StepContext) -> str | None:
        if not ctx.data.get("disable_onu"):
            return "the ONU stays enabled (disable_onu not asked)"
        if not ctx.data.get("onu_serial"):
            return "the subscriber has no ONU"
        return None

    def execute(self, ctx: StepContext) -> StepResult:
        device_id = self._device_id(ctx)
        self.voltha.disable_onu(device_id)
        return StepResult(output={"onu_device_id": device_id}, context={"onu_disabled": True})

    def compensate(self, ctx: StepContext) -> None:
        try:
            self.voltha.enable_onu(self._device_id(ctx))
        except ResourceNotFound:
            return  # the ONU is gone: nothing to enable


class EnableOnu(_OnuStep):
    """Activation: an ONU the suspension disabled is enabled again."""

    def skip(self, ctx: StepContext) -> str | None:
        onu = (ctx.data.get("resources") or {}).get("onu") or {}
        return None if onu.get("disabled") else "the ONU was not disabled"

    def execute(self, ctx: StepContext) -> StepResult:
        device_id = self._device_id(ctx)
        self.voltha.enable_onu(device_id)
        return StepResult(output={"onu_device_id": device_id}, context={"onu_disabled": False})

    def compensate(self, ctx: StepContext) -> None:
        try:
            self.voltha.disable_onu(self._device_id(ctx))
        except ResourceNotFound:
            return


def _tags(service: dict[str, Any]) -> tuple[str, int, int, int]:
    return service["port_name"], service["s_tag"], service["c_tag"], service["tp_id"]


class ReprogramOnu(_OnuStep):
    """A plan change: the ONOS service moves to the new plan's tags and tech profile."""

    def skip(self, ctx: StepContext) -> str | None:
        old, new = ctx.data.get("onos_service"), ctx.data.get("new_onos_service")
        if not old:
            return "the subscriber has no ONOS service"
        if old == new:
            return "the new plan has the same tags and tech profile"
        return None

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "old": ctx.data["onos_service"],
            "new": ctx.data["new_onos_service"],
        }

    def execute(self, ctx: StepContext) -> StepResult:
        # Old first: one UNI carries one service of a subscriber (and the C-tag may be reused).
        self.onos.deactivate_service(*_tags(ctx.intent["old"]))
        self.onos.activate_service(*_tags(ctx.intent["new"]))
        return StepResult(
            output={"from": ctx.intent["old"], "to": ctx.intent["new"]},
            compensation=ctx.intent["old"],
            context={"onos_service": ctx.intent["new"]},
        )

    def compensate(self, ctx: StepContext) -> None:
        self.onos.deactivate_service(*_tags(ctx.intent["new"]))
        self.onos.activate_service(*_tags(ctx.intent["old"]))


class RemoveOnuService(AccessStep):
    """Deprovisioning: the subscriber's service leaves its ONU."""

    def skip(self, ctx: StepContext) -> str | None:
        return None if _resource(ctx, "onos") else "the subscriber has no ONOS service"

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, "service": _resource(ctx, "onos")}

    def execute(self, ctx: StepContext) -> StepResult:
        self.onos.deactivate_service(*_tags(ctx.intent["service"]))
        return StepResult(output={"removed": ctx.intent["service"]})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")


def _resource(ctx: StepContext, system: str) -> dict[str, Any] | None:
    return (ctx.data.get("resources") or {}).get(system)

"""The access-network step: the subscriber's service on its ONU, through VOLTHA and ONOS.

VOLTHA tells where the ONU is (it discovered it; ONUs are not created through the API); the ONOS
olt app programs the service on the ONU's UNI port. ONOS answers 200 when it has only queued
the request, so the client confirms against programmed-subscribers before the step counts.
"""

from __future__ import annotations

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


class ActivateOnu(Step):
    @cached_property
    def voltha(self) -> VolthaClient:
        return VolthaClient.from_settings(get_settings())

    @cached_property
    def onos(self) -> OnosClient:
        return OnosClient.from_settings(get_settings())

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {"idempotency_key": ctx.idempotency_key, **service_tags(ctx.data)}

    def execute(self, ctx: StepContext) -> StepResult:
        intent = ctx.intent
        onu = self.voltha.find_onu(intent["onu_serial"])
        self.onos.activate_service(
            onu.uni_port_name, intent["s_tag"], intent["c_tag"], intent["tp_id"]
        )
        service = {
            "port_name": onu.uni_port_name,
            "s_tag": intent["s_tag"],
            "c_tag": intent["c_tag"],
            "tp_id": intent["tp_id"],
        }
        return StepResult(
            output={"onu_device_id": onu.device_id, "olt_id": onu.olt_id, **service},
            compensation=service,
            workflow_output={"onu_device_id": onu.device_id, "uni_port": onu.uni_port_name},
        )

    def compensate(self, ctx: StepContext) -> None:
        port_name = ctx.compensation.get("port_name")
        if port_name is None:
            # The attempt never reported back: find the port the way it would have.
            try:
                port_name = self.voltha.find_onu(ctx.intent["onu_serial"]).uni_port_name
            except ResourceNotFound:
                return  # no ONU, so no service on it
        self.onos.deactivate_service(
            port_name, ctx.intent["s_tag"], ctx.intent["c_tag"], ctx.intent["tp_id"]
        )

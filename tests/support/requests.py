"""Building provisioning requests with unique names, and submitting them through the API."""

from __future__ import annotations

import os
import secrets
import uuid
from typing import Any

import requests

from orchestrator.service import OrchestrationService


def unique_serial() -> str:
    return "TEST" + secrets.token_hex(4).upper()


def unique_cpe_serial() -> str:
    return "CPE" + secrets.token_hex(5).upper()


def discover(kind: str, serial: str, **extra: Any) -> None:
    """Make the simulated network know an ONU (``onus``) or a CPE (``cpes``)."""
    response = requests.post(
        f"{os.environ['SIMULATOR_URL']}/_sim/{kind}", json={"serial": serial, **extra}, timeout=10
    )
    response.raise_for_status()


def provision_body(plan_id: int, *, discovered: bool = True, **overrides: Any) -> dict[str, Any]:
    """A valid request for a new subscriber; its ONU (and CPE, if any) exist in the simulators
    unless ``discovered`` is False."""
    body: dict[str, Any] = {
        "customer": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.net",
            "phone": "+44 20 7946 0000",
        },
        "service_plan_id": plan_id,
        "service_address": "12 Analytical Row, London",
        "username": f"ppp-{secrets.token_hex(5)}",
        "password": f"pw-{secrets.token_urlsafe(12)}",
        "onu_serial": unique_serial(),
    }
    body.update(overrides)
    if discovered and "SIMULATOR_URL" in os.environ:
        discover("onus", body["onu_serial"])
        if body.get("cpe_serial"):
            discover("cpes", body["cpe_serial"], data_model="tr181")
    return body


def submit(client: Any, key: str, body: dict[str, Any], **headers: str) -> tuple[uuid.UUID, Any]:
    response = client.post(
        "/api/v1/orchestration/provision-subscriber",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
    )
    assert response.status_code in (200, 202), response.get_json()
    return uuid.UUID(response.get_json()["id"]), response


class LostMessages:
    """A dispatcher whose messages never reach the broker."""

    def publish(self, dispatch: Any) -> None:
        pass

    def sync_plan(self, plan_id: int) -> None:
        pass


def submit_lost(tenant: str, body: dict[str, Any]) -> uuid.UUID:
    """Submit ``body`` as if the first message never reached the broker."""
    service = OrchestrationService(LostMessages())
    return service.submit("provision_subscriber", tenant, body).workflow.id

"""Building provisioning requests with unique names, and submitting them through the API."""

from __future__ import annotations

import secrets
import uuid
from typing import Any


def unique_serial() -> str:
    return "TEST" + secrets.token_hex(4).upper()


def provision_body(plan_id: int, **overrides: Any) -> dict[str, Any]:
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
    return body


def submit(client: Any, key: str, body: dict[str, Any], **headers: str) -> tuple[uuid.UUID, Any]:
    response = client.post(
        "/api/v1/orchestration/provision-subscriber",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
    )
    assert response.status_code in (200, 202), response.get_json()
    return uuid.UUID(response.get_json()["id"]), response

"""``GET /healthz``: 200 only when PostgreSQL and the broker both answer.

``details.circuits`` shows each external system's circuit breaker (``closed``, ``open`` with the
seconds until its probe, or ``half_open``). An open circuit does not make the API unhealthy: the
API still takes and shows workflows; it tells the operator which system the workers gave up on.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import text

from orchestrator.db import get_engine
from orchestrator.integrations import circuit

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    checks: dict[str, str] = {}
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        current_app.extensions["broker_ping"]()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    circuits: dict[str, Any]
    try:
        circuits = circuit.snapshot()
    except Exception as exc:  # the breakers' store is the broker's Redis: reported above
        circuits = {"error": type(exc).__name__}
    healthy = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": checks,
        "details": {"circuits": circuits},
    }
    return body, (200 if healthy else 503)

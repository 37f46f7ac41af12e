"""``GET /healthz``: 200 only when PostgreSQL and the broker both answer."""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text

from orchestrator.db import get_engine

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
    healthy = all(v == "ok" for v in checks.values())
    return {"status": "ok" if healthy else "unavailable", "checks": checks}, (
        200 if healthy else 503
    )

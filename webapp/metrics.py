"""``/metrics``: Prometheus's text format, open like ``/healthz`` (no tenant data in it: the
labels are workflow types, steps, statuses and queues)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.metrics import scrape

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(scrape(current_app.extensions["metrics_state"]), mimetype=CONTENT_TYPE_LATEST)

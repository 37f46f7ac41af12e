"""``/api/v1/orchestration/statistics``: how the tenant's workflows fared in a time window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from flask.views import MethodView

from orchestrator.engine import utcnow
from orchestrator.service import OrchestrationService
from orchestrator.statistics import Window
from webapp.auth import current_principal
from webapp.openapi import Blueprint
from webapp.schemas.statistics import StatisticsQuerySchema, StatisticsSchema

blueprint = Blueprint(
    "statistics",
    __name__,
    url_prefix="/api/v1/orchestration",
    description="Counts, success rate, durations and failures per step.",
)

DEFAULT_WINDOW = timedelta(hours=24)


@blueprint.route("/statistics", endpoint="statistics")
class Statistics(MethodView):
    @blueprint.requires("viewer")
    @blueprint.arguments(StatisticsQuerySchema, location="query", unknown="raise")
    @blueprint.response(200, StatisticsSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Statistics of the workflows submitted in a window (default: the last 24 hours)."""
        start, end = query.get("created_after"), query.get("created_before")
        if end is None:
            # Up to now; a start in the future gets a window of the default length instead.
            end = utcnow() if start is None or start < utcnow() else start + DEFAULT_WINDOW
        if start is None:
            start = end - DEFAULT_WINDOW
        service: OrchestrationService = current_app.extensions["orchestration_service"]
        return service.statistics(
            current_principal().tenant_id,
            Window(created_after=start, created_before=end),
            query.get("workflow_type"),
        )

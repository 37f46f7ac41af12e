"""``/api/v1/subscribers``: the tenant's subscribers, and one with what it holds where."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from flask.views import MethodView

from orchestrator.subscribers import SubscriberFilter, SubscriberService
from webapp.auth import current_principal
from webapp.openapi import Blueprint
from webapp.schemas.subscribers import (
    SubscriberPageSchema,
    SubscriberQuerySchema,
    SubscriberSchema,
)

blueprint = Blueprint(
    "subscribers",
    __name__,
    url_prefix="/api/v1/subscribers",
    description="Subscribers: status, plan, resources in each system, workflows.",
)


def _subscribers() -> SubscriberService:
    return current_app.extensions["subscriber_service"]


@blueprint.route("", endpoint="subscribers")
class Subscribers(MethodView):
    @blueprint.requires("viewer")
    @blueprint.arguments(SubscriberQuerySchema, location="query", unknown="raise")
    @blueprint.response(200, SubscriberPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """The tenant's subscribers, newest first, filtered and paginated."""
        filters = SubscriberFilter(
            status=query.get("status"),
            username=query.get("username"),
            onu_serial=query.get("onu_serial"),
        )
        return _subscribers().list(
            current_principal().tenant_id, filters, limit=query["limit"], offset=query["offset"]
        )


@blueprint.route("/<uuid:subscriber_id>", endpoint="subscriber")
class Subscriber(MethodView):
    @blueprint.requires("viewer")
    @blueprint.response(200, SubscriberSchema)
    @blueprint.errors(404)
    def get(self, subscriber_id: uuid.UUID) -> Any:
        """A subscriber: status, plan, what it holds in each system, and its workflows."""
        return _subscribers().get(current_principal().tenant_id, subscriber_id)

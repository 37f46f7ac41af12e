"""``/api/v1/orchestration``: submit a provisioning, list and read workflows, retry, cancel."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, request, url_for
from flask.views import MethodView
from marshmallow import ValidationError, validate

from orchestrator.service import OrchestrationService, WorkflowFilter
from webapp.auth import current_principal
from webapp.errors import ApiError
from webapp.openapi import Blueprint
from webapp.schemas.base import RequestSchema, Text
from webapp.schemas.workflows import (
    PROVISION_EXAMPLE,
    IdempotencyHeadersSchema,
    ProvisionSubscriberSchema,
    WorkflowDetailSchema,
    WorkflowPageSchema,
    WorkflowQuerySchema,
    WorkflowSchema,
)

blueprint = Blueprint(
    "orchestration",
    __name__,
    url_prefix="/api/v1/orchestration",
    description="Provisioning workflows: submit, follow, retry, cancel.",
)

LOCATION = {"Location": {"description": "the workflow's URL", "schema": {"type": "string"}}}


def service() -> OrchestrationService:
    return current_app.extensions["orchestration_service"]


#: The longest reason an operator may give for a retry or a cancel.
MAX_REASON = 500


class ActionReasonSchema(RequestSchema):
    """The optional body of a retry or a cancel: why, for the event log."""

    reason = Text(
        validate=validate.Length(max=MAX_REASON),
        metadata={"description": "why; recorded in the event log with the key that asked"},
    )


#: Documented by hand: the body is optional, and webargs would refuse a POST without one (415),
#: which is how existing clients call retry and cancel (`curl -X POST .../retry`).
ACTION_BODY = {
    "required": False,
    "content": {"application/json": {"schema": ActionReasonSchema}},
}


def _reason() -> str | None:
    """The request's optional ``reason``; a bad one is a 400 naming the field."""
    if not request.get_data(cache=True):
        return None
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(
            400, "validation_error", "the request is invalid", {"body": ["not an object"]}
        )
    try:
        reason = ActionReasonSchema().load(body).get("reason")
    except ValidationError as exc:
        raise ApiError(400, "validation_error", "the request is invalid", exc.messages) from None
    # A blank reason is no reason.
    return (reason.strip() or None) if reason is not None else None


@blueprint.route("/provision-subscriber", endpoint="provision_subscriber")
class ProvisionSubscriber(MethodView):
    @blueprint.requires("operator")
    @blueprint.arguments(IdempotencyHeadersSchema, location="headers", error_status_code=400)
    @blueprint.arguments(ProvisionSubscriberSchema, example=PROVISION_EXAMPLE)
    @blueprint.response(202, WorkflowSchema, headers=LOCATION)
    @blueprint.alt_response(
        200,
        schema=WorkflowSchema,
        headers=LOCATION,
        success=True,
        description="the workflow an earlier request with this Idempotency-Key started",
    )
    @blueprint.errors(409, 413, 415)
    def post(self, headers: dict[str, Any], body: dict[str, Any]) -> Any:
        """Provision a subscriber everywhere, or nowhere.

        Answers at once with the workflow (202); follow its Location. The same username or ONU
        serial provisioned or in flight elsewhere is a 409, before any step runs.
        """
        principal = current_principal()
        submission = service().submit(
            "provision_subscriber",
            principal.tenant_id,
            body,
            idempotency_key=headers.get("idempotency_key"),
            api_key_id=principal.api_key_id,
        )
        workflow = submission.workflow
        location = url_for(".workflow", workflow_id=workflow.id)
        return workflow, (202 if submission.created else 200), {"Location": location}


@blueprint.route("/workflows", endpoint="workflows")
class Workflows(MethodView):
    @blueprint.requires("viewer")
    @blueprint.arguments(WorkflowQuerySchema, location="query", unknown="raise")
    @blueprint.response(200, WorkflowPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """The tenant's workflows, newest first, filtered and paginated."""
        filters = WorkflowFilter(
            statuses=tuple(query.get("status") or ()),
            workflow_type=query.get("workflow_type"),
            created_after=query.get("created_after"),
            created_before=query.get("created_before"),
            subscriber_id=query.get("subscriber_id"),
        )
        return service().list_workflows(
            current_principal().tenant_id, filters, limit=query["limit"], offset=query["offset"]
        )


@blueprint.route("/workflows/<uuid:workflow_id>", endpoint="workflow")
class WorkflowDetail(MethodView):
    @blueprint.requires("viewer")
    @blueprint.response(200, WorkflowDetailSchema)
    @blueprint.errors(404)
    def get(self, workflow_id: uuid.UUID) -> Any:
        """A workflow with every step (attempts, timings, errors) and its event log."""
        return service().get_workflow(current_principal().tenant_id, workflow_id)


@blueprint.route("/workflows/<uuid:workflow_id>/retry", endpoint="retry")
class Retry(MethodView):
    @blueprint.requires("operator")
    @blueprint.doc(requestBody=ACTION_BODY)
    @blueprint.response(202, WorkflowSchema)
    @blueprint.errors(400, 404, 409, 415)
    def post(self, workflow_id: uuid.UUID) -> Any:
        """Run a rolled-back workflow again (a new run), or finish a failed rollback.

        Any other state is a 409. An optional `reason` is kept in the event log.
        """
        principal = current_principal()
        return service().retry(
            principal.tenant_id,
            workflow_id,
            requested_by=str(principal.api_key_id),
            reason=_reason(),
        )


@blueprint.route("/workflows/<uuid:workflow_id>/cancel", endpoint="cancel")
class Cancel(MethodView):
    @blueprint.requires("operator")
    @blueprint.doc(requestBody=ACTION_BODY)
    @blueprint.response(202, WorkflowSchema)
    @blueprint.errors(400, 404, 409, 415)
    def post(self, workflow_id: uuid.UUID) -> Any:
        """Stop a pending or running workflow at the next step boundary and undo what it did.

        It ends ``compensated``. A finished workflow is a 409. An optional `reason` is kept in
        the event log.
        """
        principal = current_principal()
        return service().cancel(
            principal.tenant_id,
            workflow_id,
            requested_by=str(principal.api_key_id),
            reason=_reason(),
        )

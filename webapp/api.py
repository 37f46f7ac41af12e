"""``/api/v1/orchestration``: submit provisioning, read workflows."""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, request, url_for

from orchestrator.service import OrchestrationService
from webapp.auth import current_principal, require_role
from webapp.errors import ApiError
from webapp.schemas import EventSchema, ProvisionSubscriberSchema, WorkflowSchema

blueprint = Blueprint("orchestration", __name__, url_prefix="/api/v1/orchestration")

_provision_schema = ProvisionSubscriberSchema()
_workflow_schema = WorkflowSchema()
_event_schema = EventSchema(many=True)

IDEMPOTENCY_KEY_MAX = 200


def _service() -> OrchestrationService:
    return current_app.extensions["orchestration_service"]


def _json_body() -> dict:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the body is not a JSON object")
    return body


@blueprint.post("/provision-subscriber")
@require_role("operator")
def provision_subscriber():  # type: ignore[no-untyped-def]
    data = _provision_schema.load(_json_body())
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX):
        raise ApiError(
            400,
            "invalid_header",
            "Idempotency-Key must be 1-200 characters",
            {"Idempotency-Key": ["must be 1-200 characters"]},
        )
    principal = current_principal()
    submission = _service().submit_provisioning(
        principal.tenant_id, data, idempotency_key=key, api_key_id=principal.api_key_id
    )
    body = _workflow_schema.dump(submission.workflow)
    location = url_for(".get_workflow", workflow_id=submission.workflow.id)
    return body, (202 if submission.created else 200), {"Location": location}


@blueprint.get("/workflows/<workflow_id>")
@require_role("viewer")
def get_workflow(workflow_id: str):  # type: ignore[no-untyped-def]
    detail = _service().get_workflow(current_principal().tenant_id, _workflow_id(workflow_id))
    body = _workflow_schema.dump(detail.workflow)
    body["events"] = _event_schema.dump(detail.events)
    return body


def _workflow_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, "not_found", f"workflow {raw} not found") from None


@blueprint.post("/workflows/<workflow_id>/retry")
@require_role("operator")
def retry_workflow(workflow_id: str):  # type: ignore[no-untyped-def]
    workflow = _service().retry(current_principal().tenant_id, _workflow_id(workflow_id))
    return _workflow_schema.dump(workflow), 202


@blueprint.post("/workflows/<workflow_id>/cancel")
@require_role("operator")
def cancel_workflow(workflow_id: str):  # type: ignore[no-untyped-def]
    workflow = _service().cancel(current_principal().tenant_id, _workflow_id(workflow_id))
    return _workflow_schema.dump(workflow), 202

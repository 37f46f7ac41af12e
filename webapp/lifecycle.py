"""``/api/v1/orchestration/<lifecycle>``: deprovision, suspend, activate, change plan.

Each is one URL taking ``{"subscriber_id", ...}``, answering 202 with the workflow and its
Location (200 for a replayed Idempotency-Key). A second lifecycle request for a subscriber while
one is in flight is a 409 naming that workflow; a request the subscriber's status forbids
(suspending a terminated subscriber, activating an active one) is a 409 naming the status.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from marshmallow import Schema

from webapp.auth import current_principal
from webapp.schemas.lifecycle import (
    ActivateServiceSchema,
    ChangeServicePlanSchema,
    DeprovisionSubscriberSchema,
    SuspendServiceSchema,
)
from webapp.schemas.workflows import IdempotencyHeadersSchema, WorkflowSchema
from webapp.workflows import LOCATION, blueprint, service

#: URL, workflow type, request schema, what it does (the operation's summary and description).
LIFECYCLE: tuple[tuple[str, str, type[Schema], str], ...] = (
    (
        "deprovision-subscriber",
        "deprovision_subscriber",
        DeprovisionSubscriberSchema,
        "End a subscriber's service everywhere.\n\nBilling ends, the CPE is cleared, the ONOS "
        "service, NetBox address and RADIUS account are removed, live sessions are "
        "disconnected; the subscriber ends `terminated`. A system that is down is retried "
        "until the deadline; what could not be removed is reported (`failed`, "
        "`error.left_behind`) and a retry carries on.",
    ),
    (
        "suspend-service",
        "suspend_service",
        SuspendServiceSchema,
        "Suspend an active subscriber.\n\nThe RADIUS account moves to the plan's suspended "
        "profile (by default: rejected) and live sessions are disconnected; with "
        "`disable_onu` the ONU is disabled too.",
    ),
    (
        "activate-service",
        "activate_service",
        ActivateServiceSchema,
        "Give a suspended subscriber the service back.\n\nThe plan's RADIUS group again, the "
        "ONU enabled if the suspension disabled it, sessions disconnected to log in anew.",
    ),
    (
        "change-service-plan",
        "change_service_plan",
        ChangeServicePlanSchema,
        "Move an active subscriber to another plan.\n\nNew RADIUS group and rate, the ONOS "
        "service re-programmed when tags or tech profile differ, billing updated; on failure "
        "everything returns to the old plan.",
    ),
)


def _view(workflow_type: str, schema: type[Schema], doc: str) -> type[MethodView]:
    """One MethodView per lifecycle URL: the same shape, another workflow type and schema."""

    @blueprint.requires("operator")
    @blueprint.arguments(IdempotencyHeadersSchema, location="headers", error_status_code=400)
    @blueprint.arguments(schema)
    @blueprint.response(202, WorkflowSchema, headers=LOCATION)
    @blueprint.alt_response(
        200,
        schema=WorkflowSchema,
        headers=LOCATION,
        success=True,
        description="the workflow an earlier request with this Idempotency-Key started",
    )
    @blueprint.errors(409, 413, 415)
    def post(self: MethodView, headers: dict[str, Any], body: dict[str, Any]) -> Any:
        principal = current_principal()
        submission = service().submit(
            workflow_type,
            principal.tenant_id,
            body,
            idempotency_key=headers.get("idempotency_key"),
            api_key_id=principal.api_key_id,
        )
        workflow = submission.workflow
        location = url_for(".workflow", workflow_id=workflow.id)
        return workflow, (202 if submission.created else 200), {"Location": location}

    post.__doc__ = doc
    class_name = "".join(part.title() for part in workflow_type.split("_"))
    return type(class_name, (MethodView,), {"post": post})


for _path, _workflow_type, _schema, _doc in LIFECYCLE:
    blueprint.route(f"/{_path}", endpoint=_workflow_type)(_view(_workflow_type, _schema, _doc))

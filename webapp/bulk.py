"""``/api/v1/orchestration/bulk-provision`` and ``/bulk-jobs``: many provisionings as one job.

The body is JSON (``{"rows": [...], "not_before"?, "all_or_nothing_validation"?}``) or CSV
(``text/csv``, a header of provisioning field names, ``customer.first_name`` for nested ones;
the options then go in the query string; with JSON any query parameter is refused). Every row
is validated before anything starts: invalid rows are reported by row and field and never
start; the others run.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, request, stream_with_context, url_for
from flask.views import MethodView
from marshmallow import ValidationError as SchemaError
from werkzeug.exceptions import UnsupportedMediaType

from orchestrator.bulk.jobs import BulkService
from orchestrator.bulk.report import report_csv, report_filename
from webapp.auth import current_principal
from webapp.schemas.bulk import (
    BulkCsvQuerySchema,
    BulkJobDetailSchema,
    BulkJobListQuerySchema,
    BulkJobPageSchema,
    BulkJobQuerySchema,
    BulkJobSchema,
    BulkProvisionSchema,
    rows_from_csv,
    validate_rows,
)
from webapp.schemas.workflows import IdempotencyHeadersSchema
from webapp.workflows import blueprint

#: 100,000 rows of a few hundred bytes; every other URL keeps the app's 64 kB limit.
MAX_BULK_BYTES = 64 * 1024 * 1024
#: Why a query parameter is refused beside a JSON body.
JSON_OPTIONS = "options go in the body for JSON"
JOB_LOCATION = {"Location": {"description": "the bulk job's URL", "schema": {"type": "string"}}}
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": BulkProvisionSchema},
        "text/csv": {
            "schema": {"type": "string"},
            "example": "customer.first_name,customer.last_name,customer.email,"
            "customer.address,service_plan_id,onu_serial\n"
            "Ada,Lovelace,ada@example.net,12 Analytical Row,1,BBSM00000001\n",
        },
    },
}


def bulk_service() -> BulkService:
    return current_app.extensions["bulk_service"]


def _read_body() -> tuple[list[Any], dict[str, Any], Any]:
    """The raw rows, the job's options and what identifies the request (Idempotency-Key)."""
    request.max_content_length = MAX_BULK_BYTES
    mimetype = request.mimetype
    if mimetype == "text/csv":
        options = BulkCsvQuerySchema().load(request.args)
        try:
            text = request.get_data(cache=False).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SchemaError({"body": ["the CSV is not UTF-8 text"]}) from exc
        return rows_from_csv(text), options, {"csv": text, "options": dict(request.args)}
    if mimetype != "application/json":
        raise UnsupportedMediaType("send the rows as application/json or text/csv")
    if request.args:
        # Ignoring them would run a job without the options its caller meant to set.
        raise SchemaError({name: [JSON_OPTIONS] for name in request.args})
    body = _load_json()
    if not isinstance(body, dict):
        raise SchemaError({"body": ["not a JSON object"]})
    loaded = BulkProvisionSchema().load(body)
    rows = loaded.pop("rows")
    return rows, loaded, body


def _load_json() -> Any:
    """The body, by the API's one JSON parser: malformed or too deeply nested JSON, or a
    number too long to read, is its 400 malformed_json, as on every other URL."""
    return blueprint.ARGUMENTS_PARSER.load_json(request, BulkProvisionSchema())


@blueprint.route("/bulk-provision", endpoint="bulk_provision")
class BulkProvision(MethodView):
    @blueprint.requires("operator")
    @blueprint.arguments(IdempotencyHeadersSchema, location="headers", error_status_code=400)
    @blueprint.doc(requestBody=REQUEST_BODY)
    @blueprint.response(202, BulkJobSchema, headers=JOB_LOCATION)
    @blueprint.alt_response(
        200,
        schema=BulkJobSchema,
        headers=JOB_LOCATION,
        success=True,
        description="the job an earlier request with this Idempotency-Key created",
    )
    @blueprint.errors(400, 413, 415, 422)
    def post(self, headers: dict[str, Any]) -> Any:
        """Provision many subscribers as one job (from cron, a migration, a new building).

        Answers at once (202) with the job; follow its Location. Invalid rows are reported by
        row number and field and never start; with `all_or_nothing_validation` one invalid row
        refuses the job (422) and nothing is stored.
        """
        raw_rows, options, identity = _read_body()
        principal = current_principal()
        submission = bulk_service().create(
            principal.tenant_id,
            validate_rows(raw_rows),
            fingerprint_body=identity,
            not_before=options.get("not_before"),
            all_or_nothing_validation=options.get("all_or_nothing_validation", False),
            max_in_flight=options.get("max_in_flight"),
            idempotency_key=headers.get("idempotency_key"),
            api_key_id=principal.api_key_id,
        )
        job = submission.job
        location = url_for(".bulk_job", job_id=job.id)
        return job, (202 if submission.created else 200), {"Location": location}


@blueprint.route("/bulk-jobs", endpoint="bulk_jobs")
class BulkJobs(MethodView):
    @blueprint.requires("viewer")
    @blueprint.arguments(BulkJobListQuerySchema, location="query", unknown="raise")
    @blueprint.response(200, BulkJobPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """The tenant's bulk jobs, newest first, each with its counts by outcome."""
        return bulk_service().list(
            current_principal().tenant_id, limit=query["limit"], offset=query["offset"]
        )


@blueprint.route("/bulk-jobs/<uuid:job_id>", endpoint="bulk_job")
class BulkJob(MethodView):
    @blueprint.requires("viewer")
    @blueprint.arguments(BulkJobQuerySchema, location="query", unknown="raise")
    @blueprint.response(200, BulkJobDetailSchema)
    @blueprint.errors(404)
    def get(self, query: dict[str, Any], job_id: uuid.UUID) -> Any:
        """A bulk job: status, counts by outcome, throughput, ETA and its rows, a page at a
        time (`?failed=true` for those that did not complete)."""
        return bulk_service().get(
            current_principal().tenant_id,
            job_id,
            limit=query["limit"],
            offset=query["offset"],
            failed_only=query["failed"],
        )


@blueprint.route("/bulk-jobs/<uuid:job_id>/report.csv", endpoint="bulk_job_report")
class BulkJobReport(MethodView):
    @blueprint.requires("viewer")
    @blueprint.errors(404)
    @blueprint.doc(
        responses={"200": {"description": "one line per row", "content": {"text/csv": {}}}}
    )
    def get(self, job_id: uuid.UUID) -> Any:
        """Every row's outcome as CSV: row, workflow_id, status, error."""
        service = bulk_service()
        tenant_id = current_principal().tenant_id
        # Read the job first, so a missing one is a 404 and not a broken stream.
        service.get(tenant_id, job_id, limit=1)

        return Response(
            stream_with_context(report_csv(service, tenant_id, job_id)),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{report_filename(job_id)}"'},
        )


@blueprint.route("/bulk-jobs/<uuid:job_id>/cancel", endpoint="bulk_job_cancel")
class BulkJobCancel(MethodView):
    @blueprint.requires("operator")
    @blueprint.response(202, BulkJobSchema)
    @blueprint.errors(404, 409)
    def post(self, job_id: uuid.UUID) -> Any:
        """Stop a bulk job: no row starts any more, the running ones are cancelled (they
        compensate and end `compensated`). A finished job is a 409."""
        principal = current_principal()
        return bulk_service().cancel(
            principal.tenant_id, job_id, requested_by=str(principal.api_key_id)
        )

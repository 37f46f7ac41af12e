"""The console's pages. Like the API, they talk only to the services in ``app.extensions``."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from orchestrator.apikeys import ApiKeyService
from orchestrator.bulk.jobs import BulkService, describe_error
from orchestrator.bulk.report import report_csv, report_filename
from orchestrator.definitions import Recovery
from orchestrator.engine import definition_of
from orchestrator.errors import ConflictError, DefinitionError, InvalidTransition, NotFound
from orchestrator.models import SubscriberStatus, WorkflowStatus
from orchestrator.paging import Page
from orchestrator.service import OrchestrationService, WorkflowFilter
from orchestrator.statistics import Statistics, Window
from orchestrator.subscribers import SubscriberFilter, SubscriberService
from orchestrator.workflows import workflow_types
from webapp.console import blueprint, charts, timeline
from webapp.console.auth import (
    can,
    check_csrf,
    csrf_token,
    load_principal,
    principal,
    require_role,
    sign_in,
    sign_out,
)
from webapp.schemas.base import plain_text
from webapp.schemas.workflows import ONU_SERIAL
from webapp.workflows import MAX_REASON  # the API's limit on a retry's or cancel's reason

PAGE_SIZE = 50
#: Pages that need no sign-in (and the stylesheet the sign-in page uses).
PUBLIC_ENDPOINTS = frozenset({"console.sign_in", "console.static"})
#: Keys of values never shown, however they got into a document (defence in depth: inputs
#: and resources hold no secret by design).
SECRET_NAMES = re.compile(r"pass(word|phrase)?|secret|token|psk|credential", re.IGNORECASE)
#: How often an unfinished workflow's page reloads itself (seconds).
REFRESH_SECONDS = 2
WINDOWS_HOURS = (1, 24, 24 * 7, 24 * 30)


def _workflows() -> OrchestrationService:
    return current_app.extensions["orchestration_service"]


def _subscribers() -> SubscriberService:
    return current_app.extensions["subscriber_service"]


def _keys() -> ApiKeyService:
    return current_app.extensions["api_key_service"]


# -- every request ---------------------------------------------------------------------------


@blueprint.before_request
def _authenticate() -> ResponseReturnValue | None:
    if not current_app.secret_key and request.endpoint != "console.static":
        # Sessions need a signing key; say so instead of failing on the first cookie.
        abort(503, description="set ORCHESTRATOR_SECRET_KEY to use the console")
    if request.method == "POST":
        check_csrf()  # every form, the sign-in form too (no login CSRF)
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    current = load_principal()
    if current is None:
        target = None
        if request.method == "GET":
            target = request.full_path if request.query_string else request.path
        return redirect(url_for(".sign_in", next=target))
    g.principal = current
    return None


@blueprint.after_request
def _no_store(response: Any) -> Any:
    # Pages show a tenant's data: no shared cache keeps them, no back button after sign-out.
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", _CSP)
    return response


# Everything is served by us: one script of ours (refresh.js), nothing inline, nothing remote.
_CSP = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'"


@blueprint.app_template_global()
def console_csrf_token() -> str:
    return csrf_token()


@blueprint.context_processor
def _globals() -> dict[str, Any]:
    return {
        "can": can,
        "me": g.get("principal"),
        "fmt_time": _fmt_time,
        "fmt_seconds": timeline.format_seconds,
    }


@blueprint.errorhandler(400)
@blueprint.errorhandler(403)
@blueprint.errorhandler(404)
@blueprint.errorhandler(405)
@blueprint.errorhandler(503)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return render_template("console/error.html", error=exc), exc.code or 500


@blueprint.errorhandler(NotFound)
def _not_found(exc: NotFound) -> ResponseReturnValue:
    # Another tenant's workflow or subscriber reads exactly like a missing one.
    return render_template("console/error.html", error=_Missing(str(exc))), 404


class _Missing:
    code = 404
    name = "Not found"

    def __init__(self, description: str) -> None:
        self.description = description


# -- signing in and out ----------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a console page of ours (no open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return url_for(".workflows")


@blueprint.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_page() -> ResponseReturnValue:
    target = request.values.get("next")
    if request.method == "POST":
        if sign_in(request.form.get("api_key", "")) is not None:
            return redirect(_safe_next(target))
        # Unknown and revoked keys get the same answer, as in the API.
        return render_template("console/sign_in.html", next=target, failed=True), 401
    if load_principal() is not None:
        return redirect(_safe_next(target))
    return render_template("console/sign_in.html", next=target, failed=False)


@blueprint.post("/sign-out", endpoint="sign_out")
def sign_out_page() -> ResponseReturnValue:
    sign_out()
    flash("Signed out.", "ok")
    return redirect(url_for(".sign_in"))


@blueprint.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for(".workflows"))


# -- workflows -------------------------------------------------------------------------------


def _parse_time(text: str | None, field: str, problems: dict[str, str]) -> datetime | None:
    """A form's date and time (an <input type="datetime-local">, read as UTC)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        problems[field] = "not a date and time"
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_uuid(text: str | None, field: str, problems: dict[str, str]) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        problems[field] = "not an id"
        return None


def _search_text(problems: dict[str, str]) -> str:
    """The search box (``q``): short plain text, or nothing (a NUL would fail in PostgreSQL)."""
    text = (request.args.get("q") or "").strip()[:100]
    try:
        plain_text(text)
    except ValidationError:
        problems["q"] = "must be plain text"
        return ""
    return text


def _offset() -> int:
    offset = request.args.get("offset", type=int) or 0
    return min(max(offset, 0), 1_000_000)


def _search_subscribers(tenant_id: str, text: str) -> list[Any]:
    """Subscribers whose username or ONU serial is ``text`` (exact), newest first."""
    found = (
        _subscribers().list(tenant_id, SubscriberFilter(username=text), limit=10, offset=0).items
    )
    if re.match(ONU_SERIAL, text):
        found += (
            _subscribers()
            .list(tenant_id, SubscriberFilter(onu_serial=text), limit=10, offset=0)
            .items
        )
    unique = {subscriber.id: subscriber for subscriber in found}
    return sorted(unique.values(), key=lambda s: s.created_at, reverse=True)


@blueprint.get("/workflows")
def workflows() -> ResponseReturnValue:
    tenant_id = principal().tenant_id
    args = request.args
    problems: dict[str, str] = {}
    statuses = tuple(WorkflowStatus(s) for s in args.getlist("status") if s in set(WorkflowStatus))
    types = sorted(t.definition.name for t in workflow_types)
    workflow_type = args.get("type") or None
    if workflow_type is not None and workflow_type not in types:
        problems["type"] = "unknown workflow type"
        workflow_type = None
    subscriber_id = _parse_uuid(args.get("subscriber"), "subscriber", problems)
    query = _search_text(problems)
    matches: list[Any] = []
    if query and subscriber_id is None:
        matches = _search_subscribers(tenant_id, query)
        if matches:
            subscriber_id = matches[0].id
    filters = WorkflowFilter(
        statuses=statuses,
        workflow_type=workflow_type,
        created_after=_parse_time(args.get("after"), "after", problems),
        created_before=_parse_time(args.get("before"), "before", problems),
        subscriber_id=subscriber_id,
    )
    if query and not matches and subscriber_id is None:
        page = None  # nothing to list: the text names no subscriber
    else:
        page = _workflows().list_workflows(tenant_id, filters, limit=PAGE_SIZE, offset=_offset())
    active = page is not None and any(not w.status.is_terminal for w in page.items)
    return render_template(
        "console/workflows.html",
        page=page,
        statuses=list(WorkflowStatus),
        chosen_statuses={s.value for s in statuses},
        types=types,
        args=args,
        query=query,
        matches=matches,
        subscriber_id=subscriber_id,
        problems=problems,
        refresh=REFRESH_SECONDS * 2 if active else None,
    ), (400 if problems else 200)


def _key_names(tenant_id: str) -> dict[str, str]:
    """API key id → a name an operator recognises (never the key)."""
    return {str(key.id): f"{key.name} ({str(key.id)[:8]})" for key in _keys().list(tenant_id)}


def redact(value: Any) -> Any:
    """``value`` with everything under a secret-looking name replaced."""
    if isinstance(value, Mapping):
        return {
            key: "(hidden)" if SECRET_NAMES.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


@blueprint.get("/workflows/<uuid:workflow_id>")
def workflow(workflow_id: uuid.UUID) -> ResponseReturnValue:
    tenant_id = principal().tenant_id
    detail = _workflows().get_workflow(tenant_id, workflow_id)
    flow, events = detail.workflow, detail.events
    runs = sorted({event.run for event in events}) or [flow.run]
    run = request.args.get("run", type=int)
    run = run if run in runs else flow.run
    run_events = [event for event in events if event.run == run]
    try:
        definition = definition_of(flow)
        stage_of: dict[str, int | None] = {s.name: definition.stage(s.name) for s in flow.steps}
        # Half a deprovisioning (forward recovery) cannot be put back: no Cancel for it.
        cancellable = definition.recovery == Recovery.COMPENSATE
    except DefinitionError:  # a version this code no longer has: the rows as they are
        stage_of, cancellable = {s.name: None for s in flow.steps}, False
    active = not flow.status.is_terminal
    drawing = timeline.build(flow.steps, stage_of, run_events, active=active and run == flow.run)
    return render_template(
        "console/workflow.html",
        flow=flow,
        events=events,
        run=run,
        runs=runs,
        timeline=drawing,
        stage_of=stage_of,
        keys=_key_names(tenant_id),
        input_json=json.dumps(redact(flow.input), indent=2, sort_keys=True, default=str),
        output=redact(flow.output),
        error=redact(flow.error) if flow.error else None,
        can_retry=flow.status in (WorkflowStatus.ROLLED_BACK, WorkflowStatus.FAILED),
        can_cancel=cancellable and flow.status in WorkflowStatus.forward(),
        max_reason=MAX_REASON,
        refresh=REFRESH_SECONDS if active else None,
    )


def _form_reason() -> tuple[str | None, str | None]:
    """The form's optional reason, and a problem with it, if any."""
    reason = (request.form.get("reason") or "").strip()
    if len(reason) > MAX_REASON:
        return None, f"the reason is longer than {MAX_REASON} characters"
    try:
        plain_text(reason)
    except ValidationError as exc:
        return None, f"the reason {exc.messages[0]}"
    return reason or None, None


def _act(workflow_id: uuid.UUID, action: str) -> ResponseReturnValue:
    reason, problem = _form_reason()
    if problem:
        flash(problem, "error")
        return redirect(url_for(".workflow", workflow_id=workflow_id))
    current = principal()
    perform = _workflows().retry if action == "retry" else _workflows().cancel
    try:
        flow = perform(
            current.tenant_id, workflow_id, requested_by=str(current.api_key_id), reason=reason
        )
    except (InvalidTransition, ConflictError) as exc:
        flash(str(exc), "error")
    else:
        if action == "cancel":
            done = "it stops at the next step boundary and undoes what it did"
        elif flow.status == WorkflowStatus.ROLLING_BACK:
            done = "the compensations left run again"
        else:
            done = f"run {flow.run} started"
        flash(f"{action.capitalize()} requested: {done}.", "ok")
    return redirect(url_for(".workflow", workflow_id=workflow_id))


@blueprint.post("/workflows/<uuid:workflow_id>/retry")
@require_role("operator")
def retry(workflow_id: uuid.UUID) -> ResponseReturnValue:
    return _act(workflow_id, "retry")


@blueprint.post("/workflows/<uuid:workflow_id>/cancel")
@require_role("operator")
def cancel(workflow_id: uuid.UUID) -> ResponseReturnValue:
    return _act(workflow_id, "cancel")


# -- bulk jobs -------------------------------------------------------------------------------


def _bulk() -> BulkService:
    return current_app.extensions["bulk_service"]


#: Outcomes a bulk job's counts are shown by, in the order of a row's life; each a bar colour.
BULK_OUTCOMES = (
    ("completed", "ok"),
    ("rolled_back", "undo"),
    ("compensated", "unknown"),
    ("failed", "failed"),
    ("invalid", "failed"),
    ("refused", "failed"),
    ("skipped", "unknown"),
    ("rolling_back", "retry"),
    ("running", "running"),
    ("pending", "running"),
    ("waiting", "track"),
)


def _progress(total: int, counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """The segments of a job's progress bar: each outcome's share of the rows, in percent."""
    if total <= 0:
        return []
    return [
        {
            "name": name,
            "css": css,
            "count": counts.get(name, 0),
            "percent": 100.0 * counts.get(name, 0) / total,
        }
        for name, css in BULK_OUTCOMES
        if counts.get(name, 0)
    ]


@blueprint.get("/bulk-jobs")
def bulk_jobs() -> ResponseReturnValue:
    page = _bulk().list(principal().tenant_id, limit=PAGE_SIZE, offset=_offset())
    active = any(not item.job.status.is_finished for item in page.items)
    return render_template(
        "console/bulk_jobs.html",
        page=page,
        progress=_progress,
        refresh=REFRESH_SECONDS * 2 if active else None,
    )


@blueprint.get("/bulk-jobs/<uuid:job_id>")
def bulk_job(job_id: uuid.UUID) -> ResponseReturnValue:
    failed_only = request.args.get("failed", "1") != "0"
    view = _bulk().get(
        principal().tenant_id, job_id, limit=PAGE_SIZE, offset=_offset(), failed_only=failed_only
    )
    # Rows still to finish: the job is active even once no new row waits.
    active = not view.job.status.is_finished or any(
        view.counts.get(status.value, 0) for status in WorkflowStatus.active()
    )
    return render_template(
        "console/bulk_job.html",
        view=view,
        job=view.job,
        rows_page=Page(view.rows, view.rows_total, view.limit, view.offset),
        failed_only=failed_only,
        segments=_progress(view.job.total_rows, view.counts),
        outcomes=[name for name, _ in BULK_OUTCOMES],
        describe_error=describe_error,
        can_cancel=not view.job.status.is_finished,
        refresh=REFRESH_SECONDS * 2 if active else None,
    )


@blueprint.get("/bulk-jobs/<uuid:job_id>/report.csv")
def bulk_job_report(job_id: uuid.UUID) -> ResponseReturnValue:
    tenant_id = principal().tenant_id
    _bulk().get(tenant_id, job_id, limit=1)  # another tenant's job: a 404 page, not a stream
    return Response(
        stream_with_context(report_csv(_bulk(), tenant_id, job_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{report_filename(job_id)}"'},
    )


@blueprint.post("/bulk-jobs/<uuid:job_id>/cancel")
@require_role("operator")
def bulk_job_cancel(job_id: uuid.UUID) -> ResponseReturnValue:
    current = principal()
    try:
        _bulk().cancel(current.tenant_id, job_id, requested_by=str(current.api_key_id))
    except InvalidTransition as exc:
        flash(str(exc), "error")
    else:
        flash(
            "Cancel requested: no row starts any more; the running ones undo what they did.", "ok"
        )
    return redirect(url_for(".bulk_job", job_id=job_id))


# -- subscribers -----------------------------------------------------------------------------


@blueprint.get("/subscribers")
def subscribers() -> ResponseReturnValue:
    tenant_id = principal().tenant_id
    status_text = request.args.get("status") or ""
    status = SubscriberStatus(status_text) if status_text in set(SubscriberStatus) else None
    query = _search_text({})
    if query and re.match(ONU_SERIAL, query):
        filters = SubscriberFilter(status=status, onu_serial=query)
    else:
        filters = SubscriberFilter(status=status, username=query or None)
    page = _subscribers().list(tenant_id, filters, limit=PAGE_SIZE, offset=_offset())
    return render_template(
        "console/subscribers.html",
        page=page,
        statuses=list(SubscriberStatus),
        status=status_text,
        query=query,
    )


@blueprint.get("/subscribers/<uuid:subscriber_id>")
def subscriber(subscriber_id: uuid.UUID) -> ResponseReturnValue:
    detail = _subscribers().get(principal().tenant_id, subscriber_id)
    resources = redact(detail.subscriber.resources or {})
    return render_template(
        "console/subscriber.html",
        detail=detail,
        sub=detail.subscriber,
        resources={
            system: value if isinstance(value, Mapping) else {"value": value}
            for system, value in sorted(resources.items())
        },
        as_text=_as_text,
    )


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else str(value)


# -- statistics ------------------------------------------------------------------------------


@blueprint.get("/statistics")
def statistics() -> ResponseReturnValue:
    tenant_id = principal().tenant_id
    hours = request.args.get("hours", type=int)
    hours = hours if hours in WINDOWS_HOURS else 24
    end = datetime.now(UTC)
    window = Window(created_after=end - timedelta(hours=hours), created_before=end)
    overall = _workflows().statistics(tenant_id, window)
    # One aggregate per type seen in the window (a handful): p95 and success rate by type.
    by_type = {name: _workflows().statistics(tenant_id, window, name) for name in overall.by_type}
    return render_template(
        "console/statistics.html",
        stats=overall,
        hours=hours,
        windows=WINDOWS_HOURS,
        charts=_charts(overall, by_type),
    )


_STATUS_CSS = {
    "completed": "ok",
    "rolled_back": "undo",
    "failed": "failed",
    "compensated": "unknown",
    "running": "running",
    "pending": "unknown",
    "rolling_back": "retry",
}


def _charts(overall: Statistics, by_type: dict[str, Statistics]) -> list[charts.Chart]:
    types = sorted(by_type)
    status_chart = charts.bar_chart(
        "Workflows by status",
        [
            charts.Item(
                status,
                [charts.Part(count, _STATUS_CSS.get(status, "unknown"), f"{status}: {count}")],
                str(count),
            )
            for status, count in overall.by_status.items()
        ],
    )
    success_chart = charts.bar_chart(
        "Success rate by type (completed of decided)",
        [
            charts.Item(
                name,
                [
                    charts.Part(
                        (by_type[name].success_rate or 0) * 100,
                        "ok",
                        f"{name}: {_percent(by_type[name].success_rate)}",
                    )
                ],
                _percent(by_type[name].success_rate),
            )
            for name in types
        ],
        scale_max=100,
    )
    p95_chart = charts.bar_chart(
        "p95 duration by type (completed workflows)",
        [
            charts.Item(
                name,
                [
                    charts.Part(
                        by_type[name].duration_seconds.p95 or 0,
                        "running",
                        f"{name}: p95 {_seconds(by_type[name].duration_seconds.p95)}",
                    )
                ],
                f"p95 {_seconds(by_type[name].duration_seconds.p95)} · mean "
                f"{_seconds(by_type[name].duration_seconds.mean)} · n="
                f"{by_type[name].duration_seconds.count}",
            )
            for name in types
        ],
    )
    failures_chart = charts.bar_chart(
        "Failures per step",
        [
            charts.Item(
                step,
                [
                    charts.Part(f.failed, "failed", f"{step}: {f.failed} failed for good"),
                    charts.Part(f.retried, "retry", f"{step}: {f.retried} retried"),
                    charts.Part(
                        f.compensation_failed,
                        "undo-failed",
                        f"{step}: {f.compensation_failed} undo failed",
                    ),
                ],
                f"{f.failed} failed · {f.retried} retried · {f.compensation_failed} undo failed",
            )
            for step, f in overall.step_failures.items()
        ],
        legend=[
            ("failed", "failed for good"),
            ("retry", "retried"),
            ("undo-failed", "undo failed"),
        ],
    )
    return [status_chart, success_chart, p95_chart, failures_chart]


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _seconds(value: float | None) -> str:
    return "-" if value is None else timeline.format_seconds(value)


def _fmt_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

"""Traces: one per workflow, across the API call, every step and undo, and their calls out.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` names an OTLP/HTTP collector. Then each process
calls :func:`configure` once (gunicorn: ``create_app``; Celery: the worker signals in
``tasks/app.py``; the CLI: ``main``), and OpenTelemetry is imported, by
:mod:`orchestrator.tracing.sdk`, only then. Every other function here costs one global read
while tracing is off: a step, a publish or a request imports and records nothing.

**One trace per workflow.** Steps are not one Celery canvas: the engine decides what runs next,
and a step's message may be published by the API, by a sibling step's worker (the last one of
a stage decides the join), by the sweeper re-driving a lost workflow, by an operator's retry or
by a bulk job's feeder. Celery's instrumentation carries the *publisher's* context in each
message's headers, which is right only when the publisher is inside the workflow's trace. So
the workflow row keeps its trace context (``Workflow.traceparent``, W3C), written once, at
creation (:func:`begin_workflow`):

- submitted through the API: the request's server span, so the POST is the trace's root;
- a bulk job's row, or a workflow submitted without a request (the CLI): a root span
  ``workflow <type>`` of a trace of its own, linked to whatever started it (the bulk job's
  feed task), so a 10,000-row job is 10,000 readable traces, not one unreadable one.

Every publish of step messages (``tasks/dispatch.py``, the one module that publishes them) runs
:func:`continuing` that context. The engine holds the row whenever it decides what to publish,
so the context rides in its ``Dispatch`` at no extra read. A publisher already inside the
trace (a step publishing what it unblocked) stays the parent, so the trace shows cause and
effect; one outside it (the sweeper, a retry request, the feeder) publishes under a
``publish steps`` span, a child of the stored context linked to the publisher's own span.
Parenting (rather than only linking) is what makes it *one* trace: every task span, whoever
published it, is a descendant of the workflow's root; a retried workflow's next run too, so
the trace holds every run, as the event log does. Each task's span is the Celery
instrumentation's ``run/<task>``, annotated with the workflow id and the step (ids only,
never a username or a secret; see :mod:`orchestrator.tracing.sdk` for URLs).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from orchestrator.config import Settings, get_settings
from orchestrator.errors import TracingUnavailable

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

    from orchestrator.tracing.sdk import Tracing

#: This process's tracing, once configure() started it; None while tracing is off.
_tracing: Tracing | None = None


def configure(settings: Settings | None = None) -> bool:
    """Start tracing in this process when an OTLP endpoint is set; True if it runs.

    The first call decides (a process has one tracer provider); later calls only answer.
    Engines made before it stay untraced, so each process calls it before its first query.
    """
    global _tracing
    if _tracing is None:
        settings = settings or get_settings()
        if not settings.otlp_endpoint:
            return False
        try:
            from orchestrator.tracing.sdk import Tracing  # the one import of OpenTelemetry
        except ImportError as exc:
            # Asked for and impossible: say so at start, not by a silent lack of traces.
            raise TracingUnavailable(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
                "pip install 'isp-orchestrator[tracing]'"
            ) from exc
        _tracing = Tracing(settings)
    return True


def shutdown() -> None:
    """Export what this process still holds, as it ends; for a process that leaves without
    atexit (a prefork child ends with os._exit). Later spans are dropped."""
    if _tracing is not None:
        _tracing.shutdown()


def instrument_app(app: Flask) -> None:
    """A server span per request of ``app`` (starting tracing in this process if it is on)."""
    if configure() and _tracing is not None:
        _tracing.instrument_app(app)


def instrument_engine(engine: Engine) -> Engine:
    """A client span per statement ``engine`` runs, when tracing is on; ``engine`` itself."""
    if _tracing is not None:
        _tracing.instrument_engine(engine)
    return engine


def begin_workflow(workflow_type: str, *, fresh: bool) -> str | None:
    """The trace context (a W3C traceparent) a new workflow keeps; None while tracing is off.

    ``fresh``: a trace of its own even inside another one (a bulk job's row). Otherwise the
    current span's trace (the API request's), or a new one when there is none (the CLI).
    """
    return _tracing.begin_workflow(workflow_type, fresh=fresh) if _tracing else None


def continuing(traceparent: str | None) -> AbstractContextManager[object]:
    """Publish inside the workflow whose stored context is ``traceparent``."""
    if _tracing is None or traceparent is None:
        return nullcontext()
    return _tracing.continuing(traceparent)


def untraced() -> AbstractContextManager[object]:
    """Calls made inside record no span and carry no trace context: for requests to parties
    outside the operator's systems (a tenant's webhook endpoint has no business with our trace
    ids, and its URL no place in our traces)."""
    if _tracing is None:
        return nullcontext()
    return _tracing.untraced()


def annotate(**attributes: str | int | None) -> None:
    """Ids on the current span (``orchestrator.<name>``), e.g. a task's workflow and step."""
    if _tracing is not None:
        _tracing.annotate(attributes)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a W3C traceparent, ``00-<trace id>-<span id>-<flags>``."""
    return traceparent.split("-")[1] if traceparent else None

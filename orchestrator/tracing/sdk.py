"""OpenTelemetry's SDK, OTLP exporter and instrumentations, wired for this service.

Imported only by :func:`orchestrator.tracing.configure`, once tracing is on; nothing of
OpenTelemetry is loaded while it is off.

- **Export.** OTLP over HTTP/protobuf through a BatchSpanProcessor: exporting never holds a
  worker slot or a request, and a collector that is down costs dropped spans, not latency. (A
  force_flush after every task would make each step wait for the collector, up to its
  timeout.) The exporter reads the standard variables itself: the endpoint (plus
  ``/v1/traces``), ``OTEL_EXPORTER_OTLP_HEADERS``, the timeout; ``OTEL_BSP_SCHEDULE_DELAY``
  (default 5 s) is how long a finished span may wait. What a process holds when it ends is
  flushed by the SDK's atexit hook, or by ``tracing.shutdown`` where there is none (a
  prefork child).
- **Where traces start** (the root sampler): at an API request or at a workflow begun without
  one. A span with no parent of any other kind starts none: a lone query (``/healthz``'s
  ``SELECT 1``), a housekeeping task that beat published (the sweeps, every few seconds), a
  publish outside any work. Everything below a traced span is traced (ParentBased).
- **No secrets, no usernames** in attributes: task spans carry ids; SQL spans the statement,
  whose values are bound parameters, never recorded; HTTP spans the URL with every query
  value replaced (``?username=REDACTED``: a filter may name a subscriber). Headers
  (``Authorization``, NetBox's token) are not recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import get_meter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from sqlalchemy import Engine

from orchestrator.config import Settings

if TYPE_CHECKING:
    from flask import Flask

#: The format workflows store their context in, whatever OTEL_PROPAGATORS says.
W3C = TraceContextTextMapPropagator()
#: Polled all the time by load balancers and Prometheus: a trace each would drown the rest.
UNTRACED_PATHS = "/healthz$,/metrics$"
#: Span attributes that may hold a URL or its query.
URL_ATTRIBUTES = ("http.url", "http.target", "url.full")
QUERY_ATTRIBUTE = "url.query"


class WorkStartsTraces(Sampler):
    """Samples a root span only if it is work: a request (server) or our own workflow root."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind in (SpanKind.SERVER, SpanKind.INTERNAL):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return SamplingResult(Decision.DROP, None, trace_state)

    def get_description(self) -> str:
        return "WorkStartsTraces"


class Tracing:
    """This process's tracer provider and instrumentations (one per process)."""

    def __init__(self, settings: Settings) -> None:
        self.provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.otel_service_name}),
            sampler=ParentBased(root=WorkStartsTraces()),
        )
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(self.provider)
        self.tracer = self.provider.get_tracer("orchestrator")
        # Producer spans and context headers on every publish, a consumer span per task.
        CeleryInstrumentor().instrument(tracer_provider=self.provider)
        RequestsInstrumentor().instrument(
            tracer_provider=self.provider, request_hook=lambda span, _: redact_urls(span)
        )
        # Engines are instrumented one by one as db.py and the RADIUS store make them: their
        # modules bound create_engine before the instrumentor could wrap it.
        self._sql_tracer = self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        self._sql_connections = get_meter(__name__).create_up_down_counter(
            "db.client.connections.usage", unit="connections"
        )

    def shutdown(self) -> None:
        self.provider.shutdown()

    def instrument_app(self, app: Flask) -> None:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor  # web processes only

        FlaskInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            response_hook=lambda span, *_: redact_urls(span),
            excluded_urls=UNTRACED_PATHS,
            # Off: it attaches a context per request that it never detaches.
            enable_commenter=False,
        )

    def instrument_engine(self, engine: Engine) -> None:
        EngineTracer(self._sql_tracer, engine, self._sql_connections)

    def begin_workflow(self, workflow_type: str, *, fresh: bool) -> str:
        current = trace.get_current_span().get_span_context()
        if current.is_valid and not fresh:
            return traceparent(current)
        root = self.tracer.start_span(
            f"workflow {workflow_type}",
            context=Context(),  # no parent: a trace of its own
            kind=SpanKind.INTERNAL,
            links=_link_to(current),
            attributes={"orchestrator.workflow_type": workflow_type},
        )
        # Ended at once: it only marks where the trace began; the steps are its descendants.
        root.end()
        return traceparent(root.get_span_context())

    @contextmanager
    def continuing(self, stored: str) -> Iterator[object]:
        workflow = W3C.extract({"traceparent": stored})
        workflow_trace = trace.get_current_span(workflow).get_span_context().trace_id
        current = trace.get_current_span().get_span_context()
        if current.is_valid and current.trace_id == workflow_trace:
            # Inside the workflow's trace already: the publisher stays the parent.
            yield None
            return
        with self.tracer.start_as_current_span(
            "publish steps", context=workflow, kind=SpanKind.INTERNAL, links=_link_to(current)
        ) as span:
            yield span

    def untraced(self) -> AbstractContextManager[object]:
        # The instrumentations check this flag: requests then neither starts a span nor
        # injects a traceparent header.
        return suppress_instrumentation()

    def annotate(self, attributes: Mapping[str, str | int | None]) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(
                {f"orchestrator.{key}": value for key, value in attributes.items() if value}
            )


def traceparent(context: SpanContext) -> str:
    carrier: dict[str, str] = {}
    W3C.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(context)))
    return carrier["traceparent"]


def _link_to(context: SpanContext) -> list[Link]:
    """A link to the span that caused this one, if it is recorded anywhere."""
    return [Link(context)] if context.is_valid and context.trace_flags.sampled else []


def redact_urls(span: Span | None) -> None:
    """Replace every query value in the span's URL attributes (instrumentations' hooks)."""
    attributes = getattr(span, "attributes", None)
    if span is None or not attributes:
        return
    for key in URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, redact_query(value))
    query = attributes.get(QUERY_ATTRIBUTE)
    if isinstance(query, str):
        span.set_attribute(QUERY_ATTRIBUTE, _redacted(query))


def redact_query(url: str) -> str:
    """``url`` (absolute, or a path and query) with every query value ``REDACTED``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=_redacted(parts.query))) if parts.query else url


def _redacted(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, "REDACTED") for name, _ in pairs])

"""Traces: with an OTLP endpoint, one trace per workflow, from the API call through every step
and its calls out; without one, nothing of OpenTelemetry's tracing is loaded or stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from celery import Celery

from orchestrator.queues import QUEUES
from orchestrator.tracing.sdk import redact_query
from tests.api.helpers import PROVISION, WORKFLOWS, auth, request_body
from tests.support.collector import CollectedSpan, OtlpCollector
from tests.support.processes import ROOT, WebProcess, WorkerProcess
from tests.support.redis_server import RedisServer, free_tcp_port
from tests.support.requests import provision_body, unique_cpe_serial
from tests.support.workflows import events, wait_terminal

#: The production topology: network queues on a thread pool, the rest on prefork. Each starts
#: tracing its own way (the worker's process; each pool child).
NETWORK_QUEUES = ("netbox", "access", "genieacs", "nas")


@dataclass
class Traced:
    collector: OtlpCollector
    web: WebProcess


@pytest.fixture
def traced(
    celery_app: Celery, radius_server: object, simulators: object, tmp_path: Path
) -> Iterator[Traced]:
    """The API and two workers exporting to a collector, on a broker of their own (the
    session's untraced worker never sees their messages)."""
    with OtlpCollector() as collector:
        broker = RedisServer(workdir=tmp_path / "redis")
        broker.start()
        app = Celery("traced", broker=broker.url)
        app.conf.update(celery_app.conf.table(with_defaults=False))
        app.conf.broker_url = broker.url
        env = {
            "BROKER_URL": broker.url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            # The SDK's own batch delay (default 5 s): spans reach the collector while we wait.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        others = ",".join(q for q in QUEUES if q not in NETWORK_QUEUES)
        prefork = WorkerProcess(
            app=app,
            log_path=tmp_path / "prefork.log",
            concurrency=2,
            env=env,
            extra_args=("-Q", others),
        )
        threads = WorkerProcess(
            app=app,
            log_path=tmp_path / "threads.log",
            concurrency=4,
            env=env,
            extra_args=("-P", "threads", "-Q", ",".join(NETWORK_QUEUES)),
        )
        web = WebProcess(log_path=tmp_path / "web.log", port=free_tcp_port(), env=env)
        try:
            prefork.start()
            threads.start()
            web.start()
            yield Traced(collector, web)
        finally:
            web.stop()
            threads.stop()
            prefork.stop()
            broker.stop()


def _step_of(span: CollectedSpan, spans: dict[str, CollectedSpan]) -> str | None:
    """The step whose task span ``span`` is (or runs under), if any."""
    current: CollectedSpan | None = span
    while current is not None:
        if "orchestrator.step" in current.attributes:
            return str(current.attributes["orchestrator.step"])
        current = spans.get(current.parent_span_id)
    return None


def _is_http_client(span: CollectedSpan) -> bool:
    return span.kind == "CLIENT" and bool({"http.url", "url.full"} & span.attributes.keys())


def _is_sql(span: CollectedSpan) -> bool:
    return span.kind == "CLIENT" and any(key.startswith("db.") for key in span.attributes)


def test_a_provisioning_is_one_trace_with_a_span_per_step(traced, sim, plan, operator_key):
    # Given the API and the workers exporting to a collector
    body = provision_body(plan.id, cpe_serial=unique_cpe_serial())

    # When a provisioning is submitted through the API and completes
    response = requests.post(
        f"{traced.web.url}{PROVISION}", json=body, headers=auth(operator_key), timeout=30
    )
    assert response.status_code == 202, response.text
    workflow = response.json()
    trace_id = workflow["trace_id"]
    assert trace_id is not None and len(trace_id) == 32
    assert wait_terminal(workflow["id"]).value == "completed"
    step_names = [step["name"] for step in workflow["steps"]]

    # Then the collector gets the whole trace: a span per step, and every span's parent
    def complete(spans: list[CollectedSpan]) -> bool:
        ours = {s.span_id: s for s in spans if s.trace_id == trace_id}
        steps = {s.attributes.get("orchestrator.step") for s in ours.values()}
        roots = [s for s in ours.values() if not s.parent_span_id]
        orphans = [s for s in ours.values() if s.parent_span_id and s.parent_span_id not in ours]
        return set(step_names) <= steps and bool(roots) and not orphans

    collected = traced.collector.wait_for(complete, timeout=60, what=f"the spans of {trace_id}")
    ours = [s for s in collected if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in ours}

    # One trace: every span that names the workflow is in it, whichever process made it
    named = [s for s in collected if s.attributes.get("orchestrator.workflow_id") == workflow["id"]]
    assert {s.trace_id for s in named} == {trace_id}
    assert {s.service for s in ours} == {"isp-orchestrator"}

    # Its root is the API call
    (root,) = [s for s in ours if not s.parent_span_id]
    assert root.kind == "SERVER"
    assert root.name == f"POST {PROVISION}"

    # One task span per step of the definition (skipped ones too: their task decides to skip)
    forward = [s for s in ours if s.attributes.get("orchestrator.direction") == "forward"]
    assert Counter(s.attributes["orchestrator.step"] for s in forward) == Counter(step_names)
    assert all(s.kind == "CONSUMER" and s.name.startswith("run/tasks.") for s in forward)

    # The calls out (requests) run under the steps that make them
    calls = {_step_of(s, by_id) for s in ours if _is_http_client(s)}
    assert {"allocate_ip", "activate_onu", "configure_cpe"} <= calls

    # SQL: the API's insert under the request, each step's bookkeeping under its task
    sql = [s for s in ours if _is_sql(s)]
    assert any(_step_of(s, by_id) is None for s in sql)
    assert {_step_of(s, by_id) for s in sql} >= set(step_names)
    radius_step = [s for s in sql if _step_of(s, by_id) == "create_radius_account"]
    assert os.environ["RADIUS_DB_NAME"] in {s.attributes.get("db.name") for s in radius_step}

    # The trace id is on the workflow and in its event log
    detail = requests.get(
        f"{traced.web.url}{WORKFLOWS}/{workflow['id']}", headers=auth(operator_key), timeout=30
    ).json()
    assert detail["trace_id"] == trace_id
    assert detail["events"][0]["kind"] == "workflow_created"
    assert detail["events"][0]["details"] == {"trace_id": trace_id}

    # And no span holds the subscriber's username or password, nor the API key
    attributes = json.dumps([s.attributes for s in collected], default=str)
    for secret in (body["username"], body["password"], operator_key):
        assert secret not in attributes


def test_without_an_endpoint_workflows_carry_no_trace(api, operator_key, plan):
    response = api.post(PROVISION, json=request_body(plan.id), headers=auth(operator_key))

    assert response.status_code == 202
    workflow = response.get_json()
    assert workflow["trace_id"] is None
    (created,) = events(workflow["id"], ["workflow_created"])
    assert created.details is None


#: What a web process and a worker's pool child do when they start (and a step's hooks), with
#: the endpoint unset: then which modules of tracing are loaded.
PROCESS_START = """
import json, sys
from celery.signals import worker_process_init
from orchestrator import tracing
from webapp import create_app
create_app()
import tasks.base, tasks.dispatch
worker_process_init.send(sender="probe")
tracing.annotate(workflow_id="w", step="s")
with tracing.continuing(None):
    pass
traceparent = tracing.begin_workflow("provision_subscriber", fresh=False)
print(json.dumps([traceparent, sorted(sys.modules)]))
"""

#: Ours, and what they would load. (redis-py imports OpenTelemetry's *metrics* SDK by itself
#: whenever it is installed, as in this dev environment; an installation without the
#: ``tracing`` extra has none of it.)
TRACING_MODULES = (
    "orchestrator.tracing.sdk",
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
)


def run_script(script: str, endpoint: str | None = None) -> object:
    """Run ``script`` in a fresh Python process, with tracing on when ``endpoint`` is given
    (and no OTEL_ setting of ours otherwise); its last line of output, as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_an_endpoint_no_process_loads_tracing(database):
    traceparent, modules = run_script(PROCESS_START)
    assert traceparent is None
    assert [m for m in modules if m.startswith(TRACING_MODULES)] == []


#: Where workflows begin and who publishes their steps, in one traced process: a bulk job's
#: row and a workflow submitted without a request (the CLI) begin traces of their own; a
#: publisher outside the workflow's trace (a retry request, the sweeper) publishes inside it.
ORIGINS = """
import json
from opentelemetry import trace
from orchestrator import tracing
tracing.configure()
tracer = trace.get_tracer("probe")
ids = lambda span: [format(span.get_span_context().trace_id, "032x"),
                    format(span.get_span_context().span_id, "016x")]
out = {}
with tracer.start_as_current_span("POST bulk", kind=trace.SpanKind.SERVER) as bulk:
    out["bulk"] = ids(bulk)
    out["row"] = tracing.begin_workflow("provision_subscriber", fresh=True)
    out["portal"] = tracing.begin_workflow("provision_subscriber", fresh=False)
    with tracing.continuing(out["portal"]):
        out["portal_publisher"] = ids(trace.get_current_span())
out["cli"] = tracing.begin_workflow("cleanup_orphans", fresh=False)
with tracer.start_as_current_span("POST retry", kind=trace.SpanKind.SERVER) as retry:
    out["retry"] = ids(retry)
    with tracing.continuing(out["row"]):
        out["row_publisher"] = ids(trace.get_current_span())
tracing.shutdown()
print(json.dumps(out))
"""


def test_workflows_begun_elsewhere_keep_a_trace_of_their_own():
    with OtlpCollector() as collector:
        seen = run_script(ORIGINS, collector.endpoint)
        spans = {s.span_id: s for s in collector.wait_for(lambda s: len(s) >= 5, 30, "5 spans")}

    def trace_and_span(traceparent: str) -> list[str]:
        return traceparent.split("-")[1:3]

    # A portal request's workflow is the request's trace; its publishes stay under it
    assert trace_and_span(seen["portal"]) == seen["bulk"]
    assert seen["portal_publisher"] == seen["bulk"]
    # A bulk row: a root of its own, linked to the job's request
    row_trace, row_root = trace_and_span(seen["row"])
    assert row_trace != seen["bulk"][0]
    root = spans[row_root]
    assert (root.name, root.parent_span_id) == ("workflow provision_subscriber", "")
    assert root.links == (tuple(seen["bulk"]),)
    # The CLI's: a root too
    cli_trace, cli_root = trace_and_span(seen["cli"])
    assert cli_trace not in (row_trace, seen["bulk"][0])
    assert spans[cli_root].parent_span_id == ""
    # A retry publishes the row's steps inside the row's trace, linked to the retry request
    publisher = spans[seen["row_publisher"][1]]
    assert (publisher.name, publisher.trace_id) == ("publish steps", row_trace)
    assert publisher.parent_span_id == row_root
    assert publisher.links == (tuple(seen["retry"]),)


def test_urls_in_spans_keep_their_keys_but_no_values():
    assert redact_query("/api/v1/subscribers?username=ada&limit=5") == (
        "/api/v1/subscribers?username=REDACTED&limit=REDACTED"
    )
    assert redact_query("http://nb/api/ipam/ip-addresses/?description=x%3Ay") == (
        "http://nb/api/ipam/ip-addresses/?description=REDACTED"
    )
    assert redact_query("http://nb/api/ipam/prefixes/7/") == "http://nb/api/ipam/prefixes/7/"


#: With tracing on, a call of ours carries a traceparent; a webhook delivery to a tenant's
#: endpoint carries none (and records no span).
WEBHOOK_HEADERS = """
import dataclasses, http.server, json, threading, uuid
import requests
from opentelemetry import trace
from orchestrator import tracing
from orchestrator.config import get_settings
from orchestrator.webhooks.delivery import Attempt, send
tracing.configure()
seen = []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(204); self.end_headers()
    do_GET = do_POST
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/hook"
settings = dataclasses.replace(get_settings(), webhook_allow_private_targets=True)
with trace.get_tracer("probe").start_as_current_span("a step", kind=trace.SpanKind.SERVER):
    requests.get(url, timeout=5)
    outcome = send(Attempt(uuid.uuid4(), 1, url, b"{}", "s3cret"), settings)
server.shutdown()
tracing.shutdown()
print(json.dumps({"status": outcome.status_code, "ours": seen[0], "webhook": seen[1]}))
"""


def test_a_webhook_delivery_carries_no_trace_context_of_ours():
    with OtlpCollector() as collector:
        seen = run_script(WEBHOOK_HEADERS, collector.endpoint)
    assert seen["status"] == 204
    assert "traceparent" in seen["ours"]  # the instrumentation is on
    assert "traceparent" not in seen["webhook"]
    assert "x-signature" in seen["webhook"]

"""Prometheus metrics: what the engine did, counted only once its transaction has committed.

Transitions note what happened on the session (:func:`note`); the notes become metrics after the
commit and are dropped on a rollback, so a retried transaction never counts twice. Every
process (gunicorn workers, Celery workers) writes its own files when PROMETHEUS_MULTIPROC_DIR is
set, and ``/metrics`` adds them up. No tenant ids or usernames as labels: the label values are
workflow types, step names, statuses and queue names only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.aftercommit import after_commit

WORKFLOWS_STARTED = Counter(
    "orchestrator_workflows_started_total", "Workflows submitted.", ["workflow_type"]
)
WORKFLOWS_FINISHED = Counter(
    "orchestrator_workflows_finished_total",
    "Workflows that reached a terminal status.",
    ["workflow_type", "status"],
)
STEP_SECONDS = Histogram(
    "orchestrator_step_duration_seconds",
    "One attempt of a step (forward) or of its undo (backward), by outcome.",
    ["workflow_type", "step", "direction", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RETRIES = Counter(
    "orchestrator_step_retries_total",
    "Attempts that failed and were scheduled again.",
    ["workflow_type", "step", "direction"],
)
REDRIVES = Counter(
    "orchestrator_sweeper_redrives_total",
    "Workflows the sweeper re-drove (forward) or whose undo it re-drove (backward).",
    ["workflow_type", "direction"],
)


def note(session: Session, record: Callable[[], None]) -> None:
    """Count ``record`` once the session's transaction commits (never if it rolls back)."""
    after_commit(session, record)


#: The states a circuit breaker reports (orchestrator.integrations.circuit).
CIRCUIT_STATES = ("closed", "open", "half_open")


class StateCollector(Collector):
    """Read at scrape time: workflows in flight by status (PostgreSQL), the depth of every
    Celery queue and every circuit breaker's state (Redis), so they are right whichever
    process asks."""

    def __init__(
        self,
        session_factory: Callable[[], Any],
        queue_depths: Callable[[], dict[str, int]],
        circuits: Callable[[], dict[str, dict[str, Any]]] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._queue_depths = queue_depths
        self._circuits = circuits

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from orchestrator.models import Workflow, WorkflowStatus

        in_flight = GaugeMetricFamily(
            "orchestrator_workflows_in_flight",
            "Workflows not finished, by status and type.",
            labels=["status", "workflow_type"],
        )
        with self._session_factory() as session:
            rows = session.execute(
                select(Workflow.status, Workflow.workflow_type, func.count())
                .where(Workflow.status.in_(WorkflowStatus.active()))
                .group_by(Workflow.status, Workflow.workflow_type)
            )
            for status, workflow_type, count in rows:
                in_flight.add_metric([status.value, workflow_type], count)
        yield in_flight
        late = GaugeMetricFamily(
            "orchestrator_workflows_past_deadline",
            "Workflows not finished although their deadline has passed (the sweeper should "
            "have settled them: a person should look).",
        )
        with self._session_factory() as session:
            late.add_metric(
                [],
                session.scalar(
                    select(func.count())
                    .select_from(Workflow)
                    .where(
                        Workflow.status.in_(WorkflowStatus.active()),
                        Workflow.deadline_at < func.now(),
                    )
                )
                or 0,
            )
        yield late
        depth = GaugeMetricFamily(
            "orchestrator_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        for queue, count in self._queue_depths().items():
            depth.add_metric([queue], count)
        yield depth
        if self._circuits is not None:
            yield from self._circuit_families(self._circuits())

    @staticmethod
    def _circuit_families(circuits: dict[str, dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
        """Each system's breaker as one-hot states (the kube-state-metrics idiom: an alert is
        ``== 1`` on the state it cares about) and its consecutive failures."""
        state = GaugeMetricFamily(
            "orchestrator_circuit_state",
            "Each external system's circuit breaker: 1 for its current state, 0 for the others.",
            labels=["system", "state"],
        )
        failures = GaugeMetricFamily(
            "orchestrator_circuit_failures",
            "Consecutive failed calls each external system's breaker has counted.",
            labels=["system"],
        )
        for system, current in sorted(circuits.items()):
            for name in CIRCUIT_STATES:
                state.add_metric([system, name], 1.0 if current.get("state") == name else 0.0)
            failures.add_metric([system], float(current.get("failures", 0)))
        yield state
        yield failures


def scrape(state: Collector) -> bytes:
    """The text ``/metrics`` answers: every process's counters, plus the state read now."""
    registry = CollectorRegistry()
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if multiprocess:
        MultiProcessCollector(registry)
    registry.register(state)
    text = generate_latest(registry)
    # One process (a development server, a test): its own counters live in the default registry.
    return text if multiprocess else generate_latest(REGISTRY) + text

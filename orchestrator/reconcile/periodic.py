"""The periodic, read-only check: counts in the log and in /metrics, nothing removed.

Counts only (by kind and system, never a tenant or a username as a label): an operator who
sees them rise runs ``orchestrator reconcile`` for the list, and ``--fix`` to remove orphans.
"""

from __future__ import annotations

import logging

from prometheus_client import Gauge

from orchestrator.reconcile.check import check
from orchestrator.reconcile.findings import Report

log = logging.getLogger(__name__)

SYSTEMS = ("database", "radius", "netbox", "onos", "genieacs")
KINDS = ("orphan", "missing")

FINDINGS = Gauge(
    "orchestrator_reconcile_findings",
    "Resources the last reconciliation found: orphans (ours, owned by no workflow) and missing "
    "(a live subscriber's, gone from the system).",
    ["kind", "system"],
    # The last check's answer, whichever worker process ran it.
    multiprocess_mode="mostrecent",
)


def record(report: Report) -> None:
    counts = report.counts()
    for kind in KINDS:
        for system in SYSTEMS:
            # an unreadable system keeps its last count rather than a reassuring zero
            if system not in report.unavailable:
                FINDINGS.labels(kind, system).set(counts.get((kind, system), 0))
    if report.unavailable:
        log.warning("reconciliation could not read %s", ", ".join(report.unavailable))
    if report.clean:
        log.info("reconciliation: clean")
        return
    summary = ", ".join(f"{n} {kind} in {system}" for (kind, system), n in sorted(counts.items()))
    log.warning("reconciliation: %s; run `orchestrator reconcile` for the list", summary)


def run() -> dict[str, int]:
    report = check()
    record(report)
    return {f"{kind}:{system}": n for (kind, system), n in report.counts().items()}

"""From a report to cleanup workflows: one per subscriber the orphans were made for, submitted
through the service like any workflow (claims, audit trail, forward recovery)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConflictError, ValidationError
from orchestrator.reconcile.findings import Orphan, Report
from orchestrator.service import OrchestrationService
from orchestrator.workflows.cleanup_orphans import NAME


@dataclass(frozen=True)
class Submitted:
    tenant_id: str
    subscriber_id: str
    resources: tuple[str, ...]
    workflow_id: str | None = None
    #: Why nothing was submitted for these (another workflow holds them, say).
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "subscriber_id": self.subscriber_id,
            "resources": list(self.resources),
            "refused": self.refused,
        }


def fixable(orphan: Orphan) -> bool:
    """Only what a workflow of ours can be audited for: a known maker, tenant and subscriber."""
    return bool(orphan.undo and orphan.tenant_id and orphan.subscriber_id and orphan.workflow_id)


def requests(orphans: Iterable[Orphan]) -> dict[tuple[str, str], dict[str, Any]]:
    """The cleanup requests, by (tenant, subscriber)."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for orphan in orphans:
        if not fixable(orphan):
            continue
        assert orphan.tenant_id and orphan.subscriber_id and orphan.undo
        request = grouped.setdefault(
            (orphan.tenant_id, orphan.subscriber_id),
            {"subscriber_id": orphan.subscriber_id, "orphans": []},
        )
        request["orphans"].append({**orphan.to_json(), "undo": orphan.undo.to_dict()})
    return grouped


def submit(report: Report, service: OrchestrationService) -> list[Submitted]:
    done = []
    for (tenant_id, subscriber_id), request in sorted(requests(report.orphans).items()):
        resources = tuple(o["resource"] for o in request["orphans"])
        try:
            submission = service.submit(NAME, tenant_id, request)
        except (ConflictError, ValidationError) as exc:
            done.append(Submitted(tenant_id, subscriber_id, resources, refused=str(exc)))
            continue
        done.append(
            Submitted(tenant_id, subscriber_id, resources, workflow_id=str(submission.workflow.id))
        )
    return done

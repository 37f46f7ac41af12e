"""cleanup_orphans: what carries our markers but nothing owns goes, through the engine.

``orchestrator reconcile --fix`` submits one per subscriber the orphans were made for, so each
shows in that subscriber's history and holds its claims like any lifecycle workflow. Each step
removes one system's orphans with the undo of the step that made them
(orchestrator/reconcile/cleanup.py); our own rows go last, like deprovisioning's::

    remove_orphan_cpe_config ──┐
    remove_orphan_services ────┤
    release_orphan_addresses ──┼──▶ end_orphan_rows
    remove_orphan_accounts ────┘

Forward recovery, like deprovisioning: a removal that cannot reach its system is retried until
the deadline, never answered by re-creating what was removed; a retry carries on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.definitions import Recovery, WorkflowDefinition, registry
from orchestrator.errors import ConflictError, ValidationError
from orchestrator.models import Subscriber, SubscriberStatus, Workflow, WorkflowStatus
from orchestrator.reconcile.markers import CLEANUP_STEPS
from orchestrator.workflows.base import Claims, Prepared, WorkflowType

# The removal step shape is deprovisioning's (forward recovery, patient, irreversible).
from orchestrator.workflows.deprovision_subscriber import _removal

NAME = "cleanup_orphans"

_EXTERNAL = (
    _removal("remove_orphan_cpe_config", "genieacs", "tasks.genieacs.remove_orphans", timeout=60),
    _removal("remove_orphan_services", "access", "tasks.access.remove_orphans", timeout=60),
    _removal("release_orphan_addresses", "netbox", "tasks.netbox.release_orphans"),
    _removal("remove_orphan_accounts", "radius", "tasks.radius.remove_orphans", timeout=15),
)
DEFINITION = registry.register(
    WorkflowDefinition(
        name=NAME,
        version=1,
        recovery=Recovery.FORWARD,
        steps=(
            *_EXTERNAL,
            _removal(
                "end_orphan_rows",
                "database",
                "tasks.database.end_orphans",
                *(step.name for step in _EXTERNAL),
                timeout=15,
            ),
        ),
    )
)

_LIVE = (SubscriberStatus.ACTIVE, SubscriberStatus.SUSPENDED)


class CleanupOrphans(WorkflowType):
    name = NAME

    def prepare(self, session: Session, tenant_id: str, request: Mapping[str, Any]) -> Prepared:
        """``request``: ``subscriber_id`` and the ``orphans`` a reconciliation found for it.

        Each is checked again here, against the database as it is now: its maker is one of
        this tenant's workflows and has finished, and no live subscriber holds it since.
        """
        subscriber_id = uuid.UUID(str(request["subscriber_id"]))
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is not None and subscriber.tenant_id != tenant_id:
            raise ValidationError("unknown subscriber", {"subscriber_id": ["no such subscriber"]})
        orphans = [dict(o) for o in request["orphans"]]
        if not orphans:
            raise ValidationError("nothing to clean up", {"orphans": ["empty"]})
        for orphan in orphans:
            self._check(session, tenant_id, subscriber, orphan)
        input_data = {"subscriber_id": str(subscriber_id), "orphans": orphans}
        return Prepared(
            input=input_data, subscriber_id=subscriber_id, claims=self.claims(input_data)
        )

    @staticmethod
    def _check(
        session: Session, tenant_id: str, subscriber: Subscriber | None, orphan: dict[str, Any]
    ) -> None:
        undo = orphan.get("undo") or {}
        if undo.get("step") not in CLEANUP_STEPS:
            raise ValidationError("unknown undo", {"orphans": [f"{orphan.get('resource')}"]})
        maker = session.get(Workflow, uuid.UUID(str(orphan["workflow_id"])))
        if maker is None or maker.tenant_id != tenant_id:
            raise ValidationError(
                "unknown workflow", {"orphans": [f"{orphan['resource']}: no such workflow"]}
            )
        if maker.status in WorkflowStatus.active():
            raise ConflictError(
                f"{orphan['resource']} belongs to workflow {maker.id}, still in progress"
            )
        intent = undo.get("intent") or {}
        if orphan["system"] == "onos":
            held = session.scalars(
                select(Subscriber.resources).where(
                    Subscriber.onu_serial == intent.get("onu_serial"), Subscriber.status.in_(_LIVE)
                )
            )
            service = {k: intent.get(k) for k in ("port_name", "s_tag", "c_tag", "tp_id")}
            if any({k: (r.get("onos") or {}).get(k) for k in service} == service for r in held):
                raise ConflictError(f"{orphan['resource']} is held by a live subscriber now")
        if orphan["system"] == "genieacs":
            cpe = (subscriber.resources or {}).get("cpe") or {} if subscriber else {}
            if (
                subscriber is not None
                and subscriber.status in _LIVE
                and cpe.get("serial") == intent.get("cpe_serial")
                and cpe.get("tag") == intent.get("tag")
            ):
                raise ConflictError(f"{orphan['resource']} is held by a live subscriber now")

    def claims(self, input_data: Mapping[str, Any]) -> Claims:
        # The subscriber (one lifecycle workflow at a time), and what the orphans are made of,
        # so no provisioning can adopt one (an ONU's service, a CPE, a username) mid-cleanup.
        claims = {("subscriber", input_data["subscriber_id"])}
        for orphan in input_data["orphans"]:
            undo = orphan.get("undo") or {}
            intent = undo.get("intent") or {}
            if orphan["system"] == "radius" and intent.get("username"):
                claims.add(("username", intent["username"]))
            if orphan["system"] == "onos" and intent.get("onu_serial"):
                claims.add(("onu_serial", intent["onu_serial"]))
            if orphan["system"] == "genieacs" and intent.get("cpe_serial"):
                claims.add(("cpe_serial", intent["cpe_serial"]))
        return tuple(sorted(claims))


WORKFLOW = CleanupOrphans()

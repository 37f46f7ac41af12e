"""Orphan reconciliation on Celery: the cleanup workflow's step tasks (one per system, on that
system's queue, by their names) and the periodic read-only check (default queue)."""

from orchestrator.reconcile import periodic
from orchestrator.reconcile.cleanup import EndOrphanRows, RemoveOrphans
from tasks.app import app
from tasks.base import step_task

remove_cpe_orphans = step_task(app, "tasks.genieacs.remove_orphans", RemoveOrphans("genieacs"))
remove_service_orphans = step_task(app, "tasks.access.remove_orphans", RemoveOrphans("onos"))
release_address_orphans = step_task(app, "tasks.netbox.release_orphans", RemoveOrphans("netbox"))
remove_account_orphans = step_task(app, "tasks.radius.remove_orphans", RemoveOrphans("radius"))
end_orphan_rows = step_task(app, "tasks.database.end_orphans", EndOrphanRows())


@app.task(name="tasks.reconcile.check")
def check() -> dict[str, int]:
    """Read-only: counts to the log and /metrics. Removal is an operator's call (--fix)."""
    return periodic.run()

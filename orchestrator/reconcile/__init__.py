"""Orphan reconciliation: what carries our markers in some system while no workflow owns it,
and what a live subscriber should hold somewhere but does not.

- ``markers``: how to recognise what we wrote (NetBox keys, RADIUS ownership rows, GenieACS
  tags and task keys, ONOS services on ports our intents name), and which step made it;
- ``inventory``: reading those from each system, in bulk;
- ``ownership``: what our database says is owned (live subscribers, workflows in flight);
- ``check``: the comparison, read-only, giving a :class:`Report`;
- ``cleanup``: the steps of the ``cleanup_orphans`` workflow, each removing an orphan with the
  undo of the step that made it (one concept in one place);
- ``fix``: turning a report into cleanup workflows;
- ``periodic``: the scheduled read-only check (log and metrics); ``cli``: ``orchestrator
  reconcile``.
"""

from orchestrator.reconcile.findings import Missing, Orphan, Report

__all__ = ["Missing", "Orphan", "Report"]

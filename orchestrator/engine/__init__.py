"""The saga engine: one package decides everything about a workflow.

- ``events``: the event kinds and the append-only log;
- ``rows``: creating, locking and finding workflows, and the clock they are judged by;
- ``leases``: which copy of a message may act;
- ``planning``: what may run or be undone next, from the dependency graph;
- ``delivery``: what a delivered message should do (one :class:`Direction` per half);
- ``failures``: retry or give up, and after how long;
- ``transitions``: the only functions that change a status;
- ``saga``: the decisions the task layer asks for, each returning what to publish.
"""

from orchestrator.engine.delivery import BACKWARD, FORWARD, Claim, Direction
from orchestrator.engine.events import EventKind, record_event
from orchestrator.engine.failures import backoff, classify, given_back
from orchestrator.engine.rows import (
    add_claims,
    db_now,
    definition_of,
    lock_workflow,
    new_workflow,
    release_claims,
    utcnow,
)
from orchestrator.engine.saga import (
    Claimed,
    ClaimOutcome,
    Dispatch,
    FailureOutcome,
    claim,
    fail_unclaimable,
    held,
    record_failure,
    record_success,
    relock,
    retry,
    start,
    start_rollback,
    sweep,
)
from orchestrator.engine.transitions import request_cancel, set_workflow_status

__all__ = [
    "BACKWARD",
    "FORWARD",
    "Claim",
    "ClaimOutcome",
    "Claimed",
    "Direction",
    "Dispatch",
    "EventKind",
    "FailureOutcome",
    "add_claims",
    "backoff",
    "claim",
    "classify",
    "db_now",
    "definition_of",
    "fail_unclaimable",
    "given_back",
    "held",
    "lock_workflow",
    "new_workflow",
    "record_event",
    "record_failure",
    "record_success",
    "release_claims",
    "relock",
    "request_cancel",
    "retry",
    "set_workflow_status",
    "start",
    "start_rollback",
    "sweep",
    "utcnow",
]

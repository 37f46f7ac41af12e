"""Leases: which copy of a step's message may act, and for how long.

Celery publishes the rest of a chain before it acks, and Redis redelivers unacknowledged
messages, so the same step can arrive twice, even while its first copy still runs. The step row
names the holder of its lease and when it runs out; a copy that finds a live lease of a living
holder steps aside, one that finds it expired (or its holder certainly dead) takes over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.models import StepStatus, WorkflowStep

#: Whether the process named by a lease owner is known to be dead (tasks/holder.py knows how
#: to tell on this host; the engine only asks).
HolderGone = Callable[[str | None], bool]


@dataclass(frozen=True)
class Lease:
    owner: str
    seconds: float


def lease_is_live(step: WorkflowStep, now: datetime) -> bool:
    return step.lease_expires_at is not None and step.lease_expires_at > now


def in_flight(step: WorkflowStep, now: datetime, holder_gone: HolderGone) -> bool:
    """Whether an attempt (forward or undo) of the step may still be acting right now."""
    return (
        step.status in (StepStatus.RUNNING, StepStatus.COMPENSATING)
        and lease_is_live(step, now)
        and not holder_gone(step.lease_owner)
    )


def held_by_another(
    step: WorkflowStep, status: StepStatus, lease: Lease, now: datetime, holder_gone: HolderGone
) -> bool:
    """Whether another living holder has the step leased in ``status``."""
    return (
        step.status == status
        and step.lease_owner != lease.owner
        and in_flight(step, now, holder_gone)
    )


def take_lease(step: WorkflowStep, lease: Lease, now: datetime) -> None:
    step.lease_owner = lease.owner
    step.lease_expires_at = now + timedelta(seconds=lease.seconds)


def release_lease(step: WorkflowStep) -> None:
    step.lease_owner = None
    step.lease_expires_at = None

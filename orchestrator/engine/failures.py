"""How a failed attempt is judged: retried (after how long) or given up."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from orchestrator.config import get_settings
from orchestrator.errors import AttemptTimedOut, IntegrationError, SlotsBusy, VaultError


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: half fixed, half random, capped."""
    settings = get_settings()
    ceiling = min(settings.retry_backoff_max, settings.retry_backoff_base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def given_back(exc: BaseException) -> bool:
    """Whether the attempt never reached its system and so does not count as one: a wait for
    a concurrency slot that could not end in time (work beyond a limit waits, never fails)."""
    return isinstance(exc, SlotsBusy)


def classify(exc: BaseException) -> tuple[bool, dict[str, Any]]:
    """(retryable, error record) for an exception raised by a step or compensation."""
    if isinstance(exc, IntegrationError):
        return exc.retryable, exc.to_dict()
    if isinstance(exc, AttemptTimedOut):
        # The call may or may not have taken effect; a retry finds out through the intent.
        return True, {"type": "Timeout", "message": "attempt exceeded its time limit"}
    if isinstance(exc, OperationalError):
        return True, {"type": "DatabaseUnavailable", "message": str(exc.orig)[:500]}
    if isinstance(exc, IntegrityError):
        return False, {"type": "Conflict", "message": str(exc.orig).split("\n")[0][:500]}
    if isinstance(exc, VaultError):
        return False, {"type": "VaultError", "message": str(exc)}
    # Anything else is a defect: retrying would repeat it, so fail the step and compensate.
    return False, {"type": type(exc).__name__, "message": str(exc)[:500]}

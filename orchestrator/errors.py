"""One error hierarchy for the whole orchestrator.

Integration clients raise :class:`IntegrationError` subclasses that say *how* a failure should be
treated (retry, give up, or "already gone"), not *where* it happened: the engine decides retries
from the class alone, never from a message string.
"""

from __future__ import annotations

from typing import Any


class OrchestratorError(Exception):
    """Root of every error the orchestrator raises on purpose."""


class ValidationError(OrchestratorError):
    """Raised when input is invalid; ``fields`` maps a field name to its reasons."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class ConflictError(OrchestratorError):
    """Raised when a request collides with existing state (a username or serial in use).

    ``fields`` maps a field name to its reasons when the conflict is about given fields.
    """

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class IdempotencyMismatch(ConflictError):
    """Raised when an Idempotency-Key is reused with a different request body."""


class PlanConflict(ConflictError):
    """Raised when a plan clashes with another (a name or RADIUS group in use) or is in use."""


class NotFound(OrchestratorError):
    """Raised when a domain object does not exist (or belongs to another tenant)."""


class InvalidTransition(OrchestratorError):
    """Raised when an operation is not allowed in the workflow's current state."""


class DefinitionError(OrchestratorError):
    """Raised when a workflow definition is inconsistent, or a workflow names a type or version
    that this code does not know."""


class VaultError(OrchestratorError):
    """Raised when secrets cannot be sealed or opened (no key, wrong key, tampered data)."""


class TracingUnavailable(OrchestratorError):
    """Raised when OTEL_EXPORTER_OTLP_ENDPOINT asks for traces but the ``tracing`` extra
    (OpenTelemetry's SDK and instrumentations) is not installed."""


class StepFailed(OrchestratorError):
    """Raised by a step task after its step failed for good, so Celery fires the on-error link."""


class WorkflowCancelled(OrchestratorError):
    """Raised by a step task at a step boundary when an operator asked to cancel the workflow;
    like :class:`StepFailed` it fires the on-error link, which rolls the workflow back."""


class LeaseLost(OrchestratorError):
    """Raised when a step's lease ran out while it acted and another copy took the step over;
    that copy's result stands."""


class AttemptTimedOut(OrchestratorError):
    """Raised when an attempt ran past its time limit; its outcome is unknown, so it is retried
    through the intent it recorded."""


class IntegrationError(OrchestratorError):
    """Raised by a client of an external system; carries the system, the call and the response."""

    #: whether the engine may try the step again
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        operation: str,
        status: int | None = None,
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.system = system
        self.operation = operation
        self.status = status
        self.response = response

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "message": str(self),
            "system": self.system,
            "operation": self.operation,
            "status": self.status,
        }


class TransientError(IntegrationError):
    """Raised when a call failed in a way that may pass: connect errors, timeouts, 5xx, 429.

    The outcome of the call may be unknown (a timeout after the request was sent); callers retry
    only through a find-or-create that first looks for what an earlier attempt may have made.
    """

    retryable = True


class CallTimedOut(TransientError):
    """Raised when a call got no answer within the read timeout; its outcome is unknown. Not
    retried inside the client: a hung system would cost one full timeout per try."""


class SlotsBusy(TransientError):
    """Raised without calling when every one of the system's concurrency slots stayed taken for
    as long as the attempt could wait and still make the call in time. Work beyond a limit
    waits, it does not fail: the engine gives the attempt back (it does not count toward the
    step's attempts) and runs the step again after a short pause. Earlier calls of the same
    attempt may have acted; a step's calls find what an earlier attempt made, so running it
    again is safe, and attempts keep counting what the systems failed, not how busy they were.
    An undo waits the same way, for as long as the system stays that busy."""


class CircuitOpen(TransientError):
    """Raised without calling when the system's circuit breaker is open (it failed K times in a
    row): the call was not made, so nothing happened; the step retries after its backoff."""


class PermanentError(IntegrationError):
    """Raised when repeating the call cannot help: validation errors, conflicts, exhausted pools."""


class ResourceNotFound(PermanentError):
    """Raised when the addressed resource does not exist; compensations treat it as done."""

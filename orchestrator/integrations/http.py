"""HTTP plumbing shared by the REST clients: sessions with timeouts, error mapping, safe retries.

* Every request has a connect and a read timeout: ``requests`` has none by default, and a call that
  hangs forever holds a worker forever.
* Transport failures and status codes map to our error classes in one place
  (:func:`error_for_status`, :func:`transport_error`), so a client never decides by message text.
* :func:`retry_idempotent` retries only what is safe to repeat (GET, DELETE, set-like POSTs),
  and only quick failures (refused connections, 5xx, 429): a read timeout already cost the whole
  timeout, so it goes back to the step (and its backoff) instead of being repeated here. A POST
  that creates something is never retried here: its outcome may be unknown, and the step retries
  through a find-or-create instead.
* Every request of a session built with a ``system`` passes that system's circuit breaker
  (:mod:`orchestrator.integrations.circuit`) and holds one of its concurrency slots while it
  runs (:mod:`orchestrator.integrations.concurrency`), at the adapter, so pynetbox's calls do
  too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from orchestrator.config import get_settings
from orchestrator.errors import (
    CallTimedOut,
    CircuitOpen,
    IntegrationError,
    PermanentError,
    ResourceNotFound,
    SlotsBusy,
    TransientError,
)
from orchestrator.integrations.circuit import CircuitBreaker
from orchestrator.integrations.concurrency import ConcurrencyLimit

log = logging.getLogger(__name__)

T = TypeVar("T")

#: statuses worth trying again: the server may answer differently in a moment
RETRYABLE_STATUSES = frozenset({408, 425, 429})
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Timeouts:
    connect: float = 3.05
    read: float = 10.0

    @property
    def pair(self) -> tuple[float, float]:
        return (self.connect, self.read)


@dataclass(frozen=True)
class RetryPolicy:
    """How often an idempotent call is tried; the default spends about 1 s waiting in all."""

    attempts: int = 3
    initial_wait: float = 0.3
    max_wait: float = 1.0


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request sent through the session our timeouts unless the call sets its own,
    and passes it through the system's circuit breaker (when there is one)."""

    def __init__(
        self,
        timeouts: Timeouts,
        breaker: CircuitBreaker | None = None,
        healthy_statuses: frozenset[int] = frozenset(),
        limit: ConcurrencyLimit | None = None,
    ) -> None:
        # max_retries=0: urllib3 must not resend anything behind our back (a POST in particular)
        size = get_settings().http_pool_size
        super().__init__(max_retries=0, pool_maxsize=size)
        self._timeouts = timeouts
        self._breaker = breaker
        self._healthy = healthy_statuses
        self._limit = limit

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeouts.pair
        probe = False
        if self._breaker is not None:
            # An open circuit fails at once, without waiting for (or taking) a slot.
            probe = self._breaker.before_call(f"{request.method} {request.path_url.split('?')[0]}")
        try:
            with self._limit.slot() if self._limit is not None else nullcontext():
                return self._send(request, **kwargs)
        except SlotsBusy:
            if probe and self._breaker is not None:
                self._breaker.abandon_probe()
            raise

    def _send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self._breaker is None:
            return super().send(request, **kwargs)
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException:
            self._breaker.record_failure()
            raise
        if response.status_code >= 500 and response.status_code not in self._healthy:
            self._breaker.record_failure()
        else:
            self._breaker.record_success()
        return response


def build_session(
    timeouts: Timeouts,
    *,
    user_agent: str = "isp-orchestrator",
    system: str | None = None,
    healthy_statuses: frozenset[int] = frozenset(),
) -> requests.Session:
    """A session with our timeouts; with ``system``, behind that system's circuit breaker.

    ``healthy_statuses``: 5xx answers that say nothing about the system's health (GenieACS's
    503 "Device is in session" is about one device), so they do not count as failures.
    """
    session = requests.Session()
    breaker = CircuitBreaker.for_system(system) if system else None
    # A slot lapses a little after the longest a call can take (a dead worker's is freed).
    limit = (
        ConcurrencyLimit.for_system(system, timeouts.connect + timeouts.read + 5.0)
        if system
        else None
    )
    adapter = _TimeoutAdapter(timeouts, breaker, healthy_statuses, limit)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def transport_error(system: str, operation: str, exc: requests.RequestException) -> TransientError:
    """A request that got no HTTP answer: refused, reset, timed out. Its outcome is unknown."""
    timed_out = isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectTimeout)
    kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
    cls = CallTimedOut if timed_out else TransientError
    # the exception's own text names only the URL; bodies (which may hold secrets) never appear
    return cls(
        f"{system} {operation}: request {kind} without an answer ({type(exc).__name__})",
        system=system,
        operation=operation,
    )


def error_class(status: int) -> type[IntegrationError]:
    if status >= 500 or status in RETRYABLE_STATUSES:
        return TransientError
    if status == 404:
        return ResourceNotFound
    return PermanentError


def error_for_status(
    system: str,
    operation: str,
    response: requests.Response,
    *,
    secrets: Iterable[str] = (),
    missing_means_gone: bool = False,
) -> IntegrationError:
    """The error for an unwanted status.

    ``missing_means_gone`` says the URL names one resource (a task, an address), so a 404 means
    it is gone: ResourceNotFound, which compensations take as done. Elsewhere (a collection, a
    route) a 404 means a wrong URL, and must not pass for "already done": PermanentError.
    """
    excerpt = redact(response.text[:EXCERPT_CHARS], secrets).strip()
    reason = response.reason or ""
    message = f"{system} {operation}: HTTP {response.status_code} {reason}".rstrip()
    if excerpt:
        message = f"{message}: {excerpt}"
    cls = error_class(response.status_code)
    if cls is ResourceNotFound and not missing_means_gone:
        cls = PermanentError
    return cls(
        message,
        system=system,
        operation=operation,
        status=response.status_code,
        response=excerpt,
    )


def _quick_transient(exc: BaseException) -> bool:
    """A transient failure worth a second try at once: not a timeout (it would cost the whole
    timeout again) and not an open circuit (the call was not even made)."""
    return isinstance(exc, TransientError) and not isinstance(
        exc, CallTimedOut | CircuitOpen | SlotsBusy
    )


def retry_idempotent(call: Callable[[], T], policy: RetryPolicy) -> T:
    """Runs ``call``, trying again on TransientError; only for calls that are safe to repeat."""
    retrying = Retrying(
        stop=stop_after_attempt(max(policy.attempts, 1)),
        wait=wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait),
        retry=retry_if_exception(_quick_transient),
        reraise=True,
    )
    return retrying(call)


class RestClient:
    """The shared part of the ONOS and GenieACS clients: base URL, session, mapping, retries."""

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        timeouts: Timeouts,
        retry: RetryPolicy,
        auth: tuple[str, str] | None = None,
        secrets: Iterable[str] = (),
        healthy_statuses: frozenset[int] = frozenset(),
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.session = build_session(timeouts, system=system, healthy_statuses=healthy_statuses)
        # kept on the session, never in a message: requests puts auth in a header only
        self.session.auth = auth
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(system={self.system!r}, base_url={self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        ok: Iterable[int] = (200,),
        idempotent: bool,
        missing_means_gone: bool = False,
        secrets: Iterable[str] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """Sends one request; ``idempotent`` says whether it may be retried on a transient error.

        ``missing_means_gone``: see :func:`error_for_status`.
        """
        accepted = frozenset(ok)
        hidden = (*self._secrets, *secrets)

        def once() -> requests.Response:
            try:
                response = self.session.request(method, self.base_url + path, **kwargs)
            except requests.RequestException as exc:
                log.warning("%s %s: %s", self.system, operation, type(exc).__name__)
                raise transport_error(self.system, operation, exc) from exc
            log.debug("%s %s: HTTP %s", self.system, operation, response.status_code)
            if response.status_code not in accepted:
                raise error_for_status(
                    self.system,
                    operation,
                    response,
                    secrets=hidden,
                    missing_means_gone=missing_means_gone,
                )
            return response

        return retry_idempotent(once, self.retry) if idempotent else once()

    def close(self) -> None:
        self.session.close()

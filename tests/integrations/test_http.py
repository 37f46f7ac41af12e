"""The shared HTTP plumbing: status mapping, redaction, retries only where safe, timeouts."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from orchestrator.errors import (
    IntegrationError,
    PermanentError,
    ResourceNotFound,
    TransientError,
)
from orchestrator.integrations.http import (
    RestClient,
    RetryPolicy,
    Timeouts,
    error_class,
    error_for_status,
    retry_idempotent,
)

FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.002)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (429, TransientError),
        (408, TransientError),
        (400, PermanentError),
        (401, PermanentError),
        (403, PermanentError),
        (409, PermanentError),
        (422, PermanentError),
        (404, ResourceNotFound),
    ],
)
def test_status_classes(status: int, expected: type[IntegrationError]) -> None:
    assert error_class(status) is expected


def _response(status: int, text: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = "Whatever"
    response._content = text.encode()
    return response


def test_error_carries_system_operation_status_and_hides_secrets() -> None:
    error = error_for_status(
        "genieacs", "push", _response(400, "echo: hunter2 rejected"), secrets=["hunter2"]
    )
    assert isinstance(error, PermanentError)
    assert error.to_dict() == {
        "type": "PermanentError",
        "message": "genieacs push: HTTP 400 Whatever: echo: *** rejected",
        "system": "genieacs",
        "operation": "push",
        "status": 400,
    }
    assert "hunter2" not in str(error.response)


def test_a_404_means_gone_only_where_the_url_names_a_resource() -> None:
    response = _response(404, "No such device")
    assert type(error_for_status("genieacs", "tag", response)) is PermanentError
    gone = error_for_status("genieacs", "tag", response, missing_means_gone=True)
    assert type(gone) is ResourceNotFound


def test_retry_repeats_transient_errors_only() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("flaky", system="x", operation="y")
        return "ok"

    assert retry_idempotent(flaky, FAST_RETRY) == "ok"
    assert len(calls) == 3

    calls.clear()

    def refused() -> None:
        calls.append(1)
        raise PermanentError("no", system="x", operation="y")

    with pytest.raises(PermanentError):
        retry_idempotent(refused, FAST_RETRY)
    assert len(calls) == 1


def test_retry_gives_up_after_the_attempts() -> None:
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise TransientError("down", system="x", operation="y")

    with pytest.raises(TransientError):
        retry_idempotent(down, FAST_RETRY)
    assert len(calls) == 3


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts connections (the kernel does) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_read_timeout_applies_to_every_request(silent_server: str) -> None:
    client = RestClient(
        "onos",
        silent_server,
        timeouts=Timeouts(connect=1, read=0.2),
        retry=RetryPolicy(attempts=1),
    )
    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        client.request("GET", "/x", operation="probe", idempotent=True)
    assert time.monotonic() - started < 2
    assert raised.value.status is None
    assert "timed out" in str(raised.value)


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = RestClient(
        "onos", f"http://127.0.0.1:{port}", timeouts=Timeouts(), retry=RetryPolicy(attempts=1)
    )
    with pytest.raises(TransientError):
        client.request("GET", "/x", operation="probe", idempotent=True)


def test_repr_names_no_credentials() -> None:
    client = RestClient(
        "onos",
        "http://onos:8181",
        timeouts=Timeouts(),
        retry=RetryPolicy(),
        auth=("onos", "s3cr3t"),
    )
    assert "s3cr3t" not in repr(client)

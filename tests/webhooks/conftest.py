"""Fixtures of the webhook tests: an admin key, and a loopback receiver registered as an
endpoint of the test tenant (removed afterwards, so no other test's workflows reach it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import auth, make_key
from tests.support.receiver import Receiver

WEBHOOKS = "/api/v1/webhooks"
ALL_WORKFLOW_EVENTS = [
    "workflow.completed",
    "workflow.rolled_back",
    "workflow.compensated",
    "workflow.failed",
]
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="session")
def admin_key(tenant: str) -> str:
    return make_key(tenant, "admin")


@dataclass
class Endpoint:
    id: str
    location: str
    secret: str
    receiver: Receiver


def register(client: Any, admin_key: str, receiver: Receiver, events: list[str]) -> Endpoint:
    response = client.post(
        WEBHOOKS, json={"url": receiver.url, "events": events}, headers=auth(admin_key)
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Endpoint(body["id"], response.headers["Location"], body["secret"], receiver)


@pytest.fixture
def endpoint(client, admin_key) -> Iterator[Endpoint]:  # type: ignore[no-untyped-def]
    """A receiver answering 204, subscribed to every workflow event."""
    with Receiver(204) as receiver:
        registered = register(client, admin_key, receiver, ALL_WORKFLOW_EVENTS)
        yield registered
        client.delete(registered.location, headers=auth(admin_key))


@pytest.fixture(scope="session")
def readme_verify():  # type: ignore[no-untyped-def]
    """The verification recipe exactly as the README shows it."""
    text = README.read_text()
    block = re.search(r"```python\n(.*?def verify\(.*?)```", text, re.S)
    assert block, "the README shows no verification recipe"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)  # noqa: S102 - our own README, to test what it documents
    return namespace["verify"]

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from orchestrator import faults


@pytest.fixture(autouse=True)
def _no_leftover_faults() -> Iterator[None]:
    yield
    # Redis may be what a test took down.
    with contextlib.suppress(Exception):
        faults.clear()

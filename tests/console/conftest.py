"""Fixtures of the console tests: the app served over HTTP on a free port, one headless Chromium
for the whole session (Debian's, installed by scripts/browser.sh; Playwright never downloads
one), and keys of each role in two tenants."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.api.conftest import RecordingDispatcher
from tests.api.helpers import make_key

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
#: Screenshots an engineer looks at (and CI keeps): the list, a completed and a rolled-back one.
SCREENSHOTS = ROOT / "var" / "screenshots"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def console_url(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app (publishing to the test broker, for the session's worker) served over HTTP."""
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One Chromium for the session; each test gets its own context (cookies) from it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser.sh install (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, console_url):  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies) and page on the console's origin."""
    context = browser.new_context(base_url=console_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def console_viewer_key(tenant: str) -> str:
    return make_key(tenant, "viewer")


@pytest.fixture(scope="session")
def console_globex_key(tenant: str) -> str:
    return make_key("globex", "operator")


@pytest.fixture(scope="session")
def recording_app(database: str):  # type: ignore[no-untyped-def]
    """The app with a dispatcher that only records (API tests that need no worker)."""
    from webapp import create_app

    return create_app({"TESTING": True, "DISPATCHER": RecordingDispatcher()})


@pytest.fixture
def api(recording_app):  # type: ignore[no-untyped-def]
    return recording_app.test_client()

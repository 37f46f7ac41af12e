"""Test environment: real PostgreSQL, Redis, FreeRADIUS and Celery worker processes.

Everything runs beside a developer's `make run` without touching it: its own databases
(orchestrator_test, radius_test), its own Redis database (15), its own FreeRADIUS instance on
free ports. Settings come from the environment, so it is set here before anything reads it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"
# Two test sessions on one machine (two developers, or a developer and CI) must not share
# databases: TEST_NAMESPACE=x gives orchestrator_test_x, radius_test_x and var/test-x.
NAMESPACE = os.environ.get("TEST_NAMESPACE", "")
SUFFIX = f"_{NAMESPACE}" if NAMESPACE else ""
VAR = ROOT / "var" / (f"test-{NAMESPACE}" if NAMESPACE else "test")
ORCHESTRATOR_DB = f"orchestrator_test{SUFFIX}"
RADIUS_DB = f"radius_test{SUFFIX}"


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Every process of the session (this one, the workers) writes its metrics here; /metrics adds
# them up, as under gunicorn and Celery in production.
METRICS_DIR = VAR / "metrics"
shutil.rmtree(METRICS_DIR, ignore_errors=True)
METRICS_DIR.mkdir(parents=True)
os.environ.update(
    {
        "PROMETHEUS_MULTIPROC_DIR": str(METRICS_DIR),
        "DATABASE_URL": f"{PG}/{ORCHESTRATOR_DB}",
        "RADIUS_DATABASE_URL": f"{PG}/{RADIUS_DB}",
        # TEST_REDIS_DB keeps concurrent sessions' queues apart too.
        "BROKER_URL": f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}",
        # A fixed test key: it only ever protects throwaway test data.
        "ORCHESTRATOR_SECRET_KEY": "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdCE=",
        "ORCHESTRATOR_FAULT_INJECTION": "1",
        # A workflow type with two versions, for the test that deploys v2 mid-flight.
        "ORCHESTRATOR_WORKFLOW_MODULES": "tests.support.versioned_workflow",
        # Fast clocks: short backoff, short leases, a sweeper every second.
        "RETRY_BACKOFF_BASE": "0.2",
        "RETRY_BACKOFF_MAX": "1",
        "STEP_TIMEOUT_CAP": "4",
        "SWEEP_INTERVAL": "1",
        "STALL_SECONDS": "3",
        # Bulk jobs: a window small enough that a test sees rows wait their turn.
        "BULK_WINDOW": "20",
        # Webhooks: receivers on loopback, and a "day" of retries that passes in seconds.
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "WEBHOOK_BACKOFF_BASE": "0.2",
        "WEBHOOK_BACKOFF_MAX": "1",
        "WEBHOOK_RETRY_WINDOW": "4",
        "WEBHOOK_TIMEOUT": "2",
        "FREERADIUS_DIR": str(VAR / "freeradius"),
        "RADIUS_DB_NAME": RADIUS_DB,
    }
)
SIM_HTTP_PORT, SIM_GRPC_PORT = _free_tcp_port(), _free_tcp_port()
SIM_NAS_PORT = _free_udp_port()
os.environ.update(
    {
        # The simulators stand in for NetBox, ONOS, GenieACS and VOLTHA (tests/support).
        "SIMULATOR_URL": f"http://127.0.0.1:{SIM_HTTP_PORT}",
        "NETBOX_URL": f"http://127.0.0.1:{SIM_HTTP_PORT}/netbox",
        "ONOS_URL": f"http://127.0.0.1:{SIM_HTTP_PORT}",
        "GENIEACS_URL": f"http://127.0.0.1:{SIM_HTTP_PORT}/genieacs",
        "VOLTHA_ADDRESS": f"127.0.0.1:{SIM_GRPC_PORT}",
        # The simulated NAS answers Disconnect-Requests (RFC 5176) on a free UDP port.
        "NAS_ADDRESS": "127.0.0.1",
        "NAS_COA_PORT": str(SIM_NAS_PORT),
        "NAS_SECRET": "testing123",
        "NAS_TIMEOUT": "0.5",
        # A held request becomes a timeout quickly; the step's retries do the rest.
        "HTTP_READ_TIMEOUT": "1.5",
        # Breakers open as by default (3 failures) but close again quickly, so a test's
        # persistent fault never outlives the test by long (the `sim` fixture also closes them).
        "CIRCUIT_FAILURE_THRESHOLD": "3",
        "CIRCUIT_COOLDOWN_SECONDS": "5",
    }
)
os.environ.setdefault("RADIUS_AUTH_PORT", str(_free_udp_port()))
os.environ.setdefault("RADIUS_ACCT_PORT", str(_free_udp_port()))

from orchestrator import migrate  # noqa: E402 - after the environment is set
from orchestrator.apikeys import create_key, ensure_tenant  # noqa: E402
from orchestrator.db import transaction  # noqa: E402
from orchestrator.models import ServicePlan  # noqa: E402
from tests.support.plans import create_plan  # noqa: E402
from tests.support.processes import BeatProcess, WorkerProcess  # noqa: E402
from tests.support.simulator_process import SimulatorHandle, start_simulators  # noqa: E402


def _recreate_database(name: str) -> None:
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)


@pytest.fixture(scope="session")
def database() -> str:
    _recreate_database(ORCHESTRATOR_DB)
    migrate.upgrade()
    return os.environ["DATABASE_URL"]


@pytest.fixture(scope="session")
def radius_server(database: str) -> Iterator[tuple[str, int]]:
    """A private FreeRADIUS reading the test RADIUS database (schema loaded by the script)."""
    _recreate_database(RADIUS_DB)
    script = ROOT / "scripts" / "freeradius.sh"
    subprocess.run([str(script), "start"], check=True, cwd=ROOT)
    yield "127.0.0.1", int(os.environ["RADIUS_AUTH_PORT"])
    subprocess.run([str(script), "stop"], check=False, cwd=ROOT)


@pytest.fixture(scope="session")
def celery_app():  # type: ignore[no-untyped-def]
    from tasks.app import app

    return app


@pytest.fixture(scope="session")
def redis_clean() -> None:
    import redis

    redis.Redis.from_url(os.environ["BROKER_URL"]).flushdb()


@pytest.fixture(scope="session")
def simulators() -> Iterator[SimulatorHandle]:
    """One simulator process for the session, on the ports the settings point at."""
    handle = start_simulators(
        http_port=SIM_HTTP_PORT, grpc_port=SIM_GRPC_PORT, nas_port=SIM_NAS_PORT
    )
    yield handle
    handle.stop()


@pytest.fixture
def sim(simulators: SimulatorHandle) -> Iterator[SimulatorHandle]:
    """The session's simulators, reset to their seed for this test (and its faults cleared)."""
    from orchestrator import faults
    from orchestrator.integrations import circuit

    simulators.reset()
    circuit.reset_all()
    yield simulators
    with contextlib.suppress(Exception):
        faults.clear()


@pytest.fixture(scope="session")
def worker(database, radius_server, simulators, celery_app, redis_clean) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    beat = BeatProcess(log_path=VAR / "beat.log")
    process = WorkerProcess(app=celery_app, log_path=VAR / "worker.log", beat=beat)
    process.start()
    beat.start()
    yield process
    beat.stop()
    process.stop()


@pytest.fixture(scope="session")
def tenant(database: str) -> str:
    with transaction() as session:
        ensure_tenant(session, "acme", "ACME Fibre")
        ensure_tenant(session, "globex", "Globex Broadband")
    return "acme"


@pytest.fixture(scope="session")
def plan(tenant: str) -> ServicePlan:
    return create_plan(tenant, "fiber-300", download_mbps=300, upload_mbps=100)


@pytest.fixture(scope="session")
def operator_key(tenant: str) -> str:
    with transaction() as session:
        return create_key(session, tenant, "operator")[1]


@pytest.fixture(scope="session")
def app(database: str):  # type: ignore[no-untyped-def]
    from webapp import create_app

    return create_app({"TESTING": True})


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    # the call phase's outcome, for the check below: a test that failed is not judged again
    report = yield
    if report.when == "call":
        item.stash[CALL_PASSED] = report.passed
    return report


CALL_PASSED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that ran workflows on the worker: reconcile finds nothing its workflows
    left (see tests/support/left_behind.py)."""
    if "worker" not in request.fixturenames or request.node.get_closest_marker("leaves_behind"):
        yield
        return
    from tests.support.left_behind import left_behind_since, now

    request.getfixturevalue("worker")  # its database first
    started = now()
    yield
    if not request.node.stash.get(CALL_PASSED, False):
        return
    # what the test injected must not hide what is there (nor stall the workflows' ends)
    simulators = request.getfixturevalue("simulators")
    simulators.control("DELETE", "faults", expect=200)
    simulators.control("DELETE", "latency", expect=200)
    found = left_behind_since(started)
    assert not found, "reconcile finds what this test's workflows left:\n" + "\n".join(found)

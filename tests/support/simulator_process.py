"""Runs the simulators as a separate process on free ports, for tests.

``start_simulators()`` returns once ``GET /_sim/state`` answers (polled, never slept on), and
``stop()`` sends SIGTERM and waits for a clean exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class SimulatorError(RuntimeError):
    """Raised when the simulator process cannot be started or exits badly."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SimulatorHandle:
    http_url: str
    grpc_address: str
    process: subprocess.Popen[bytes]
    #: the NAS's RFC 5176 port (UDP), on 127.0.0.1
    nas_port: int
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    @property
    def netbox_url(self) -> str:
        return f"{self.http_url}/netbox"

    @property
    def onos_url(self) -> str:
        return self.http_url

    @property
    def genieacs_url(self) -> str:
        return f"{self.http_url}/genieacs"

    def control(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        """Calls ``/_sim/<path>``; checks the status when ``expect`` is given; returns the JSON."""
        response = self.session.request(
            method, f"{self.http_url}/_sim/{path}", json=body, timeout=10
        )
        if expect is not None and response.status_code != expect:
            raise SimulatorError(
                f"{method} /_sim/{path} -> {response.status_code}: {response.text[:300]}"
            )
        return response.json()

    def reset(self) -> dict[str, Any]:
        seed: dict[str, Any] = self.control("POST", "reset", expect=200)
        return seed

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.control("GET", "state", expect=200)
        return state

    def requests(self, system: str) -> list[dict[str, Any]]:
        response = self.session.get(
            f"{self.http_url}/_sim/requests", params={"system": system}, timeout=10
        )
        response.raise_for_status()
        journal: list[dict[str, Any]] = response.json()
        return journal

    def fault(self, system: str, match: str, mode: str, **extra: Any) -> dict[str, Any]:
        spec = {"system": system, "match": match, "mode": mode, **extra}
        fault: dict[str, Any] = self.control("POST", "faults", spec, expect=201)
        return fault

    def add_onu(self, serial: str, **extra: Any) -> dict[str, Any]:
        onu: dict[str, Any] = self.control("POST", "onus", {"serial": serial, **extra}, expect=201)
        return onu

    def add_cpe(self, serial: str, **extra: Any) -> dict[str, Any]:
        cpe: dict[str, Any] = self.control("POST", "cpes", {"serial": serial, **extra}, expect=201)
        return cpe

    def add_nas_session(self, username: str, **extra: Any) -> dict[str, Any]:
        body = {"username": username, **extra}
        session: dict[str, Any] = self.control("POST", "nas/sessions", body, expect=201)
        return session

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code (a kill after the timeout is an error)."""
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise SimulatorError("simulators did not stop on SIGTERM") from None
        return self.process.returncode


def start_simulators(
    *,
    hold_s: float | None = None,
    http_port: int | None = None,
    grpc_port: int | None = None,
    nas_port: int | None = None,
    demo: int = 0,
) -> SimulatorHandle:
    http_port, grpc_port = http_port or _free_port(), grpc_port or _free_port()
    # never the default 3799: a `make run` beside the tests has it
    nas_port = nas_port or _free_udp_port()
    args = [
        sys.executable,
        "-m",
        "simulators.server",
        "--host",
        "127.0.0.1",
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--nas-port",
        str(nas_port),
        "--log-level",
        "WARNING",
    ]
    if hold_s is not None:
        args += ["--hold-s", str(hold_s)]
    if demo:
        # a network of this many ONUs and CPEs from the start (a reset empties it)
        args += ["--demo", str(demo)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(args, cwd=REPO_ROOT, env=env)
    handle = SimulatorHandle(
        http_url=f"http://127.0.0.1:{http_port}",
        grpc_address=f"127.0.0.1:{grpc_port}",
        process=process,
        nas_port=nas_port,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise SimulatorError(f"simulators exited with {process.returncode} while starting")
        try:
            # a small answer: /_sim/state lists every device (megabytes for a --demo 20000)
            if handle.session.get(f"{handle.http_url}/_sim/faults", timeout=1).status_code == 200:
                return handle
        except (requests.ConnectionError, requests.Timeout):
            pass
        if time.monotonic() > deadline:
            handle.stop()
            raise SimulatorError("simulators did not become ready")
        # polling interval while the process imports and binds; readiness is the poll's answer
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sim_process() -> Iterator[SimulatorHandle]:
    """One simulator process per test module (starting one takes a few hundred ms)."""
    handle = start_simulators()
    yield handle
    assert handle.stop() == 0, "simulators did not exit cleanly"


@pytest.fixture
def sim(sim_process: SimulatorHandle) -> SimulatorHandle:
    """The module's simulators, reset to the seed for this test (and every breaker closed)."""
    from orchestrator.integrations import circuit

    sim_process.reset()
    circuit.reset_all()
    return sim_process

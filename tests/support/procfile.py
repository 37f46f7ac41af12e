"""The Procfile's own command lines, run as `make run` runs them (supervisor wrapper included).

A test that means "the worker of `make run`" starts it from here, so a flag changed in the
Procfile is the flag under test.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis
from celery import Celery
from kombu.exceptions import OperationalError

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
BIN = str(Path(sys.executable).parent)


def procfile_command(name: str, procfile: Path = PROCFILE) -> list[str]:
    for line in procfile.read_text().splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == name:
            return shlex.split(command)
    raise KeyError(f"no {name!r} line in {procfile}")


def answers_ping(app: Celery, hostname: str) -> bool:
    """Whether the worker consumes (it answers only then); a broker that is down is a no."""
    try:
        return bool(app.control.ping(destination=[hostname], timeout=0.5))
    except (OperationalError, redis.RedisError, OSError):
        return False


@dataclass
class SupervisedWorker:
    """The Procfile's `worker` line: scripts/supervise.py running `celery ... worker`."""

    app: Celery
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    hostname: str = ""
    process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        command = procfile_command("worker")
        # A name of its own, so pings reach this worker and nobody else's.
        at = command.index("--hostname")
        command[at + 1] = self.hostname
        return command

    def start(self, timeout: float = 60.0) -> None:
        self.hostname = f"broker-test-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            # As the Makefile runs honcho: the venv's programs first on PATH.
            env={
                **os.environ,
                "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                **self.env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, as honcho gives it, so a stop reaches every process in it.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"supervisor exited early; see {self.log_path}")
            if answers_ping(self.app, self.hostname):
                return
        raise RuntimeError(f"worker did not answer ping within {timeout}s; see {self.log_path}")

    def worker_pid(self) -> int | None:
        """The Celery worker's main process (the supervisor's child), or None between runs."""
        assert self.process is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        pids = [int(pid) for pid in out.stdout.split()]
        return pids[0] if pids else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

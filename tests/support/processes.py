"""Real Celery worker and beat processes for tests, started and stopped like an operator would.

Readiness is awaited through the broker (a worker answers ``ping`` only once it consumes), never
by sleeping a fixed time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from celery import Celery

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var" / "test"
CELERY = str(Path(sys.executable).with_name("celery"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}


@dataclass
class WorkerProcess:
    app: Celery
    log_path: Path
    concurrency: int = 4
    process: subprocess.Popen[bytes] | None = None
    hostname: str = field(default="")
    #: Environment beyond the test process's own (a new deploy's settings, say).
    env: dict[str, str] = field(default_factory=dict)
    #: The beat process started beside it (the sweeper's schedule), if any.
    beat: BeatProcess | None = None
    #: More command-line options (``-P threads``, ``-Q access,...``).
    extra_args: tuple[str, ...] = ()

    def start(self, timeout: float = 60.0) -> None:
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "tasks.app",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(self.concurrency),
                "--hostname",
                self.hostname,
                "--without-mingle",
                "--without-gossip",
                *self.extra_args,
            ],
            cwd=ROOT,
            env=_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so a kill reaches the pool children too.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log_path}")
            replies = self.app.control.ping(destination=[self.hostname], timeout=0.5)
            if replies:
                return
        raise RuntimeError(f"worker did not answer ping within {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def pool_pids(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(
            ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split() if int(p) != self.process.pid]


@dataclass
class BeatProcess:
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        schedule = self.log_path.with_suffix(".schedule")
        schedule.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [CELERY, "-A", "tasks.app", "beat", "--loglevel", "INFO", "--schedule", str(schedule)],
            cwd=ROOT,
            env=_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)


@dataclass
class WebProcess:
    """The API under gunicorn, as the Procfile runs it (one worker), on a free port."""

    log_path: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [GUNICORN, "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "webapp:create_app()"],
            cwd=ROOT,
            env=_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; see {self.log_path}")
            try:
                requests.get(f"{self.url}/healthz", timeout=5)  # any answer: it serves
                return
            except requests.ConnectionError:
                time.sleep(0.1)  # not listening yet; a connect attempt is the readiness probe
            except requests.Timeout:
                pass  # listening, still loading the app on a busy machine
        raise RuntimeError(f"gunicorn did not answer within {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

"""A broker restart must not kill the worker, and one dead process must not stop `make run`.

The worker here is the Procfile's, against a Redis of this test's own (free port, no
persistence) that the test kills and starts again while tasks run and while a message is
reserved but unacknowledged. Before the fix in tasks/app.py (BrokerConnection) the worker died
within two restarts with ``Unrecoverable error: AttributeError("'NoneType' object has no
attribute 'hostname'")`` whenever it had running acks_late tasks and a free slot (a BRPOP in
flight) and the pidbox's socket saw the broker go first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.support.broker_probe import PROBE_TASK
from tests.support.procfile import ROOT, SupervisedWorker, answers_ping
from tests.support.redis_server import RedisServer
from tests.support.workflows import wait_until

pytestmark = pytest.mark.slow

RESTARTS = 4
#: Long enough to be running across a restart, short enough to finish soon after it.
RUN_SECONDS = 3.0
DEADLINE = 30.0
NOTICE_DEADLINE = 90.0
SUPERVISE = [sys.executable, str(ROOT / "scripts" / "supervise.py")]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    wait_until(condition, DEADLINE, what)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker_app(broker: RedisServer) -> Celery:
    """A client of the test's broker: sends the probes, pings the worker."""
    return Celery("broker-restart-test", broker=broker.url)


@pytest.fixture
def supervised_worker(
    broker: RedisServer, broker_app: Celery, tmp_path: Path
) -> Iterator[SupervisedWorker]:
    modules = os.environ.get("ORCHESTRATOR_WORKFLOW_MODULES", "")
    worker = SupervisedWorker(
        app=broker_app,
        log_path=tmp_path / "worker.log",
        env={
            "BROKER_URL": broker.url,
            # The probe task, beside whatever the session registers.
            "ORCHESTRATOR_WORKFLOW_MODULES": ",".join(
                m for m in (modules, "tests.support.broker_probe") if m
            ),
        },
    )
    worker.start()
    yield worker
    worker.stop()


class Probes:
    """Probe tasks and the marker files they leave: `<id>.started`, then `<id>` once done."""

    def __init__(self, app: Celery, directory: Path) -> None:
        self.app = app
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def send(self, seconds: float, countdown: float | None = None) -> str:
        task_id = str(uuid.uuid4())
        marker = str(self.directory / task_id)
        self.app.send_task(
            PROBE_TASK, args=(marker, seconds), task_id=task_id, queue="saga", countdown=countdown
        )
        return task_id

    def started(self, task_id: str) -> bool:
        return (self.directory / f"{task_id}.started").exists()

    def done(self, task_id: str) -> bool:
        return (self.directory / task_id).exists()

    def all_done(self, task_ids: list[str]) -> Callable[[], bool]:
        return lambda: all(self.done(task_id) for task_id in task_ids)


def unacked_ids(broker: RedisServer) -> set[str]:
    """Task ids the worker holds delivered but unacknowledged (kombu's Redis ack emulation)."""
    try:
        payloads = broker.client().hvals("unacked")
    except redis.RedisError:
        return set()
    return {json.loads(payload)[0]["headers"]["id"] for payload in payloads}


def restart_with_work_in_flight(
    broker: RedisServer, worker: SupervisedWorker, probes: Probes, sig: signal.Signals
) -> list[str]:
    """Kill the broker while tasks run and one is reserved; start it again; the running ids."""
    # Two tasks running (acks_late: unacknowledged), with slots to spare so the worker also
    # waits in BRPOP, and one countdown task the worker holds reserved, unacknowledged.
    running = [probes.send(RUN_SECONDS), probes.send(RUN_SECONDS)]
    reserved = probes.send(0.0, countdown=600)
    wait_for(
        lambda: (
            all(probes.started(t) for t in running) and {*running, reserved} <= unacked_ids(broker)
        ),
        "the tasks to run and the countdown task to be reserved",
    )
    pid = worker.worker_pid()
    lost = worker.log().count("Connection to broker lost")
    broker.stop(sig)
    # A consumer whose socket saw no close learns of the loss from kombu's Redis health check
    # (every 25 s by default), so this wait allows more than one check interval.
    wait_until(
        lambda: (
            worker.log().count("Connection to broker lost") > lost or worker.worker_pid() != pid
        ),
        NOTICE_DEADLINE,
        "the worker to notice the broker is gone",
    )
    broker.start()
    return running


def test_worker_survives_broker_restarts_with_tasks_running_and_reserved(
    broker: RedisServer, broker_app: Celery, supervised_worker: SupervisedWorker, tmp_path: Path
) -> None:
    worker = supervised_worker
    pid = worker.worker_pid()
    assert pid is not None
    probes = Probes(broker_app, tmp_path / "probes")

    for restart in range(RESTARTS):
        # Given work in flight, when the broker dies (a crash, then a clean shutdown, in turn)
        # and comes back empty
        sig = signal.SIGKILL if restart % 2 == 0 else signal.SIGTERM
        running = restart_with_work_in_flight(broker, worker, probes, sig)

        # Then the same worker process lives on, consumes again, and finishes the running tasks
        assert worker.worker_pid() == pid, (
            f"the worker died on restart {restart + 1}; see {worker.log_path}"
        )
        wait_for(lambda: answers_ping(broker_app, worker.hostname), "the worker to consume")
        wait_for(probes.all_done(running), "the running tasks to finish")

    # And work sent after the restarts is done by it too
    fresh = [probes.send(0.1) for _ in range(8)]
    wait_for(probes.all_done(fresh), "the work sent after the restarts")
    assert worker.worker_pid() == pid
    assert "Unrecoverable error" not in worker.log()


def test_supervisor_starts_a_command_again_after_it_exits(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    child = f"open({str(starts)!r}, 'a').write('started\\n'); raise SystemExit(3)"
    backoff = ["--min-backoff", "0.05", "--max-backoff", "0.2"]
    supervisor = subprocess.Popen(
        [*SUPERVISE, *backoff, "--", sys.executable, "-c", child], stderr=subprocess.PIPE
    )
    try:
        wait_for(
            lambda: starts.exists() and starts.read_text().count("started") >= 3,
            "the command to be started three times",
        )
        assert supervisor.poll() is None
    finally:
        supervisor.send_signal(signal.SIGTERM)
        _, stderr = supervisor.communicate(timeout=10)
    assert b"exited with status 3" in stderr


def test_supervisor_stops_its_command_on_sigterm_and_does_not_restart_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    supervisor = subprocess.Popen([*SUPERVISE, "--", sys.executable, "-c", child])
    wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", "the command to start")
    child_pid = int(pid_file.read_text())

    # A signal to the supervisor alone (not its group) still reaches the command
    supervisor.send_signal(signal.SIGTERM)

    assert supervisor.wait(timeout=10) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)


def test_one_process_exiting_does_not_stop_the_others_under_honcho(tmp_path: Path) -> None:
    starts, keeper = tmp_path / "starts", tmp_path / "keeper"
    crasher = f"open({str(starts)!r}, 'a').write('started\\n'); raise SystemExit(1)"
    sleeper = f"import os, time; open({str(keeper)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    procfile = tmp_path / "Procfile"
    supervise = " ".join(SUPERVISE)
    procfile.write_text(
        f'crasher: {supervise} --min-backoff 0.05 --max-backoff 0.2 -- python -c "{crasher}"\n'
        f'keeper: {supervise} -- python -c "{sleeper}"\n'
    )
    honcho = subprocess.Popen(
        [str(Path(sys.executable).with_name("honcho")), "start", "-f", str(procfile), "-d", "."],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # Given the keeper running, when the crasher exits again and again
        wait_for(lambda: keeper.exists() and keeper.read_text() != "", "the keeper to start")
        keeper_pid = int(keeper.read_text())
        wait_for(
            lambda: starts.exists() and starts.read_text().count("started") >= 3,
            "the crasher to exit and be started again",
        )
        # Then honcho and the keeper run on
        assert honcho.poll() is None
        os.kill(keeper_pid, 0)
    finally:
        honcho.send_signal(signal.SIGTERM)
        try:
            honcho.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.communicate(timeout=10)

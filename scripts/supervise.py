#!/usr/bin/env python3
"""Run one command and start it again whenever it exits, waiting longer after each quick exit.

    python scripts/supervise.py [--name NAME] [--min-backoff S] [--max-backoff S] -- COMMAND...

Each line of the Procfile runs under this. honcho stops every process of `make run` as soon as
one of them exits, so without it one crash (a worker's "Unrecoverable error" when the broker
restarts, say) took the API, beat and the simulators down with it, and workflows in flight
stayed `running` until the next start. Here the crashed process alone comes back.

SIGTERM or SIGINT stops it: the signal goes to the command (honcho signals the whole process
group, so the command may see it twice; Celery, gunicorn and Flower take a repeat calmly), no
new start follows, and the command's exit status becomes ours.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType

# A run at least this long counts as healthy: the next crash starts again at the shortest wait.
STABLE_SECONDS = 30.0


class _Stop(Exception):
    """Raised by the signal handler to cut a backoff wait short."""


class Supervisor:
    def __init__(
        self, command: list[str], name: str, min_backoff: float, max_backoff: float
    ) -> None:
        self.command = command
        self.name = name
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping: signal.Signals | None = None
        self.waiting = False

    def log(self, message: str) -> None:
        print(f"supervise[{self.name}]: {message}", file=sys.stderr, flush=True)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        first = self.stopping is None
        self.stopping = signal.Signals(signum)
        if first:
            self.log(f"{self.stopping.name} received; stopping, no restart")
        if self.child is not None and self.child.poll() is None:
            # Forwarded even though honcho signals the group: `kill <our pid>` must stop it too.
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signum)
        if self.waiting:
            raise _Stop

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.on_signal)
        backoff = self.min_backoff
        returncode = 0
        while self.stopping is None:
            started = time.monotonic()
            try:
                self.child = subprocess.Popen(self.command)  # noqa: S603 - the Procfile's command
            except OSError as exc:
                # A command that cannot start at all is waited on and tried again like a crash.
                self.log(f"cannot start {self.command[0]}: {exc}")
                returncode = 127
            else:
                if self.stopping is not None:
                    # The signal came while the command was being started.
                    self.child.send_signal(self.stopping)
                returncode = self.child.wait()
            if self.stopping is not None:
                break
            ran = time.monotonic() - started
            if ran >= STABLE_SECONDS:
                backoff = self.min_backoff
            self.log(
                f"exited with status {returncode} after {ran:.1f}s; starting again in {backoff:g}s"
            )
            try:
                self.waiting = True
                if self.stopping is None:
                    time.sleep(backoff)
            except _Stop:
                break
            finally:
                self.waiting = False
            backoff = min(backoff * 2, self.max_backoff)
        if self.child is not None and self.child.poll() is None:
            returncode = self.child.wait()
        # A status the command was killed with reads as 128 + signal, as a shell reports it.
        return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", help="how log lines name the command (default: its program)")
    parser.add_argument("--min-backoff", type=float, default=1.0, metavar="SECONDS")
    parser.add_argument("--max-backoff", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    name = args.name or os.path.basename(command[0])
    return Supervisor(command, name, args.min_backoff, args.max_backoff).run()


if __name__ == "__main__":
    sys.exit(main())

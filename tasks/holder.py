"""Who holds a step's lease, and whether that holder is certainly gone.

A holder is named by its kernel (boot id), its PID namespace, its PID and the PID's start time.
Only a process in the same kernel and PID namespace can tell that a holder is gone (no such
PID, or the PID now belongs to a newer process); anywhere else the answer is "not known to be
gone", and the lease must run out instead. Hostnames are not trusted: containers share them.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path


@cache
def _namespace() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pid_ns = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return ""  # not Linux: never claim to know that a holder is gone
    return f"{boot}/{pid_ns}"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def current_holder(task_id: str) -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}|{_namespace()}|{pid}|{_start_time(pid)}|{task_id}"


def holder_is_gone(owner: str | None) -> bool:
    if not owner:
        return True
    parts = owner.split("|")
    if len(parts) != 5 or not _namespace() or parts[1] != _namespace():
        return False
    pid, started = parts[2], parts[3]
    return not pid.isdigit() or _start_time(int(pid)) != started

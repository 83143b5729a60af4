"""Which process owns something (a job in the history, a temporary file), and whether that process still runs.

A job names its owner by pid and a token (boot id + the process's start time from /proc), so a job of another
live process sharing the database is never taken for an interrupted one, even once a pid is reused.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

_BOOT_ID: list[str] = []  # read once
_OWNER_TOKENS: dict[int, str] = {}  # pid -> this process's token (a forked child gets its own)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0: nothing is sent). A zombie counts as alive."""
    if pid <= 0:
        return False
    if os.name != "posix":  # Windows has no harmless signal 0 (os.kill terminates): never take another's for dead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: a live process of another user
        return True
    return True


def proc_start(pid: int) -> str | None:
    """A running process's start time (clock ticks after boot) from /proc; None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no such process, or no /proc on this system
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name, in parentheses, may hold anything
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has finished; only its parent has not noticed
        return None
    return fields[19]


def boot_id() -> str:
    if not _BOOT_ID:
        try:
            _BOOT_ID.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        except OSError:
            _BOOT_ID.append("")
    return _BOOT_ID[0]


def owner() -> tuple[int, str]:
    """This process as a job owner: its pid and a token naming this very process (not a later one with its pid)."""
    pid = os.getpid()
    if pid not in _OWNER_TOKENS:
        start = proc_start(pid)
        _OWNER_TOKENS[pid] = f"{boot_id()}/{start}" if start is not None else f"random/{uuid.uuid4().hex}"
    return pid, _OWNER_TOKENS[pid]


def owner_alive(pid: int, token: str) -> bool:
    """Whether the process that started a job still runs."""
    me, mine = owner()
    if pid == me:
        return token == mine  # our pid but another token: a process before a restart that reused the pid
    if pid <= 0:
        return False
    if not token.startswith("random/"):
        start = proc_start(pid)
        return start is not None and token == f"{boot_id()}/{start}"
    return pid_alive(pid)  # no /proc where it was started (macOS): the pid alone tells

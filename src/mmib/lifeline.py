"""A stage process ends when the process that launched it ends.

Killing ``dvc repro`` (even with ``kill -9``) must not leave a stage
training on and writing outputs behind DVC's back. Two mechanisms:

- Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel signals this
  process when its parent exits. It is immediate, but it only sees the
  direct parent.
- A watchdog thread following the *launcher*: the nearest ancestor that is
  not a shell. DVC starts a stage as ``$SHELL -c "<cmd>"``; bash replaces
  itself with the command, but dash (``/bin/sh`` on Debian) stays in
  between, and when DVC is killed that shell lives on, waiting for us, so
  the parent-death signal never comes. The watchdog also covers systems
  without ``prctl`` (it checks twice a second).

The seed workers use :func:`die_with_parent` (their parent is the stage
process), so the whole tree goes: DVC, then the stage, then its workers.

The entry points bind before their heavy imports. What remains open is
Python's own start (a tenth of a second): a launcher killed then is not
seen, since the orphaned shell's new parent (init) looks like a launcher.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish", "busybox"})
POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Process:
    """A process identified across pid reuse: its pid and its start time (clock ticks since boot)."""

    pid: int
    started: int | None = None

    def alive(self) -> bool:
        info = _stat(self.pid)
        if info is None:  # no /proc (not Linux): the pid alone
            if Path("/proc").is_dir():
                return False
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        _ppid, state, started, _comm = info
        return state not in ("Z", "X") and (self.started is None or started == self.started)


def _stat(pid: int) -> tuple[int, str, int, str] | None:
    """(parent pid, state, start time, command name) from /proc, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19]), comm


def process(pid: int) -> Process:
    info = _stat(pid)
    return Process(pid, None if info is None else info[2])


def launcher() -> Process:
    """The nearest ancestor of this process that is not a shell (DVC, a script, a test)."""
    pid = os.getppid()
    for _ in range(64):  # a bounded walk up the tree
        info = _stat(pid)
        if info is None or info[3] not in SHELLS or info[0] == 0:
            break
        pid = info[0]
    return process(pid)


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel for SIGTERM when the parent exits (Linux; elsewhere a no-op).

    ``parent``: the pid the parent had when it started this process; if it
    already ended before the request was armed (a worker still importing
    when the stage is killed), end now. The initializer of the seed workers.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if parent is not None and os.getppid() != parent:
        _stop(Process(parent))


_bound: Process | None = None


def bind_to_launcher() -> Process:
    """End this process when its parent or its launcher ends; returns the launcher.

    Call it first thing in an entry point (a kill during the imports counts
    too); later calls return the same launcher.
    """
    global _bound
    if _bound is not None:
        return _bound
    parent = os.getppid()
    die_with_parent()
    owner = launcher()
    if os.getppid() != parent or not owner.alive():  # it died before the signal was armed
        _stop(owner)
    threading.Thread(target=_watch, args=(owner, parent), name="mmib-lifeline", daemon=True).start()
    _bound = owner
    return owner


def _watch(owner: Process, parent: int) -> None:
    while owner.alive() and os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    _stop(owner)


def _stop(owner: Process) -> None:
    print(f"process {os.getpid()}: the process that started it (pid {owner.pid}) has ended; stopping",
          file=sys.stderr, flush=True)
    os._exit(128 + signal.SIGTERM)  # from any thread, at once; the seed workers follow by their own signal

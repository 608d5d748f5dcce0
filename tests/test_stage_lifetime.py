"""A stage process dies with the `dvc repro` that launched it, even on kill -9 (issue 10 item 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# the launcher: starts a "stage" through `sh -c` as DVC does, prints its pid, then waits
LAUNCHER = textwrap.dedent("""
    import subprocess, sys, time
    stage = "from mmib import stages; stages._end_with_launcher(0.2); import time; time.sleep(120)"
    child = subprocess.Popen(f"PYTHONPATH={sys.argv[1]} {sys.executable} -c '{stage}'", shell=True)
    print(child.pid, flush=True)
    time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (dead, not yet reaped by init) counts as dead
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process-tree semantics of Linux")
def test_kill_9_of_the_launcher_ends_the_stage():
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(REPO / "src")], stdout=subprocess.PIPE, text=True)
    stage_pid = int(launcher.stdout.readline())
    time.sleep(3)  # the stage has imported mmib and armed itself
    assert _alive(stage_pid)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.time() + 10
    while _alive(stage_pid) and time.time() < deadline:
        time.sleep(0.1)
    alive = _alive(stage_pid)
    if alive:
        os.kill(stage_pid, signal.SIGKILL)
    assert not alive, "the stage outlived the process that launched it"

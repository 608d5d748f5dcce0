"""One pipeline run at a time per repository copy: the stage lock.

DVC releases its own repository lock while a stage's command runs
(``dvc.stage.run.unlocked_repo``), so a second ``dvc exp run`` started
meanwhile rewrites params.yaml under the first: the first run's next stage
then trains and logs with the second's params. Every stage entry point
therefore holds this lock for its whole run (``fcntl.flock`` on
``.dvc/tmp/mmib-stages.lock``; the kernel releases it when the process
dies, so a kill leaves no stale lock) and records in it who runs the
pipeline and with which params:

- a stage finding the lock held by a running stage refuses at once;
- under DVC (``DVC_STAGE`` set), a stage refuses when the record names
  another DVC process that is still alive (a run between two of its
  stages), and when it names this same DVC process with other params
  (params.yaml changed during this run, so its stages would mix params).

Stages run by hand (no DVC) only take the lock: editing params.yaml between
two hand-run stages is normal there. Queued and ``--temp`` experiments run
in their own copy of the repository, hence with their own lock: that is how
to run experiments in parallel (``dvc exp run --queue``, ``dvc queue start``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

from mmib.errors import InputError
from mmib.lifeline import Process

LOCK_NAME = "mmib-stages.lock"
PARALLEL_FIX = ("wait for it to finish; to run experiments side by side, queue them: "
                "`dvc exp run --queue -S ...`, then `dvc queue start -j N` (each runs in its own copy)")


def lock_path(root: str | os.PathLike = ".") -> Path:
    """Under ``.dvc/tmp`` (git-ignored by DVC) in a DVC repository, else in ``root`` itself."""
    root = Path(root)
    return root / ".dvc" / "tmp" / LOCK_NAME if (root / ".dvc").is_dir() else root / f".{LOCK_NAME}"


def params_fingerprint(params_path: str | os.PathLike) -> str:
    """A hash of the params file's values (not of its comments or layout)."""
    try:
        values = yaml.safe_load(Path(params_path).read_text())
    except (OSError, yaml.YAMLError):
        values = None  # the stage itself reports the unreadable file
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def exclusive_run(stage: str, params_path: str | os.PathLike, owner: Process, *,
                  under_dvc: bool | None = None, root: str | os.PathLike = ".") -> Iterator[None]:
    """Hold the repository's stage lock while the body runs; InputError when another run is in the way.

    ``owner`` is the process running the pipeline (:func:`mmib.lifeline.launcher`);
    ``under_dvc`` defaults to whether DVC started this stage.
    """
    if under_dvc is None:
        under_dvc = "DVC_STAGE" in os.environ
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refusal(path, f"another stage is running in this repository{_who(_read(fd))}; "
                                 "two pipeline runs in one workspace would mix their params and outputs",
                           PARALLEL_FIX) from None
        fingerprint = params_fingerprint(params_path)
        if under_dvc:
            _check_same_run(path, _read(fd), owner, fingerprint)
        _write(fd, {"owner_pid": owner.pid, "owner_started": owner.started, "under_dvc": under_dvc,
                    "params": fingerprint, "stage": stage, "experiment": os.environ.get("DVC_EXP_NAME"),
                    "pid": os.getpid(), "time": time.strftime("%Y-%m-%d %H:%M:%S")})
        yield
    finally:
        os.close(fd)  # releases the flock; the record stays for the run's next stage


def _check_same_run(path: Path, record: dict[str, Any], owner: Process, fingerprint: str) -> None:
    if not record.get("under_dvc") or not isinstance(record.get("owner_pid"), int):
        return  # hand-run stages before, or no readable record
    previous = Process(record["owner_pid"], record.get("owner_started"))
    if previous != owner and previous.alive():
        raise _refusal(path, f"another pipeline run is in progress in this repository{_who(record)}; "
                             "its next stages would read this run's params.yaml", PARALLEL_FIX)
    if previous == owner and record.get("params") != fingerprint:
        raise _refusal(path, "params.yaml changed while this pipeline run was in progress (after stage "
                             f"{record.get('stage')!r}), e.g. by a second `dvc exp run` started meanwhile; "
                             "going on would mix two sets of params in one run",
                       "run the experiments one after the other, or queue them: `dvc exp run --queue -S ...`, "
                       "then `dvc queue start -j N`; re-run this one when the workspace is free")


def _who(record: dict[str, Any]) -> str:
    if not record:
        return ""
    exp = f", experiment {record['experiment']!r}" if record.get("experiment") else ""
    return (f" (stage {record.get('stage')!r}, pid {record.get('pid')}, launched by pid "
            f"{record.get('owner_pid')}{exp}, since {record.get('time')})")


def _refusal(path: Path, problem: str, fix: str) -> InputError:
    return InputError(problem, file=str(path), fix=fix)


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    try:
        record = json.loads(data.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _write(fd: int, record: dict[str, Any]) -> None:
    data = json.dumps(record, sort_keys=True).encode()
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, data + b"\n")

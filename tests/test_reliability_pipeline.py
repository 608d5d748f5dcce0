"""Reliability of the pipeline itself (issue 10, items 1-6), through the real paths.

1. a changed data file re-runs preprocess (`dvc status` shows it; what DVC cannot see is refused);
2. the test suite does not read the workspace's params.yaml;
3. killing `dvc repro` kills the stage process and its seed workers;
4. two runs in one workspace cannot mix their params (the stage lock);
5. identical CPU runs write byte-identical model files;
6. loading a model state cannot run code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fresh_clone import REPO, clone_env, fresh_clone, run, tiny_dataset, tiny_params
from mmib.stages import paths, train as train_stage
from mmib.config import parse_params
from mmib.data.freshness import check_sources_unchanged
from mmib.errors import InputError
from mmib.lifeline import process
from mmib.state_io import check_plain, load_state, save_state
from shipped_params import read_workspace_params, shipped_params, write_workspace_params

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


# ---------------------------------------------------------------- helpers
def _stage(work: Path, name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A pipeline entry point, as DVC runs it (cwd = repository root)."""
    return subprocess.run([sys.executable, str(work / "pipeline" / f"{name}.py"), *args], cwd=work,
                          env={**clone_env(), **(env or {})}, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def tiny_repo(tmp_path: Path) -> Path:
    """A working directory with the pipeline scripts, tiny params and the tiny raw dataset (no git)."""
    for rel in ("pipeline", "src/mmib"):
        shutil.copytree(REPO / rel, tmp_path / rel, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / ".dvc").mkdir()
    tiny_dataset(tmp_path / "data" / "raw" / "tiny")
    write_workspace_params(tmp_path / "params.yaml", tiny_params())
    return tmp_path


def _edit_params(work: Path, **top) -> None:
    params = yaml.safe_load((work / "params.yaml").read_text())
    params.update(top)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- 1. data changes re-run preprocess
@pytest.mark.slow
def test_a_changed_data_file_makes_preprocess_stale_for_dvc(tmp_path):
    work, env = fresh_clone(tmp_path / "repo")
    run(["dvc", "repro", "preprocess@tiny"], work, env)
    assert "preprocess@tiny" not in run(["dvc", "status", "preprocess@tiny"], work, env)
    _flip_a_byte(work / "data" / "raw" / "tiny" / "a.npy")
    status = run(["dvc", "status", "preprocess@tiny"], work, env)
    assert "preprocess@tiny" in status and "data/raw" in status, status


def test_a_stage_refuses_data_changed_where_dvc_cannot_see(tiny_repo, monkeypatch):
    """MMIB_DATA_ROOT overrides params.yaml's data_root, which is all DVC knows of."""
    elsewhere = tiny_repo / "elsewhere"
    tiny_dataset(elsewhere / "tiny")
    env = {"MMIB_DATA_ROOT": str(elsewhere), "MMIB_TRACKING": "0"}
    assert _stage(tiny_repo, "preprocess", "tiny", env=env).returncode == 0
    params = read_workspace_params(tiny_repo / "params.yaml")
    monkeypatch.chdir(tiny_repo)
    monkeypatch.setenv("MMIB_DATA_ROOT", str(elsewhere))
    check_sources_unchanged("tiny", params)  # as preprocessed
    _flip_a_byte(elsewhere / "tiny" / "b.npy")
    with pytest.raises(InputError) as exc:
        check_sources_unchanged("tiny", params)
    msg = str(exc.value)
    assert "tiny/b.npy" in msg and "dvc repro -f preprocess@tiny" in msg
    out = _stage(tiny_repo, "baselines", "tiny", env=env)  # a stage that reads the processed data
    assert out.returncode == 2 and "changed since preprocess@tiny" in out.stderr, out.stderr
    assert not (tiny_repo / "metrics" / "baselines" / "tiny.json").exists()


# ---------------------------------------------------------------- 2. tests ignore the workspace params
PARAM_READING_TESTS = ["tests/test_ablations.py", "tests/test_config.py", "tests/test_experiments.py",
                       "tests/test_quality_switches.py", "tests/test_report.py", "tests/test_baselines.py",
                       "tests/test_methods_pipeline.py"]


@pytest.mark.slow
def test_the_suite_passes_after_an_experiment_changed_the_workspace_params(tmp_path):
    """`dvc exp run -S ...` leaves its params in the workspace; the tests must not care."""
    work, env = fresh_clone(tmp_path / "repo", params=shipped_params())  # HEAD: the shipped recipe
    _edit_params(work, alpha=0.3, beta=0.9, seeds=[7], method="msdib", datasets=["caltech_2v"])
    raw = yaml.safe_load((work / "params.yaml").read_text())  # the workspace: an experiment's params
    raw["calibrate"]["screening"] = "s1"
    raw["warmup"]["epochs"] = 0
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    out = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
               *PARAM_READING_TESTS], work, env)  # exit status 0: every test passed
    assert " passed" in out


# ---------------------------------------------------------------- 3. a killed dvc takes its stage along
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@LINUX
@pytest.mark.slow
@pytest.mark.parametrize("shell, when", [
    ("/bin/sh", "training"),   # dash stays between DVC and the stage
    ("/bin/bash", "training"),  # bash replaces itself with the stage
    ("/bin/sh", "importing"),  # killed while the stage still imports torch and the rest
])
def test_kill_9_on_dvc_repro_ends_the_stage_and_its_workers(tmp_path, shell, when):
    params = tiny_params()
    params["warmup"]["epochs"] = 100_000  # trains until killed
    work, env = fresh_clone(tmp_path / "repo", params=params)
    run(["dvc", "repro", "preprocess@tiny"], work, env)
    dvc = subprocess.Popen(["dvc", "repro", "warmup@tiny"], cwd=work, env={**env, "SHELL": shell,
                                                                        "MMIB_TRACKING": "0"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tree: list = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # the stage process (and, training, its two seed workers)
            pids = _descendants(dvc.pid)
            started = any("pipeline/warmup.py" in _cmdline(p) for p in pids)
            if started and when == "importing":
                time.sleep(0.5)  # past Python's start, within the imports (seconds)
                tree = [process(p) for p in _descendants(dvc.pid)]
                break
            if started and sum("spawn_main" in _cmdline(p) for p in pids) == 2:
                tree = [process(p) for p in pids]
                break
            time.sleep(0.05)
        assert tree, "the warm-up stage did not start"
        assert any("pipeline/warmup.py" in _cmdline(p.pid) for p in tree)
        os.kill(dvc.pid, signal.SIGKILL)
        dvc.wait()
        deadline = time.time() + 15
        while any(p.alive() for p in tree) and time.time() < deadline:
            time.sleep(0.2)
        survivors = [p.pid for p in tree if p.alive()]
        assert not survivors, f"still running after dvc was killed: {[_cmdline(p) for p in survivors]}"
        assert not (work / "models" / "tiny" / "warmup").exists()
    finally:
        for p in tree:
            if p.alive():
                os.kill(p.pid, signal.SIGKILL)
        if dvc.poll() is None:
            dvc.kill()


# ---------------------------------------------------------------- 4. one run at a time per repository
HOLDER = """
import sys, time
sys.path.insert(0, {src!r})
from mmib import lifeline, stage_lock
with stage_lock.exclusive_run("warmup@tiny", "params.yaml", lifeline.launcher(), under_dvc=False):
    print("locked", flush=True)
    time.sleep(60)
"""

LAUNCHER = """
import json, os, subprocess, sys
# a stand-in for DVC: runs each stage command through a shell, with DVC_STAGE set, on request
for line in sys.stdin:
    stage = line.strip()
    proc = subprocess.run(["/bin/sh", "-c", f"{sys.executable} pipeline/preprocess.py tiny"],
                          env={**os.environ, "DVC_STAGE": stage}, capture_output=True, text=True)
    print(json.dumps([proc.returncode, proc.stderr]), flush=True)
"""


class FakeDvc:
    """A long-lived stand-in for one `dvc repro` / `dvc exp run`, running stages on request."""

    def __init__(self, work: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=work, env=clone_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stage(self, name: str = "preprocess@tiny") -> tuple[int, str]:
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        code, err = json.loads(self.proc.stdout.readline())
        return code, err

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def test_a_stage_refuses_while_another_stage_runs(tiny_repo):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(src=str(tiny_repo / "src"))],
                              cwd=tiny_repo, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = _stage(tiny_repo, "preprocess", "tiny")
        assert out.returncode == 2, out.stderr
        assert "another stage is running" in out.stderr and "dvc exp run --queue" in out.stderr
        assert "warmup@tiny" in out.stderr  # names the stage in the way
        assert not (tiny_repo / "data" / "processed" / "tiny.npz").exists()
    finally:
        holder.kill()
        holder.wait()
    assert _stage(tiny_repo, "preprocess", "tiny").returncode == 0  # the kernel released the lock


def test_params_changed_during_a_dvc_run_stop_its_next_stage(tiny_repo):
    first = FakeDvc(tiny_repo)
    try:
        assert first.stage()[0] == 0
        _edit_params(tiny_repo, alpha=0.3)  # a second `dvc exp run -S alpha=0.3` started meanwhile
        code, err = first.stage("warmup@tiny")
        assert code == 2 and "params.yaml changed while this pipeline run was in progress" in err, err
        assert "dvc exp run --queue" in err and "dvc queue start" in err
    finally:
        first.close()


def test_a_second_dvc_run_is_refused_between_the_stages_of_the_first(tiny_repo):
    first, second = FakeDvc(tiny_repo), FakeDvc(tiny_repo)
    try:
        assert first.stage()[0] == 0
        code, err = second.stage()
        assert code == 2 and "another pipeline run is in progress" in err, err
        first.close()  # the first run is over: the workspace is free
        assert second.stage()[0] == 0
    finally:
        for run_ in (first, second):
            if run_.proc.poll() is None:
                run_.close()


def test_hand_run_stages_may_edit_params_between_runs(tiny_repo):
    assert _stage(tiny_repo, "preprocess", "tiny").returncode == 0
    _edit_params(tiny_repo, alpha=0.3)
    out = _stage(tiny_repo, "preprocess", "tiny")
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------- 5. byte-identical models
@pytest.fixture()
def processed_tiny(tiny_repo, monkeypatch):
    monkeypatch.chdir(tiny_repo)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    assert _stage(tiny_repo, "preprocess", "tiny").returncode == 0
    raw = tiny_params(seeds=[0])
    return parse_params(raw)


@pytest.mark.usefixtures("one_torch_thread")
def test_identical_cpu_runs_write_identical_model_files(processed_tiny, tiny_repo):
    runs = []
    for _ in range(2):
        for stage in ("warmup", "calibrate"):
            train_stage.train(stage, "tiny", processed_tiny)
        runs.append({p.relative_to(tiny_repo).as_posix(): p.read_bytes()
                     for p in sorted((tiny_repo / "models").rglob("*.pt"))})
    assert len(runs[0]) == 2 and runs[0] == runs[1]
    curves = pd.read_csv(tiny_repo / "metrics" / "tiny" / "warmup_curves.csv")  # long form
    timings = curves[curves["term"] == "epoch_seconds"]  # the timings live in the curves (and MLflow)
    assert len(timings) > 0 and set(timings["kind"]) == {"diagnostic"}


@pytest.mark.slow
def test_a_forced_warmup_rerun_leaves_calibration_cached(tmp_path):
    work, env = fresh_clone(tmp_path / "repo", params=tiny_params(seeds=[0]))
    env = {**env, "MMIB_TRACKING": "0"}
    run(["dvc", "repro", "calibrate@tiny"], work, env)
    before = (work / "models" / "tiny" / "warmup" / "seed0.pt").read_bytes()
    run(["dvc", "repro", "-f", "-s", "warmup@tiny"], work, env)
    assert (work / "models" / "tiny" / "warmup" / "seed0.pt").read_bytes() == before
    status = run(["dvc", "status", "calibrate@tiny"], work, env)
    assert "calibrate@tiny" not in status, status


# ---------------------------------------------------------------- 6. loading a state runs no code
class _Payload:
    """Unpickling this creates a file: what a malicious state would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_state_is_refused_without_running_its_code(processed_tiny, tiny_repo):
    marker = tiny_repo / "pwned"
    train_stage.train("warmup", "tiny", processed_tiny)
    train_stage.train("calibrate", "tiny", processed_tiny)
    path = paths.model_path("tiny", "calibrate", 0)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "history": _Payload(marker)}, path)  # as if pulled from a shared remote
    with pytest.raises(InputError, match="weights_only"):
        load_state(path, "calibrate@tiny")
    assert not marker.exists()
    out = _stage(tiny_repo, "evaluate", "tiny", env={"MMIB_TRACKING": "0"})
    assert out.returncode == 2 and "cannot read the model state safely" in out.stderr, out.stderr
    assert not marker.exists()


def test_states_hold_only_tensors_and_plain_values(tmp_path):
    check_plain({"net": {"w": torch.zeros(2)}, "h": {"loss": [1.0, 2.0]}, "dims": [3, 4], "x": None})
    for bad in ({"a": np.float64(1.0)}, {"a": np.zeros(2)}, {"a": {1, 2}}, {"a": [Path("x")]}):
        with pytest.raises(TypeError, match="state.a"):
            save_state(tmp_path / "s.pt", bad)
    assert not (tmp_path / "s.pt").exists()


def test_every_torch_load_is_weights_only():
    calls = [(p.relative_to(REPO).as_posix(), line.strip()) for d in ("src", "tests", "benchmarks", "pipeline")
             for p in (REPO / d).rglob("*.py") for line in p.read_text().splitlines()
             if re.search(r"torch\.load\(", line)]
    assert any(f == "src/mmib/state_io.py" for f, _ in calls)
    assert [c for c in calls if "weights_only=True" not in c[1]] == []

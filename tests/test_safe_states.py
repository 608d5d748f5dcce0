"""Saved model states: the same bytes for the same params, and loading never runs code (issue 10, items 5-6)."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import pytest
import torch

from mmib import stages
from mmib.errors import InputError
from test_protocol import DATASET, tiny_params, write_tiny_npz


@pytest.fixture()
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    write_tiny_npz(tmp_path, with_labels=True)
    return tmp_path


def test_a_forced_rerun_writes_the_same_bytes(workdir):
    """Wall-clock times stay out of states, so `dvc repro -f warmup@x` does not cascade into calibrate."""
    params = tiny_params()
    stages.train("warmup", DATASET, params)
    stages.train("calibrate", DATASET, params)
    first = {s: stages.model_path(DATASET, s, 0).read_bytes() for s in ("warmup", "calibrate")}
    stages.train("warmup", DATASET, params)
    stages.train("calibrate", DATASET, params)
    for stage, data in first.items():
        assert stages.model_path(DATASET, stage, 0).read_bytes() == data, stage
    state = torch.load(stages.model_path(DATASET, "calibrate", 0), weights_only=True)
    assert all("epoch_seconds" not in h for h in state["history"].values())


class _Payload:
    """Unpickling this object creates a file: what a malicious state would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_state_that_would_run_code_is_refused_and_runs_nothing(workdir):
    marker = workdir / "pwned"
    path = stages.model_path(DATASET, "warmup", 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "clib-v1", "net": {}, "payload": _Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(InputError, match="cannot read the model state") as info:
        stages._load_torch(path, f"warmup@{DATASET}")
    assert str(path) in str(info.value)
    assert not marker.exists(), "loading a state must not execute code"
    # the same file under the permissive loader would have run it: the test can fail
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_every_methods_state_loads_weights_only(workdir):
    params = tiny_params()
    stages.train("warmup", DATASET, params)
    stages.train("calibrate", DATASET, params)
    for stage in ("warmup", "calibrate"):
        state = stages._load_torch(stages.model_path(DATASET, stage, 0), f"{stage}@{DATASET}")
        assert state["trace"]["calibrate"] is None or isinstance(state["trace"]["calibrate"], torch.Tensor)

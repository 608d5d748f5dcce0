"""``seed_batching`` in the warm-up and calibration stages: the seeds dealt into stacked models in worker
processes give each seed the state it gets stacked alone, in the order of ``seeds``; the switch off, or
a recipe it cannot stack (MINE), trains one seed per process as before."""

from __future__ import annotations

import argparse
import importlib.util

import pytest

from fresh_clone import REPO, tiny_dataset, tiny_params
from shipped_params import write_workspace_params
from mmib.config import load_params
from mmib.methods import registry
from mmib.methods.clib.seed_batch import fit_warmup_batched
from mmib.methods.clib.seed_batch_calibration import fit_calibration_batched
from mmib.stages import seed_pool
from mmib.stages.paths import model_path
from mmib.stages.training_inputs import training_views
from mmib.state_io import load_state, save_state, state_bytes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    """The tiny dataset preprocessed in a workspace whose params switch ``seed_batching`` on (3 seeds)."""
    tiny_dataset(tmp_path / "data" / "raw" / "tiny")
    raw = tiny_params(seeds=[0, 1, 2], seed_batching=True)
    write_workspace_params(tmp_path / "params.yaml", raw)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    monkeypatch.delenv("MMIB_DATA_ROOT", raising=False)
    spec = importlib.util.spec_from_file_location("preprocess_stage", REPO / "pipeline" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._preprocess(argparse.Namespace(dataset="tiny", params="params.yaml", out=None)) == 0
    return load_params("params.yaml")


def test_stacked_warmup_stage_gives_each_seed_its_stacked_alone_state(workspace):
    params = workspace
    results = seed_pool.fit_all_seeds("warmup", "tiny", params)
    views, n_clusters = training_views("tiny")
    assert len(results) == 3
    for seed, (state, device, history) in zip(params.seeds, results):
        alone = fit_warmup_batched([registry.build(params, n_clusters, seed, progress=False)], views)[0]
        assert state["seed"] == seed and device == "cpu"
        assert state_bytes(state) == state_bytes(alone.state())
        assert len(history["epoch_seconds"]) == params.warmup.epochs


def test_a_recipe_that_cannot_stack_trains_one_seed_per_process(workspace, capsys):
    mine = workspace.warmup.model_copy(update={"preservation": "mine"})
    params = workspace.model_copy(update={"seeds": [0], "warmup": mine})
    (state, _, _), = seed_pool.fit_all_seeds("warmup", "tiny", params)
    assert "training one seed per process" in capsys.readouterr().out
    views, n_clusters = training_views("tiny")
    per_seed = registry.build(params, n_clusters, 0, progress=False).fit_warmup(views)
    assert state_bytes(state) == state_bytes(per_seed.state())


def test_the_switch_off_keeps_the_per_seed_path(workspace):
    params = workspace.model_copy(update={"seeds": [1], "seed_batching": False})
    (state, _, _), = seed_pool.fit_all_seeds("warmup", "tiny", params)
    views, n_clusters = training_views("tiny")
    per_seed = registry.build(params, n_clusters, 1, progress=False).fit_warmup(views)
    assert state_bytes(state) == state_bytes(per_seed.state())


def _warmed_up(params) -> None:
    """Every seed's warm-up state where the calibrate stage reads it (models/tiny/warmup/seed<k>.pt)."""
    views, n_clusters = training_views("tiny")
    models = fit_warmup_batched([registry.build(params, n_clusters, s, progress=False) for s in params.seeds], views)
    for model in models:
        save_state(model_path("tiny", "warmup", model.seed), model.state())


def _calibrated_alone(params, seed: int, stacked: bool):
    views, n_clusters = training_views("tiny")
    model = registry.build(params, n_clusters, seed, progress=False)
    model.load_state(load_state(model_path("tiny", "warmup", seed), "warmup@tiny"))
    return fit_calibration_batched([model], views)[0] if stacked else model.fit_calibration(views)


def test_stacked_calibration_stage_gives_each_seed_its_stacked_alone_state(workspace):
    params = workspace
    _warmed_up(params)
    results = seed_pool.fit_all_seeds("calibrate", "tiny", params)
    assert len(results) == 3
    for seed, (state, device, history) in zip(params.seeds, results):
        assert state["seed"] == seed and device == "cpu" and state["stages_done"] == ["warmup", "calibrate"]
        assert state_bytes(state) == state_bytes(_calibrated_alone(params, seed, stacked=True).state())
        assert len(history["epoch_seconds"]) == params.calibrate.epochs


def test_the_switch_off_keeps_the_per_seed_calibration(workspace):
    params = workspace.model_copy(update={"seeds": [1], "seed_batching": False})
    _warmed_up(params)
    (state, _, _), = seed_pool.fit_all_seeds("calibrate", "tiny", params)
    assert state_bytes(state) == state_bytes(_calibrated_alone(params, 1, stacked=False).state())


def test_a_seed_group_stacks_only_the_two_training_stages(workspace):
    with pytest.raises(ValueError, match="not 'evaluate'"):
        seed_pool.fit_seed_group("evaluate", "tiny", workspace.model_dump(), [0], [0])

"""End to end: `dvc repro`, then `dvc exp run -S alpha=...` and `-S beta=...`, in a temporary git repo.

A tiny user-format dataset and tiny params keep it to about a minute. It
checks what a user relies on: the warm-up is restored from the cache when
only alpha changes, re-run when beta changes, and MLflow holds the runs with
their params and tags in the repository's default SQLite store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from fresh_clone import fresh_clone
from fresh_clone import run as _run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, dict]:
    return fresh_clone(tmp_path_factory.mktemp("e2e") / "repo")


def _stage_ran(out: str, stage: str) -> bool:
    return f"Running stage '{stage}'" in out


def test_repro_then_alpha_then_beta(workspace):
    work, env = workspace
    out = _run(["dvc", "repro"], work, env)
    for stage in ("preprocess@tiny", "warmup@tiny", "calibrate@tiny", "evaluate@tiny", "summarize"):
        assert _stage_ran(out, stage), stage
    metrics = json.loads((work / "metrics" / "metrics.json").read_text())
    for key in ("acc", "nmi", "ari", "ece", "mean_confidence"):
        assert 0.0 <= metrics["tiny"][key]["mean"] <= 100.0
    for seed in (0, 1):
        assert (work / "models" / "tiny" / "warmup" / f"seed{seed}.pt").is_file()
        assert (work / "models" / "tiny" / "calibrate" / f"seed{seed}.pt").is_file()
    figures = {"reliability", "training_curves", "fusion_weights", "convergence", "screened", "tsne"}
    for name in figures:
        assert (work / "metrics" / "tiny" / "plots" / f"{name}.png").stat().st_size > 0, name
    details = json.loads((work / "metrics" / "details.json").read_text())  # not a DVC metrics file
    assert "hard_samples" in details["tiny"] and "hard_samples" not in metrics["tiny"]  # Table 5
    assert details["tiny"]["lowest_loss_seed"]["seed"] in (0, 1)
    # calibrate.confidence (seeds_and_ncuts): each seed's temperature, and the head's own ECE beside it
    evaluation = json.loads((work / "metrics" / "evaluate" / "tiny.json").read_text())
    assert all(0 < evaluation["per_seed"][f"seed{s}"]["temperature"] for s in (0, 1))
    assert {"temperature", "ece_head", "mean_confidence_head"} <= set(evaluation)
    # every figure is a `dvc plots` definition that renders (custom templates in .dvc/plots)
    shown = json.loads(_run(["dvc", "plots", "show", "--json"], work, env))
    rendered = {Path(k).name for k, v in shown["data"].items() if v}
    assert {"convergence.csv", "fusion_weights.csv", "screened.csv", "tsne.csv", "reliability.csv",
            "warmup_curves.csv", "calibrate_curves.csv"} <= rendered
    assert not shown.get("errors"), shown.get("errors")
    baseline = pd.read_csv(work / "metrics" / "tiny" / "assignments.csv")  # every seed's clusters, confidences
    chosen = evaluation["lowest_loss_seed"]["seed"]
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "baseline outputs"], work, env)

    out = _run(["dvc", "exp", "run", "-S", "alpha=0.3"], work, env)
    assert not _stage_ran(out, "warmup@tiny"), "alpha must not re-run the warm-up"
    assert not _stage_ran(out, "preprocess@tiny")
    assert _stage_ran(out, "calibrate@tiny") and _stage_ran(out, "evaluate@tiny")

    out = _run(["dvc", "exp", "run", "-S", "alpha=0.5", "-S", "beta=0.3"], work, env)
    assert _stage_ran(out, "warmup@tiny"), "beta must re-run the warm-up"

    shown = json.loads(_run(["dvc", "exp", "show", "--json"], work, env))
    assert shown, "dvc exp show lists the experiments"
    # `make show`: the baseline and both experiments within 120 columns (issue 13 item 8)
    table = _run(["make", "--no-print-directory", "show"], work, {**env, "COLUMNS": "1000"})
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 120, table
    assert "tiny.acc.mean" in table and "alpha" in table and "beta" in table and "…" not in table

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mmib")
    assert exp is not None and exp.artifact_location.startswith("file:")
    runs = client.search_runs([exp.experiment_id], max_results=200)
    by_stage: dict[str, list] = {}
    for run in runs:
        by_stage.setdefault(run.data.tags["stage"], []).append(run)
    assert len(by_stage["warmup"]) == 4  # 2 seeds x (repro, beta experiment)
    assert len(by_stage["calibrate"]) == 6  # 2 seeds x 3 runs
    evals = by_stage["evaluate"]
    assert sorted((r.data.params["alpha"], r.data.params["beta"]) for r in evals) == [
        ("0.3", "0.5"), ("0.5", "0.3"), ("0.5", "0.5")]
    for run in evals:
        assert run.data.tags["dataset"] == "tiny"
        assert {"acc_mean", "nmi_mean", "ece_mean", "acc_std"} <= set(run.data.metrics)
        assert "calibrate.losses.caliH" in run.data.params
    assert {r.data.tags["dvc_exp"] for r in evals} - {"workspace"}, "experiment names are tagged"
    artifacts = {f.path for d in ("plots", "metrics") for f in client.list_artifacts(evals[0].info.run_id, d)}
    assert {"plots/convergence.png", "plots/tsne.png", "plots/screened.png", "plots/fusion_weights.png",
            "metrics/convergence.csv"} <= artifacts
    assert not client.list_artifacts(evals[0].info.run_id, "state_dicts"), "the model replaces the raw states"
    # each evaluate run logs its lowest-loss seed as an MLflow model; only the default run registers it,
    # and the registered model predicts on the raw data what evaluate wrote for that seed
    assert all(r.data.tags["model_uri"].startswith("models:/") for r in evals)
    default = [r for r in evals if r.data.tags["dvc_exp"] == "workspace"]
    assert [(r.data.tags.get("registered_model"), r.data.tags["model_seed"]) for r in default] == [
        ("clib-tiny", str(chosen))]
    assert [str(v.version) for v in client.search_model_versions("name='clib-tiny'")] == ["1"]
    import mlflow
    import numpy as np

    from mmib.mlflow_model import views_frame

    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    raw = [np.load(work / "data" / "raw" / "tiny" / f"{v}.npy") for v in ("a", "b")]
    out = mlflow.pyfunc.load_model("models:/clib-tiny/1").predict(views_frame(raw))
    np.testing.assert_array_equal(out["cluster"], baseline[f"seed{chosen}_cluster"])
    np.testing.assert_allclose(out["confidence"], baseline[f"seed{chosen}_confidence"], rtol=1e-5)
    acc_steps = [m.step for m in client.get_metric_history(evals[0].info.run_id, "seed0.epoch_acc")]
    assert sorted(acc_steps) == [1, 2, 2, 3, 4]  # warm-up 1-2, calibration start 2, calibration 3-4

    # the collector: Table 5 of each run, and alpha x beta heatmaps of the three (alpha, beta) points
    out = _run([sys.executable, "-m", "mmib.experiments"], work, {**env, "PYTHONPATH": str(work / "src")})
    assert "Table 5" in (work / "metrics" / "ablations.md").read_text()
    assert len(list((work / "metrics" / "sweeps").glob("alpha_beta_tiny_*_acc.png"))) == 1
    warm = by_stage["warmup"][0]
    history = client.get_metric_history(warm.info.run_id, "loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1]
    assert warm.data.tags["seed"] in ("0", "1") and warm.data.tags["device"] == "cpu"

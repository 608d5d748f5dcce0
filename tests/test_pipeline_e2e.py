"""End to end: `dvc repro`, then `dvc exp run -S alpha=...` and `-S beta=...`, in a temporary git repo.

A tiny user-format dataset and tiny params keep it to about a minute. It
checks what a user relies on: the warm-up is restored from the cache when
only alpha changes, re-run when beta changes, and MLflow holds the runs with
their params and tags in the repository's default SQLite store.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from fresh_clone import fresh_clone
from fresh_clone import run as _run
from shipped_params import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, dict]:
    return fresh_clone(tmp_path_factory.mktemp("e2e") / "repo")


def _stage_ran(out: str, stage: str) -> bool:
    return f"Running stage '{stage}'" in out


def test_repro_then_alpha_then_beta(workspace):
    work, env = workspace
    # system metrics every 0.5 s (MLflow's default, 10 s, outlasts these tiny stages)
    out = _run(["dvc", "repro"], work, {**env, "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.5"})
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

    _check_mlflow_runs(work)
    _check_mlflow_model(work, baseline, chosen)

    # the collector: Table 5 of each run, and alpha x beta heatmaps of the three (alpha, beta) points
    out = _run([sys.executable, "-m", "mmib.experiments"], work, {**env, "PYTHONPATH": str(work / "src")})
    assert "Table 5" in (work / "metrics" / "ablations.md").read_text()
    assert len(list((work / "metrics" / "sweeps").glob("alpha_beta_tiny_*_acc.png"))) == 1


def _check_mlflow_model(work: Path, assignments: pd.DataFrame, chosen: int) -> None:
    """Issue 13 item 5: each evaluate run logs its lowest-loss seed as an MLflow model instead of the
    raw states; only the default run registers it, and the registered model predicts on the raw data
    what evaluate wrote for that seed."""
    import mlflow
    import numpy as np
    from mlflow import MlflowClient

    from mmib.mlflow_model import views_frame

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mmib")
    evals = [r for r in client.search_runs([exp.experiment_id], max_results=500)
             if r.data.tags.get("stage") == "evaluate" and "seed" not in r.data.tags]
    assert len(evals) == 3
    assert all(r.data.tags["model_uri"].startswith("models:/") for r in evals)
    for run in evals:  # the input as an MLflow dataset (the runs table's Dataset column), with labels
        (given,) = client.get_run(run.info.run_id).inputs.dataset_inputs
        assert given.dataset.name == "tiny" and given.dataset.source.endswith('data/processed/tiny.npz"}')
        assert {t.key: t.value for t in given.tags}["mlflow.data.context"] == "evaluation"
    default = [r for r in evals if r.data.tags["dvc_exp"] == "workspace"]
    assert [(r.data.tags.get("registered_model"), r.data.tags["model_seed"]) for r in default] == [
        ("clib-tiny", str(chosen))]
    assert [str(v.version) for v in client.search_model_versions("name='clib-tiny'")] == ["1"]
    os.chdir(work)  # MLflow reads the relative artifact location from the directory of mlflow.db
    try:
        assert not client.list_artifacts(default[0].info.run_id, "state_dicts"), "the model replaces the raw states"
        mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
        raw = [np.load(work / "data" / "raw" / "tiny" / f"{v}.npy") for v in ("a", "b")]
        out = mlflow.pyfunc.load_model("models:/clib-tiny/1").predict(views_frame(raw))
    finally:
        os.chdir(REPO)
    np.testing.assert_array_equal(out["cluster"], assignments[f"seed{chosen}_cluster"])
    np.testing.assert_allclose(out["confidence"], assignments[f"seed{chosen}_confidence"], rtol=1e-5)


def _check_mlflow_runs(work: Path) -> None:
    """Issue 13: one parent run per pipeline run, named after what it changed; a run per stage with
    the params it used, real durations and system metrics; a run per seed with the curves; artifacts
    stored relative to the repository."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mmib")
    assert exp is not None and exp.artifact_location == "mlruns"
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development" and exp.tags["mlflow.note.content"]
    runs = client.search_runs([exp.experiment_id], max_results=500)
    by_id = {r.info.run_id: r for r in runs}
    children: dict[str, list] = {}
    for run in runs:
        children.setdefault(run.data.tags.get("mlflow.parentRunId"), []).append(run)
        assert not run.info.artifact_uri.startswith(("/", "file:")), run.info.artifact_uri
        assert run.info.status == "FINISHED", run.info.run_name
    parents = {r.info.run_name: r for r in children[None]}
    alpha = [n for n in parents if n.endswith(": alpha=0.3")]
    beta = [n for n in parents if n.endswith(": beta=0.3")]
    assert len(parents) == 3 and len(alpha) == len(beta) == 1 and "workspace: baseline" in parents, sorted(parents)
    names = [alpha[0], beta[0], "workspace: baseline"]
    assert parents[alpha[0]].data.params["alpha"] == "0.3" and parents[beta[0]].data.params["beta"] == "0.3"
    assert "warmup.epochs" in parents["workspace: baseline"].data.params  # compare pipeline runs by params
    for name in names:
        assert parents[name].data.tags["stage"] == "pipeline"
        assert name.split(": ")[0] == parents[name].data.tags["dvc_exp"]  # DVC's experiment name, or workspace

    def stages_of(name: str) -> dict[str, object]:
        return {r.data.tags["stage"]: r for r in children[parents[name].info.run_id]}

    baseline = stages_of("workspace: baseline")
    assert {"warmup", "calibrate", "evaluate"} <= set(baseline)
    assert set(stages_of(names[0])) >= {"calibrate", "evaluate"} and "warmup" not in stages_of(names[0]), \
        "alpha re-runs calibrate and evaluate only"
    assert "warmup" in stages_of(names[1])
    warm = baseline["warmup"]
    assert warm.info.run_name == "warmup/tiny (baseline)"
    assert warm.info.end_time - warm.info.start_time > 1000  # open around the training of both seeds
    assert [k for k in warm.data.metrics if k.startswith("system/")], "system metrics of the stage"
    assert not [k for k in warm.data.params if k.split(".")[0] in ("msdib", "omib", "catalog", "report")]
    assert "alpha" not in warm.data.params and warm.data.params["warmup.epochs"] == "2"
    seeds = sorted(children[warm.info.run_id], key=lambda r: r.info.run_name)
    assert [r.info.run_name for r in seeds] == ["warmup/tiny/seed0 (baseline)", "warmup/tiny/seed1 (baseline)"]
    for seed_run in seeds:
        assert seed_run.data.tags["seed"] in ("0", "1") and seed_run.data.tags["device"] == "cpu"
        assert not [k for k in seed_run.data.metrics if k.startswith("final_")]
        assert "fusion_w/view0" in seed_run.data.metrics and "fusion_w/view1" in seed_run.data.metrics
        history = client.get_metric_history(seed_run.info.run_id, "loss")
        assert sorted(m.step for m in history) == [0, 1]
        assert seed_run.info.start_time >= warm.info.start_time and seed_run.info.end_time <= warm.info.end_time

    evals = [stages_of(n)["evaluate"] for n in names]
    assert sorted((r.data.params["alpha"], r.data.params["beta"]) for r in evals) == [
        ("0.3", "0.5"), ("0.5", "0.3"), ("0.5", "0.5")]
    for run in evals:
        assert run.data.tags["dataset"] == "tiny"
        assert {"acc_mean", "nmi_mean", "ece_mean", "acc_std"} <= set(run.data.metrics)
        assert "calibrate.losses.caliH" in run.data.params and "evaluate.ece_bins" in run.data.params
        assert not [k for k in run.data.params if k.split(".")[0] in ("msdib", "omib", "catalog", "report")]
        parent = by_id[run.data.tags["mlflow.parentRunId"]].data.metrics
        assert {"tiny.acc_mean", "tiny.seed_agreement_mean"} <= set(parent)  # on the parent too
    ev = baseline["evaluate"]
    os.chdir(work)  # MLflow reads the relative artifact location from the directory of mlflow.db
    try:
        artifacts = {f.path for d in ("plots", "metrics") for f in client.list_artifacts(ev.info.run_id, d)}
    finally:
        os.chdir(REPO)
    assert {"plots/convergence.png", "plots/tsne.png", "plots/screened.png", "plots/fusion_weights.png",
            "metrics/convergence.csv"} <= artifacts
    seed_evals = {r.data.tags["seed"]: r for r in children[ev.info.run_id]}
    assert set(seed_evals) == {"0", "1"}
    for seed_run in seed_evals.values():
        assert {"acc", "nmi", "ece", "epoch_acc", "epoch_nmi"} <= set(seed_run.data.metrics)  # overlay across seeds
    acc_steps = [m.step for m in client.get_metric_history(seed_evals["0"].info.run_id, "epoch_acc")]
    assert sorted(acc_steps) == [1, 2, 2, 3, 4]  # warm-up 1-2, calibration start 2, calibration 3-4

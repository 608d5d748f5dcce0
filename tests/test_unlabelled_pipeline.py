"""Unlabelled data finishes the pipeline (issue "Reliability", item 7).

Clustering unlabelled data is the main use: without labels, evaluate writes every sample's cluster
and confidence per seed (``metrics/<ds>/assignments.csv``), the label-free diagnostics (mean
confidence, cluster sizes, agreement between seeds, silhouette on the fused features), the
figures that need no labels and every output dvc.yaml declares, and skips ACC/NMI/ECE with a
note; baselines, summarize and report cope. With labels the assignments file is written too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fresh_clone import REPO, tiny_dataset, tiny_params
from shipped_params import write_workspace_params
from mmib.stages import baselines as baselines_stage
from mmib.stages import evaluate as evaluate_stage
from mmib.stages import report as report_stage
from mmib.stages import seed_pool
from mmib.stages import summarize as summarize_stage
from mmib.stages import train as train_stage
from mmib.config import load_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _preprocess(params_path: str = "params.yaml") -> None:
    spec = importlib.util.spec_from_file_location("preprocess_stage", REPO / "pipeline" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._preprocess(argparse.Namespace(dataset="tiny", params=params_path, out=None)) == 0


def _declared_evaluate_outputs() -> list[Path]:
    """Every path dvc.yaml's evaluate@<ds> promises (DVC fails a stage that does not write one)."""
    do = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluate"]["do"]
    paths = [next(iter(o)) if isinstance(o, dict) else o for o in do.get("outs", []) + do.get("plots", [])]
    return [Path(p.replace("${item}", "tiny")) for p in paths]


@pytest.fixture()
def unlabelled(tmp_path, monkeypatch):
    """A workspace with the tiny dataset's views only (no `labels:` in its catalog entry), trained."""
    tiny_dataset(tmp_path / "data" / "raw" / "tiny")
    raw = tiny_params()
    raw["warmup"]["epochs"] = raw["calibrate"]["epochs"] = 6  # enough for the blobs to come apart
    del raw["catalog"]["tiny"]["labels"]
    write_workspace_params(tmp_path / "params.yaml", raw)
    for rel in ("data/reference/paper_tables.csv", raw["report"]["benchmark"]):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    monkeypatch.delenv("MMIB_DATA_ROOT", raising=False)
    # the seeds one after the other in this process: the worker pool is tested elsewhere
    monkeypatch.setattr(train_stage, "fit_all_seeds", lambda stage, dataset, params, run=None: [
        seed_pool.fit_seed(stage, dataset, params.model_dump(), seed, i) for i, seed in enumerate(params.seeds)])
    _preprocess()
    params = load_params("params.yaml")
    for stage in ("warmup", "calibrate"):
        train_stage.train(stage, "tiny", params)
    return tmp_path, params, raw


def test_unlabelled_data_finishes_the_pipeline(unlabelled):
    work, params, _raw = unlabelled
    result = evaluate_stage.evaluate("tiny", params)
    assert result["labels"] is False and "ACC" in result["note"]
    assert not {"acc", "nmi", "ari", "ece", "per_seed", "hard_samples"} & set(result)
    free = result["label_free"]
    assert free["seed_agreement"]["n_pairs"] == 1 and -100 <= free["seed_agreement"]["ari"]["mean"] <= 100
    assert -1 <= free["silhouette"]["mean"] <= 1 and 0 < free["mean_confidence"]["mean"] <= 100
    assert sum(free["per_seed"]["seed0"]["cluster_sizes"]) == 60
    assignments = pd.read_csv(work / "metrics" / "tiny" / "assignments.csv")
    assert list(assignments.columns) == ["sample", "seed0_cluster", "seed0_confidence", "seed1_cluster",
                                         "seed1_confidence"]
    assert assignments["sample"].tolist() == list(range(60))
    assert assignments["seed0_cluster"].between(0, 2).all() and assignments["seed1_confidence"].between(0, 1).all()
    missing = [str(p) for p in _declared_evaluate_outputs() if not (work / p).exists()]
    assert not missing, f"evaluate did not write what dvc.yaml declares: {missing}"
    assert {"training_curves.png", "tsne.png", "convergence.png"} <= {p.name for p in (work / "metrics" / "tiny" / "plots").iterdir()}
    assert not (work / "metrics" / "tiny" / "plots" / "reliability.png").exists()  # needs labels

    baselines = baselines_stage.baselines("tiny", params)
    assert baselines["methods"] == {} and "no labels" in baselines["note"]
    summary = summarize_stage.summarize(params)
    assert summary["tiny"]["mean_confidence"]["mean"] == pytest.approx(free["mean_confidence"]["mean"])
    assert "acc" not in summary["tiny"]
    assert summary["tiny"]["seed_agreement"] == free["seed_agreement"]["nmi"]  # label-free: a `dvc exp show` column
    assert summary["tiny"]["silhouette"] == free["silhouette"]
    assert "tiny: no labels" in (work / "metrics" / "metrics.md").read_text()
    report_stage.report(params)
    assert "no labels" in (work / "metrics" / "report.md").read_text()


def test_labelled_data_gets_the_assignments_too(unlabelled):
    work, _params, raw = unlabelled
    raw["catalog"]["tiny"]["labels"] = "y.npy"  # the same views, now with labels: the models still apply
    write_workspace_params(work / "params.yaml", raw)
    _preprocess()
    result = evaluate_stage.evaluate("tiny", load_params("params.yaml"))
    assert result["labels"] is True and 0 <= result["acc"]["mean"] <= 100 and "note" not in result
    assert result["label_free"]["seed_agreement"]["n_pairs"] == 1
    summary = summarize_stage.summarize(load_params("params.yaml"))["tiny"]
    assert set(summary) == {"acc", "nmi", "ari", "ece", "mean_confidence", "seed_agreement"}
    assert summary["seed_agreement"] == result["label_free"]["seed_agreement"]["nmi"]
    assignments = pd.read_csv(work / "metrics" / "tiny" / "assignments.csv")
    assert len(assignments) == 60 and "seed1_cluster" in assignments
    assert (work / "metrics" / "tiny" / "plots" / "reliability.png").exists()
    assert json.loads((work / "metrics" / "evaluate" / "tiny.json").read_text())["per_seed"]["seed0"]["acc"] >= 0


def test_label_free_diagnostics_on_known_partitions():
    import numpy as np

    from mmib.label_free import assignments_frame, diagnostics

    blobs = np.repeat(np.eye(3) * 10, 4, axis=0)  # 3 tight groups of 4 samples
    proba = np.repeat(np.eye(3) * 0.8 + 0.2 / 3, 4, axis=0)  # each group its own cluster
    collapsed = np.tile([0.9, 0.05, 0.05], (12, 1))  # everything in cluster 0
    free = diagnostics({0: proba, 1: proba[:, [1, 2, 0]], 2: collapsed}, {0: blobs, 1: blobs, 2: blobs})
    assert free["per_seed"]["seed0"]["silhouette"] == pytest.approx(1.0)
    assert free["per_seed"]["seed2"] == {"mean_confidence": pytest.approx(90.0), "cluster_sizes": [12, 0, 0],
                                         "n_empty_clusters": 2, "silhouette": None}
    assert free["seed_agreement"]["n_pairs"] == 3  # seeds 0 and 1 agree up to renaming; 2 agrees with neither
    assert free["seed_agreement"]["ari"]["mean"] == pytest.approx(100.0 / 3)
    frame = assignments_frame({0: proba})
    assert frame["seed0_cluster"].tolist() == [0] * 4 + [1] * 4 + [2] * 4

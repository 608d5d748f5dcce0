"""MLflow tracking helpers: URIs, params, a real run read back, and the off switch.

Tests that import mlflow are marked ``mlflow`` (about 2 s import plus a
SQLite schema creation each).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmib import tracking
from mmib.errors import InputError
from mmib.tracking import (
    artifact_location,
    flatten_params,
    run_name,
    start_stage_run,
    tracking_uri,
)

SRC = Path(__file__).resolve().parents[1] / "src"

PARAMS = {
    "method": "clib",
    "alpha": 0.5,
    "seeds": [0, 1, 2],
    "calibrate": {"epochs": 100, "losses": {"caliH": True, "re": False}},
}


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "MMIB_TRACKING"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


# ---------------------------------------------------------------- pure helpers


def test_flatten_params_nested():
    assert flatten_params(PARAMS) == {
        "method": "clib",
        "alpha": "0.5",
        "seeds": "[0, 1, 2]",
        "calibrate.epochs": "100",
        "calibrate.losses.caliH": "True",
        "calibrate.losses.re": "False",
    }
    assert flatten_params({"b": 1}, prefix="a") == {"a.b": "1"}
    assert flatten_params({"x": {}}) == {"x": "{}"}
    assert len(flatten_params({"long": "y" * 10_000})["long"]) == 6000


def test_flatten_params_rejects_colliding_keys():
    with pytest.raises(InputError, match="a.b"):
        flatten_params({"a.b": 1, "a": {"b": 2}})


def test_run_name(clean_env):
    assert run_name("train", "mfeat", seed=2) == "workspace/train/mfeat/seed2"
    clean_env.setenv("DVC_EXP_NAME", "bushy-tick")
    assert run_name("evaluate", "cub") == "bushy-tick/evaluate/cub"


def test_tracking_uri_uses_dvc_root(clean_env, tmp_path):
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert artifact_location() == (tmp_path.resolve() / "mlruns").as_uri()


def test_tracking_uri_env_wins(clean_env, tmp_path):
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri() == "http://127.0.0.1:5000"
    assert artifact_location() is None  # a server decides its artifact store
    db = tmp_path / "other" / "t.db"
    clean_env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    assert tracking_uri() == f"sqlite:///{db}"
    assert artifact_location() == (db.parent / "mlruns").as_uri()


def test_tracking_uri_falls_back_to_cwd(clean_env, tmp_path):
    clean_env.chdir(tmp_path)
    clean_env.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


# ---------------------------------------------------------------- switch off


def test_disabled_tracking_is_a_noop(clean_env, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    artifact = tmp_path / "a.txt"
    artifact.write_text("x")
    clean_env.setenv("MMIB_TRACKING", "0")
    clean_env.setenv("DVC_ROOT", str(root))
    clean_env.chdir(root)
    with start_stage_run("train", "mfeat", PARAMS, seed=0, device="cpu") as run:
        assert not run.enabled and run.run_id is None
        run.log_metrics({"acc": 1.0}, step=3)
        run.log_curve({"loss": [3.0, 2.0]})
        run.log_artifact(artifact)
        run.log_dict_json({"a": 1}, "x/y.json")
        run.set_tags({"k": "v"})
    assert list(root.iterdir()) == []


def test_importing_the_package_does_not_import_mlflow():
    code = ("import sys, mmib.tracking; "
            "sys.exit('mlflow' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


# ---------------------------------------------------------------- real MLflow


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory):
    """One SQLite store for the module: creating MLflow's schema takes about 5 s."""
    return tmp_path_factory.mktemp("store") / "mlflow.db"


@pytest.fixture
def sqlite_store(clean_env, tmp_path, shared_db):
    db = shared_db
    clean_env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    clean_env.setenv("DVC_EXP_NAME", "exp-a")
    clean_env.chdir(tmp_path)
    yield db
    import mlflow

    while mlflow.active_run() is not None:  # never leak a run into other tests
        mlflow.end_run()


@pytest.mark.mlflow
def test_real_run_is_read_back(sqlite_store, tmp_path):
    from mlflow import MlflowClient

    artifact = tmp_path / "curves.csv"
    artifact.write_text("epoch,loss\n0,3\n")
    n_epochs = 1500  # more than one log_batch chunk (1000)
    loss = [float(1000 - i) for i in range(n_epochs)]
    with start_stage_run("train", "mfeat", PARAMS, seed=1, device="cpu",
                         extra_tags={"note": "t"}) as run:
        assert run.enabled
        run.log_metrics({"final": {"acc": np.float32(81.5)}, "ece": 3}, step=7)
        run.log_curve({"loss": loss, "w.view0": [0.5, 0.6]})
        run.log_artifact(artifact, "tables")
        run.log_dict_json({"acc": np.float64(81.5), "ids": np.arange(2)}, "metrics/m.json")
        run_id = run.run_id

    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "exp-a/train/mfeat/seed1"
    assert got.data.params == flatten_params(PARAMS)
    tags = got.data.tags
    for key, value in {"stage": "train", "dataset": "mfeat", "seed": "1", "device": "cpu",
                       "dvc_exp": "exp-a", "method": "clib", "note": "t"}.items():
        assert tags[key] == value
    assert got.data.metrics["final.acc"] == pytest.approx(81.5)
    assert client.get_metric_history(run_id, "ece")[0].step == 7
    history = sorted(client.get_metric_history(run_id, "loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(n_epochs))
    assert [m.value for m in history] == loss
    assert [m.step for m in client.get_metric_history(run_id, "w.view0")] == [0, 1]

    # artifacts live beside the database, not in the working directory
    arts = {a.path for a in client.list_artifacts(run_id, "tables")}
    arts |= {a.path for a in client.list_artifacts(run_id, "metrics")}
    assert arts == {"tables/curves.csv", "metrics/m.json"}
    exp = client.get_experiment(got.info.experiment_id)
    assert exp.name == "mmib"
    assert exp.artifact_location == (sqlite_store.parent / "mlruns").as_uri()
    assert (sqlite_store.parent / "mlruns").is_dir()
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.mlflow
def test_failed_stage_marks_run_failed_and_experiment_is_reused(sqlite_store):
    from mlflow import MlflowClient

    first = tracking.ensure_experiment()
    assert tracking.ensure_experiment() == first
    with pytest.raises(RuntimeError, match="boom"):
        with start_stage_run("evaluate", "cub", {"alpha": 0.1}) as run:
            run_id = run.run_id
            raise RuntimeError("boom")
    got = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}").get_run(run_id)
    assert got.info.status == "FAILED"
    assert got.info.experiment_id == first
    assert "seed" not in got.data.tags


@pytest.mark.mlflow
def test_the_experiment_opens_as_model_training_with_a_description(sqlite_store):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    exp = client.get_experiment(tracking.ensure_experiment())
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # not the GenAI traces page
    assert "tags.stage" in exp.tags["mlflow.note.content"]
    client.set_experiment_tag(exp.experiment_id, "mlflow.experimentKind", "genai_development")
    tracking.ensure_experiment()  # an existing experiment is put right
    assert client.get_experiment(exp.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"

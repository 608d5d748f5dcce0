"""MLflow tracking helpers: URIs, params, a real run read back, and the off switch.

Tests that import mlflow are marked ``mlflow`` (about 2 s import plus a
SQLite schema creation each).
"""

from __future__ import annotations

import contextlib
import json
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
    assert run_name("train", "mfeat", seed=2) == "train/mfeat/seed2"
    assert run_name("evaluate", "cub", label="alpha=0.3") == "evaluate/cub (alpha=0.3)"


def test_tracking_uri_uses_dvc_root(clean_env, tmp_path):
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert artifact_location() == "mlruns"  # recorded relative to the database: the clone can move
    assert tracking.artifact_root() == tmp_path.resolve() / "mlruns"
    assert tracking.local_artifact_dir("mlruns/abc/artifacts") == str(tmp_path.resolve() / "mlruns/abc/artifacts")
    assert tracking.local_artifact_dir("file:///x/mlruns/abc") == "file:///x/mlruns/abc"


def test_tracking_uri_env_wins(clean_env, tmp_path):
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri() == "http://127.0.0.1:5000"
    assert artifact_location() is None and tracking.artifact_root() is None  # a server decides
    assert tracking.local_artifact_dir("mlruns/abc") == "mlruns/abc"
    db = tmp_path / "other" / "t.db"
    clean_env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    assert tracking_uri() == f"sqlite:///{db}"
    assert artifact_location() == "mlruns"
    assert tracking.artifact_root() == db.parent / "mlruns"


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
        run.log_dataset("mfeat", "data/processed/mfeat.npz", [np.zeros((2, 3))], "training")
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
    assert got.info.run_name == "train/mfeat/seed1"  # no pipeline_params: a top-level run
    assert "mlflow.parentRunId" not in got.data.tags
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

    # artifacts live beside the database, not in the working directory; MLflow's readers
    # resolve the relative location from the directory of the database (where `mlflow ui` runs)
    assert not (tmp_path / "mlruns").exists()
    os.chdir(sqlite_store.parent)
    arts = {a.path for a in client.list_artifacts(run_id, "tables")}
    arts |= {a.path for a in client.list_artifacts(run_id, "metrics")}
    assert arts == {"tables/curves.csv", "metrics/m.json"}
    exp = client.get_experiment(got.info.experiment_id)
    assert exp.name == "mmib"
    assert exp.artifact_location == "mlruns"
    assert got.info.artifact_uri == f"mlruns/{run_id}/artifacts"
    assert (sqlite_store.parent / "mlruns" / run_id / "artifacts" / "tables" / "curves.csv").is_file()


@pytest.mark.mlflow
def test_the_input_is_logged_as_a_dataset(sqlite_store):
    """The runs table's Dataset column: name, source, context, and a schema of the views (labels only
    where the run reads them); a different input gets a different digest."""
    from mlflow import MlflowClient

    views = [np.arange(12, dtype=np.float32).reshape(4, 3), np.ones((4, 2), dtype=np.float32)]
    with start_stage_run("evaluate", "mfeat", {}) as run:
        run.log_dataset("mfeat", "data/processed/mfeat.npz", views, "evaluation", np.array([0, 1, 0, 1]))
        evaluated = run.run_id
    with start_stage_run("warmup", "mfeat", {}) as run:
        run.log_dataset("mfeat", "data/processed/mfeat.npz", [views[0] + 1, views[1]], "training")
        trained = run.run_id
    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    (got,) = client.get_run(evaluated).inputs.dataset_inputs
    assert got.dataset.name == "mfeat"
    assert "data/processed/mfeat.npz" in got.dataset.source
    assert {t.key: t.value for t in got.tags}["mlflow.data.context"] == "evaluation"
    schema = json.loads(got.dataset.schema)
    assert [f["name"] for f in json.loads(schema["mlflow_tensorspec"]["features"])] == ["view0", "view1"]
    assert schema["mlflow_tensorspec"]["targets"] is not None
    (other,) = client.get_run(trained).inputs.dataset_inputs
    assert {t.key: t.value for t in other.tags}["mlflow.data.context"] == "training"
    assert json.loads(other.dataset.schema)["mlflow_tensorspec"]["targets"] is None
    assert other.dataset.digest != got.dataset.digest


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


# ---------------------------------------------------------------- runs of a pipeline run


def _runs(client, experiment_id, **tags):
    query = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
    return client.search_runs([experiment_id], filter_string=query, max_results=100)


@pytest.fixture
def baseline_repo(clean_env, tmp_path):
    """A git repository whose committed params.yaml is the baseline of the pipeline runs' names."""
    import yaml

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    for args in (["init", "-q"], ["add", "params.yaml"],
                 ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "baseline"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    clean_env.setenv("DVC_ROOT", str(repo))
    return repo


@pytest.mark.mlflow
def test_pipeline_run_is_a_parent_of_stage_and_seed_runs(sqlite_store, baseline_repo, monkeypatch):
    """Stages of one pipeline run (separate calls, as DVC's separate processes) share one parent run
    named after the experiment and what differs from the baseline; seed runs nest under their stage
    with the same metric names; durations are real; a changed param makes another parent."""
    import time

    from mlflow import MlflowClient

    monkeypatch.setenv("DVC_EXP_NAME", "quick-fox")
    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    stage_params = {"method": "clib", "alpha": 0.5}
    for stage in ("warmup", "calibrate"):
        with start_stage_run(stage, "mfeat", stage_params, pipeline_params=PARAMS) as run:
            for seed in (0, 1):
                with run.seed_run(seed) as child:
                    child.log_metrics({"loss": 2.0 + seed}, step=0)
                    time.sleep(0.05)
    exp_id = tracking.ensure_experiment()
    parents = _runs(client, exp_id, stage="pipeline", dvc_exp="quick-fox")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name == "quick-fox: baseline"
    assert parent.info.status == "FINISHED"
    assert parent.data.params == flatten_params(stage_params)  # its stages' params: pipeline runs compare
    stages = _runs(client, exp_id, **{"mlflow.parentRunId": parent.info.run_id})
    assert sorted(r.info.run_name for r in stages) == ["calibrate/mfeat (baseline)", "warmup/mfeat (baseline)"]
    for stage_run in stages:
        assert stage_run.data.params == flatten_params(stage_params)
        seeds = _runs(client, exp_id, **{"mlflow.parentRunId": stage_run.info.run_id})
        stage = stage_run.data.tags["stage"]
        assert sorted(r.info.run_name for r in seeds) == [f"{stage}/mfeat/seed{s} (baseline)" for s in (0, 1)]
        for seed_run in seeds:
            assert set(seed_run.data.metrics) == {"loss"}  # the same name in every seed: charts overlay
            assert seed_run.data.params == stage_run.data.params
            assert seed_run.data.tags["stage"] == stage and seed_run.data.tags["dvc_exp"] == "quick-fox"
            assert seed_run.info.end_time - seed_run.info.start_time >= 50
            assert stage_run.info.start_time <= seed_run.info.start_time <= seed_run.info.end_time \
                <= stage_run.info.end_time
    assert parent.info.end_time >= max(r.info.end_time for r in stages)

    with start_stage_run("calibrate", "mfeat", stage_params, pipeline_params={**PARAMS, "alpha": 0.3}):
        pass
    names = sorted(r.info.run_name for r in _runs(client, exp_id, stage="pipeline", dvc_exp="quick-fox"))
    assert names == ["quick-fox: alpha=0.3", "quick-fox: baseline"]


@pytest.mark.mlflow
def test_a_failed_stage_fails_its_pipeline_run(sqlite_store, baseline_repo, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("DVC_EXP_NAME", "broken-run")
    with pytest.raises(RuntimeError):
        with start_stage_run("warmup", "mfeat", {}, pipeline_params=PARAMS) as run:
            with run.seed_run(0) as child:
                seed_id = child.run_id
                raise RuntimeError("diverged")
    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    assert client.get_run(seed_id).info.status == "FAILED"
    assert client.get_run(run.run_id).info.status == "FAILED"
    assert client.get_run(run.pipeline_id).info.status == "FAILED"


STARTER = """
import sys, time
sys.path.insert(0, {src!r})
from mmib import tracking
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
with tracking.start_stage_run(sys.argv[2], "mfeat", {{}}, pipeline_params={{"alpha": 0.5}}) as run:
    print(run.pipeline_id)
"""


@pytest.mark.mlflow
def test_two_stages_starting_at_once_share_one_parent(sqlite_store, baseline_repo, monkeypatch, tmp_path):
    """DVC stages are processes; two that start in the same instant find or create one parent."""
    import time

    from mlflow import MlflowClient

    monkeypatch.setenv("DVC_EXP_NAME", "same-instant")
    tracking.ensure_experiment()  # the store exists (creating it in parallel is another matter)
    script = tmp_path / "starter.py"
    script.write_text(STARTER.format(src=str(SRC)))
    start = time.time() + 6  # after both interpreters have imported mlflow
    procs = [subprocess.Popen([sys.executable, str(script), str(start), stage], stdout=subprocess.PIPE,
                              text=True) for stage in ("baselines", "evaluate")]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0][-1] == outs[1][-1]
    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    assert len(_runs(client, tracking.ensure_experiment(), stage="pipeline", dvc_exp="same-instant")) == 1


@pytest.mark.mlflow
def test_system_metrics_are_logged_and_switchable(sqlite_store, monkeypatch):
    import time

    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    with start_stage_run("warmup", "mfeat", {}) as run:
        time.sleep(1.0)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    with start_stage_run("warmup", "mfeat", {}) as off:
        time.sleep(0.5)
    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    assert "system/cpu_utilization_percentage" in client.get_run(run.run_id).data.metrics
    assert not [k for k in client.get_run(off.run_id).data.metrics if k.startswith("system/")]


@pytest.mark.mlflow
def test_epoch_metrics_are_logged_as_each_epoch_ends(sqlite_store):
    """The per-epoch hook: values reach the run while training runs, under grouped names."""
    import time

    from mlflow import MlflowClient

    from mmib.epoch_metrics import EpochLogger, curves, metric_name

    assert metric_name("fusion_w_view3") == "fusion_w/view3" and metric_name("loss") == "loss"

    class Model:
        def _check_finite(self, hist, epoch, n_epochs, stage):
            if hist["loss"][-1] != hist["loss"][-1]:
                raise ValueError("nan")

        def fit(self):
            hist = {"loss": [], "fusion_w_view0": []}
            for epoch in range(3):
                self._check_finite({"loss": [9.0 - epoch]}, epoch, 3, "cold start")
                hist["loss"].append(3.0 - epoch)
                hist["fusion_w_view0"].append(0.5)
                self._check_finite(hist, epoch, 3, "calibrate")
                time.sleep(0.05)
            return hist

    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    with start_stage_run("calibrate", "mfeat", {}) as run:
        logger = EpochLogger(run)
        history = logger.attach(Model()).fit()
        after_epoch = client.get_metric_history(run.run_id, "loss")  # already there, before the end
        logger.finish(history)
    assert [m.step for m in sorted(after_epoch, key=lambda m: m.step)] == [0, 1, 2]
    got = client.get_run(run.run_id).data.metrics
    assert {"loss", "fusion_w/view0", "cold_start_loss"} <= set(got)
    assert set(curves(history)) == {"loss", "fusion_w/view0"}
    times = [m.timestamp for m in sorted(client.get_metric_history(run.run_id, "loss"), key=lambda m: m.step)]
    assert times[-1] - times[0] >= 90  # logged as the epochs ended, not at once
    assert len(client.get_metric_history(run.run_id, "loss")) == 3  # finish() did not log them again


def test_epoch_logger_without_tracking_logs_at_the_end_only():
    from mmib.epoch_metrics import EpochLogger

    class Run:
        enabled = True
        logged = []

        def log_metrics(self, metrics, step=None):
            raise RuntimeError("database is locked")

        def log_curve(self, curves, start=0):
            self.logged.append(curves)

    class Model:
        def _check_finite(self, hist, epoch, n_epochs, stage):
            pass

    logger = EpochLogger(Run())
    model = logger.attach(Model())
    model._check_finite({"loss": [1.0]}, 0, 1, "warmup")  # a tracking error does not stop training
    logger.finish({"loss": [1.0], "n_selected_view1": [4]})
    assert Run.logged == [{"loss": [1.0], "n_selected/view1": [4]}]


FIRST_CLONE = """
import sys
sys.path.insert(0, {src!r})
from mmib import tracking
with tracking.start_stage_run("evaluate", "mfeat", {{"alpha": 0.5}}) as run:
    run.log_artifact("table.csv", "metrics")
print(run.run_id)
"""


@pytest.mark.mlflow
def test_artifacts_survive_moving_the_clone(clean_env, tmp_path):
    """The store records artifact locations relative to the database: move the clone, read them."""
    import shutil
    import sqlite3

    from mlflow import MlflowClient

    first = tmp_path / "first"
    first.mkdir()
    (first / "table.csv").write_text("a,b\n1,2\n")
    # a process of its own, as a stage is: SQLite refuses writes in a process that had the file open
    # before it moved, which a clone moved between two runs never meets
    env = {**os.environ, "DVC_ROOT": str(first), "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "false"}
    out = subprocess.run([sys.executable, "-c", FIRST_CLONE.format(src=str(SRC))], cwd=first, env=env,
                         capture_output=True, text=True, check=True)
    run_id = out.stdout.split()[-1]
    with contextlib.closing(sqlite3.connect(first / "mlflow.db")) as con:  # no absolute path in the store
        stored = [r[0] for r in con.execute("SELECT artifact_location FROM experiments")]
        stored += [r[0] for r in con.execute("SELECT artifact_uri FROM runs")]
    assert len(stored) == 3 and not [s for s in stored if str(first) in s or s.startswith("file:")]

    moved = tmp_path / "moved"
    shutil.move(str(first), moved)
    clean_env.setenv("DVC_ROOT", str(moved))
    clean_env.chdir(moved)  # where `mlflow ui` runs: the directory of mlflow.db
    client = MlflowClient(tracking_uri=f"sqlite:///{moved / 'mlflow.db'}")
    local = client.download_artifacts(run_id, "metrics/table.csv", str(tmp_path))
    assert Path(local).read_text() == "a,b\n1,2\n"
    with start_stage_run("evaluate", "mfeat", {"alpha": 0.5}) as again:  # and writing still works
        again.log_artifact(moved / "table.csv", "metrics")
    assert (moved / "mlruns" / again.run_id / "artifacts" / "metrics" / "table.csv").is_file()


@pytest.mark.mlflow
def test_an_absolute_artifact_location_is_made_relative(clean_env, tmp_path):
    """A store made before (absolute ``file://.../mlruns``) is rewritten, with its runs."""
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    absolute = (tmp_path / "mlruns").as_uri()
    exp_id = client.create_experiment("mmib", artifact_location=absolute)
    old_run = client.create_run(exp_id)
    assert old_run.info.artifact_uri.startswith(absolute)
    clean_env.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.ensure_experiment() == exp_id
    assert client.get_experiment(exp_id).artifact_location == "mlruns"
    assert client.get_run(old_run.info.run_id).info.artifact_uri == f"mlruns/{old_run.info.run_id}/artifacts"


# ---------------------------------------------------------------- params a run logs


def test_runs_log_only_the_params_they_use():
    """Issue 13.4: a CLIB run logs no `msdib.*` / `omib.*`, MSDIB logs its section and not CLIB's,
    evaluate logs what its models were trained with and `evaluate.*`, report only this run's
    paper names."""
    from mmib.config import default_params
    from mmib.stages.declared import tracked_params

    params = default_params().model_copy(update={"method": "clib", "datasets": ["caltech_2v"]})
    for stage in ("warmup", "calibrate", "evaluate"):
        keys = set(flatten_params(tracked_params(params, stage)))
        assert not [k for k in keys if k.split(".")[0] in ("msdib", "omib", "catalog", "report")], stage
        assert {"method", "seeds", "beta", "warmup.lr"} <= keys
    assert "alpha" not in flatten_params(tracked_params(params, "warmup"))
    evaluate = set(flatten_params(tracked_params(params, "evaluate")))
    assert {"alpha", "calibrate.losses.caliH", "evaluate.ece_bins"} <= evaluate
    report = flatten_params(tracked_params(params, "report"))
    assert [k for k in report if k.startswith("report.paper_names")] == ["report.paper_names.caltech_2v"]

    msdib = set(flatten_params(tracked_params(params.model_copy(update={"method": "msdib"}), "calibrate")))
    assert {"method", "seeds", "msdib.lr"} <= msdib
    assert not [k for k in msdib if k.split(".")[0] in ("omib", "alpha", "beta", "model", "warmup", "calibrate")]


@pytest.mark.mlflow
def test_ui_link_opens_the_training_view(sqlite_store):
    """Issue 13.1: MLflow 3.17 picks GenAI or training view from the URL's workflowType (the
    experiment's kind tag does not override it): `make ui` prints the link to the runs."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-m", "mmib.mlflow_ui", "--print-url", "--port", "5001"], env=env,
                         capture_output=True, text=True, check=True).stdout
    experiment_id = tracking.ensure_experiment()
    assert f"http://127.0.0.1:5001/#/experiments/{experiment_id}/runs?workflowType=machine_learning" in out


@pytest.mark.mlflow
def test_seed_runs_are_logged_by_the_stage_process_from_the_workers_events(sqlite_store):
    """mmib.seed_runs: a worker reports open / epochs / close (no MLflow there); the stage process
    makes them child runs with the worker's timestamps; a seed that never closes (its worker died)
    ends FAILED; a tracking error does not stop anything."""
    import threading
    import time

    from mlflow import MlflowClient

    from mmib.epoch_metrics import EpochLogger
    from mmib.seed_runs import SeedRunRelay, seed_report

    class Model:
        def _check_finite(self, hist, epoch, n_epochs, stage):
            pass

    def worker(queue, seed, epochs, close=True):
        report = seed_report(queue, seed)
        run = report.__enter__()
        model = EpochLogger(run).attach(Model())
        hist = {"loss": [], "fusion_w_view0": []}
        for epoch in range(epochs):
            time.sleep(0.05)
            hist["loss"].append(1.0 / (epoch + 1))
            hist["fusion_w_view0"].append(0.5)
            model._check_finite(hist, epoch, epochs, "warmup")
        run.set_tags({"device": "cpu"})
        if close:
            report.__exit__(None, None, None)

    with start_stage_run("warmup", "mfeat", {"beta": 0.5}) as run:
        with SeedRunRelay(run) as relay:
            threads = [threading.Thread(target=worker, args=(relay.queue, s, 3, s != 2)) for s in (0, 1, 2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    client = MlflowClient(tracking_uri=f"sqlite:///{sqlite_store}")
    children = {r.data.tags["seed"]: r for r in _runs(client, tracking.ensure_experiment(),
                                                       **{"mlflow.parentRunId": run.run_id})}
    assert sorted(children) == ["0", "1", "2"]
    for seed, child in children.items():
        assert child.info.run_name == f"warmup/mfeat/seed{seed}"
        assert child.data.params == {"beta": "0.5"} and child.data.tags["device"] == "cpu"
        history = sorted(client.get_metric_history(child.info.run_id, "loss"), key=lambda m: m.step)
        assert [m.step for m in history] == [0, 1, 2] and history[-1].value == pytest.approx(1 / 3)
        assert history[-1].timestamp - history[0].timestamp >= 90  # the worker's times, not the relay's
        assert "fusion_w/view0" in child.data.metrics
        assert child.info.end_time - child.info.start_time >= 140
    assert children["0"].info.status == children["1"].info.status == "FINISHED"
    assert children["2"].info.status == "FAILED"  # never closed: its worker died


def test_pipeline_run_labels():
    from mmib.pipeline_run import label, params_diff

    base = {"alpha": "0.5", "beta": "0.5", "data_root": "data/raw"}
    assert label(params_diff(base, base)) == "baseline"
    diff = params_diff({**base, "alpha": "0.3", "data_root": "/abs/path/to/shared/data/raw", "new": "1"}, base)
    assert diff == {"alpha": "0.3", "data_root": "/abs/path/to/shared/data/raw", "new": "1"}
    assert label(diff) == "alpha=0.3, data_root=/abs/path/to/shared/data/raw, new=1"
    assert label(diff, 40) == "alpha=0.3, +2 more"  # the stage and seed runs' names stay short
    assert params_diff({"alpha": "0.5"}, base) == {"beta": "(none)", "data_root": "(none)"}
    assert params_diff(base, None) == {}
    # the catalog lives in data/catalog.yaml, not in params.yaml at HEAD: never a difference
    assert params_diff({**base, "catalog.tiny.layout": "npy_views"}, base) == {}


def test_in_store_directory_works_beside_the_sqlite_database_and_returns(tmp_path, monkeypatch):
    """Queued / --temp DVC runs work in a copy: MLflow's own writers must resolve the relative
    artifact location against the database's directory, not the copy."""
    import os

    from mmib import tracking

    store = tmp_path / "repo"
    store.mkdir()
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with tracking.in_store_directory(f"sqlite:///{store / 'mlflow.db'}"):
        assert Path(os.getcwd()) == store
    assert Path(os.getcwd()) == elsewhere
    with tracking.in_store_directory("http://127.0.0.1:5000"):  # a server decides its own locations
        assert Path(os.getcwd()) == elsewhere

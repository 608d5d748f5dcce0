"""The MLflow model (mmib.mlflow_model): logged from a tiny trained CLIB, loaded back in a fresh process.

A fresh ``python`` loads the model with ``mlflow.pyfunc.load_model`` and must
give the in-memory model's clusters and confidences on the same raw samples
(scaling and temperature applied inside the model); the signature refuses a
frame with a column missing (MLflow drops an extra one; the model itself refuses it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmib.config import parse_params
from mmib.data.prepare import scale_view
from mmib.data.processed import scaler_path, write_scaler
from mmib.errors import InputError
from mmib.methods.clib.estimator import CLIB
from mmib.recipes import apply_overrides
from mmib.state_io import save_state
from shipped_params import shipped_params

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.mlflow]
SRC = Path(__file__).resolve().parents[1] / "src"
C, N_PER, TEMPERATURE = 3, 20, 0.37
TINY = ["model.latent_dim=4", "model.encoder_width=8", "model.head_width=8", "model.mine_width=8",
        "warmup.epochs=1", "warmup.batch_size=20", "calibrate.epochs=1", "calibrate.cold_start_epochs=1",
        "calibrate.kmeans_n_init=1", "device=cpu", "calibrate.cold_start_clusters=kmeans"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Raw blobs (not scaled: the model must scale them), the fitted model, its state and scaler files."""
    mlflow = pytest.importorskip("mlflow")
    from mmib.mlflow_model import log_clusterer

    tmp = tmp_path_factory.mktemp("pyfunc")
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(C), N_PER)
    raw = [50.0 + 30.0 * rng.normal(size=(C, d))[y] + 5.0 * rng.normal(size=(C * N_PER, d)) for d in (5, 3)]
    params = parse_params(apply_overrides(shipped_params(), TINY))
    views = [scale_view(x, params.preprocess.scaling).astype(np.float32) for x in raw]
    model = CLIB.from_params(params, C, seed=7, progress=False).fit(views).set_temperature(TEMPERATURE)
    state_file = tmp / "seed7.pt"
    save_state(state_file, model.state())
    write_scaler("blobs", raw, params.preprocess.scaling, tmp)
    from mmib.tracking import in_store_directory

    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    with in_store_directory(), mlflow.start_run():  # the Default experiment's artifacts beside its db, not in the cwd
        logged = log_clusterer(state_file, params, "blobs", views, scaler_path("blobs", tmp),
                               registered_name="clib-blobs")
    return {"raw": raw, "views": views, "model": model, "logged": logged, "tmp": tmp}


def _fresh_predict(uri: str, frame: pd.DataFrame, tmp: Path) -> subprocess.CompletedProcess:
    """Load the model in a new interpreter without the project on its path, predict ``frame``."""
    frame.to_csv(tmp / "input.csv", index=False)
    code = ("import sys, mlflow, pandas as pd\n"
            f"m = mlflow.pyfunc.load_model({uri!r})\n"
            f"m.predict(pd.read_csv({str(tmp / 'input.csv')!r})).to_csv({str(tmp / 'out.csv')!r}, index=False)\n"
            "import mmib; print(mmib.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp, env=env,
                          timeout=300)


def test_a_fresh_process_predicts_the_in_memory_clusters_and_confidences(trained):
    from mmib.mlflow_model import views_frame

    model, raw = trained["model"], trained["raw"]
    proba = model.predict_proba(trained["views"])
    assert model.temperature_ == TEMPERATURE and not np.allclose(proba, model.predict_proba(trained["views"], raw=True))
    for uri in (trained["logged"]["model_uri"], "models:/clib-blobs/1"):  # the run's model, the registered one
        done = _fresh_predict(uri, views_frame(raw), trained["tmp"])
        assert done.returncode == 0, done.stderr[-3000:]
        assert "/code/mmib/" in done.stdout  # mmib came from the model, not from the project
        out = pd.read_csv(trained["tmp"] / "out.csv")
        assert list(out.columns) == ["cluster", "confidence"]
        np.testing.assert_array_equal(out["cluster"].to_numpy(), proba.argmax(axis=1))
        np.testing.assert_allclose(out["confidence"].to_numpy(), proba.max(axis=1), rtol=1e-6)


def test_the_logged_model_has_a_signature_an_example_and_weights_only(trained):
    import mlflow

    info = mlflow.models.get_model_info(trained["logged"]["model_uri"])
    names = [c["name"] for c in info.signature.inputs.to_dict()]
    assert names == [f"v0_{j}" for j in range(5)] + [f"v1_{j}" for j in range(3)]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["cluster", "confidence"]
    assert info.metadata["seed"] == 7 and info.metadata["scaler"] == "minmax"
    local = Path(mlflow.artifacts.download_artifacts(trained["logged"]["model_uri"]))
    example = json.loads((local / "input_example.json").read_text())
    assert example["columns"][0] == "v0_0" and len(example["data"]) == 3
    served = torch.load(local / "artifacts" / "state.pt", weights_only=True)
    modules = {k.split(".")[0] for k in served["net"]}
    assert modules == {"encoders", "fusion", "cluster_head", "cal_heads"}  # no decoders, projections, critics
    assert not served["history"]["warmup"] and served["trace"] is None
    assert json.loads((local / "artifacts" / "params.json").read_text())["warmup"]["projection_dim"] > 0  # as trained


def test_a_wrong_number_of_columns_is_refused_with_a_clear_error(trained):
    import mlflow
    from mlflow.exceptions import MlflowException

    from mmib.mlflow_model import views_frame

    loaded = mlflow.pyfunc.load_model(trained["logged"]["model_uri"])
    frame = views_frame(trained["raw"])
    with pytest.raises(MlflowException, match="v1_2"):  # the signature names the missing column
        loaded.predict(frame.drop(columns=["v1_2"]))
    ignored = loaded.predict(frame.assign(v2_0=1.0))  # MLflow drops a column the signature does not name
    np.testing.assert_array_equal(ignored["cluster"].to_numpy(), trained["model"].predict(trained["views"]))
    inner = loaded.unwrap_python_model()  # called directly, the model refuses it
    with pytest.raises(InputError, match=r"takes 8 columns.*got 9.*extra \['v2_0'\]"):
        inner.predict(None, frame.assign(v2_0=1.0))
    ok = inner.predict(None, frame)
    np.testing.assert_array_equal(ok["cluster"].to_numpy(), trained["model"].predict(trained["views"]))


def test_log_evaluation_model_is_a_no_op_without_tracking():
    from mmib.mlflow_model import log_evaluation_model
    from mmib.tracking import StageRun

    assert log_evaluation_model(StageRun(), "blobs", None, "clib", "missing.pt", "missing.npz") is None


def test_only_stores_with_a_registry_register():
    from mmib.mlflow_model import registered_name, registry_supported

    assert registry_supported("sqlite:////tmp/x/mlflow.db") and registry_supported("http://127.0.0.1:5000")
    assert registry_supported("postgresql+psycopg2://u@h/db")
    assert not registry_supported("file:///tmp/mlruns") and not registry_supported("/tmp/mlruns")
    assert registered_name("clib", "mfeat") == "clib-mfeat"


def test_without_a_scaler_the_model_takes_processed_views_and_a_missing_scaler_file_is_an_error(trained):
    import mlflow

    from mmib.mlflow_model import log_clusterer, views_frame

    params = parse_params(apply_overrides(shipped_params(), TINY))
    state_file = trained["tmp"] / "seed7.pt"
    with mlflow.start_run():
        with pytest.raises(InputError) as exc:
            log_clusterer(state_file, params, "blobs", trained["views"], trained["tmp"] / "gone.scaler.npz")
        assert "gone.scaler.npz" in str(exc.value) and "dvc repro preprocess@gone" in str(exc.value)
        logged = log_clusterer(state_file, params, "blobs", trained["views"], None)
    loaded = mlflow.pyfunc.load_model(logged["model_uri"])
    assert loaded.metadata.metadata["scaler"] == "none"
    out = loaded.predict(views_frame(trained["views"]))
    np.testing.assert_array_equal(out["cluster"].to_numpy(), trained["model"].predict(trained["views"]))


@pytest.mark.parametrize("experiment", [None, "bushy-tick"], ids=["default_run", "dvc_exp"])
def test_the_evaluate_call_logs_into_its_run_and_registers_only_the_default_run(trained, monkeypatch, experiment):
    from mlflow import MlflowClient

    from mmib.atomic_io import write_npz
    from mmib.mlflow_model import log_evaluation_model
    from mmib.tracking import StageRun

    tmp = trained["tmp"]
    uri = f"sqlite:///{tmp}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    if experiment:
        monkeypatch.setenv("DVC_EXP_NAME", experiment)
    write_npz(tmp / "blobs.npz", {"view0": trained["views"][0], "view1": trained["views"][1],
                                   "n_clusters": np.asarray(C)})
    client = MlflowClient(uri)
    run_id = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id  # not active
    before = len(client.search_model_versions("name='clib-blobs'"))
    params = parse_params(apply_overrides(shipped_params(), TINY))
    logged = log_evaluation_model(StageRun(run_id, client), "blobs", params, "clib", tmp / "seed7.pt", tmp / "blobs.npz")
    import mlflow

    assert mlflow.models.get_model_info(logged["model_uri"]).run_id == run_id
    tags = client.get_run(run_id).data.tags
    assert tags["model_uri"] == logged["model_uri"] and tags["model_seed"] == "7"
    after = len(client.search_model_versions("name='clib-blobs'"))
    assert (after - before, tags.get("registered_model")) == ((0, None) if experiment else (1, "clib-blobs"))


def test_evaluate_with_tracking_off_does_not_import_the_model_module(monkeypatch):
    """``MMIB_TRACKING=0`` never imports mlflow: evaluate must not import this module (it imports mlflow)."""
    from mmib.stages import evaluate as evaluate_stage, traced_seeds
    from mmib.config import parse_params as parse

    monkeypatch.setenv("MMIB_TRACKING", "0")
    monkeypatch.setitem(sys.modules, "mmib.mlflow_model", None)  # an import of it now raises ImportError
    free = {"per_seed": {}, "silhouette": None, "mean_confidence": None, "seed_agreement": None}
    result = {"labels": False, "label_free": free, "lowest_loss_seed": {"seed": 0}}
    from mmib import tracking

    with tracking.start_stage_run("evaluate", "blobs", {}, device="cpu") as run:  # tracking off: a no-op run
        assert not run.enabled
        evaluate_stage._log_evaluation(run, "blobs", parse(apply_overrides(shipped_params(), TINY)), "clib", result,
                               traced_seeds.TracedSeeds(), [])

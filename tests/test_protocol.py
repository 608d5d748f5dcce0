"""Honest protocol: training never reads labels; only evaluation (evaluate, baselines scoring) does.

The rule (README "The pipeline", METHOD.md section 2): the warm-up and
calibration stages, and everything in ``mmib.methods``, work from the views
alone. Three checks, each of which FAILS if someone adds label access to
training:

1. **Dynamic, poisoned labels** (:func:`test_training_never_touches_labels`).
   A tiny processed ``.npz`` WITH labels is written in ``tmp_path``. During
   ``train_stage.train("warmup")`` and ``train_stage.train("calibrate")``:

   - ``load_processed`` (in every ``mmib`` module that holds it) is replaced
     by a loader that returns the real views and cluster count but, in place
     of the labels, a :class:`PoisonedLabels` object: ANY use of it (indexing,
     ``len``, iteration, ``np.asarray`` / ``torch.as_tensor``, comparison,
     truth value, attribute access) raises :class:`LabelAccess`. Merely
     receiving and discarding it (``views, _labels, k = ...``) is allowed.
   - ``numpy.load`` is wrapped so that an ``.npz`` opened by any other path
     (e.g. code that calls ``np.load`` on the processed file directly, or the
     original ``load_processed`` imported under another name) raises
     :class:`LabelAccess` when its ``"labels"`` array is read.

   Training must complete. As a positive control, ``evaluate_stage.evaluate`` under
   the same guards MUST raise :class:`LabelAccess`, which proves the guards
   see a real label access (the test is not vacuous).
2. **Unlabelled data** (:func:`test_training_works_without_labels`): an
   ``.npz`` with no ``labels`` array at all trains through both stages, and
   ``evaluate`` reports the label-free diagnostics only (tests/test_unlabelled_pipeline.py).
3. **Static** (:func:`test_methods_never_read_labels`,
   :func:`test_train_source_never_reads_labels`): the AST of
   ``src/mmib/methods/*.py`` must not call ``np.load``, refer to
   ``load_processed`` or import ``mmib.data``, contain the ``"labels"`` key
   as a string, or read a ``y`` parameter (``fit(views, y=None)`` accepts it
   for scikit-learn and must ignore it). The AST of ``train_stage.train`` and
   ``training_inputs.training_views`` must not READ any name, attribute or string
   containing ``label`` (docstrings excepted); storing into a discarded
   ``_labels`` is the only allowed mention.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mmib.stages import evaluate as evaluate_stage, paths, train as train_stage, training_inputs
from mmib.config import Params, parse_params
from shipped_params import shipped_params
from mmib.data import processed as processed_module

REPO = Path(__file__).resolve().parents[1]
METHODS_DIR = REPO / "src" / "mmib" / "methods"
N_CLUSTERS, N_PER = 3, 16
DATASET = "tiny"


class LabelAccess(AssertionError):
    """Raised when code under test reads the labels."""


def _fail(*_args, **_kwargs):
    raise LabelAccess("training code read the labels (honest protocol: only evaluation may)")


class PoisonedLabels:
    """Stands in for the labels array; every use raises :class:`LabelAccess`."""

    __slots__ = ()
    __getitem__ = __len__ = __iter__ = __contains__ = __array__ = __bool__ = _fail
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _fail
    __int__ = __float__ = __index__ = __add__ = __radd__ = __sub__ = __mul__ = _fail
    __array_function__ = __array_ufunc__ = __dlpack__ = _fail

    def __getattr__(self, name):
        _fail()

    def __repr__(self) -> str:
        return "<poisoned labels>"


class GuardedNpz:
    """An ``NpzFile`` whose ``"labels"`` array cannot be read."""

    def __init__(self, npz) -> None:
        self._npz = npz
        self.files = list(npz.files)

    def __getitem__(self, key):
        if key == "labels":
            _fail()
        return self._npz[key]

    def get(self, key, default=None):
        return self[key] if key in self.files else default

    def __contains__(self, key) -> bool:
        return key in self.files

    def __iter__(self):
        return iter(self.files)

    def keys(self):
        return list(self.files)

    def items(self):
        return [(k, self[k]) for k in self.files]

    def values(self):
        return [self[k] for k in self.files]

    def close(self) -> None:
        self._npz.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_params() -> Params:
    """The shipped params with tiny widths, 1 epoch per stage, one seed, CPU."""
    raw = shipped_params()
    raw.update(datasets=[DATASET], seeds=[0], device="cpu")
    raw["model"].update(latent_dim=4, encoder_width=8, head_width=8, mine_width=8)
    raw["warmup"].update(epochs=1, batch_size=16)
    raw["calibrate"].update(epochs=1, cold_start_epochs=1)
    return parse_params(raw)


def write_tiny_npz(root: Path, with_labels: bool) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(N_CLUSTERS), N_PER)
    arrays = {"view0": (np.eye(N_CLUSTERS)[y] + rng.normal(0, 0.1, (y.size, 3))).astype(np.float32),
              "view1": rng.uniform(size=(y.size, 5)).astype(np.float32),
              "n_clusters": np.array([N_CLUSTERS])}
    if with_labels:
        arrays["labels"] = y.astype(np.int64)
    (root / "data" / "processed").mkdir(parents=True, exist_ok=True)
    np.savez(root / "data" / "processed" / f"{DATASET}.npz", **arrays)


@pytest.fixture()
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMIB_TRACKING", "0")
    return tmp_path


def install_guards(monkeypatch) -> None:
    """Poison the labels on every path from the processed file into the code (see module docstring)."""
    real_np_load = np.load
    original = processed_module.load_processed

    def label_free_load_processed(path):
        with real_np_load(path, allow_pickle=False) as npz:
            n_views = sum(1 for k in npz.files if k.startswith("view"))
            views = [npz[f"view{i}"].astype(np.float32) for i in range(n_views)]
            n_clusters = int(np.ravel(npz["n_clusters"])[0])
        return views, PoisonedLabels(), n_clusters

    def guarded_np_load(file, *args, **kwargs):
        obj = real_np_load(file, *args, **kwargs)
        return GuardedNpz(obj) if isinstance(obj, np.lib.npyio.NpzFile) else obj

    for name, module in list(sys.modules.items()):
        if name == "mmib" or name.startswith("mmib."):
            for attr, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attr, label_free_load_processed)
    monkeypatch.setattr(np, "load", guarded_np_load)


def test_guards_detect_label_reads(workdir, monkeypatch):
    """The guards themselves: reading the labels in any usual way raises."""
    write_tiny_npz(workdir, with_labels=True)
    install_guards(monkeypatch)
    path = workdir / "data" / "processed" / f"{DATASET}.npz"
    with pytest.raises(LabelAccess):
        np.load(path)["labels"]
    _views, labels, _k = processed_module.load_processed(path)
    for use in (lambda: np.asarray(labels), lambda: labels[0], lambda: len(labels),
                lambda: torch.as_tensor(labels), lambda: labels.shape, lambda: list(labels),
                lambda: labels == 0, lambda: bool(labels)):
        with pytest.raises(LabelAccess):
            use()


def test_training_never_touches_labels(workdir, monkeypatch):
    write_tiny_npz(workdir, with_labels=True)
    install_guards(monkeypatch)
    params = tiny_params()
    train_stage.train("warmup", DATASET, params)
    train_stage.train("calibrate", DATASET, params)
    assert paths.model_path(DATASET, "calibrate", 0).is_file()
    # positive control: evaluation reads labels, and the guards catch it
    with pytest.raises(LabelAccess):
        evaluate_stage.evaluate(DATASET, params)


def test_training_works_without_labels(workdir):
    write_tiny_npz(workdir, with_labels=False)
    params = tiny_params()
    train_stage.train("warmup", DATASET, params)
    train_stage.train("calibrate", DATASET, params)
    assert paths.model_path(DATASET, "calibrate", 0).is_file()
    result = evaluate_stage.evaluate(DATASET, params)
    assert result["labels"] is False and "acc" not in result and "no labels" in result["note"]


# ---------------------------------------------------------------- static checks

def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                ids.add(id(body[0].value))
    return ids


def _is_data_layer(module: str | None, level: int) -> bool:
    """``mmib.data[.x]``, or ``..data[.x]`` relative to ``mmib.methods``."""
    module = module or ""
    target = module if level == 0 else ("mmib." + module if level == 2 else "")
    return target == "mmib.data" or target.startswith("mmib.data.")


# OMIB is the supervised reference ceiling (mmib.methods.registry.SUPERVISED): it is
# trained on labels of its training split by design; tests/test_omib.py checks it
# never uses the test rows' labels. Every clustering method is checked here.
CLUSTERING_METHOD_FILES = sorted(p for p in METHODS_DIR.glob("*.py") if not p.name.startswith("omib"))


@pytest.mark.parametrize("path", CLUSTERING_METHOD_FILES, ids=lambda p: p.name)
def test_methods_never_read_labels(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = _docstring_nodes(tree)
    problems = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr == "load" and isinstance(node.value, ast.Name) \
                and node.value.id in ("np", "numpy"):
            problems.append(f"{where} calls np.load")
        if isinstance(node, ast.Name) and node.id == "load_processed" \
                or isinstance(node, ast.Attribute) and node.attr == "load_processed":
            problems.append(f"{where} uses load_processed")
        if isinstance(node, ast.ImportFrom) and _is_data_layer(node.module, node.level) \
                or isinstance(node, ast.Import) and any(_is_data_layer(a.name, 0) for a in node.names):
            problems.append(f"{where} imports the data layer")
        if isinstance(node, ast.Constant) and node.value == "labels" and id(node) not in docstrings:
            problems.append(f"{where} has the 'labels' key")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
            if "y" in params:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Name) and inner.id == "y" and isinstance(inner.ctx, ast.Load):
                        problems.append(f"{path.name}:{inner.lineno} {node.name}() reads its y argument")
    assert not problems, "training code must not read labels:\n" + "\n".join(problems)


@pytest.mark.parametrize("fn", [train_stage.train, training_inputs.training_views], ids=lambda f: f.__name__)
def test_train_source_never_reads_labels(fn):
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    docstrings = _docstring_nodes(tree)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and "label" in node.id.lower() and not isinstance(node.ctx, ast.Store):
            problems.append(f"reads name {node.id!r} (line {node.lineno})")
        if isinstance(node, ast.Name) and "label" in node.id.lower() and not node.id.startswith("_"):
            problems.append(f"binds name {node.id!r} (line {node.lineno}); discard it as _labels")
        if isinstance(node, ast.Attribute) and "label" in node.attr.lower():
            problems.append(f"uses attribute {node.attr!r} (line {node.lineno})")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "label" in node.value.lower() \
                and id(node) not in docstrings:
            problems.append(f"has the string {node.value!r} (line {node.lineno})")
        if isinstance(node, ast.arg) and "label" in node.arg.lower():
            problems.append(f"takes argument {node.arg!r}")
    assert not problems, f"{fn.__name__} must not read labels: " + "; ".join(problems)

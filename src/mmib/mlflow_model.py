"""The trained clusterer as an MLflow model: cluster and confidence for new samples.

The evaluate stage logs one model per run (:func:`log_clusterer`) in place of
the raw state files: the seed with the lowest final calibration loss, the
label-free choice the stage already records as ``lowest_loss_seed``. Load it
anywhere with ``mlflow.pyfunc.load_model(uri)`` (the package ``mmib`` travels
inside the model, under ``code/``).

Input: a pandas DataFrame, one row per sample and one float column per
feature of every view, named ``v{m}_{j}`` (view ``m``, feature ``j``, both
0-based, views in the order of the dataset's catalog entry):
:func:`views_frame` builds it from a list of ``N x d_m`` arrays. The values
are the raw features, as the data files hold them: the model applies the
scaling the preprocess stage fitted (``data/processed/<ds>.scaler.npz``).
A model logged without a scaler (``scaler: none`` in its metadata) takes
inputs already scaled as the preprocess stage scales them.

Output: a DataFrame with ``cluster`` (int64, 0..C-1) and ``confidence``
(float64: the top probability of the cluster head, scaled by the seed's
fitted temperature, as ``predict_proba`` and ``assignments.csv`` give it).

The signature names every column: MLflow rejects an input that lacks one
and drops (with a warning) columns it does not name; called directly,
:meth:`ClusterModel.predict` rejects both and says which.
Loading builds no pickled Python object: the model is logged from code
(:data:`MODEL_CODE`, MLflow's models-from-code, instead of a cloudpickled
object) and its weights are a state file read with
``torch.load(weights_only=True)`` (:func:`mmib.state_io.load_state`). The
evaluate stage logs it through :func:`log_evaluation_model`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

import mlflow.pyfunc
import numpy as np
import pandas as pd

from mmib.errors import InputError

INPUT_COLUMN = "v{m}_{j}"
OUTPUT_COLUMNS = ("cluster", "confidence")
REQUIREMENTS = ("torch", "numpy", "pandas", "scipy", "scikit-learn", "pydantic", "pyyaml", "tqdm", "mlflow")
"""What :mod:`mmib` needs at prediction time, pinned to the versions that logged the model (explicit:
MLflow's requirement inference would load the model in a subprocess and is slow)."""
EXAMPLE_ROWS = 3


# ---------------------------------------------------------------- input format
def feature_columns(dims: Sequence[int]) -> list[str]:
    """``v0_0 .. v0_{d0-1}, v1_0, ...``: the input columns for views of widths ``dims``."""
    return [INPUT_COLUMN.format(m=m, j=j) for m, d in enumerate(dims) for j in range(int(d))]


def views_frame(views: Sequence[np.ndarray]) -> pd.DataFrame:
    """The model's input from a list of ``N x d_m`` arrays (one per view)."""
    arrays = [np.asarray(v, dtype=np.float64) for v in views]
    return pd.DataFrame(np.concatenate(arrays, axis=1), columns=feature_columns([a.shape[1] for a in arrays]))


def frame_views(frame: Any, dims: Sequence[int]) -> list[np.ndarray]:
    """The views (float64) from an input DataFrame; a missing or extra column is an :class:`InputError`."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got a {type(frame).__name__}", field="model_input",
                         fix="build the input with mmib.mlflow_model.views_frame(views)")
    wanted = feature_columns(dims)
    missing = [c for c in wanted if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in set(wanted)]
    if missing or extra:
        raise InputError(f"the model takes {len(wanted)} columns v{{m}}_{{j}} for views of widths {list(dims)}; "
                         f"got {frame.shape[1]} (missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"extra {extra[:5]}{'...' if len(extra) > 5 else ''})", field="model_input",
                         fix="pass one column per feature of every view: mmib.mlflow_model.views_frame(views)")
    values = frame[wanted].to_numpy(dtype=np.float64)
    bounds = np.cumsum([0, *dims])
    return [values[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def apply_scaler(views: Sequence[np.ndarray], scaler: Sequence[tuple[np.ndarray, np.ndarray]] | None
                 ) -> list[np.ndarray]:
    """Raw views -> float32 views as preprocess writes them (``(x - offset) / scale`` in float64)."""
    if scaler is None:
        return [np.asarray(v, dtype=np.float32) for v in views]
    return [((np.asarray(v, dtype=np.float64) - off) / sc).astype(np.float32) for v, (off, sc) in zip(views, scaler)]


def unscale(views: Sequence[np.ndarray], scaler: Sequence[tuple[np.ndarray, np.ndarray]] | None
            ) -> list[np.ndarray]:
    """Processed views back to raw features (for the input example)."""
    if scaler is None:
        return [np.asarray(v, dtype=np.float64) for v in views]
    return [np.asarray(v, dtype=np.float64) * sc + off for v, (off, sc) in zip(views, scaler)]


# ---------------------------------------------------------------- the model
TRAINING_ONLY = {"clib": (("critics.", "decoders.", "projections."),
                          {"preservation": "none", "reconstruction_weight": 0.0, "projection_dim": 0})}
"""Per method: the network's modules only training uses (MINE critics, decoders, projection heads: half
of an mfeat CLIB's weights), and the ``warmup`` values under which the network is built without them."""


def serving_state(state: dict[str, Any]) -> dict[str, Any]:
    """A state with what prediction needs: no training-only modules (:data:`TRAINING_ONLY`), the
    training history and trace (per-epoch records) emptied."""
    from mmib.methods.registry import method_of_state

    slim = dict(state)
    prefixes = TRAINING_ONLY.get(method_of_state(state), ((), {}))[0]
    slim["net"] = {k: v for k, v in state["net"].items() if not k.startswith(prefixes)}
    if "history" in slim:
        slim["history"] = {stage: {} for stage in slim["history"]}
    if "trace" in slim:
        slim["trace"] = None
    return slim


def serving_params(params: Any, method: str) -> Any:
    """``params`` with the network built without the modules :func:`serving_state` leaves out."""
    off = TRAINING_ONLY.get(method, ((), {}))[1]
    return params.model_copy(update={"warmup": params.warmup.model_copy(update=off)}) if off else params


class ClusterModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of one trained seed (any method): ``predict`` returns cluster and confidence.

    Artifacts: ``state`` (:func:`serving_state` of the seed's state), ``params`` (the run's params, JSON) and,
    when preprocess stored one, ``scaler`` (``<ds>.scaler.npz``).
    """

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's PythonModelContext
        from mmib.config import Params
        from mmib.data.processed import load_scaler
        from mmib.methods import registry
        from mmib.state_io import load_state

        artifacts = context.artifacts
        params = Params.model_validate(json.loads(Path(artifacts["params"]).read_text()))
        state = load_state(artifacts["state"], rerun=f"evaluate@{params.datasets[0]}")  # it logs the model
        params = serving_params(params, registry.method_of_state(state))
        self.estimator = registry.restore(state, params, int(state["n_clusters"]), int(state["seed"]))
        self.dims = [int(d) for d in state["dims"]]
        self.scaler = load_scaler(artifacts["scaler"])[1] if "scaler" in artifacts else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """``cluster`` and ``confidence`` per row of ``model_input`` (see the module docstring)."""
        views = apply_scaler(frame_views(model_input, self.dims), self.scaler)
        proba = self.estimator.predict_proba(views)
        return pd.DataFrame({"cluster": proba.argmax(axis=1).astype(np.int64),
                             "confidence": proba.max(axis=1).astype(np.float64)})


MODEL_CODE = ("# MLflow models-from-code: the model is built from this file, not unpickled\n"
              "import mlflow.models\n\nfrom mmib.mlflow_model import ClusterModel\n\n"
              "mlflow.models.set_model(ClusterModel())\n")
"""The ``python_model`` file MLflow stores and runs at load time (``mmib`` comes from the model's ``code/``)."""


def signature(dims: Sequence[int]) -> Any:
    """Input: one double column per feature (``v{m}_{j}``); output: ``cluster`` (long), ``confidence``."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("double", c) for c in feature_columns(dims)]),
                          outputs=Schema([ColSpec("long", "cluster"), ColSpec("double", "confidence")]))


def pip_requirements() -> list[str]:
    """``name==version`` of :data:`REQUIREMENTS` as installed (a local tag such as ``+cpu`` dropped)."""
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in REQUIREMENTS]


# ---------------------------------------------------------------- logging
def log_clusterer(state_path: str | Path, params: Any, dataset: str, example_views: Sequence[np.ndarray],
                  scaler_file: str | Path | None = None, registered_name: str | None = None,
                  name: str = "model") -> dict[str, Any]:
    """Log one seed's state as a pyfunc model in the active MLflow run; return what was logged.

    ``params`` is the run's :class:`mmib.config.Params` (stored with the dataset's catalog entry only
    and ``device: cpu``); ``example_views`` are processed views whose first rows become the input
    example (unscaled back to raw features); ``scaler_file`` is preprocess's ``<ds>.scaler.npz``
    (a missing file is an :class:`InputError`; None: the model takes inputs already scaled as
    preprocess scales them, and says so in its metadata).
    ``registered_name`` also registers the model under that name (the store must have a registry).
    """
    from mmib.data.processed import load_scaler
    from mmib.methods.registry import method_of_state
    from mmib.state_io import load_state, save_state

    state = load_state(state_path, rerun=f"calibrate@{dataset}")
    dims = [int(d) for d in state["dims"]]
    scaler = load_scaler(scaler_file) if scaler_file is not None else None
    if scaler is not None and [len(off) for off, _ in scaler[1]] != dims:
        raise InputError(f"the scaler's view widths {[len(o) for o, _ in scaler[1]]} differ from the model's {dims}",
                         file=str(scaler_file), field="preprocess.scaling",
                         fix=f"re-run the pipeline for this dataset: dvc repro evaluate@{dataset}")
    run_params = params.model_dump()
    run_params.update(device="cpu", catalog={dataset: run_params["catalog"].get(dataset, {})}, datasets=[dataset])
    example = views_frame([v[:EXAMPLE_ROWS] for v in unscale(example_views, scaler and scaler[1])])
    metadata_ = {"dataset": dataset, "seed": int(state["seed"]), "method": method_of_state(state),
                 "n_clusters": int(state["n_clusters"]), "dims": dims,
                 "scaler": scaler[0] if scaler else "none",
                 "input": "DataFrame, one double column v{m}_{j} per feature j of view m: "
                          + ("raw features (the model applies preprocess's scaling)" if scaler else
                             "features already scaled as the preprocess stage scales them")}
    with tempfile.TemporaryDirectory(prefix="mmib-model-") as tmp:
        artifacts = {"state": str(Path(tmp) / "state.pt"), "params": str(Path(tmp) / "params.json")}
        save_state(artifacts["state"], serving_state(state))
        Path(artifacts["params"]).write_text(json.dumps(run_params, indent=1, sort_keys=True))
        if scaler_file is not None:
            artifacts["scaler"] = str(scaler_file)
        code = Path(tmp) / "clusterer.py"
        code.write_text(MODEL_CODE)
        package = shutil.copytree(Path(__file__).resolve().parent, Path(tmp) / "code" / "mmib",
                                  ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        t0 = time.perf_counter()
        info = mlflow.pyfunc.log_model(
            name=name, python_model=str(code), artifacts=artifacts, code_paths=[str(package)],
            pip_requirements=pip_requirements(), signature=signature(dims), input_example=example,
            metadata=metadata_, registered_model_name=registered_name)
        seconds = time.perf_counter() - t0
    return {"model_uri": info.model_uri, "seconds": seconds, "seed": int(state["seed"]),
            "state_bytes": Path(state_path).stat().st_size, "registered": registered_name}


REGISTRY_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
"""Tracking stores with a model registry (a ``file:`` store has none)."""


def registry_supported(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() in REGISTRY_SCHEMES


def registered_name(method: str, dataset: str) -> str:
    """``<method>-<dataset>``, e.g. ``clib-mfeat``: the registry's name for the default run's model."""
    return f"{method}-{dataset}"


@contextlib.contextmanager
def _active(run_id: str) -> Iterator[None]:
    """Make ``run_id`` the active MLflow run (``log_model`` logs into the active run) unless it is."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        yield
        return
    with mlflow.start_run(run_id=run_id, nested=active is not None):
        yield


def log_evaluation_model(run: Any, dataset: str, params: Any, method: str, state_path: str | Path,
                         processed_npz: str | Path) -> dict[str, Any] | None:
    """The evaluate run's model (:func:`log_clusterer`), registered as :func:`registered_name` when
    the run is the default one (the workspace's ``dvc repro``, not a ``dvc exp run``) and the store
    has a registry. Tags the run with the model's URI and seed; a no-op when tracking is off."""
    if not getattr(run, "enabled", False):
        return None
    from mmib import tracking
    from mmib.data.processed import load_processed, scaler_path

    default_run = tracking.dvc_experiment_name() == tracking.WORKSPACE
    register = registered_name(method, dataset) if default_run and registry_supported(tracking.tracking_uri()) else None
    views = load_processed(processed_npz)[0]
    state_path, scaler = Path(state_path).resolve(), scaler_path(dataset, Path(processed_npz).resolve().parent)
    with _active(run.run_id), tracking.in_store_directory():  # relative artifact location: from the store's dir
        logged = log_clusterer(state_path, params, dataset, views, scaler, registered_name=register)
    run.set_tags({"model_uri": logged["model_uri"], "model_seed": logged["seed"],
                  **({"registered_model": register} if register else {})})
    print(f"evaluate {dataset}: MLflow model of seed {logged['seed']} (lowest final loss) -> {logged['model_uri']}"
          f"{f', registered as {register}' if register else ''} ({logged['seconds']:.1f} s)")
    return logged

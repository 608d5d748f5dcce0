"""MLflow tracking for pipeline stages (see docs ECOSYSTEM.md, "MLflow 3.x").

Rules this module enforces:

- The tracking store is ``MLFLOW_TRACKING_URI`` when set; otherwise
  ``sqlite:///<root>/mlflow.db`` with ``root`` = ``DVC_ROOT`` (set by DVC even
  for queued / temp experiments, which run in ``.dvc/tmp/exps/tmpXXX``), else
  the git top-level directory, else the working directory. Artifacts of a
  SQLite store go beside the database, in ``<db dir>/mlruns``, through the
  experiment's ``artifact_location``, so they never land in a temp directory.
- The experiment is created once; a parallel process that created it first
  (``already exists``) is tolerated, and creation of the SQLite database is
  serialised with a file lock (parallel creation fails in MLflow).
- Params are logged once per run, flattened to dotted keys that match DVC's
  param columns (``calibrate.losses.caliH``); MLflow refuses to log a param
  twice with a new value.
- ``MMIB_TRACKING=0`` (or ``false``/``off``/``no``) turns every call into a
  no-op that never imports mlflow and writes nothing.
- ``import mlflow`` costs about 2 s: it is imported lazily, never at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .atomic_io import write_json
from .errors import InputError

ENV_SWITCH = "MMIB_TRACKING"
DEFAULT_EXPERIMENT = "mmib"
WORKSPACE = "workspace"
"""``dvc_exp`` tag and run-name prefix outside a DVC experiment."""

_OFF_VALUES = {"0", "false", "off", "no"}
_SQLITE_PREFIX = "sqlite:///"
_MAX_PARAMS_PER_BATCH = 100     # mlflow.utils.validation.MAX_PARAMS_TAGS_PER_BATCH
_MAX_METRICS_PER_BATCH = 1000   # mlflow.utils.validation.MAX_METRICS_PER_BATCH
_MAX_PARAM_VALUE_LENGTH = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
_LOCKED_RETRIES = 6


# --------------------------------------------------------------------------
# where to track
# --------------------------------------------------------------------------

def tracking_enabled() -> bool:
    """False when env ``MMIB_TRACKING`` is ``0``/``false``/``off``/``no``."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in _OFF_VALUES


def _git(*args: str, cwd: str | os.PathLike | None = None) -> str | None:
    """Output of ``git <args>`` (stripped), or None when git or the repository is missing."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def project_root() -> Path:
    """``DVC_ROOT`` if set, else the git top-level directory, else the working directory."""
    dvc_root = os.environ.get("DVC_ROOT")
    if dvc_root:
        return Path(dvc_root).resolve()
    top = _git("rev-parse", "--show-toplevel")
    return Path(top).resolve() if top else Path.cwd().resolve()


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project_root()>/mlflow.db``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    return _SQLITE_PREFIX + str(project_root() / "mlflow.db")


def _sqlite_path(uri: str) -> Path | None:
    """Database file of a ``sqlite:///`` URI (relative paths from the cwd), else None."""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    path = unquote(uri[len(_SQLITE_PREFIX):].split("?", 1)[0])
    return Path(path).resolve() if path and path != ":memory:" else None


def artifact_location(uri: str | None = None) -> str | None:
    """File URI ``<db dir>/mlruns`` for a SQLite store; None (server default) otherwise."""
    db = _sqlite_path(tracking_uri() if uri is None else uri)
    return (db.parent / "mlruns").as_uri() if db is not None else None


# --------------------------------------------------------------------------
# experiment creation
# --------------------------------------------------------------------------

@contextlib.contextmanager
def _interprocess_lock(key: str) -> Iterator[None]:
    """Exclusive lock shared by the processes of this machine that use ``key``."""
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on the retries alone
        yield
        return
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"mmib-mlflow-{digest}.lock"
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_transient(exc: BaseException) -> bool:
    msg = str(exc).lower()
    # concurrent writers, or two processes creating the SQLite schema at once
    return "database is locked" in msg or ("table" in msg and "already exists" in msg)


def _retry(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, retrying with back-off on SQLite lock / creation races."""
    for attempt in range(_LOCKED_RETRIES):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - MLflow wraps SQLAlchemy errors variously
            if attempt == _LOCKED_RETRIES - 1 or not _is_transient(exc):
                raise
            time.sleep(0.2 * 2 ** attempt)
    raise AssertionError("unreachable")


EXPERIMENT_TAGS = {
    # MLflow 3 opens an experiment without a kind on its GenAI (traces) page; this is model training
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": (
        "CLIB / MSDIB / OMIB trusted multi-modal clustering (the mmib DVC pipeline). One run per stage, "
        "dataset and seed: warmup / calibrate runs hold per-epoch loss curves (step = epoch); evaluate runs "
        "hold ACC / NMI / ARI / ECE (mean and per seed), the figures and the metrics JSON. Compare runs with "
        "the filter tags.stage = \"evaluate\" and plot acc_mean, ece_mean against the params."),
}
"""Tags of the experiment, set when it is created: its kind and the description the UI shows."""


def _get_or_create_experiment(client: Any, name: str, location: str | None) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        for key, value in EXPERIMENT_TAGS.items():  # an experiment made by an older version gets them too
            if exp.tags.get(key) != value:
                client.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(exc):
            raise
    exp = client.get_experiment_by_name(name)  # another process created it first
    if exp is None:
        raise RuntimeError(f"MLflow experiment '{name}' reported as existing but not found")
    return exp.experiment_id


def ensure_experiment(name: str = DEFAULT_EXPERIMENT) -> str:
    """Return the id of MLflow experiment ``name``, creating it (and the database) once.

    Safe under parallel processes: creation is serialised by a file lock and
    an ``already exists`` race is answered by reading the experiment back.
    A deleted experiment of that name is restored.
    """
    from mlflow import MlflowClient

    uri = tracking_uri()
    with _interprocess_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        return _retry(_get_or_create_experiment, client, name, artifact_location(uri))


# --------------------------------------------------------------------------
# params
# --------------------------------------------------------------------------

def _leaves(d: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.key, value)`` for every non-dict leaf of a nested mapping."""
    for key, value in d.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, name)
        else:
            yield name, value


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _leaves(d, prefix):
        if key in out:
            raise InputError(f"two entries flatten to the same key '{key}'", field=key,
                             fix="do not use dots in keys that also exist as nested mappings")
        out[key] = value
    return out


def flatten_params(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested params to dotted keys with string values (DVC's param column names).

    ``{"calibrate": {"losses": {"caliH": True}}, "alpha": 0.5}`` gives
    ``{"calibrate.losses.caliH": "True", "alpha": "0.5"}``. Lists (and empty
    mappings) are leaves, written as ``str(value)``. Values longer than
    MLflow's limit (6000 characters) are truncated.
    """
    return {k: str(v)[:_MAX_PARAM_VALUE_LENGTH] for k, v in _flatten(d, prefix).items()}


def run_name(stage: str, dataset: str, seed: int | None = None) -> str:
    """``<DVC_EXP_NAME or 'workspace'>/<stage>/<dataset>[/seed<k>]``."""
    parts = [dvc_experiment_name(), stage, dataset]
    if seed is not None:
        parts.append(f"seed{seed}")
    return "/".join(parts)


def dvc_experiment_name() -> str:
    """``DVC_EXP_NAME`` (set by ``dvc exp run``) or ``'workspace'``."""
    return os.environ.get("DVC_EXP_NAME") or WORKSPACE


# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------

def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _as_float(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"metric value {value!r} is not a number", field=key,
                         fix="log only numeric metrics") from None


class StageRun:
    """Handle on the MLflow run of one stage; every method is a no-op when tracking is off."""

    def __init__(self, run_id: str | None = None, client: Any = None) -> None:
        self.run_id = run_id
        self._client = client

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def _log_metric_entities(self, metrics: list[Any]) -> None:
        for chunk in _chunks(metrics, _MAX_METRICS_PER_BATCH):
            _retry(self._client.log_batch, self.run_id, metrics=list(chunk))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log numeric metrics (nested mappings are flattened to dotted keys) at ``step``."""
        if not self.enabled:
            return
        from mlflow.entities import Metric

        ts = _now_ms()
        self._log_metric_entities([Metric(k, _as_float(k, v), ts, int(step or 0))
                                   for k, v in _flatten(metrics).items()])

    def log_curve(self, curves: Mapping[str, Sequence[float]], start: int = 0) -> None:
        """Log per-epoch curves: value ``i`` of each curve at step ``start + i``, batched."""
        if not self.enabled:
            return
        from mlflow.entities import Metric

        ts = _now_ms()
        entities = [Metric(name, _as_float(name, v), ts, start + i)
                    for name, values in curves.items() for i, v in enumerate(values)]
        self._log_metric_entities(entities)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set (or overwrite) run tags; values are stringified."""
        if not self.enabled:
            return
        from mlflow.entities import RunTag

        _retry(self._client.log_batch, self.run_id,
               tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Copy a local file (or directory) into the run's artifacts under ``artifact_path``."""
        if not self.enabled:
            return
        path = Path(path)
        if not path.exists():
            raise InputError("artifact to log does not exist", file=str(path),
                             fix="write the file before logging it")
        log = self._client.log_artifacts if path.is_dir() else self._client.log_artifact
        log(self.run_id, str(path), artifact_path)

    def log_dict_json(self, obj: Any, artifact_file: str) -> None:
        """Write ``obj`` as JSON (numpy values allowed) to ``artifact_file`` in the run's artifacts."""
        if not self.enabled:
            return
        rel = Path(artifact_file)
        with tempfile.TemporaryDirectory(prefix="mmib-artifact-") as tmp:
            local = Path(tmp) / rel.name
            write_json(local, obj)
            parent = rel.parent.as_posix()
            self._client.log_artifact(self.run_id, str(local), None if parent == "." else parent)


def _stage_tags(stage: str, dataset: str, params: Mapping[str, Any], seed: int | None,
                device: Any, extra_tags: Mapping[str, Any] | None) -> dict[str, str]:
    tags: dict[str, Any] = {"stage": stage, "dataset": dataset, "dvc_exp": dvc_experiment_name()}
    if seed is not None:
        tags["seed"] = seed
    if device is not None:
        tags["device"] = device
    if params.get("method") is not None:
        tags["method"] = params["method"]
    commit = _git("rev-parse", "HEAD")
    if commit:
        tags["git_commit"] = commit
    tags.update(extra_tags or {})
    return {k: str(v) for k, v in tags.items()}


@contextlib.contextmanager
def start_stage_run(stage: str, dataset: str, params: Mapping[str, Any], seed: int | None = None,
                    device: Any = None, extra_tags: Mapping[str, Any] | None = None,
                    experiment: str = DEFAULT_EXPERIMENT) -> Iterator[StageRun]:
    """Open an MLflow run for one stage on one dataset (and seed), yield a :class:`StageRun`.

    The run is named ``<DVC_EXP_NAME or 'workspace'>/<stage>/<dataset>[/seed<k>]``
    and tagged ``stage``, ``dataset``, ``dvc_exp``, and when known ``seed``,
    ``device``, ``method`` (``params["method"]``) and ``git_commit``;
    ``extra_tags`` are added last (and win). ``params`` are flattened with
    :func:`flatten_params` and logged once. The run is the active MLflow run
    inside the block (nested under an already active run), so ``mlflow.log_*``
    also works there; it ends FINISHED, or FAILED when the block raises.
    With ``MMIB_TRACKING=0`` nothing is imported or written.
    """
    if not tracking_enabled():
        yield StageRun()
        return
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Param

    uri = tracking_uri()
    experiment_id = ensure_experiment(experiment)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    tags = _stage_tags(stage, dataset, params, seed, device, extra_tags)
    flat = flatten_params(params)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name(stage, dataset, seed),
                          tags=tags, nested=mlflow.active_run() is not None) as active:
        run = StageRun(active.info.run_id, client)
        items = [Param(k, v) for k, v in flat.items()]
        for chunk in _chunks(items, _MAX_PARAMS_PER_BATCH):
            _retry(client.log_batch, run.run_id, params=list(chunk))
        yield run

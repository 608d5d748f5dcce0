"""MLflow tracking for pipeline stages (see docs ECOSYSTEM.md, "MLflow 3.x").

Rules this module enforces:

- The tracking store is ``MLFLOW_TRACKING_URI`` when set; otherwise
  ``sqlite:///<root>/mlflow.db`` with ``root`` = ``DVC_ROOT`` (set by DVC even
  for queued / temp experiments, which run in ``.dvc/tmp/exps/tmpXXX``), else
  the git top-level directory, else the working directory. Artifacts of a
  SQLite store go beside the database, in ``<db dir>/mlruns``, and the store
  records that place as the *relative* path ``mlruns`` (MLflow itself would
  record an absolute ``file:///...`` path, which breaks when the clone moves):
  MLflow's readers (``mlflow ui``, the client) resolve it against their
  working directory, the one that holds ``mlflow.db``; this module's writers
  resolve it against the database's directory, so a queued run working in
  ``.dvc/tmp/exps/tmpXXX`` still writes beside the database.
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
import dataclasses
import hashlib
import logging
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
SYSTEM_METRICS_ENV = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"


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


ARTIFACT_DIR = "mlruns"
"""Artifact root of a SQLite store, relative to the directory of the database."""


def artifact_location(uri: str | None = None) -> str | None:
    """``'mlruns'`` (relative to the database's directory) for a SQLite store; None (the server
    decides) otherwise."""
    return ARTIFACT_DIR if _sqlite_path(tracking_uri() if uri is None else uri) is not None else None


def artifact_root(uri: str | None = None) -> Path | None:
    """Where the artifacts of a SQLite store lie on disk (``<db dir>/mlruns``); None otherwise."""
    db = _sqlite_path(tracking_uri() if uri is None else uri)
    return db.parent / ARTIFACT_DIR if db is not None else None


def local_artifact_dir(artifact_uri: str, uri: str | None = None) -> str:
    """A run's artifact URI as this process can write it: a relative path (this module's SQLite
    stores) resolved against the database's directory; any other URI unchanged."""
    from urllib.parse import urlparse

    db = _sqlite_path(tracking_uri() if uri is None else uri)
    if db is None or urlparse(artifact_uri).scheme or Path(artifact_uri).is_absolute():
        return artifact_uri
    return str(db.parent / artifact_uri)


@contextlib.contextmanager
def in_store_directory(uri: str | None = None) -> Iterator[None]:
    """Work in the SQLite database's directory for the duration (no-op for other stores).

    MLflow writes a relative artifact location (:func:`artifact_location`) relative to the
    working directory; a queued or ``--temp`` DVC run works in a copy of the repository, so
    writers that MLflow resolves itself (``mlflow.pyfunc.log_model``) run from here.
    """
    db = _sqlite_path(tracking_uri() if uri is None else uri)
    if db is None:
        yield
        return
    here = os.getcwd()
    os.chdir(db.parent)
    try:
        yield
    finally:
        os.chdir(here)


def _relative_locations(uri: str, name: str) -> None:
    """Record every experiment's artifact location (and its runs' and models' artifact URIs) as
    a path relative to the database, in place of the absolute ``file://`` URIs MLflow stores.

    MLflow resolves a relative ``artifact_location`` to an absolute one when it creates an
    experiment, so the rows are rewritten here (SQLite stores only; other stores are left as
    they are). Only locations of this layout, ``.../mlruns`` or ``.../mlruns/<n>`` (the
    ``Default`` experiment MLflow creates with the database), beside the database or of the
    experiment ``name`` or ``Default`` are rewritten: an older store of this project and a clone
    moved since are put right too, other experiments sharing the store are left alone.
    """
    import re
    import sqlite3

    db = _sqlite_path(uri)
    if db is None or not db.exists():
        return
    ours = re.compile(r"^(?:file:(?://)?)?/.*/(" + ARTIFACT_DIR + r"(?:/\d+)?)/?$")
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con, con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = con.execute("SELECT experiment_id, name, artifact_location FROM experiments").fetchall()
        for exp_id, exp_name, old in rows:
            match = ours.match(old or "")
            beside = match is not None and old.rstrip("/").endswith(f"{db.parent.as_posix()}/{match[1]}")
            if match is None or not (beside or exp_name in (name, "Default")):
                continue
            new, old = match[1], old.rstrip("/")
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, exp_id))
            for table, column in (("runs", "artifact_uri"), ("logged_models", "artifact_location")):
                if table in tables:
                    con.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                                f"WHERE experiment_id = ? AND substr({column}, 1, ?) = ?",
                                (new, len(old) + 1, exp_id, len(old), old))


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
        "CLIB / MSDIB / OMIB trusted multi-modal clustering (the mmib DVC pipeline).\n\n"
        "One parent run per pipeline run (`dvc repro` or `dvc exp run`), named after the DVC experiment and "
        "the params that differ from the committed params.yaml (`workspace: baseline`, `quick-fox: alpha=0.3`); "
        "it holds each dataset's headline metrics (`<dataset>.acc_mean`, ...). Under it, one run per stage and "
        "dataset (`warmup/mfeat`, with the stage's params and system metrics), and under a stage one run per "
        "seed (`warmup/mfeat/seed0`): the per-epoch curves (step = epoch; per-view values as `fusion_w/view<m>`) "
        "and, for evaluate, ACC / NMI / ARI / ECE and `epoch_acc` / `epoch_nmi`, with the same metric names in "
        "every seed so that charts overlay the seeds.\n\n"
        "Compare pipeline runs: filter `tags.stage = \"pipeline\"`; or evaluate runs: "
        "`tags.stage = \"evaluate\"`, and plot `acc_mean`, `ece_mean` against the params `alpha`, `beta`."),
}
"""Tags of the experiment, set when it is created: its kind and the description the UI shows."""


def _get_or_create_experiment(client: Any, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        from mlflow.exceptions import MlflowException

        root = artifact_root(uri)
        try:
            client.create_experiment(name, artifact_location=root.as_uri() if root else None,
                                     tags=EXPERIMENT_TAGS)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(exc):
                raise
        exp = client.get_experiment_by_name(name)  # ours, or another process created it first
        if exp is None:
            raise RuntimeError(f"MLflow experiment '{name}' reported as existing but not found")
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    for key, value in EXPERIMENT_TAGS.items():  # an experiment made by an older version gets them too
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
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
        experiment_id = _retry(_get_or_create_experiment, client, name, uri)
        _retry(_relative_locations, uri, name)
        return experiment_id


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


def run_name(stage: str, dataset: str, seed: int | None = None, label: str | None = None) -> str:
    """``<stage>/<dataset>[/seed<k>]``, then `` (<label>)`` (what the pipeline run changed)."""
    parts = [stage, dataset]
    if seed is not None:
        parts.append(f"seed{seed}")
    return "/".join(parts) + (f" ({label})" if label else "")


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


@dataclasses.dataclass(frozen=True)
class ChildSpec:
    """What a process needs to open a child run (picklable: seed workers get it)."""

    parent_id: str
    name: str
    tags: dict[str, str]
    params: dict[str, str]


class StageRun:
    """Handle on the MLflow run of one stage (or seed); every method is a no-op when tracking is off."""

    def __init__(self, run_id: str | None = None, client: Any = None, name: str = "",
                 tags: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
                 pipeline_id: str | None = None) -> None:
        self.run_id = run_id
        self._client = client
        self.name = name
        self.tags = dict(tags or {})
        self.params = dict(params or {})
        self.pipeline_id = pipeline_id
        """The parent run of the pipeline run (None when nested in another active run)."""

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def log_params(self, params: Mapping[str, str]) -> None:
        """Log flattened string params (once per run), batched."""
        if not self.enabled:
            return
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for chunk in _chunks(items, _MAX_PARAMS_PER_BATCH):
            _retry(self._client.log_batch, self.run_id, params=list(chunk))

    def seed_spec(self, seed: int) -> ChildSpec | None:
        """The child run of ``seed`` (``<stage>/<dataset>/seed<k>``, same params and tags), for
        :func:`child_run` in this or another process; None when tracking is off."""
        if not self.enabled:
            return None
        stage, _, rest = self.name.partition("/")
        dataset, _, label = rest.partition(" (")
        name = run_name(stage, dataset, seed, label.rstrip(")") or None)
        return ChildSpec(self.run_id, name, {**self.tags, "seed": str(seed)}, self.params)

    def seed_run(self, seed: int) -> contextlib.AbstractContextManager["StageRun"]:
        """Open the child run of ``seed`` in this process (see :meth:`seed_spec`) around a block."""
        return child_run(self.seed_spec(seed))

    def open_seed_run(self, seed: int, start_time: int | None = None) -> "StageRun":
        """Create the child run of ``seed`` (started at ``start_time``, ms; default now); the caller
        ends it with :meth:`terminate` (:class:`mmib.seed_runs.SeedRunRelay`)."""
        return open_child(self.seed_spec(seed), start_time)

    def terminate(self, status: str = "FINISHED", end_time: int | None = None) -> None:
        """End the run: ``status`` FINISHED / FAILED at ``end_time`` (ms; default now)."""
        if self.enabled:
            _retry(self._client.set_terminated, self.run_id, status, end_time)

    def log_pipeline_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Log headline metrics on the pipeline's parent run too (one row per pipeline run)."""
        if self.enabled and self.pipeline_id:
            StageRun(self.pipeline_id, self._client).log_metrics(metrics)

    def _log_metric_entities(self, metrics: list[Any]) -> None:
        for chunk in _chunks(metrics, _MAX_METRICS_PER_BATCH):
            _retry(self._client.log_batch, self.run_id, metrics=list(chunk))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None,
                    timestamp: int | None = None) -> None:
        """Log numeric metrics (nested mappings are flattened to dotted keys) at ``step``, stamped
        ``timestamp`` (ms since the epoch; default now)."""
        if not self.enabled:
            return
        from mlflow.entities import Metric

        ts = _now_ms() if timestamp is None else int(timestamp)
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
        repo = self._artifact_repository()
        if path.is_dir():
            repo.log_artifacts(str(path), artifact_path)
        else:
            repo.log_artifact(str(path), artifact_path)

    def log_dataset(self, name: str, source: str | os.PathLike, views: Sequence[Any], context: str,
                    labels: Any = None) -> None:
        """Record the run's input as an MLflow dataset (the UI's *Dataset* column): the views as
        named arrays (``view0``, ...; their shapes become its schema), the labels as targets when the
        run reads them, ``source`` the file they came from, ``context`` ``training`` or
        ``evaluation``. MLflow stores the digest, schema and profile, not the data."""
        if not self.enabled:
            return
        import mlflow.data
        from mlflow.data.dataset_source_registry import get_registered_sources
        from mlflow.entities import DatasetInput, InputTag

        # a local file; named, because MLflow 3.17 registers this source class twice and then warns
        # that a plain path "can be interpreted in multiple ways"
        local = next(s for s in get_registered_sources() if s.__name__ == "LocalArtifactDatasetSource")
        features = {f"view{m}": view for m, view in enumerate(views)}
        dataset = mlflow.data.from_numpy(features, source=local(str(source)), name=name, targets=labels)
        _retry(self._client.log_inputs, self.run_id,
               datasets=[DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])])

    def log_dict_json(self, obj: Any, artifact_file: str) -> None:
        """Write ``obj`` as JSON (numpy values allowed) to ``artifact_file`` in the run's artifacts."""
        if not self.enabled:
            return
        rel = Path(artifact_file)
        with tempfile.TemporaryDirectory(prefix="mmib-artifact-") as tmp:
            local = Path(tmp) / rel.name
            write_json(local, obj)
            parent = rel.parent.as_posix()
            self._artifact_repository().log_artifact(str(local), None if parent == "." else parent)

    def artifact_dir(self) -> str:
        """The run's artifact URI as this process writes it (relative locations resolved against
        the database's directory, :func:`local_artifact_dir`)."""
        run = _retry(self._client.get_run, self.run_id)
        return local_artifact_dir(run.info.artifact_uri)

    def _artifact_repository(self) -> Any:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(self.artifact_dir())


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


def system_metrics_switch() -> bool | None:
    """``log_system_metrics`` of stage runs: True, unless MLflow's own switch
    ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` is set, which then decides (None)."""
    return None if os.environ.get(SYSTEM_METRICS_ENV) is not None else True


@contextlib.contextmanager
def start_stage_run(stage: str, dataset: str, params: Mapping[str, Any], seed: int | None = None,
                    device: Any = None, extra_tags: Mapping[str, Any] | None = None,
                    experiment: str = DEFAULT_EXPERIMENT,
                    pipeline_params: Mapping[str, Any] | None = None) -> Iterator[StageRun]:
    """Open an MLflow run for one stage on one dataset (and seed), yield a :class:`StageRun`.

    Open it around the stage's work: its duration and its system metrics
    (``system/*``, sampled by MLflow every 10 s; see :func:`system_metrics_switch`)
    are the stage's. With ``pipeline_params`` (the whole params of a pipeline
    stage) the run is nested under the pipeline run's parent
    (:mod:`mmib.pipeline_run`); inside an active run, under that run; else it
    is a top-level run (``mmib.experiments``, the collector). It is named
    ``<stage>/<dataset>[/seed<k>] (<what the pipeline run changed>)`` and
    tagged ``stage``, ``dataset``, ``dvc_exp``, and when known ``seed``,
    ``device``, ``method`` (``params["method"]``) and ``git_commit``;
    ``extra_tags`` are added last (and win). ``params`` (the params the stage
    uses) are flattened with :func:`flatten_params` and logged once, and on
    the pipeline run too (the same values in all its stages: its key holds
    a hash of the params). The run is
    the active MLflow run inside the block, so ``mlflow.log_*`` also works
    there; it ends FINISHED, or FAILED when the block raises, and so does the
    parent (its end time moves on with every stage). With ``MMIB_TRACKING=0``
    nothing is imported or written.
    """
    if not tracking_enabled():
        yield StageRun()
        return
    import mlflow
    from mlflow import MlflowClient

    from mmib import pipeline_run

    uri = tracking_uri()
    experiment_id = ensure_experiment(experiment)
    mlflow.set_tracking_uri(uri)
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # 4 INFO lines per run otherwise
    client = MlflowClient(tracking_uri=uri)
    tags = _stage_tags(stage, dataset, params, seed, device, extra_tags)
    flat = flatten_params(params)
    pipeline_id, label = None, None
    if mlflow.active_run() is None and pipeline_params is not None:
        ident = pipeline_run.identity(pipeline_params)
        pipeline_id, label = pipeline_run.open_parent(client, experiment_id, ident, uri), ident.short_label
    name = run_name(stage, dataset, seed, label)
    failed = True
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags,
                              nested=mlflow.active_run() is not None, parent_run_id=pipeline_id,
                              log_system_metrics=system_metrics_switch()) as active:
            run = StageRun(active.info.run_id, client, name, tags, flat, pipeline_id)
            run.log_params(flat)
            if pipeline_id is not None:  # the union of its stages' params: pipeline runs compare by them
                StageRun(pipeline_id, client).log_params(flat)
            yield run
            failed = False
    finally:
        if pipeline_id is not None:
            pipeline_run.close_parent(client, pipeline_id, failed)


@contextlib.contextmanager
def child_run(spec: ChildSpec | None) -> Iterator[StageRun]:
    """Open the child run ``spec`` describes, in any process (a seed worker too), around the work
    of the block; it ends FINISHED, or FAILED when the block raises. ``None``: a no-op handle."""
    if spec is None or not tracking_enabled():
        yield StageRun()
        return
    run = open_child(spec)
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    finally:
        run.terminate(status)


def open_child(spec: ChildSpec | None, start_time: int | None = None) -> StageRun:
    """Create the child run ``spec`` describes (started at ``start_time``, ms; default now), with
    its params; None or tracking off: a no-op handle. End it with :meth:`StageRun.terminate`."""
    if spec is None or not tracking_enabled():
        return StageRun()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri())
    parent = _retry(client.get_run, spec.parent_id)
    created = _retry(client.create_run, parent.info.experiment_id, start_time=start_time, run_name=spec.name,
                     tags={**spec.tags, "mlflow.parentRunId": spec.parent_id})
    run = StageRun(created.info.run_id, client, spec.name, spec.tags, spec.params)
    run.log_params(spec.params)
    return run

"""The parent MLflow run of one pipeline run, shared by its stages (separate processes).

One ``dvc repro`` or ``dvc exp run`` is one *pipeline run*: every stage it
runs opens its MLflow run nested under one parent run. DVC starts each stage
as its own process, so the parent is found again by a tag, ``pipeline_run``,
holding a key of what identifies the pipeline run:

- the DVC experiment (``DVC_EXP_NAME``, else ``workspace``),
- a hash of the whole params (flattened, as the stages validated them),
- the git commit,
- under DVC (``DVC_STAGE`` set), the DVC process that runs the stages (pid and
  start time, :func:`mmib.lifeline.launcher`): two ``dvc repro`` with the same
  params are two pipeline runs.

The first stage creates the parent; a file lock around search-and-create
makes two stages that start at once find the same one. The parent is named
after the experiment and the params that differ from the baseline
(params.yaml at git ``HEAD`` of the project root, what ``dvc params diff``
compares with): ``workspace: baseline``, ``quick-fox: alpha=0.3``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEY_TAG = "pipeline_run"
"""Tag of the parent run that holds the key of its pipeline run."""
STAGE = "pipeline"
"""``stage`` tag of a parent run."""
BASELINE = "baseline"
"""Label of a pipeline run whose params equal the baseline's."""
_MAX_LABEL = 80
_MAX_SHORT_LABEL = 40  # in the names of the stage and seed runs


@dataclass(frozen=True)
class PipelineIdentity:
    """What a parent run is found by (``key``) and called (``name``: experiment and ``label``)."""

    key: str
    experiment: str
    label: str
    short_label: str = ""
    """``label`` cut to about 40 characters, for the names of the stage and seed runs."""
    diff: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.experiment}: {self.label}"


def baseline_params(root: str | os.PathLike) -> dict[str, str] | None:
    """Flattened params.yaml at git ``HEAD`` of ``root`` (validated like the stages' when it
    parses), or None without git, a commit, or the file in it."""
    from mmib.tracking import flatten_params

    try:
        out = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return flatten_params(_as_validated(out.stdout))


def _as_validated(text: str) -> dict[str, Any]:
    """The params of a params.yaml text as the stages see them (defaults filled in), else as read."""
    import yaml

    from mmib.config import load_params
    from mmib.errors import InputError

    with tempfile.TemporaryDirectory(prefix="mmib-baseline-") as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(text)
        try:
            return load_params(path).model_dump()
        except (InputError, ValueError):  # an older schema: compare what the file says
            raw = yaml.safe_load(text)
            return raw if isinstance(raw, dict) else {}


def params_diff(current: Mapping[str, str], baseline: Mapping[str, str] | None) -> dict[str, str]:
    """The flattened params of ``current`` that differ from ``baseline`` (absent ones too).

    The dataset catalog (``catalog.*``) is left out: it is data/catalog.yaml, a dependency of
    preprocess rather than a param, and params.yaml at ``HEAD`` does not hold it.
    """
    if baseline is None:
        return {}
    current = {k: v for k, v in current.items() if not k.startswith("catalog.")}
    baseline = {k: v for k, v in baseline.items() if not k.startswith("catalog.")}
    diff = {k: v for k, v in current.items() if baseline.get(k) != v}
    diff.update({k: "(none)" for k in baseline if k not in current})
    return dict(sorted(diff.items()))


def label(diff: Mapping[str, str], limit: int = _MAX_LABEL) -> str:
    """``alpha=0.3, beta=0.2`` (at most about ``limit`` characters, then ``+N more``), or ``baseline``."""
    if not diff:
        return BASELINE
    parts = [f"{k}={v}" for k, v in diff.items()]
    shown: list[str] = []
    for part in parts:
        if shown and len(", ".join([*shown, part])) > limit:
            break
        shown.append(part if len(part) <= limit else part[:limit - 3] + "...")
    rest = len(parts) - len(shown)
    return ", ".join(shown) + (f", +{rest} more" if rest else "")


def invocation() -> str:
    """The DVC process running this stage (``pid-start``), or ``''`` outside DVC."""
    if "DVC_STAGE" not in os.environ:
        return ""
    from mmib.lifeline import launcher

    owner = launcher()
    return f"{owner.pid}-{owner.started}"


def identity(params: Mapping[str, Any]) -> PipelineIdentity:
    """The pipeline run a stage with these (whole, nested) params belongs to."""
    from mmib.tracking import _git, dvc_experiment_name, flatten_params, project_root

    flat = flatten_params(params)
    baseline = baseline_params(project_root())
    diff = params_diff(flat, baseline)
    exp = dvc_experiment_name()
    params_hash = hashlib.sha1(json.dumps(flat, sort_keys=True).encode()).hexdigest()
    key = hashlib.sha1(json.dumps([exp, params_hash, _git("rev-parse", "HEAD") or "",
                                   invocation()]).encode()).hexdigest()[:20]
    # without a committed params.yaml there is no baseline to name the difference from
    if baseline is None:
        name = short = f"params {params_hash[:8]} (no committed baseline)"
    else:
        name, short = label(diff), label(diff, _MAX_SHORT_LABEL)
    return PipelineIdentity(key=key, experiment=exp, label=name, short_label=short, diff=diff)


def open_parent(client: Any, experiment_id: str, ident: PipelineIdentity, uri: str) -> str:
    """Id of the parent run of ``ident``: found by its key tag, else created (RUNNING either way)."""
    from mmib.tracking import _git, _interprocess_lock, _retry

    with _interprocess_lock(f"{uri}#{ident.key}"):
        found = _retry(client.search_runs, [experiment_id], filter_string=f"tags.{KEY_TAG} = '{ident.key}'",
                       max_results=1)
        if found:
            run = found[0]
            if run.info.status != "RUNNING":
                _retry(client.update_run, run.info.run_id, status="RUNNING")
            return run.info.run_id
        tags = {KEY_TAG: ident.key, "stage": STAGE, "dvc_exp": ident.experiment,
                "params_diff": json.dumps(ident.diff)[:5000]}
        commit = _git("rev-parse", "HEAD")
        if commit:
            tags["git_commit"] = commit
        run = _retry(client.create_run, experiment_id, run_name=ident.name, tags=tags)
        return run.info.run_id


def close_parent(client: Any, run_id: str, failed: bool) -> None:
    """End the parent now (its end time moves on with every stage): FAILED if this stage failed."""
    from mmib.tracking import _retry

    _retry(client.set_terminated, run_id, "FAILED" if failed else "FINISHED")

"""Typed, validated view of params.yaml.

params.yaml is the single source of truth: no field here has a default, so a
value can never silently come from code. A bad value raises ``InputError``
naming params.yaml, the dotted field and the fix. Every stage, preprocess
included, reads params.yaml through :func:`load_params`: the whole file is
checked, every catalog entry too, so a typo anywhere stops the run at once.
Numbers must be finite (``-S alpha=inf`` is refused, not trained on).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from mmib.errors import InputError
from mmib.method_params import MSDIBParams, OMIBParams

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PARAMS = REPO_ROOT / "params.yaml"

NonNeg = Field(ge=0)
Pos = Field(gt=0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PreprocessParams(_Strict):
    scaling: Literal["minmax", "standard", "none"]


class ModelParams(_Strict):
    latent_dim: int = Pos
    encoder_width: int = Pos
    head_width: int = Pos
    mine_width: int = Pos


class WarmupParams(_Strict):
    epochs: int = NonNeg
    batch_size: int = Field(ge=2)
    lr: float = Pos
    weight_decay: float = NonNeg
    kl_weight: float = NonNeg
    temperature: float = Pos
    mine_ema_rate: float = Field(gt=0, lt=1)
    mine_clamp: float = Pos
    grad_clip: float = Pos
    preservation: Literal["mine", "infonce", "none"]  # estimator of I(H^m; H^f) in Eq. 4
    reconstruction_weight: float = NonNeg            # per-view decoders x^m <- h^m; 0 = off (paper)
    projection_dim: int = NonNeg                     # NT-Xent on a projection of h^m; 0 = on h^m (paper)
    alignment_reduction: Literal["sum", "mean"]      # Eq. 3's alignment over the M(M-1)/2 view pairs


class LossSwitches(_Strict):
    caliH: bool
    re: bool
    cluH: bool
    con: bool


class LossWeights(_Strict):
    caliH: float = NonNeg
    re: float = NonNeg
    cluH: float = NonNeg
    con: float = NonNeg


class CalibrateParams(_Strict):
    epochs: int = NonNeg
    lr: float = Pos
    screening: Literal["s1", "s2", "s3", "maxprob"]
    cold_start_epochs: int = NonNeg
    kmeans_n_init: int = Pos
    kmeans_warm_start: bool
    losses: LossSwitches
    weights: LossWeights
    con_reduction: Literal["sum", "mean"]
    warmup_free: bool
    cal_heads_backprop: bool
    cold_start_clusters: Literal["kmeans", "spectral", "spectral_views"]  # the partition the cold start fits the heads to
    pseudo_clusters: Literal["kmeans", "spectral", "head"]  # Q_c of Section 3.2.1, every epoch
    targets: Literal["cluster_mean", "hungarian"]    # q_c (Eq. 7) or matched hard Q_c labels
    screening_rank: Literal["score", "maxprob"]      # which K_m samples Eq. 9 keeps
    screening_agreement: bool                        # keep a screened pair only if it agrees with the cluster head
    caliH_reduction: Literal["sum", "mean"]          # L_caliH over views: sum (Eq. 7) or mean
    balance_weight: float = NonNeg                   # negative entropy of the cluster head's batch mean
    batch_per_cluster: float = NonNeg                # stage-2 batch >= this x C samples (batch-mean terms); 0 = off
    keep_ib: bool                                    # L_IB in stage 2 (Eq. 2); false = L_Cal (+ recon)
    confidence: Literal["head", "seeds", "seeds_and_ncuts"]  # the head's softmax, or a temperature per seed (mmib.confidence)


class EvaluateParams(_Strict):
    ece_bins: int = Pos
    hard_fraction: float = Field(gt=0, le=1)
    tsne_max_samples: int = NonNeg
    tsne_perplexity: float = Pos


class BaselinesParams(_Strict):
    kmeans_n_init: int = Pos
    ncuts_affinity: Literal["nearest_neighbors", "rbf"]
    ncuts_n_neighbors: int = Pos


class ReportParams(_Strict):
    paper_names: dict[str, str]
    benchmark: str = Field(min_length=1)  # quality-benchmark results (JSON lines) whose paper-reading rows are shown


class Params(_Strict):
    datasets: list[str] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(min_length=1)  # distinct (checked below)
    method: Literal["clib", "msdib", "omib"]
    data_root: str
    device: Literal["auto", "cpu", "cuda"]
    alpha: float = NonNeg
    beta: float = NonNeg
    preprocess: PreprocessParams
    model: ModelParams
    warmup: WarmupParams
    calibrate: CalibrateParams
    evaluate: EvaluateParams
    msdib: MSDIBParams
    omib: OMIBParams
    baselines: BaselinesParams
    report: ReportParams
    catalog: dict[str, dict[str, Any]]  # each entry is checked by mmib.data.catalog (parse_params)

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise PydanticCustomError(
                "repeated_seed", "seed(s) {repeated} listed more than once: the same model would be trained twice",
                {"repeated": repeated, "fix": "list each seed once, e.g. seeds: [0, 1, 2]"})
        return seeds


def _fix_for(loc: str, err: dict) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if "fix" in ctx:
        return ctx["fix"]
    if kind == "missing":
        return f"add '{loc}' to params.yaml (see the README's parameter table)"
    if kind == "extra_forbidden":
        return f"remove '{loc}' or correct its spelling"
    if kind == "finite_number":
        return f"set '{loc}' to a finite number (inf and nan are not values a run can use)"
    if "ge" in ctx and "le" in ctx:
        return f"set '{loc}' to a value in [{ctx['ge']}, {ctx['le']}]"
    if "ge" in ctx:
        return f"set '{loc}' to a value >= {ctx['ge']}"
    if "gt" in ctx:
        return f"set '{loc}' to a value > {ctx['gt']}"
    if "expected" in ctx:
        return f"set '{loc}' to one of {ctx['expected']}"
    return f"correct '{loc}' in params.yaml"


def parse_params(raw: dict, source: str | os.PathLike = "params.yaml") -> Params:
    """Validate a params dict and every catalog entry; the first problem becomes an ``InputError``."""
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        raise InputError(f"{err['msg']}{shown}", file=str(source), field=loc,
                         fix=_fix_for(loc, err)) from None
    _check_catalog(params, str(source))
    return params


def _check_catalog(params: Params, source: str) -> None:
    """Every catalog entry is valid and usable, not only those of this run's datasets (a stage
    checks that its own dataset has an entry)."""
    from mmib.data.catalog import dataset_entry  # the catalog's own strict models

    for name in params.catalog:
        dataset_entry({"catalog": params.catalog}, name, source)


def load_params(path: str | os.PathLike = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if not path.exists():
        raise InputError("parameter file not found", file=str(path),
                         fix="run from the repository root, or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", file=str(path), fix="repair the YAML syntax") from None
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of parameters", file=str(path),
                         fix="restore params.yaml from git (`git checkout params.yaml`)")
    return parse_params(raw, path)


def default_params() -> Params:
    """The repository's params.yaml: the defaults for library use outside the pipeline."""
    return load_params(DEFAULT_PARAMS)

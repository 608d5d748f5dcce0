"""Typed, validated view of params.yaml.

params.yaml is the single source of truth: no field here has a default, so a
value can never silently come from code. A bad value raises ``InputError``
naming params.yaml, the dotted field and the fix. Every stage, preprocess
included, reads params.yaml through :func:`load_params`: the whole file is
checked, every catalog entry too, so a typo anywhere stops the run at once.
The dataset catalog is not a param: it lives in data/catalog.yaml beside
params.yaml (a dependency of preprocess), is read by :func:`load_params` and
is ``Params.catalog`` in memory; its errors name data/catalog.yaml.
Numbers must be finite (``-S alpha=inf`` is refused, not trained on).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from mmib.errors import InputError
from mmib.methods.clib.config import (CalibrateParams, CLIBSection, LossSwitches, LossWeights,  # noqa: F401 (re-exported)
                                     ModelParams, WarmupParams)
from mmib.methods.msdib.config import MSDIBParams
from mmib.methods.omib.config import OMIBParams
from mmib.strict import NonNeg, Pos, StrictModel

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PARAMS = REPO_ROOT / "params.yaml"


class PreprocessParams(StrictModel):
    scaling: Literal["minmax", "standard", "none"]


class EvaluateParams(StrictModel):
    ece_bins: int = Pos
    hard_fraction: float = Field(gt=0, le=1)
    tsne_max_samples: int = NonNeg
    tsne_perplexity: float = Pos


class BaselinesParams(StrictModel):
    kmeans_n_init: int = Pos
    ncuts_affinity: Literal["nearest_neighbors", "rbf"]
    ncuts_n_neighbors: int = Pos


class ReportParams(StrictModel):
    paper_names: dict[str, str]
    benchmark: str = Field(min_length=1)  # quality-benchmark results (JSON lines) whose paper-reading rows are shown


class Params(StrictModel):
    datasets: list[str] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(min_length=1)  # distinct (checked below)
    method: Literal["clib", "msdib", "omib"]
    data_root: str
    device: Literal["auto", "cpu", "cuda"]
    seed_batching: bool  # CLIB's warm-up and calibration: the seeds as one stacked model per core (mmib.methods.clib.seed_batch)
    alpha: float = NonNeg
    beta: float = NonNeg
    preprocess: PreprocessParams
    model: ModelParams
    warmup: WarmupParams
    calibrate: CalibrateParams
    evaluate: EvaluateParams
    clib: CLIBSection = CLIBSection()
    msdib: MSDIBParams
    omib: OMIBParams
    baselines: BaselinesParams
    report: ReportParams
    catalog: dict[str, dict[str, Any]]  # from data/catalog.yaml, not params.yaml; entries checked by mmib.data.catalog

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


def default_catalog_file() -> Path:
    """data/catalog.yaml beside the library's default params (:data:`DEFAULT_PARAMS`)."""
    from mmib.data.catalog import CATALOG_FILE

    return Path(DEFAULT_PARAMS).parent / CATALOG_FILE


def parse_params(raw: dict, source: str | os.PathLike = "params.yaml",
                 catalog_file: str | os.PathLike | None = None) -> Params:
    """Validate a params dict and every catalog entry; the first problem becomes an ``InputError``.

    ``raw`` is params.yaml's mapping, with the ``catalog`` mapping in it (as ``Params.model_dump()``
    gives) or without: then the catalog is read from ``catalog_file`` (default: data/catalog.yaml
    beside :data:`DEFAULT_PARAMS`)."""
    from mmib.data.catalog import CATALOG_FILE, read_catalog

    if "catalog" not in raw:
        catalog_file = catalog_file or default_catalog_file()
        raw = {**raw, "catalog": read_catalog(catalog_file)}
    catalog_source = str(catalog_file or CATALOG_FILE)
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        in_catalog = loc.split(".")[0] == "catalog"
        raise InputError(f"{err['msg']}{shown}", file=catalog_source if in_catalog else str(source), field=loc,
                         fix=_fix_for(loc, err)) from None
    _check_catalog(params, catalog_source)
    return params


def _check_catalog(params: Params, source: str) -> None:
    """Every catalog entry is valid and usable, not only those of this run's datasets (a stage
    checks that its own dataset has an entry)."""
    from mmib.data.catalog import dataset_entry  # the catalog's own strict models

    for name in params.catalog:
        dataset_entry({"catalog": params.catalog}, name, source)


def load_params(path: str | os.PathLike = "params.yaml") -> Params:
    """Read and validate params.yaml, and the dataset catalog beside it (data/catalog.yaml)."""
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
    from mmib.data.catalog import CATALOG_FILE

    catalog_file = path.parent / CATALOG_FILE
    if "catalog" in raw:
        raise InputError("the dataset catalog is not a param any more", file=str(path), field="catalog",
                         fix=f"move the entries under `catalog:` to {catalog_file} (a dependency of preprocess, "
                             "see the README's 'Data') and delete `catalog:` from params.yaml")
    return parse_params(raw, path, catalog_file)


def default_params() -> Params:
    """The repository's params.yaml (:data:`DEFAULT_PARAMS`), validated. The estimators never read it:
    ``CLIB()``'s defaults are in code (:mod:`mmib.methods.clib.defaults`)."""
    return load_params(DEFAULT_PARAMS)

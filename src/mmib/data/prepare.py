"""Pure preprocessing: validate loaded views, scale them, encode labels.

No file I/O here: :func:`prepare` turns a :class:`MultiViewData` into the
arrays the preprocess stage writes (``view0..view{M-1}``, ``labels``,
``n_clusters``).
"""

from __future__ import annotations

import warnings

import numpy as np

from mmib.data.catalog import CATALOG_FILE, PARAMS_FILE, check_clusterable
from mmib.data.loaders import MultiViewData
from mmib.errors import InputError, InputWarning

SCALINGS = ("minmax", "standard", "none")


def _where(data: MultiViewData, i: int) -> str:
    return data.view_sources[i] if i < len(data.view_sources) else f"{data.name} view {i}"


def _first_cell(mask: np.ndarray) -> str:
    """``row r, column c`` (1-based) of the first True of a 2-D mask."""
    row, col = np.argwhere(mask)[0]
    return f"row {row + 1}, column {col + 1}"


def validate(data: MultiViewData, n_clusters: int | None = None) -> None:
    """Reject data no clustering method can use, naming the view and file at fault; warn
    (:class:`InputWarning`) about a view that holds no information (every value the same)."""
    field = f"catalog.{data.name}.views"
    if not data.views:
        raise InputError(f"dataset {data.name!r} has no views", file=CATALOG_FILE, field=field,
                         fix="list at least one view in the catalog entry")
    for i, x in enumerate(data.views):
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"view {data.view_names[i]!r} is empty (shape {x.shape})",
                             file=_where(data, i), field=f"{field}.{i}",
                             fix="check the file holds the features (samples x features)")
    counts = [x.shape[0] for x in data.views]
    if len(set(counts)) > 1:
        listing = ", ".join(f"{n}={c}" for n, c in zip(data.view_names, counts))
        bad = next(i for i, c in enumerate(counts) if c != counts[0])
        raise InputError(f"views have different sample counts: {listing}",
                         file=_where(data, bad), field=f"{field}.{bad}",
                         fix="every view must hold the same samples in the same order")
    for i, x in enumerate(data.views):
        n_nan, n_inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
        if n_nan or n_inf:
            raise InputError(f"view {data.view_names[i]!r} holds {n_nan} NaN and {n_inf} inf "
                             f"value(s) (in {int((~np.isfinite(x)).any(axis=1).sum())} samples; the first at "
                             f"{_first_cell(~np.isfinite(x))})",
                             file=_where(data, i), field=f"{field}.{i}",
                             fix="impute or drop those samples in every view before loading")
    n = counts[0]
    if data.labels is not None and len(data.labels) != n:
        raise InputError(f"{len(data.labels)} labels for {n} samples",
                         file=data.label_source or CATALOG_FILE, field=f"catalog.{data.name}.labels",
                         fix="give exactly one label per sample, in the views' order")
    if n_clusters is not None:
        check_clusterable(len(data.views), n, n_clusters, data.name,
                          where=_where(data, 0), counted="found in the data")
    for i, x in enumerate(data.views):
        if np.all(x == x[0]):
            warnings.warn(InputWarning(
                f"view {data.view_names[i]!r} is constant: all {n} samples have the same values, so it "
                "carries no information for the clustering", file=_where(data, i), field=f"{field}.{i}",
                fix="check the file (an export of the wrong column?), or drop the view from the catalog entry"),
                stacklevel=2)


def check_float32(arrays: dict[str, np.ndarray], data: MultiViewData, scaling: str) -> None:
    """The scaled float32 views the stages train on must be finite: a value beyond float32's range
    (+-3.4e38) becomes inf in the cast, and the error should name the file, not a tensor."""
    for i in range(len(data.views)):
        bad = ~np.isfinite(arrays[f"view{i}"])
        if bad.any():
            raw = data.views[i][bad]
            raise InputError(f"view {data.view_names[i]!r}: {int(bad.sum())} value(s) do not fit in float32 "
                             f"(|x| <= {np.finfo(np.float32).max:.3g}) after scaling {scaling!r}, e.g. "
                             f"{raw[0]:g} at {_first_cell(bad)}",
                             file=_where(data, i), field=f"catalog.{data.name}.views.{i}",
                             fix="rescale that feature in the file, or set preprocess.scaling to minmax or "
                                 "standard")


def fit_scaler(x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(offset, scale)`` of a view, float64: :func:`scale_view` is ``(x - offset) / scale``.

    Stored by the preprocess stage (``data/processed/<name>.scaler.npz``) so that a
    model served outside the pipeline scales new raw samples exactly as training did.
    """
    x = np.asarray(x, dtype=np.float64)
    if method == "none":
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    if method == "minmax":
        lo = x.min(axis=0)
        span = x.max(axis=0) - lo
        return lo, np.where(span == 0, 1.0, span)
    if method == "standard":
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std == 0, 1.0, std)
    raise InputError(f"unknown scaling {method!r}", file=PARAMS_FILE, field="preprocess.scaling",
                     fix=f"use one of {', '.join(SCALINGS)}")


def scale_view(x: np.ndarray, method: str) -> np.ndarray:
    """Scale each feature (column) like sklearn's MinMaxScaler / StandardScaler.

    Constant features map to 0 under both (sklearn divides by 1 for a zero
    range or zero std), so they carry no signal instead of NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    offset, scale = fit_scaler(x, method)
    return (x - offset) / scale  # "none": offset 0, scale 1, so an exact copy


def encode_labels(y: np.ndarray) -> np.ndarray:
    """Raw labels (1-based, sparse ids, strings) -> 0..C-1 int64 in sorted order of values."""
    _, codes = np.unique(np.asarray(y).ravel(), return_inverse=True)
    return codes.astype(np.int64)


def prepare(data: MultiViewData, scaling: str, n_clusters: int) -> dict[str, np.ndarray]:
    """Validated, scaled arrays for the processed .npz (views float32, labels int64)."""
    if scaling not in SCALINGS:
        scale_view(np.zeros((1, 1)), scaling)  # raises the InputError
    validate(data, n_clusters)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by check_float32
        arrays = {f"view{i}": scale_view(x, scaling).astype(np.float32)
                  for i, x in enumerate(data.views)}
    check_float32(arrays, data, scaling)
    if data.labels is not None:
        arrays["labels"] = encode_labels(data.labels)
    arrays["n_clusters"] = np.asarray(n_clusters, dtype=np.int64)
    return arrays

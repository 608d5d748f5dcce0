"""The preprocess stage's outputs: data/processed/<name>.npz and <name>.json.

The .npz holds ``view0..view{M-1}`` (float32, N x d_m), ``labels`` (int64,
0..C-1, absent for unlabelled data) and ``n_clusters``; downstream stages
read it with :func:`load_processed`. ``<name>.scaler.npz`` holds the scaling
fitted on the raw views (``scaling``, ``offset{m}``, ``scale{m}``: the view
is ``(raw - offset) / scale``), so a served model (:mod:`mmib.mlflow_model`)
scales new raw samples as preprocess did; read it with :func:`load_scaler`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mmib.atomic_io import write_json, write_npz
from mmib.data.catalog import CatalogEntry, check_clusterable
from mmib.data.loaders import MultiViewData
from mmib.errors import InputError

PROCESSED_DIR = Path("data/processed")


def scaler_path(name: str, out_dir: str | os.PathLike = PROCESSED_DIR) -> Path:
    return Path(out_dir) / f"{name}.scaler.npz"


def processed_paths(name: str, out_dir: str | os.PathLike = PROCESSED_DIR) -> tuple[Path, Path]:
    return Path(out_dir) / f"{name}.npz", Path(out_dir) / f"{name}.json"


def summarize(data: MultiViewData, entry: CatalogEntry, arrays: dict[str, np.ndarray],
              scaling: str) -> dict[str, Any]:
    """The human-readable record of what was loaded and how it was processed."""
    views = [arrays[f"view{i}"] for i in range(len(data.views))]
    summary: dict[str, Any] = {
        "name": data.name,
        "layout": entry.layout,
        "n_samples": int(views[0].shape[0]),
        "n_views": len(views),
        "view_names": data.view_names,
        "dims": [int(v.shape[1]) for v in views],
        "n_clusters": int(arrays["n_clusters"]),
        "scaling": scaling,
        "source": entry.source,
        "files": dict(sorted(data.files.items())),
        "class_counts": None,
    }
    if data.labels is not None:
        values, counts = np.unique(data.labels, return_counts=True)
        # keyed by the raw label value; the .npz labels are their ranks 0..C-1
        summary["class_counts"] = {str(v): int(c) for v, c in zip(values.tolist(), counts)}
    return summary


def write_processed(name: str, arrays: dict[str, np.ndarray], summary: dict[str, Any],
                    out_dir: str | os.PathLike = PROCESSED_DIR) -> tuple[Path, Path]:
    """Write both outputs atomically (each appears complete or not at all)."""
    npz, js = processed_paths(name, out_dir)
    write_npz(npz, arrays)
    write_json(js, summary)
    return npz, js


def write_scaler(name: str, raw_views: list[np.ndarray], scaling: str,
                 out_dir: str | os.PathLike = PROCESSED_DIR) -> Path:
    """Write the per-feature scaling fitted on the raw views (atomically; same data, same bytes)."""
    from mmib.data.prepare import fit_scaler

    arrays: dict[str, np.ndarray] = {"scaling": np.asarray(scaling)}
    for m, x in enumerate(raw_views):
        arrays[f"offset{m}"], arrays[f"scale{m}"] = fit_scaler(x, scaling)
    path = scaler_path(name, out_dir)
    write_npz(path, arrays)
    return path


def _read_npz(path: Path, what: str, kind: str, field: str, rerun: str, missing_fix: str) -> dict[str, np.ndarray]:
    """Every array of an .npz written by this module (no pickles), or an InputError naming ``path``,
    ``field`` and the re-run that makes it again (``what`` is not found; ``kind`` is not readable)."""
    if not path.is_file():
        raise InputError(f"{what} not found", file=str(path), field=field, fix=missing_fix)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a readable {kind} ({type(exc).__name__}: {exc})", file=str(path), field=field,
                         fix=f"delete it and {rerun}") from None


def load_scaler(path: str | os.PathLike) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """``(scaling, [(offset, scale) per view])`` from a ``<name>.scaler.npz`` (no pickles)."""
    path = Path(path)
    rerun = f"run `dvc repro preprocess@{path.name.split('.')[0]}`"
    arrays = _read_npz(path, "preprocessing scaler", "scaler", "preprocess.scaling", rerun,
                       f"{rerun} (it writes the scaler beside the processed .npz)")
    try:
        n_views = sum(1 for k in arrays if k.startswith("offset"))
        views = [(arrays[f"offset{m}"].astype(np.float64), arrays[f"scale{m}"].astype(np.float64))
                 for m in range(n_views)]
        scaling = str(np.ravel(arrays["scaling"])[0])  # write_npz stores a scalar as shape (1,)
    except (ValueError, KeyError) as exc:
        raise InputError(f"not a readable scaler ({type(exc).__name__}: {exc})", file=str(path),
                         field="preprocess.scaling", fix=f"delete it and {rerun}") from None
    if not views or any(o.shape != s.shape or o.ndim != 1 for o, s in views):
        raise InputError(f"malformed scaler arrays {sorted(arrays)}", file=str(path),
                         field="preprocess.scaling", fix=f"delete it and {rerun}")
    return scaling, views


def load_processed(path: str | os.PathLike) -> tuple[list[np.ndarray], np.ndarray | None, int]:
    """(views float32, labels int64 or None, n_clusters) from a processed .npz."""
    path = Path(path)
    rerun = f"run `dvc repro preprocess@{path.stem}`"
    arrays = _read_npz(path, "processed dataset", ".npz", "datasets", rerun,
                       f"{rerun} first (or check the dataset name)")
    n_views = sum(1 for k in arrays if k.startswith("view"))
    wanted = [f"view{i}" for i in range(max(n_views, 1))] + ["n_clusters"]
    missing = [k for k in wanted if k not in arrays]
    if missing or np.size(arrays["n_clusters"]) != 1:
        raise InputError(f"missing or malformed arrays {missing or ['n_clusters']}; "
                         f"holds {sorted(arrays)}", file=str(path), field="datasets",
                         fix=f"delete it and {rerun}")
    views = [arrays[f"view{i}"].astype(np.float32, copy=False) for i in range(n_views)]
    labels = arrays.get("labels")
    # write_npz stores a scalar as shape (1,) (np.ascontiguousarray), so read either shape
    n_clusters = int(np.ravel(arrays["n_clusters"])[0])
    # a file made before preprocess refused such data: stop here, not inside scikit-learn
    check_clusterable(n_views, len(views[0]), n_clusters, path.stem, where=str(path), counted="in this processed file")
    return views, None if labels is None else labels.astype(np.int64, copy=False), n_clusters

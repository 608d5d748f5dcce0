"""Small, generic figures of the evaluation, written atomically.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot,
no global state, no display needed): raster formats render with the Agg
backend. The format follows the target's suffix (``.png`` by default) and the
PNG carries no matplotlib version stamp, so identical data give identical
bytes (stable DVC hashes).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .atomic_io import atomic_path
from .errors import InputError
from .metrics import ece_from_table, mean_confidence_from_table

_DPI = 120


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` atomically; the format is the suffix (default png)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    metadata = {"Software": None} if fmt == "png" else None
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=_DPI, metadata=metadata)
    return path


def reliability_title(table: pd.DataFrame, title: str, seed_mean_ece: float | None = None) -> str:
    """The reliability figure's title: ``title``, then the ECE and the mean confidence of the
    pooled samples of ``table``, and, when given, the mean over seeds of the seeds' ECEs (the
    metric ``ece``), each labelled: the two ECEs differ (pooling mixes the seeds' bins)."""
    pooled = (f"pooled samples: ECE {ece_from_table(table):.2f}%, "
              f"mean confidence {mean_confidence_from_table(table):.2f}%")
    if seed_mean_ece is None:
        return f"{title}\n{pooled}"
    return f"{title}\n{pooled}\nmean of the seeds' ECEs (metric ece): {seed_mean_ece:.2f}%"


def reliability_diagram(table: pd.DataFrame, path: str | os.PathLike,
                        title: str = "Reliability diagram", seed_mean_ece: float | None = None) -> Path:
    """Bars of accuracy per confidence bin against the diagonal (perfect calibration).

    ``table`` is :func:`mmib.metrics.reliability_table` (edges in [0, 1],
    accuracy and confidence in percent). Bars show the accuracy of occupied
    bins, a marker the mean confidence in each bin; the title
    (:func:`reliability_title`) gives the pooled ECE and mean confidence
    (METHOD.md: near-uniform outputs have low ECE) and ``seed_mean_ece``.
    """
    missing = {"bin_lower", "bin_upper", "count", "accuracy", "confidence"} - set(table.columns)
    if missing:
        raise InputError(f"reliability table lacks columns {sorted(missing)}", field="table",
                         fix="build it with mmib.metrics.reliability_table")
    lower = 100.0 * table["bin_lower"].to_numpy(dtype=float)
    width = 100.0 * table["bin_upper"].to_numpy(dtype=float) - lower
    occupied = table["count"].to_numpy() > 0
    fig = Figure(figsize=(4.8, 5.0))
    ax = fig.add_subplot()
    ax.bar(lower[occupied], table["accuracy"].to_numpy(dtype=float)[occupied],
           width=width[occupied], align="edge", edgecolor="black", color="tab:blue",
           alpha=0.8, label="accuracy")
    centres = lower + width / 2
    ax.plot(centres[occupied], table["confidence"].to_numpy(dtype=float)[occupied], "o",
            color="tab:orange", markersize=4, label="mean confidence")
    ax.plot([0, 100], [0, 100], "--", color="gray", label="perfect calibration")
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="confidence (%)", ylabel="accuracy (%)")
    ax.set_title(reliability_title(table, title, seed_mean_ece), fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def training_curves(curves: Mapping[str, Sequence[float]], path: str | os.PathLike,
                    title: str = "Training curves") -> Path:
    """One subplot per curve (value per epoch, x = epoch index from 0), up to 3 per row."""
    if not curves:
        raise InputError("no curves to plot", field="curves", fix="pass at least one named curve")
    n = len(curves)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.0 * ncols, 2.8 * nrows))
    for i, (name, values) in enumerate(curves.items()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        y = np.asarray(values, dtype=float)
        ax.plot(np.arange(y.size), y, linewidth=1.2)
        ax.set(title=name, xlabel="epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


def fusion_weights_plot(weights: Sequence[Sequence[float]], view_names: Sequence[str],
                        path: str | os.PathLike, title: str = "Fusion weights") -> Path:
    """Fusion weight of each view per epoch (METHOD.md: log ``w`` every epoch, paper Fig. 6).

    ``weights[e][m]`` is the weight of view ``m`` after epoch ``e``.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[1] != len(view_names) or w.shape[0] == 0:
        raise InputError(f"weights of shape {w.shape} do not match {len(view_names)} views",
                         field="weights", fix="pass one list of per-view weights per epoch")
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    epochs = np.arange(w.shape[0])
    for m, name in enumerate(view_names):
        ax.plot(epochs, w[:, m], label=str(name), linewidth=1.2)
    ax.set(xlabel="epoch", ylabel="weight", title=title)
    ax.legend(fontsize=8, ncol=min(3, len(view_names)))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def convergence_plot(frame: pd.DataFrame, path: str | os.PathLike, title: str = "Convergence") -> Path:
    """Figure 3: total loss, ACC and NMI per epoch over both stages, one line per seed.

    ``frame`` is :func:`mmib.trace_metrics.convergence_frame` (rows of all
    seeds); a dashed line marks the start of calibration.
    """
    missing = {"seed", "epoch", "stage", "loss", "acc", "nmi"} - set(frame.columns)
    if missing or frame.empty:
        raise InputError(f"convergence frame lacks columns {sorted(missing)} or is empty", field="frame",
                         fix="build it with mmib.trace_metrics.convergence_frame")
    fig = Figure(figsize=(12.0, 3.2))
    start = frame.loc[frame["stage"] == "calibrate", "epoch"].min()
    for i, (column, label) in enumerate((("loss", "total loss"), ("acc", "ACC (%)"), ("nmi", "NMI (%)"))):
        ax = fig.add_subplot(1, 3, i + 1)
        for seed, rows in frame.groupby("seed"):
            ax.plot(rows["epoch"], rows[column], linewidth=1.0, label=f"seed {seed}")
        if not math.isnan(start):
            ax.axvline(start, color="gray", linestyle="--", linewidth=0.8)
        ax.set(xlabel="epoch (warm-up, then calibration)", title=label)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def tsne_plot(frame: pd.DataFrame, path: str | os.PathLike, title: str = "t-SNE of fused features") -> Path:
    """Figure 5: one scatter per snapshot, coloured by the true class."""
    if frame.empty:
        raise InputError("no t-SNE points to plot", field="frame", fix="build it with mmib.embedding.tsne_frame")
    names = list(dict.fromkeys(frame["snapshot"]))
    fig = Figure(figsize=(4.5 * len(names), 4.3))
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        rows = frame[frame["snapshot"] == name]
        ax.scatter(rows["x"], rows["y"], c=rows["label"], cmap="tab20", s=4, linewidths=0)
        ax.set(title=str(name), xticks=[], yticks=[])
    fig.suptitle(title)
    return _save(fig, path)


def screened_plot(frame: pd.DataFrame, n_samples: int, path: str | os.PathLike,
                  title: str = "Screened samples per view") -> Path:
    """The number of screened samples ``K_m`` per view per calibration epoch (mean over seeds)."""
    if frame.empty:
        raise InputError("no screened counts to plot", field="frame",
                         fix="build it with mmib.trace_metrics.screened_frame")
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    for view, rows in frame.groupby("view"):
        mean = rows.groupby("epoch")["n_selected"].mean()
        ax.plot(mean.index, mean.to_numpy(), linewidth=1.2, label=f"view{view}")
    ax.axhline(n_samples, color="gray", linestyle=":", linewidth=0.8)
    ax.set(xlabel="calibration epoch", ylabel="screened samples", title=title)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def heatmap(grid: pd.DataFrame, path: str | os.PathLike, title: str, value_label: str) -> Path:
    """Figure 2: a value over a 2-D grid (rows x columns of ``grid``), each cell annotated."""
    if grid.empty:
        raise InputError("nothing to draw: the grid is empty", field="grid",
                         fix="run the alpha x beta sweep first (README: Sweeps)")
    values = grid.to_numpy(dtype=float)
    fig = Figure(figsize=(max(5.0, 2.0 + 0.6 * values.shape[1]), max(3.8, 1.5 + 0.45 * values.shape[0])))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", origin="lower", aspect="auto")
    middle = np.nanmean([np.nanmin(values), np.nanmax(values)]) if np.isfinite(values).any() else 0.0
    ax.set_xticks(range(values.shape[1]), [f"{c:g}" for c in grid.columns])
    ax.set_yticks(range(values.shape[0]), [f"{r:g}" for r in grid.index])
    ax.set(xlabel=str(grid.columns.name or ""), ylabel=str(grid.index.name or ""), title=title)
    for (r, c), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=7,
                    color="black" if v > middle else "white")  # readable on viridis' light and dark ends
    fig.colorbar(image, ax=ax, label=value_label)
    return _save(fig, path)

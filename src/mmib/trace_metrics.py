"""Scores of the training trace, for figures and the hard-sample table only.

Labels enter here, in evaluation, never in training: the per-epoch ACC/NMI of
Figure 3 and the hard-sample metrics of Table 5 are computed from the
assignments that training recorded (:class:`mmib.methods.trace.TrainingTrace`)
and are used for nothing but reporting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mmib import metrics
from mmib.errors import InputError
from mmib.methods.trace import TrainingTrace
from mmib.training_record import TrainingRecord

CONVERGENCE_COLUMNS = ("seed", "epoch", "stage", "loss", "acc", "nmi")


def convergence_frame(seed: int, history: dict[str, dict[str, list[float]]], trace: TrainingTrace,
                      labels: np.ndarray | None) -> pd.DataFrame:
    """Figure 3: total loss, ACC and NMI per epoch over both stages, one row per epoch.

    The x axis runs over the whole run: warm-up epochs ``1..W`` (assignment:
    K-Means of ``h^f``), then the calibration start ``W`` (after the cold
    start, no loss yet) and calibration epochs ``W+1..W+E`` (cluster-head
    argmax). ``loss`` is the epoch's mean training loss of that stage; without ``labels`` ACC and
    NMI are NaN (the losses still make a label-free figure).
    """
    rows: list[dict[str, Any]] = []
    warm_loss = history.get("warmup", {}).get("loss", [])
    cal_loss = history.get("calibrate", {}).get("loss", [])
    if len(trace.warmup) != len(warm_loss) or (trace.calibrate and len(trace.calibrate) != len(cal_loss) + 1):
        raise InputError(f"seed {seed}: the trace ({len(trace.warmup)} + {len(trace.calibrate)} snapshots) "
                         f"does not match the history ({len(warm_loss)} + {len(cal_loss)} epochs)",
                         field="trace", fix="re-run the training stages with this version: dvc repro")

    def scored(assign: np.ndarray) -> tuple[float, float]:
        if labels is None:
            return float("nan"), float("nan")
        return metrics.clustering_accuracy(labels, assign), metrics.nmi(labels, assign)

    for w, (assign, loss) in enumerate(zip(trace.warmup, warm_loss), start=1):
        rows.append({"seed": seed, "epoch": w, "stage": "warmup", "loss": loss, **dict(zip(("acc", "nmi"), scored(assign)))})
    start = len(warm_loss)
    for e, assign in enumerate(trace.calibrate):
        loss = cal_loss[e - 1] if e > 0 else float("nan")
        rows.append({"seed": seed, "epoch": start + e, "stage": "calibrate", "loss": loss,
                     **dict(zip(("acc", "nmi"), scored(assign)))})
    return pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)


def hard_sample_indices(quality: np.ndarray, fraction: float) -> np.ndarray:
    """The ``ceil(fraction * N)`` samples of lowest quality score (ties: lower index first)."""
    q = np.asarray(quality, dtype=np.float64)
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction {fraction} outside (0, 1]", field="evaluate.hard_fraction",
                         fix="use e.g. 0.2 (the paper's bottom 20%)")
    k = max(1, math.ceil(fraction * q.shape[0]))
    return np.sort(np.argsort(q, kind="stable")[:k])


def hard_sample_study(trace: TrainingTrace, final_proba: np.ndarray, labels: np.ndarray,
                      fraction: float, n_bins: int) -> dict[str, Any]:
    """Table 5: the samples with the lowest quality score at the first calibration epoch
    (mean over views of the screening score), scored then and at the end.

    Each subset is scored on its own (its own Hungarian mapping), as a
    clustering of those samples.
    """
    if trace.first_calibration_quality is None or trace.first_calibration_proba is None:
        raise InputError("the model state has no first-calibration snapshot", field="trace",
                         fix="re-run the calibration stage with this version: dvc repro")
    idx = hard_sample_indices(trace.first_calibration_quality, fraction)
    labels = np.asarray(labels)
    return {
        "n_samples": int(idx.size),
        "first_calibration_epoch": metrics.evaluate_soft_clustering(labels[idx], trace.first_calibration_proba[idx],
                                                                    n_bins=n_bins),
        "end": metrics.evaluate_soft_clustering(labels[idx], np.asarray(final_proba)[idx], n_bins=n_bins),
    }


def screened_frame(seed: int, calibrate_history: dict[str, list[float]]) -> pd.DataFrame:
    """Screened samples per view per calibration epoch (the per-epoch ``K_m`` of Eq. 9)."""
    screened = TrainingRecord.of(calibrate_history).screened
    n_views = len(screened[0]) if screened else 0
    rows = [{"seed": seed, "epoch": e + 1, "view": m, "n_selected": row[m]}
            for m in range(n_views) for e, row in enumerate(screened)]
    return pd.DataFrame(rows, columns=("seed", "epoch", "view", "n_selected"))

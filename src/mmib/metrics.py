"""Clustering and calibration metrics (METHOD.md, "Prediction, confidence, metrics").

Pure functions, numpy in and out. Every metric value is returned in PERCENT
(0-100), as the papers report them.

Definitions fixed by METHOD.md:

- ACC: clusters are matched one-to-one to classes by the Hungarian algorithm
  on the contingency matrix (maximising matched samples). When there are more
  clusters than classes, the clusters left unmatched map to ``-1`` and their
  samples count as WRONG (no class is ever used twice). When there are fewer
  clusters than classes, some classes simply receive no cluster.
- NMI: scikit-learn, arithmetic normalisation. ARI: scikit-learn.
- ECE: confidence = max cluster probability; correct = (Hungarian-mapped
  prediction == label), with the SAME mapping as ACC; ``n_bins`` equal-width
  bins on ``(lo, hi]`` (a confidence of exactly 0 goes in the first bin);
  ``ECE = sum_b |B_b| / N * |acc_b - conf_b|``.

Labels must be non-negative integers (integer-valued floats, as loaded from
.mat files, are accepted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from .errors import InputError

UNMATCHED = -1
"""Class id given by :func:`hungarian_mapping` to clusters matched to no class."""

_CONF_TOL = 1e-6  # float32 softmax can exceed 1 by a few ulps


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------

def _as_labels(y: np.ndarray | Sequence[int], field: str) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array of non-negative labels, or raise InputError."""
    arr = np.asarray(y)
    if arr.ndim == 2 and 1 in arr.shape:  # column / row vector, e.g. from a .mat file
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(f"expected a 1-D label vector, got shape {arr.shape}", field=field,
                         fix="pass one integer label per sample")
    if arr.size == 0:
        raise InputError("empty label vector", field=field, fix="pass at least one sample")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) \
                or not np.all(arr == np.round(arr)):
            raise InputError("labels must be integers", field=field,
                             fix="convert labels to integer class / cluster ids")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise InputError(f"labels must be non-negative, found {int(arr.min())}", field=field,
                         fix="re-index labels to 0..C-1")
    return arr


def _check_same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise InputError(f"length mismatch: {a.shape[0]} vs {b.shape[0]}", field=names,
                         fix="pass one entry per sample in both arrays")


def _as_confidence(confidence: np.ndarray | Sequence[float]) -> np.ndarray:
    """Return confidences as 1-D float64 in [0, 1] (clipping float noise), or raise."""
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    if conf.size == 0:
        raise InputError("empty confidence vector", field="confidence",
                         fix="pass at least one sample")
    if not np.all(np.isfinite(conf)) or conf.min() < -_CONF_TOL or conf.max() > 1 + _CONF_TOL:
        raise InputError("confidences must be finite probabilities in [0, 1]",
                         field="confidence", fix="pass max softmax probabilities, not logits")
    return np.clip(conf, 0.0, 1.0)


# --------------------------------------------------------------------------
# clustering metrics
# --------------------------------------------------------------------------

def hungarian_mapping(y_true: np.ndarray | Sequence[int], y_pred: np.ndarray | Sequence[int],
                      n_clusters: int | None = None) -> np.ndarray:
    """Map each predicted cluster id to a class id, maximising matched samples.

    Solves the assignment problem on the (cluster x class) contingency matrix
    with :func:`scipy.optimize.linear_sum_assignment`.

    Args:
        y_true: class labels, non-negative ints, shape (N,).
        y_pred: cluster ids, non-negative ints, shape (N,).
        n_clusters: number of clusters the model can output (e.g. the number
            of columns of its probability matrix); the mapping covers at least
            ``max(y_pred) + 1`` ids anyway.

    Returns:
        int64 array ``mapping`` of length K (number of cluster ids) with
        ``mapping[k]`` the class matched to cluster ``k``, or ``UNMATCHED``
        (-1) when cluster ``k`` got no class (more clusters than classes, or
        a cluster id never predicted that lost the assignment). Samples of an
        unmatched cluster therefore count as wrong.
    """
    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    _check_same_length(y_true, y_pred, "y_true/y_pred")
    n_pred = int(y_pred.max()) + 1 if n_clusters is None else max(int(n_clusters), int(y_pred.max()) + 1)
    n_true = int(y_true.max()) + 1
    contingency = np.zeros((n_pred, n_true), dtype=np.int64)
    np.add.at(contingency, (y_pred, y_true), 1)
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    mapping = np.full(n_pred, UNMATCHED, dtype=np.int64)
    mapping[rows] = cols
    return mapping


def _mapped_correct(y_true: np.ndarray, y_pred: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Boolean vector: is the Hungarian-mapped prediction equal to the label?"""
    return mapping[y_pred] == y_true


def clustering_accuracy(y_true: np.ndarray | Sequence[int],
                        y_pred: np.ndarray | Sequence[int]) -> float:
    """Clustering accuracy (percent) under the Hungarian mapping of :func:`hungarian_mapping`."""
    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    mapping = hungarian_mapping(y_true, y_pred)
    return 100.0 * float(np.mean(_mapped_correct(y_true, y_pred, mapping)))


def nmi(y_true: np.ndarray | Sequence[int], y_pred: np.ndarray | Sequence[int]) -> float:
    """Normalized mutual information (percent), arithmetic normalisation (sklearn)."""
    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    _check_same_length(y_true, y_pred, "y_true/y_pred")
    return 100.0 * float(normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))


def ari(y_true: np.ndarray | Sequence[int], y_pred: np.ndarray | Sequence[int]) -> float:
    """Adjusted Rand index (percent; can be negative), sklearn."""
    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    _check_same_length(y_true, y_pred, "y_true/y_pred")
    return 100.0 * float(adjusted_rand_score(y_true, y_pred))


# --------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------

def _bin_statistics(confidence: np.ndarray | Sequence[float], correct: np.ndarray | Sequence[bool],
                    n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin statistics on ``n_bins`` equal-width bins ``(lo, hi]`` of [0, 1].

    Returns ``(edges, counts, accuracy, mean_confidence)``; accuracy and mean
    confidence are fractions in [0, 1], NaN for empty bins.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer, got {n_bins!r}", field="n_bins",
                         fix="use e.g. 15 (METHOD.md)")
    n_bins = int(n_bins)
    conf = _as_confidence(confidence)
    corr = np.asarray(correct).reshape(-1)
    _check_same_length(conf, corr, "confidence/correct")
    corr = corr.astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left": edges[b] < conf <= edges[b+1] -> bin b; conf == 0 -> index -1 -> bin 0
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(idx, weights=corr, minlength=n_bins) / counts
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
    return edges, counts, acc, mean_conf


def _ece_from_bins(counts: np.ndarray, accuracy: np.ndarray, confidence: np.ndarray) -> float:
    """``sum_b |B_b|/N * |acc_b - conf_b|`` in the units of accuracy/confidence; empty bins skipped."""
    counts = np.asarray(counts, dtype=np.float64)
    occupied = counts > 0
    gap = np.abs(np.asarray(accuracy, dtype=np.float64) - np.asarray(confidence, dtype=np.float64))
    return float(np.sum(counts[occupied] * gap[occupied]) / counts.sum())


def expected_calibration_error(confidence: np.ndarray | Sequence[float],
                               correct: np.ndarray | Sequence[bool], n_bins: int = 15) -> float:
    """Expected calibration error (percent), METHOD.md definition.

    ``n_bins`` equal-width bins ``(lo, hi]`` on [0, 1] (a confidence of exactly
    0 goes in the first bin, exactly 1 in the last);
    ``ECE = 100 * sum_b |B_b| / N * |acc_b - conf_b|``.
    """
    _, counts, acc, conf = _bin_statistics(confidence, correct, n_bins)
    return 100.0 * _ece_from_bins(counts, acc, conf)


def reliability_table(confidence: np.ndarray | Sequence[float], correct: np.ndarray | Sequence[bool],
                      n_bins: int = 15) -> pd.DataFrame:
    """One row per bin: ``bin_lower``, ``bin_upper``, ``count``, ``accuracy``, ``confidence``.

    Bin edges are probabilities in [0, 1] (bins are ``(bin_lower, bin_upper]``);
    ``accuracy`` and ``confidence`` (mean confidence in the bin) are in
    percent, NaN for empty bins (whose ``count`` is 0). Same bins as
    :func:`expected_calibration_error`; see :func:`ece_from_table`.
    """
    edges, counts, acc, conf = _bin_statistics(confidence, correct, n_bins)
    return pd.DataFrame({
        "bin_lower": edges[:-1],
        "bin_upper": edges[1:],
        "count": counts.astype(np.int64),
        "accuracy": 100.0 * acc,
        "confidence": 100.0 * conf,
    })


def ece_from_table(table: pd.DataFrame) -> float:
    """ECE (percent) recomputed from a :func:`reliability_table`."""
    return _ece_from_bins(table["count"].to_numpy(), table["accuracy"].to_numpy(),
                          table["confidence"].to_numpy())


def mean_confidence_from_table(table: pd.DataFrame) -> float:
    """Mean confidence (percent) over all samples of a :func:`reliability_table`."""
    counts = table["count"].to_numpy(dtype=np.float64)
    occupied = counts > 0
    return float(np.sum(counts[occupied] * table["confidence"].to_numpy()[occupied]) / counts.sum())


# --------------------------------------------------------------------------
# evaluation of a model's output
# --------------------------------------------------------------------------

def _as_proba(proba: np.ndarray, n_samples: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != n_samples or p.shape[1] < 1:
        raise InputError(f"expected probabilities of shape ({n_samples}, C), got {p.shape}",
                         field="proba", fix="pass the cluster-head softmax, one row per sample")
    if not np.all(np.isfinite(p)):
        raise InputError("probabilities contain NaN or inf", field="proba",
                         fix="check the model output (diverged training?)")
    return p


def soft_predictions(y_true: np.ndarray | Sequence[int], proba: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prediction, confidence and correctness of a soft clustering.

    prediction = argmax ``proba``, confidence = max ``proba``, correct =
    (Hungarian-mapped prediction == label), with the mapping of ACC
    (computed over all ``proba.shape[1]`` clusters).

    Returns ``(y_pred, confidence, correct, mapping)``.
    """
    y_true = _as_labels(y_true, "y_true")
    p = _as_proba(proba, y_true.shape[0])
    y_pred = p.argmax(axis=1)
    confidence = p.max(axis=1)
    mapping = hungarian_mapping(y_true, y_pred, n_clusters=p.shape[1])
    return y_pred, confidence, _mapped_correct(y_true, y_pred, mapping), mapping


def evaluate_hard_clustering(y_true: np.ndarray | Sequence[int],
                             y_pred: np.ndarray | Sequence[int]) -> dict[str, float]:
    """``{"acc", "nmi", "ari"}`` in percent for a hard clustering (no ECE)."""
    return {"acc": clustering_accuracy(y_true, y_pred), "nmi": nmi(y_true, y_pred),
            "ari": ari(y_true, y_pred)}


def evaluate_soft_clustering(y_true: np.ndarray | Sequence[int], proba: np.ndarray,
                             n_bins: int = 15) -> dict[str, float]:
    """``{"acc", "nmi", "ari", "ece", "mean_confidence"}`` in percent (METHOD.md).

    ACC and the correctness used by ECE share one Hungarian mapping (see
    :func:`soft_predictions`); mean confidence is reported because
    near-uniform outputs get near-zero ECE with useless ACC.
    """
    y_true = _as_labels(y_true, "y_true")
    y_pred, confidence, correct, _ = soft_predictions(y_true, proba)
    return {
        "acc": 100.0 * float(np.mean(correct)),
        "nmi": nmi(y_true, y_pred),
        "ari": ari(y_true, y_pred),
        "ece": expected_calibration_error(confidence, correct, n_bins),
        "mean_confidence": 100.0 * float(np.mean(confidence)),
    }


# --------------------------------------------------------------------------
# aggregation over seeds
# --------------------------------------------------------------------------

def mean_std(results: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Aggregate per-seed metric dicts into ``{metric: {"mean": m, "std": s}}``.

    ``std`` is the POPULATION standard deviation (ddof=0), so one seed gives
    std 0. Every dict must have the same metric names.
    """
    if len(results) == 0:
        raise InputError("no results to aggregate", field="results",
                         fix="pass one metrics dict per seed")
    keys = list(results[0])
    for i, r in enumerate(results):
        if set(r) != set(keys):
            raise InputError(f"result {i} has metrics {sorted(r)}, expected {sorted(keys)}",
                             field="results", fix="compute the same metrics for every seed")
    out: dict[str, dict[str, float]] = {}
    for k in keys:
        values = np.asarray([float(r[k]) for r in results], dtype=np.float64)
        out[k] = {"mean": float(values.mean()), "std": float(values.std(ddof=0))}
    return out

"""What evaluate reports without labels: the assignments and the diagnostics that need none.

Clustering unlabelled data is the main use: the pipeline must finish on it.
Per seed, every sample's cluster and confidence (``assignments.csv``), the
mean confidence, the cluster sizes and the silhouette of the partition on the
model's fused features; over seeds, how far the seeds agree (ARI / NMI between
their partitions: seeds that agree found the same structure, one that differs
is an unstable fit). Computed with labels too, so labelled and unlabelled runs
report the same diagnostics.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from mmib.metrics import mean_std

SILHOUETTE_MAX_SAMPLES = 2000  # silhouette is O(N^2): a seeded subsample beyond this
NO_LABELS_NOTE = ("the dataset has no labels: ACC, NMI, ARI, ECE, the reliability diagram, Figure 3's ACC/NMI "
                  "and Table 5 need them and are skipped; the label-free diagnostics and every sample's cluster "
                  "and confidence (assignments.csv) are reported")


def assignments_frame(probas: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """One row per sample: ``sample`` (0-based row of the views), then ``seed<k>_cluster`` and
    ``seed<k>_confidence`` (the top probability) of every seed."""
    first = next(iter(probas.values()))
    columns: dict[str, Any] = {"sample": np.arange(first.shape[0])}
    for seed, proba in probas.items():
        columns[f"seed{seed}_cluster"] = proba.argmax(axis=1)
        columns[f"seed{seed}_confidence"] = proba.max(axis=1)
    return pd.DataFrame(columns)


def _silhouette(features: np.ndarray, clusters: np.ndarray, seed: int) -> float | None:
    """Silhouette of a partition (None when it has a single cluster or one cluster per sample)."""
    if not 2 <= len(np.unique(clusters)) <= len(clusters) - 1:
        return None
    size = min(len(clusters), SILHOUETTE_MAX_SAMPLES)
    return float(silhouette_score(features, clusters, sample_size=size if size < len(clusters) else None,
                                  random_state=seed))


def seed_diagnostics(proba: np.ndarray, features: np.ndarray, seed: int) -> dict[str, Any]:
    """Mean confidence (percent), cluster sizes (every cluster of the head, empty ones too) and the
    silhouette on the fused features of one seed's model."""
    clusters = proba.argmax(axis=1)
    return {"mean_confidence": 100.0 * float(proba.max(axis=1).mean()),
            "cluster_sizes": np.bincount(clusters, minlength=proba.shape[1]).tolist(),
            "n_empty_clusters": int(np.sum(np.bincount(clusters, minlength=proba.shape[1]) == 0)),
            "silhouette": _silhouette(features, clusters, seed)}


def seed_agreement(probas: Mapping[int, np.ndarray]) -> dict[str, Any] | None:
    """ARI and NMI (percent) between the partitions of every pair of seeds, mean +- std over the pairs."""
    pairs = list(itertools.combinations(probas, 2))
    if not pairs:
        return None
    rows = [{"ari": 100.0 * adjusted_rand_score(probas[a].argmax(1), probas[b].argmax(1)),
             "nmi": 100.0 * normalized_mutual_info_score(probas[a].argmax(1), probas[b].argmax(1))}
            for a, b in pairs]
    return {"n_pairs": len(pairs), **mean_std(rows)}


def diagnostics(probas: Mapping[int, np.ndarray], features: Mapping[int, np.ndarray]) -> dict[str, Any]:
    """Every label-free diagnostic of :mod:`mmib.label_free`, per seed and over seeds."""
    per_seed = {f"seed{s}": seed_diagnostics(probas[s], features[s], s) for s in probas}
    silhouettes = [d["silhouette"] for d in per_seed.values() if d["silhouette"] is not None]
    return {
        "mean_confidence": mean_std([{"v": d["mean_confidence"]} for d in per_seed.values()])["v"],
        "silhouette": mean_std([{"v": v} for v in silhouettes])["v"] if silhouettes else None,
        "seed_agreement": seed_agreement(probas),
        "per_seed": per_seed,
    }

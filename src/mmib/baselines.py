"""Classical baselines of the papers' tables: KM, Ncuts, ALLKM, ALLNcuts (METHOD.md section 3).

Pure functions, numpy in and out, scikit-learn only. Clustering and scoring
are separate steps so that the clustering never sees labels:

- :func:`cluster_baselines` (views, no labels) returns every hard partition,
  one per method, view and seed;
- :func:`score_baselines` (partitions + labels) is the evaluation: ACC / NMI /
  ARI in percent through :func:`mmib.metrics.evaluate_hard_clustering`, then
  mean and population std over seeds through :func:`mmib.metrics.mean_std`.

:func:`run_baselines` chains both. The methods:

- ``KM``: K-Means on each view separately (``n_init`` restarts,
  ``random_state = seed``). The reported row is the **best view**, chosen by
  the mean ACC over seeds. That is the papers' protocol ("best view reported")
  and it is a **label-based selection**: the view is picked with the test
  labels, so the row is optimistic. Every view's scores are kept in
  ``per_view``.
- ``KM_mean_view``: the same partitions, each metric averaged over views per
  seed (no selection); the label-free counterpart of ``KM``.
- ``Ncuts`` / ``Ncuts_mean_view``: spectral clustering (normalized cut) on
  each view, best view (label-selected, papers' protocol) and mean over
  views, like KM.
- ``ALLKM``: K-Means on the concatenation of the views. The views are the
  preprocess stage's output, already scaled (``preprocess.scaling``, min-max
  by default), so no view dominates by its units.
- ``ALLNcuts``: spectral clustering on the same concatenation.

Ncuts is :class:`sklearn.cluster.SpectralClustering`: the spectral embedding
of the normalised graph Laplacian (scikit-learn divides the eigenvectors by
the square root of the degrees, i.e. the random-walk relaxation of the
normalized cut of Shi and Malik), then K-Means on the embedding
(``assign_labels="kmeans"``, ``random_state = seed``). Two affinities:

- ``nearest_neighbors`` (default): the symmetrised k-nearest-neighbour
  connectivity graph, ``n_neighbors`` (10) clipped to N - 1. Sparse (O(N k)
  memory, works on the 20 000-sample datasets) and free of a bandwidth to
  tune, hence the default for robustness.
- ``rbf``: ``exp(-gamma ||x - x'||^2)`` with ``gamma = 1 / median squared
  pairwise distance`` (:func:`median_squared_distance`, on at most 2000
  sampled points). Dense N x N: O(N^2) memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmib.errors import InputError
from mmib.metrics import evaluate_hard_clustering, mean_std

VIEW_METHODS = ("KM", "Ncuts")
"""Methods run on each view separately (reported as best view and as mean over views)."""
CONCAT_METHODS = ("ALLKM", "ALLNcuts")
"""Methods run on the concatenation of the views."""
METHODS = ("KM", "KM_mean_view", "Ncuts", "Ncuts_mean_view", "ALLKM", "ALLNcuts")
"""Every row :func:`score_baselines` returns, in report order."""
AFFINITIES = ("nearest_neighbors", "rbf")
BEST_VIEW_NOTE = ("best view by mean ACC over seeds: the papers' protocol, selected with the labels "
                  "(optimistic); see the *_mean_view row for the label-free average")

_MEDIAN_SAMPLE = 2000


# --------------------------------------------------------------------------
# label-free clustering
# --------------------------------------------------------------------------

def _as_matrix(x: np.ndarray, field: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InputError(f"expected an N x d matrix, got shape {arr.shape}", field=field,
                         fix="pass one row per sample")
    if not np.all(np.isfinite(arr)):
        raise InputError("the data contain NaN or inf", field=field, fix="re-run the preprocess stage")
    return arr


def _check_k(n_samples: int, n_clusters: int, spectral: bool = False) -> None:
    """K-Means needs N >= C; a normalized cut embeds the graph in C eigenvectors of an N x N
    matrix, which needs N > C (the pipeline's documented minimum: C + 1 samples)."""
    top = n_samples - 1 if spectral else n_samples
    if not 1 <= n_clusters <= top:
        raise InputError(f"n_clusters={n_clusters} is not in 1..{top} for {n_samples} samples"
                         + (" (a normalized cut needs more samples than clusters)" if spectral else ""),
                         field="n_clusters", fix="use fewer clusters than samples, or add samples")


def concatenate_views(views: Sequence[np.ndarray]) -> np.ndarray:
    """The views side by side (N x sum d_m), float64; they must have the same N."""
    if len(views) == 0:
        raise InputError("no views given", field="views", fix="pass at least one N x d_m array")
    mats = [_as_matrix(v, f"views[{m}]") for m, v in enumerate(views)]
    sizes = {m.shape[0] for m in mats}
    if len(sizes) != 1:
        raise InputError(f"views have different sample counts {sorted(sizes)}", field="views",
                         fix="pass views with one row per sample each")
    return np.concatenate(mats, axis=1)


def unit_block(x: np.ndarray) -> np.ndarray:
    """``x`` centred and scaled to a mean squared row norm of 1 (a block of :func:`joint_features`)."""
    x = _as_matrix(x, "x")
    x = x - x.mean(axis=0)
    scale = float(np.sqrt((x ** 2).sum(axis=1).mean()))
    return x / scale if scale > 0 else x


def joint_features(fused: np.ndarray, views: Sequence[np.ndarray]) -> np.ndarray:
    """Learnt features and raw views side by side, each block with equal weight.

    ``[unit_block(fused), unit_block(concatenate_views(views))]``: a 10-NN
    graph of this matrix links samples that are close in both spaces, so a
    normalized cut of it keeps the raw views' neighbourhoods where the
    warm-up blurred them (CUB, 100Leaves) and the learnt ones where the raw
    views are weak (MNIST-USPS). Measured in ``benchmarks/cold_start_partitions.py``.
    """
    return np.concatenate([unit_block(fused), unit_block(concatenate_views(views))], axis=1)


def kmeans_predict(x: np.ndarray, n_clusters: int, seed: int, n_init: int = 10) -> np.ndarray:
    """K-Means cluster ids (int64, N) with ``n_init`` restarts and ``random_state = seed``."""
    from sklearn.cluster import KMeans

    x = _as_matrix(x, "x")
    _check_k(x.shape[0], n_clusters)
    km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed)
    return km.fit_predict(x).astype(np.int64)


def median_squared_distance(x: np.ndarray, max_samples: int = _MEDIAN_SAMPLE, seed: int = 0) -> float:
    """Median of the squared Euclidean distances between distinct points.

    Computed on at most ``max_samples`` points drawn without replacement
    (``seed``); 1.0 when every distance is 0 (so ``gamma`` stays finite).
    """
    from sklearn.metrics import pairwise_distances

    x = _as_matrix(x, "x")
    if x.shape[0] > max_samples:
        x = x[np.random.default_rng(seed).choice(x.shape[0], max_samples, replace=False)]
    d2 = pairwise_distances(x, metric="sqeuclidean")
    upper = d2[np.triu_indices(x.shape[0], k=1)]
    med = float(np.median(upper)) if upper.size else 0.0
    return med if med > 0 else 1.0


def ncuts_predict(x: np.ndarray, n_clusters: int, seed: int, affinity: str = "nearest_neighbors",
                  n_neighbors: int = 10) -> np.ndarray:
    """Normalized-cut spectral clustering (see the module docstring), cluster ids (int64, N)."""
    from sklearn.cluster import SpectralClustering

    x = _as_matrix(x, "x")
    n = x.shape[0]
    _check_k(n, n_clusters, spectral=True)
    if affinity == "nearest_neighbors":
        kwargs: dict[str, Any] = {"n_neighbors": max(1, min(int(n_neighbors), n - 1))}
    elif affinity == "rbf":
        kwargs = {"gamma": 1.0 / median_squared_distance(x, seed=seed)}
    else:
        raise InputError(f"unknown Ncuts affinity {affinity!r}", field="baselines.ncuts_affinity",
                         fix=f"use one of {list(AFFINITIES)}")
    sc = SpectralClustering(n_clusters=n_clusters, affinity=affinity, assign_labels="kmeans",
                            random_state=seed, **kwargs)
    return sc.fit_predict(x).astype(np.int64)


def cluster_baselines(views: Sequence[np.ndarray], n_clusters: int, seeds: Sequence[int], *,
                      kmeans_n_init: int = 10, ncuts_affinity: str = "nearest_neighbors",
                      ncuts_n_neighbors: int = 10) -> dict[str, dict[int, list[np.ndarray]]]:
    """Every baseline partition, without labels.

    Returns ``{method: {seed: [partition, ...]}}`` for ``KM`` and ``Ncuts``
    (one partition per view) and ``ALLKM`` and ``ALLNcuts`` (one partition,
    of the concatenated views).
    """
    if len(seeds) == 0:
        raise InputError("no seeds given", field="seeds", fix="pass at least one seed")
    concat = concatenate_views(views)  # also checks the views
    mats = [_as_matrix(v, f"views[{m}]") for m, v in enumerate(views)]

    def km(x: np.ndarray, seed: int) -> np.ndarray:
        return kmeans_predict(x, n_clusters, seed, kmeans_n_init)

    def nc(x: np.ndarray, seed: int) -> np.ndarray:
        return ncuts_predict(x, n_clusters, seed, ncuts_affinity, ncuts_n_neighbors)

    out: dict[str, dict[int, list[np.ndarray]]] = {m: {} for m in VIEW_METHODS + CONCAT_METHODS}
    for seed in seeds:
        seed = int(seed)
        out["KM"][seed] = [km(x, seed) for x in mats]
        out["Ncuts"][seed] = [nc(x, seed) for x in mats]
        out["ALLKM"][seed] = [km(concat, seed)]
        out["ALLNcuts"][seed] = [nc(concat, seed)]
    return out


# --------------------------------------------------------------------------
# evaluation (labels)
# --------------------------------------------------------------------------

def _summary(per_seed: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    return {**mean_std(list(per_seed.values())), "per_seed": {k: dict(v) for k, v in per_seed.items()}}


def score_baselines(partitions: Mapping[str, Mapping[int, Sequence[np.ndarray]]],
                    labels: np.ndarray) -> dict[str, dict[str, Any]]:
    """ACC / NMI / ARI (percent) of :func:`cluster_baselines`'s partitions, mean +- std over seeds.

    Returns one entry per name of :data:`METHODS`, each
    ``{"acc": {"mean", "std"}, "nmi": ..., "ari": ..., "per_seed": {"seed<k>": {...}}}``;
    the per-view methods also hold ``per_view`` (one such summary per view,
    with its ``view`` index), and ``KM`` / ``Ncuts`` the chosen ``best_view``
    and a ``selection`` note (label-selected, see the module docstring).
    """
    out: dict[str, dict[str, Any]] = {}
    for method in VIEW_METHODS:
        runs = partitions[method]
        seeds = list(runs)
        n_views = len(runs[seeds[0]])
        scores = {s: [evaluate_hard_clustering(labels, p) for p in runs[s]] for s in seeds}
        per_view = [{"view": v, **_summary({f"seed{s}": scores[s][v] for s in seeds})}
                    for v in range(n_views)]
        best = max(range(n_views), key=lambda v: (per_view[v]["acc"]["mean"], -v))
        out[method] = {**{k: per_view[best][k] for k in ("acc", "nmi", "ari", "per_seed")},
                       "best_view": best, "selection": BEST_VIEW_NOTE, "per_view": per_view}
        mean_view = {f"seed{s}": {k: float(np.mean([sc[k] for sc in scores[s]])) for k in ("acc", "nmi", "ari")}
                     for s in seeds}
        out[f"{method}_mean_view"] = {**_summary(mean_view), "selection": "mean over views (no selection)",
                                      "per_view": per_view}
    for method in CONCAT_METHODS:
        runs = partitions[method]
        out[method] = _summary({f"seed{s}": evaluate_hard_clustering(labels, p[0]) for s, p in runs.items()})
    return {m: out[m] for m in METHODS}


def run_baselines(views: Sequence[np.ndarray], labels: np.ndarray, n_clusters: int, seeds: Sequence[int],
                  **config: Any) -> dict[str, dict[str, Any]]:
    """:func:`cluster_baselines` (label-free), then :func:`score_baselines` (evaluation)."""
    return score_baselines(cluster_baselines(views, n_clusters, seeds, **config), labels)

"""Label-free confidence: a temperature per seed fitted to agreement with the other seeds
(``calibrate.confidence: seeds``) and with a normalized cut of the raw views (``seeds_and_ncuts``).

Why: the cluster head's softmax is not a probability of being right. On clean
data (mfeat, Synthetic3d) CLIB's head is right 96% of the time with a mean
confidence of 68-77% (ECE 20-28); on data without cluster structure (YouCook)
it is right 24% of the time at 77% confidence (ECE 53). No label may be read
to fix that, but the seeds a run trains anyway carry the missing signal: where
independently trained seeds put a sample in the same (Hungarian-matched)
cluster, it is usually right; where they scatter it, it is not (the
agreement-of-independent-runs estimate of accuracy, Jiang et al., ICLR 2022,
"Assessing generalization of SGD via disagreement").

Each seed r keeps its predictions (argmax unchanged: ACC/NMI/ARI do not move)
and gets one temperature T_r, fitted by maximising the Bernoulli likelihood
of "partition s agrees with r on sample i" under r's scaled top probability,
over the references s (each a weight w_s):

    T_r = argmax_T  sum_s w_s mean_i [ a_si log c_i(T) + (1 - a_si) log(1 - c_i(T)) ],
    c_i(T) = max_k softmax(log p_ik / T).

The references are the other seeds (``seeds``), plus, with half of the
weight, a normalized cut of the concatenated raw views (``seeds_and_ncuts``).
Seeds alone measure what labels would measure only where seeds err
differently: seeds that share a warm-up's structure also share its mistakes
(Caltech-2V: seeds agree on 89% of the samples, 64% are right), and the
raw-view partition, which errs elsewhere, pulls the estimate down there while
it agrees with a right model on clean data (Synthetic3d: 98%). A partition
that every estimator finds but the labels do not stays over-confident.
README "The default recipe" gives the measurements.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import softmax

from mmib.metrics import hungarian_mapping

LOG_T_BOUNDS = (-4.0, 4.0)  # T in [0.018, 55]: from near one-hot to near uniform
_EPS = 1e-6


def temperature_scale(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the same argmax, sharper for T < 1, flatter for T > 1."""
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))
    return softmax(logp / float(temperature), axis=1)


def agreement(reference: np.ndarray, other: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per sample: does ``other``'s cluster, matched onto ``reference``'s ids (Hungarian), equal it?

    A cluster of ``other`` left without a partner counts as disagreeing.
    """
    mapping = hungarian_mapping(reference, other, n_clusters)
    return mapping[np.asarray(other)] == np.asarray(reference)


def fit_agreement_temperature(proba: np.ndarray, agreements: Sequence[np.ndarray],
                              weights: Sequence[float] | None = None) -> float:
    """The temperature whose top probability best predicts the agreement indicators: the maximum of
    the (weighted) Bernoulli likelihood, one weight per indicator vector (default: equal)."""
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))
    targets = np.stack([np.asarray(a, dtype=np.float64) for a in agreements])
    w = np.full(len(targets), 1.0 / len(targets)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()

    def neg_log_likelihood(log_t: float) -> float:
        conf = np.clip(softmax(logp / np.exp(log_t), axis=1).max(axis=1), _EPS, 1 - _EPS)
        per_target = (targets * np.log(conf) + (1 - targets) * np.log(1 - conf)).mean(axis=1)
        return -float(w @ per_target)

    res = minimize_scalar(neg_log_likelihood, bounds=LOG_T_BOUNDS, method="bounded")
    return float(np.exp(res.x))


def agreement_temperatures(probas: Sequence[np.ndarray], references: Sequence[np.ndarray] = (),
                           reference_weight: float = 0.5) -> list[float]:
    """One temperature per seed, fitted to the other seeds' agreement and to ``references``.

    ``references`` are partitions made without the model (e.g. a normalized cut
    of the raw views); together they carry ``reference_weight`` of the
    likelihood and the other seeds the rest (all of it when either is absent).
    With one seed and no reference there is nothing to agree with: T = 1.
    """
    n_clusters = int(np.asarray(probas[0]).shape[1])
    labels = [np.asarray(p).argmax(axis=1) for p in probas]
    temps = []
    for r, p in enumerate(probas):
        seeds = [agreement(labels[r], labels[s], n_clusters) for s in range(len(probas)) if s != r]
        refs = [agreement(labels[r], np.asarray(ref), n_clusters) for ref in references]
        if not seeds and not refs:
            temps.append(1.0)
            continue
        share = reference_weight if (seeds and refs) else (1.0 if refs else 0.0)
        weights = ([(1 - share) / len(seeds)] * len(seeds) if seeds else []) + \
                  ([share / len(refs)] * len(refs) if refs else [])
        temps.append(fit_agreement_temperature(p, seeds + refs, weights))
    return temps


def reference_partitions(views: Sequence[np.ndarray], n_clusters: int, mode: str, seed: int) -> list[np.ndarray]:
    """The model-free partitions that ``calibrate.confidence`` ``mode`` compares each seed with:
    none for ``seeds``; for ``seeds_and_ncuts`` the normalized cut of the concatenated raw views
    (the ALLNcuts baseline: it errs where the raw features do, not where the network does)."""
    if mode != "seeds_and_ncuts":
        return []
    from mmib.baselines import concatenate_views, ncuts_predict

    return [ncuts_predict(concatenate_views(views), n_clusters, seed)]


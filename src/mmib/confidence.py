"""Label-free confidence: a temperature per seed fitted to the agreement of the other seeds.

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
of "seed s agrees with r on sample i" under r's scaled top probability, over
every other seed s:

    T_r = argmax_T  sum_{s != r} sum_i  a_si log c_i(T) + (1 - a_si) log(1 - c_i(T)),
    c_i(T) = max_k softmax(log p_ik / T).

It measures what labels would measure only where seeds err differently; a
partition that every seed finds but the labels do not (BDGP) stays
over-confident. README "The default recipe" gives the measurements.
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


def fit_agreement_temperature(proba: np.ndarray, agreements: Sequence[np.ndarray]) -> float:
    """The temperature whose top probability best predicts the agreement indicators (Bernoulli likelihood)."""
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))
    targets = np.stack([np.asarray(a, dtype=np.float64) for a in agreements])

    def neg_log_likelihood(log_t: float) -> float:
        conf = np.clip(softmax(logp / np.exp(log_t), axis=1).max(axis=1), _EPS, 1 - _EPS)
        return -float(np.mean(targets * np.log(conf) + (1 - targets) * np.log(1 - conf)))

    res = minimize_scalar(neg_log_likelihood, bounds=LOG_T_BOUNDS, method="bounded")
    return float(np.exp(res.x))


def seed_agreement_temperatures(probas: Sequence[np.ndarray]) -> list[float]:
    """One temperature per seed from the other seeds' agreement; 1.0 each when there is one seed."""
    if len(probas) < 2:
        return [1.0] * len(probas)
    n_clusters = int(np.asarray(probas[0]).shape[1])
    labels = [np.asarray(p).argmax(axis=1) for p in probas]
    return [fit_agreement_temperature(p, [agreement(labels[r], labels[s], n_clusters)
                                          for s in range(len(probas)) if s != r])
            for r, p in enumerate(probas)]

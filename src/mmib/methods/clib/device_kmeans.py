"""K-Means (Lloyd) in torch, batched over a leading seed dimension (issue "Speed", item 3).

CLIB runs a K-Means of the fused features after every warm-up epoch (the
trace of Figure 3) and, with ``pseudo_clusters: kmeans``, before every
calibration epoch. scikit-learn's K-Means needs the features on the host as
float64 NumPy; on a GPU that is a copy off the device every epoch, and R
seeds are R separate fits. :func:`kmeans` keeps the features and centres
where they are and fits R seeds in one call: features ``(R, N, D)``,
centres ``(R, K, D)``.

It is scikit-learn's algorithm (``KMeans(algorithm="lloyd")``, 1.x) where
that matters for the result, so the torch backend and the sklearn one
give the same partition from the same start:

- the data are centred before the fit (sklearn's "more accurate distances"),
  the centres moved back after;
- ``tol`` is relative: scaled by the mean of the per-feature variances of
  X, and an iteration stops the fit when its labels equal the previous ones
  ("strict convergence") or the summed squared centre shift is ``<=`` that;
- an empty cluster takes the point farthest from its centre (the j-th empty
  cluster, by id, the j-th farthest point), which leaves its old cluster;
  sklearn leaves the order among several far points unspecified
  (``argpartition``), so with two or more empty clusters in one iteration
  the pairing may differ from sklearn's;
- unless the labels converged strictly, a last assignment step makes the
  labels those of the returned centres; inertia is the sum of squared
  distances to the assigned centre (in the expanded form
  ``||x||^2 - 2 x.c + ||c||^2`` on the centred data, as the assignment);
- k-means++ is sklearn's greedy variant (``2 + int(log K)`` candidates per
  centre, sampled by squared distance); of ``n_init`` restarts the lowest
  inertia wins, unless it is the same partition as the best so far.

The random draws come from torch generators, not NumPy's, so a k-means++
fit is not sklearn's for the same seed; a warm start (``init``) has no
randomness and is.

Every seed (and every restart) is independent: converged ones are frozen by
a mask while the others iterate, so a seed's result does not depend on the
seeds beside it. Sums per cluster are one-hot matrix products, not
scatter-adds: deterministic on a GPU too (CUDA's atomic adds are not).

Device syncs: one per Lloyd iteration, ``bool(active.any())``, a single
reduction over all seeds and restarts (whether any is still iterating);
nothing else is read back to the host, and the result stays on the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from mmib.errors import InputError

MAX_ITER = 300
TOL = 1e-4


class KMeansResult(NamedTuple):
    """One fit per seed, on the input's device: ``labels`` (R, N) int64, ``centers`` (R, K, D),
    ``inertia`` (R,), ``n_iter`` (R,) int64 (Lloyd iterations, sklearn's ``n_iter_``), and
    ``restart_inertia`` (R, n_init): every restart's inertia (one column for a warm start)."""

    labels: torch.Tensor
    centers: torch.Tensor
    inertia: torch.Tensor
    n_iter: torch.Tensor
    restart_inertia: torch.Tensor


def kmeans(x: torch.Tensor, n_clusters: int | None = None, *, init: torch.Tensor | None = None,
           generator: torch.Generator | Sequence[torch.Generator] | None = None, n_init: int = 1,
           max_iter: int = MAX_ITER, tol: float = TOL) -> KMeansResult:
    """K-Means of each of R data sets ``x`` (R, N, D), from ``init`` (R, K, D) or by k-means++.

    ``init`` given: one Lloyd run per seed from those centres (a warm start;
    ``n_clusters`` and ``generator`` are not needed). Otherwise ``n_init``
    k-means++ restarts per seed, drawn from ``generator``: one generator per
    seed (a seed's result is then its own whatever the other seeds), or one
    for all, drawn from seed after seed.
    """
    x = _check_data(x)
    r, n, d = x.shape
    if init is not None:
        init = torch.as_tensor(init, dtype=x.dtype, device=x.device)  # sklearn casts init to X's dtype
        if init.dim() != 3 or init.shape[0] != r or init.shape[2] != d:
            raise InputError(f"init has shape {tuple(init.shape)}, the data {tuple(x.shape)}", field="init",
                             fix=f"pass centres shaped ({r}, K, {d})")
        n_clusters = init.shape[1]
    if n_clusters is None or not 1 <= n_clusters <= n:
        raise InputError(f"{n_clusters} clusters for {n} samples", field="n_clusters",
                         fix="ask for between 1 and N clusters (or pass init)")
    for field, value, low in (("n_init", n_init, 1), ("max_iter", max_iter, 1), ("tol", tol, 0)):
        if value < low:
            raise InputError(f"{field} = {value}", field=field, fix=f"use {field} >= {low}")
    mean = x.mean(dim=1, keepdim=True)
    xc = x - mean  # sklearn centres X for more accurate distances
    x_sq = torch.linalg.vector_norm(xc, dim=-1).square()  # R x N, without an N x D temporary
    tol_abs = x_sq.sum(-1) / (n * d) * tol  # sklearn's _tolerance: the mean per-feature variance x tol
    if init is not None:
        starts = (init - mean).unsqueeze(1)  # R x 1 x K x D
    else:
        starts = _kmeans_plusplus(xc, x_sq, n_clusters, _uniforms(generator, r, n_init, n_clusters, xc.device))
    labels, centers, inertia, n_iter = _lloyd(xc, x_sq, starts, max_iter, tol_abs)
    best = _best_restart(labels, inertia, n_clusters)
    pick = best.view(r, 1)
    return KMeansResult(labels=labels[torch.arange(r, device=x.device), best],
                        centers=centers[torch.arange(r, device=x.device), best] + mean,
                        inertia=inertia.gather(1, pick).squeeze(1),
                        n_iter=n_iter.gather(1, pick).squeeze(1),
                        restart_inertia=inertia)


def _check_data(x: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() != 3 or not x.is_floating_point():
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise InputError(f"features must be a float tensor (R, N, D), got {shape}", field="x",
                         fix="stack the seeds' features: torch.stack([f_1, ..., f_R])")
    return x


# ---------------------------------------------------------------- k-means++
def _uniforms(generator: torch.Generator | Sequence[torch.Generator] | None, r: int, n_init: int, k: int,
              device: torch.device) -> torch.Tensor:
    """The uniform draws of every seed's k-means++ (R x n_init x K x trials), each seed from its generator."""
    if generator is None:
        raise InputError("k-means++ needs a torch.Generator", field="generator",
                         fix="pass generator=torch.Generator(device).manual_seed(seed), or init=centres")
    gens = [generator] * r if isinstance(generator, torch.Generator) else list(generator)
    if len(gens) != r:
        raise InputError(f"{len(gens)} generators for {r} seeds", field="generator", fix="one generator per seed")
    shape = (n_init, k, _n_trials(k))
    return torch.stack([torch.rand(shape, generator=g, dtype=torch.float64, device=g.device) for g in gens]).to(device)


def _n_trials(k: int) -> int:
    return 2 + int(math.log(k))  # sklearn's n_local_trials


def _sq_distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Squared distances (R x P x N) of rows ``a`` (R x P x D) to rows ``b`` (R x N x D), expanded form."""
    a_sq = (a * a).sum(-1, keepdim=True)
    return torch.baddbmm(b_sq.unsqueeze(1) + a_sq, a, b.transpose(1, 2), alpha=-2).clamp_min_(0)


def _kmeans_plusplus(x: torch.Tensor, x_sq: torch.Tensor, k: int, u: torch.Tensor) -> torch.Tensor:
    """sklearn's greedy k-means++ for every seed and restart at once: start centres R x S x K x D."""
    r, n, d = x.shape
    s, t = u.shape[1], u.shape[3]
    rows = torch.arange(r, device=x.device).view(r, 1)

    def points(idx: torch.Tensor) -> torch.Tensor:  # idx R x P -> R x P x D
        return x[rows, idx]

    first = (u[:, :, 0, 0] * n).long().clamp_max_(n - 1)  # R x S: uniform over the rows
    centres = [points(first)]
    closest = _sq_distances(centres[0], x, x_sq)  # R x S x N
    pot = closest.sum(-1)  # R x S
    for c in range(1, k):
        vals = u[:, :, c, :] * pot.unsqueeze(-1)  # R x S x T
        cand = torch.searchsorted(closest.cumsum(-1), vals).clamp_max_(n - 1)
        dist = _sq_distances(points(cand.view(r, s * t)), x, x_sq).view(r, s, t, n)
        dist = torch.minimum(dist, closest.unsqueeze(2))
        cand_pot = dist.sum(-1)  # R x S x T
        best = cand_pot.argmin(-1, keepdim=True)  # R x S x 1
        pot = cand_pot.gather(-1, best).squeeze(-1)
        closest = dist.gather(2, best.unsqueeze(-1).expand(r, s, 1, n)).squeeze(2)
        centres.append(points(cand.gather(-1, best).squeeze(-1)))
    return torch.stack(centres, dim=2)  # R x S x K x D


# ---------------------------------------------------------------- Lloyd
def _assign(x: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of every point for every seed and restart: labels R x S x N, and
    ``||c||^2 - 2 x.c`` for every centre, R x S x N x K (sklearn's argmin form, without ``||x||^2``)."""
    r, s, k, d = centers.shape
    flat = centers.reshape(r, s * k, d)
    part = torch.baddbmm((flat * flat).sum(-1).unsqueeze(1), x, flat.transpose(1, 2), alpha=-2)  # R x N x SK
    part = part.view(r, -1, s, k).transpose(1, 2)
    return part.argmin(dim=-1), part  # ties: the lowest id, as sklearn


def _own_distances(x_sq: torch.Tensor, part: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Squared distance of every point to its assigned centre (R x S x N), in the expanded form:
    on centred float64 data its rounding stays far below the 1e-6 sklearn is matched to."""
    return (part.gather(-1, labels.unsqueeze(-1)).squeeze(-1) + x_sq.unsqueeze(1)).clamp_min(0)


def _one_hot(labels: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """``labels`` (any shape) one-hot over ``k`` in ``dtype``, by comparison (F.one_hot checks the
    labels' range with a host read on the CPU)."""
    return (labels.unsqueeze(-1) == torch.arange(k, device=labels.device)).to(dtype)


def _update(x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor,
            part: torch.Tensor) -> torch.Tensor:
    """New centres (sklearn's lloyd_iter): means of the assigned points, an empty cluster moved to the
    point farthest from its centre (taken out of its own cluster), a cluster left empty at the
    biggest cluster's centre."""
    r, s, k, d = centers.shape
    n = x.shape[1]
    hot = _one_hot(labels, k, x.dtype)  # R x S x N x K
    sums = torch.bmm(hot.transpose(2, 3).reshape(r, s * k, n), x).view(r, s, k, d)
    counts = hot.sum(2)  # R x S x K
    # empty clusters: the j-th (by id) takes the j-th farthest point from its own centre
    own = _own_distances(x_sq, part, labels)
    empty = (counts == 0) & (own.amax(-1, keepdim=True) > 0)  # no relocation when every point sits on its centre
    far = own.topk(min(k, n), dim=-1).indices  # R x S x min(K, N), farthest first
    rank = (empty.long().cumsum(-1) - 1).clamp_(0, far.shape[-1] - 1)
    far_idx = far.gather(-1, rank)  # R x S x K: the point an empty cluster takes
    x_far = x[torch.arange(r, device=x.device).view(r, 1), far_idx.view(r, s * k)].view(r, s, k, d)
    moved = _one_hot(labels.gather(-1, far_idx), k, x.dtype) * empty.unsqueeze(-1).to(x.dtype)  # new x old
    sums = torch.where(empty.unsqueeze(-1), x_far, sums - moved.transpose(2, 3) @ x_far)
    counts = torch.where(empty, torch.ones_like(counts), counts - moved.sum(2))
    means = sums * (1.0 / counts.clamp_min(1)).unsqueeze(-1)
    biggest = means.gather(2, counts.argmax(-1).view(r, s, 1, 1).expand(r, s, 1, d))
    return torch.where((counts > 0).unsqueeze(-1), means, biggest)


def _lloyd(x: torch.Tensor, x_sq: torch.Tensor, starts: torch.Tensor, max_iter: int, tol: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lloyd from ``starts`` (R x S x K x D) on centred ``x`` (row norms ``x_sq``): labels R x S x N,
    centres, inertia R x S, iterations R x S. Each (seed, restart) stops as sklearn's
    ``_kmeans_single_lloyd``."""
    r, s, k, d = starts.shape
    centers = starts
    labels = torch.full((r, s, x.shape[1]), -1, dtype=torch.long, device=x.device)
    active = torch.ones(r, s, dtype=torch.bool, device=x.device)
    strict = torch.zeros_like(active)
    n_iter = torch.zeros(r, s, dtype=torch.long, device=x.device)
    tol = tol.view(r, 1)
    for i in range(max_iter):
        new_labels, part = _assign(x, centers)
        new_centers = _update(x, x_sq, centers, new_labels, part)
        same = (new_labels == labels).all(-1)
        shifted = ((new_centers - centers) ** 2).sum((-1, -2))
        a = active.unsqueeze(-1)
        centers = torch.where(a.unsqueeze(-1), new_centers, centers)  # frozen once converged
        labels = torch.where(a, new_labels, labels)
        strict = strict | (active & same)
        n_iter = torch.where(active, i + 1, n_iter)
        active = active & ~same & (shifted > tol)
        if not bool(active.any()):  # the one device sync per iteration, for all seeds and restarts
            break
    final, part = _assign(x, centers)  # the labels of the returned centres (sklearn re-runs this step)
    labels = torch.where(strict.unsqueeze(-1), labels, final)
    return labels, centers, _own_distances(x_sq, part, labels).sum(-1), n_iter


def _best_restart(labels: torch.Tensor, inertia: torch.Tensor, k: int) -> torch.Tensor:
    """Each seed's restart (R,) as sklearn picks it: a later one replaces the best so far if its inertia
    is lower and it is not the same partition (rounding can lower the inertia of one)."""
    r, s = inertia.shape
    best = torch.zeros(r, dtype=torch.long, device=inertia.device)
    best_inertia, best_labels = inertia[:, 0], labels[:, 0]
    for j in range(1, s):
        better = (inertia[:, j] < best_inertia) & ~_same_partition(labels[:, j], best_labels, k)
        best = torch.where(better, j, best)
        best_inertia = torch.where(better, inertia[:, j], best_inertia)
        best_labels = torch.where(better.unsqueeze(-1), labels[:, j], best_labels)
    return best


def _same_partition(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """Per seed (R,): whether every cluster of ``a`` lies within one cluster of ``b`` (sklearn's
    ``_is_same_clustering``)."""
    joint = torch.bmm(_one_hot(a, k, torch.float32).transpose(1, 2), _one_hot(b, k, torch.float32))  # R x K x K
    return ((joint > 0).sum(-1) <= 1).all(-1)

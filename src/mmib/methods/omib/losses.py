"""OMIB (ICML 2025) quantities as pure functions.

Formulas follow ``../shared/papers/OMIB-ICML2025-summary.md`` and
``../shared/docs/METHOD.md`` section 5; the choices the summary leaves open
are stated in each docstring (and collected in ``mmib.methods.omib.estimator``).
Every function is stateless, so each can be checked against a hand value.

Notation: view 0 is the reference view (the paper's v_1, KL weight 1); view
m >= 1 gets the dynamic weight r_m (the paper's r for v_2 when M = 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mmib.methods.objective import Objective, Term

EPS = 1e-12

MAIN_OBJECTIVE = Objective("total", (Term("omf"), Term("ce_dec")))
"""The main stage's loss: L_OMF (``ce + beta_eff * weighted KL``) plus the decoders' side loss
``ce_dec`` (their inputs are detached: it trains the decoders only). Reported as ``total``."""


def categorical_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-row ``KL(p || q) = sum_k p_k (log p_k - log q_k)`` from log-probabilities (B x C -> B)."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def dynamic_weight_r(kl_view: torch.Tensor | Sequence[float] | float,
                     kl_ref: torch.Tensor | Sequence[float] | float) -> torch.Tensor:
    """The dynamic KL weight of a view (summary "Computation of Dynamic Weight r").

    ``r = 1 - tanh(ln(mean(kl_view) / mean(kl_ref)))`` where ``kl_view`` holds
    the per-sample ``KL(p(y_m | xi, z_m) || p(y | xi))`` of the weighted view
    and ``kl_ref`` the same for the reference view 0.

    Choices: METHOD.md 5 fixes the ratio of the two means (the summary writes
    the mean of per-sample ratios, which explodes on any sample whose
    reference KL is ~0). ``EPS`` is added to both means, so two zero KLs give
    ``r = 1`` (no imbalance) instead of NaN. The result lies in (0, 2): a view
    with more task information still uncoded by ``xi`` (larger ratio) gets a
    smaller weight, i.e. is compressed less. Returns a detached float64 scalar
    tensor (a weight, never differentiated), on the device of ``kl_view``.
    """
    kv = torch.as_tensor(kl_view, dtype=torch.float64).detach()
    kr = torch.as_tensor(kl_ref, dtype=torch.float64, device=kv.device).detach()
    ratio = (kv.mean() + EPS) / (kr.mean() + EPS)
    return 1.0 - torch.tanh(torch.log(ratio))


def joint_entropy(entropies: Sequence[float], mis: Sequence[float]) -> float:
    """``H(v_1, ..., v_M)`` by the chain rule: ``sum_m H(v_m) - sum_{m>=1} I(v_m; v_0..v_{m-1})``.

    For two views this is the paper's ``H(v1) + H(v2) - I(v1; v2)``; for
    M > 2 (our generalisation) ``mis[m-1]`` is the MI of view m with the
    concatenation of the views before it, so the sum is exactly the joint
    entropy ``sum_m H(v_m | v_<m)``.
    """
    if len(mis) != len(entropies) - 1:
        raise ValueError(f"need M - 1 = {len(entropies) - 1} mutual informations, got {len(mis)}")
    return float(sum(entropies)) - float(sum(mis))


def beta_upper_bound_multi(rs: torch.Tensor | Sequence[float], entropies: Sequence[float],
                           mis: Sequence[float]) -> torch.Tensor:
    """``M_u = 1 / ((1 + sum_{m>=1} r_m) * H(v_1, ..., v_M))`` (Proposition 5.7, generalised).

    The paper's factor ``(1 + r)`` is the sum of the KL weights (1 for the
    reference view, r for the other); for M views it becomes the sum of all
    weights ``1 + sum_m r_m``, and the joint entropy comes from
    :func:`joint_entropy`. An estimated joint entropy <= 0 makes the bound
    say nothing: then ``M_u = +inf`` (no cap). Returns a float64 scalar
    tensor.
    """
    r = torch.as_tensor(rs, dtype=torch.float64).detach().reshape(-1)
    if r.numel() != len(entropies) - 1:
        raise ValueError(f"need M - 1 = {len(entropies) - 1} weights r, got {r.numel()}")
    h = joint_entropy(entropies, mis)
    if not h > 0.0:
        return torch.full((), math.inf, dtype=torch.float64, device=r.device)
    return 1.0 / ((1.0 + r.sum()) * h)


def beta_upper_bound(r: torch.Tensor | float, h1: float, h2: float, mi: float) -> torch.Tensor:
    """Two views: ``M_u = 1 / ((1 + r)(H(v1) + H(v2) - I(v1; v2)))`` (+inf when the entropy term is <= 0)."""
    return beta_upper_bound_multi(torch.as_tensor(r, dtype=torch.float64).reshape(1), [h1, h2], [mi])


def effective_beta(beta: float, m_u: torch.Tensor) -> torch.Tensor:
    """``beta_eff = min(beta, M_u)``: the configured beta, kept inside the bound ``(0, M_u]``."""
    return torch.clamp(m_u, max=float(beta))


def weighted_kl(kls: Sequence[torch.Tensor], rs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """``KL_0 + sum_{m>=1} r_m KL_m``: the paper's ``KL_1 + r KL_2`` for M views (r is a constant)."""
    total = kls[0]
    for kl, r in zip(kls[1:], rs):
        total = total + r.to(kl.dtype) * kl
    return total

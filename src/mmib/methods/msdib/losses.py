"""Loss terms of MSDIB (AAAI 2025) as pure functions of tensors.

Equation numbers refer to the MSDIB paper
(``../shared/papers/MSDIB-AAAI2025-paper.md``); the choices it leaves open
follow ``../shared/docs/METHOD.md`` section 4. The objective is Eq. 1,

    ``L = L_DDC - alpha * L_IP + beta * L_IC``

with

* ``L_IC = kl_weight * mean_m KL_m + (1/M) sum_{i<j} I(H^i; H^j)`` (Eq. 16):
  compression; MSDIB *minimises* the inter-view MI (CLIB maximises it);
* ``L_IP = sum_m I(H^m; H^s) + sum_m I(Y^m; Y^s)`` (Eq. 3; METHOD.md 4 uses
  sums, where Eq. 17 has a 1/M on the assignment term);
* ``L_DDC``: the three terms of Deep Divergence-based Clustering
  (Kampffmeyer et al. 2019; Eq. 4) on the fused head's assignments.

Every mutual information is the IIC estimator (Ji et al. 2019; Eq. 14-15)
between two batches of non-negative vectors. For features, the vectors are
``softmax(h)`` over the latent dimensions (the estimator needs a
distribution per sample; the paper's Eq. 14 multiplies raw features, which
can be negative, so METHOD.md fixes the softmax). Every function is
stateless so each can be unit-tested against a hand-computed value.
"""

from __future__ import annotations

import sys

import torch

from mmib.methods.bounds import gaussian_kl
from mmib.methods.objective import Objective, Term

MACHINE_EPS = sys.float_info.epsilon  # IIC's clamp (float64 machine epsilon), as its reference code
DDC_EPS = 1e-9                        # the DDC reference code's floor on CS numerators and sigma^2
DDC_REL_SIGMA = 0.15                  # sigma^2 = 0.15 * median squared distance (Kampffmeyer et al.)


# ---------------------------------------------------------------- IIC mutual information (Eq. 14-15)
def iic_joint(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Joint distribution ``P = sum_n a_n b_n^T``, symmetrised when square, normalised to sum 1.

    ``a`` is B x K_a, ``b`` is B x K_b, both non-negative (softmax outputs).
    ``(P + P^T) / 2`` is applied only when ``K_a == K_b`` (Eq. 14 and the
    text after it); the result is *not* clamped (see ``iic_mutual_information``).
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected two B x K matrices with the same B, got {tuple(a.shape)} and {tuple(b.shape)}")
    p = a.t() @ b
    if p.shape[0] == p.shape[1]:
        p = 0.5 * (p + p.t())
    return p / p.sum()


def iic_mutual_information(a: torch.Tensor, b: torch.Tensor, eps: float = MACHINE_EPS) -> torch.Tensor:
    """``I = sum_ij P_ij log(P_ij / (P_i. P_.j))`` of the IIC joint (Eq. 15).

    The marginals are taken from the unclamped joint; then the joint and both
    marginals are clamped at ``eps`` (machine epsilon, as IIC's code) so
    empty cells contribute ``eps log(...)`` (about 1e-14) instead of NaN.
    """
    p = iic_joint(a, b)
    p_row = p.sum(dim=1, keepdim=True)
    p_col = p.sum(dim=0, keepdim=True)
    p, p_row, p_col = p.clamp_min(eps), p_row.clamp_min(eps), p_col.clamp_min(eps)
    return (p * (p.log() - p_row.log() - p_col.log())).sum()


def feature_mutual_information(h_a: torch.Tensor, h_b: torch.Tensor) -> torch.Tensor:
    """``I(H^a; H^b)`` between two feature batches: IIC on ``softmax(h)`` over the latent dims."""
    return iic_mutual_information(torch.softmax(h_a, dim=1), torch.softmax(h_b, dim=1))


# ---------------------------------------------------------------- L_IC and L_IP (Eq. 16, 17)
def compression_terms(mus: list[torch.Tensor], logvars: list[torch.Tensor], hs: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean_m KL_m, (1/M) sum_{i<j} I(H^i; H^j))``: the two parts of L_IC (Eq. 16).

    ``KL_m`` is the variational IB bound ``KL(N(mu, sigma^2) || N(0, I))``
    summed over latent dims and averaged over the batch (``mmib.methods.bounds.gaussian_kl``).
    """
    m = len(hs)
    kl = torch.stack([gaussian_kl(mu, lv) for mu, lv in zip(mus, logvars)]).mean()
    pairs = [feature_mutual_information(hs[i], hs[j]) for i in range(m) for j in range(i + 1, m)]
    mi_views = torch.stack(pairs).sum() / m
    return kl, mi_views


def compression_loss(kl: torch.Tensor, mi_views: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """``L_IC = kl_weight * mean_m KL_m + (1/M) sum_{i<j} I(H^i; H^j)``."""
    return kl_weight * kl + mi_views


def preservation_terms(hs: list[torch.Tensor], fused: torch.Tensor, view_probs: list[torch.Tensor],
                       fused_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum_m I(H^m; H^s), sum_m I(Y^m; Y^s))``: the two parts of L_IP (Eq. 3).

    ``view_probs`` and ``fused_probs`` are the softmax cluster assignments of
    the per-view heads and of the fused (DDC) head.
    """
    mi_feat = torch.stack([feature_mutual_information(h, fused) for h in hs]).sum()
    mi_assign = torch.stack([iic_mutual_information(y, fused_probs) for y in view_probs]).sum()
    return mi_feat, mi_assign


def eq1_objective(alpha: float, beta: float) -> Objective:
    """Eq. 1: ``L = L_DDC - alpha * L_IP + beta * L_IC`` as weighted terms (reported as ``total``)."""
    return Objective("total", (Term("ddc"), Term("l_ip", -alpha), Term("l_ic", beta)))


# ---------------------------------------------------------------- L_DDC (Eq. 4; Kampffmeyer et al. 2019)
def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i - b_j||^2`` by the expansion ``|a|^2 - 2 a.b + |b|^2``, floored at 0 (rounding)."""
    d = a.pow(2).sum(dim=1, keepdim=True) - 2.0 * (a @ b.t()) + b.pow(2).sum(dim=1).unsqueeze(0)
    return d.clamp_min(0.0)


def gaussian_kernel(hidden: torch.Tensor, rel_sigma: float = DDC_REL_SIGMA, min_sigma2: float = DDC_EPS
                    ) -> torch.Tensor:
    """``K_ij = exp(-||h_i - h_j||^2 / (2 sigma^2))`` on the DDC hidden layer.

    ``sigma^2 = rel_sigma * median`` of the B x B squared-distance matrix
    (diagonal zeros included, ``torch.median``'s lower median, as the DDC
    reference code), detached and floored at ``min_sigma2``.
    """
    dist = squared_distances(hidden, hidden)
    sigma2 = (rel_sigma * dist.median()).detach().clamp_min(min_sigma2)
    return torch.exp(-dist / (2.0 * sigma2))


def cs_divergence(a: torch.Tensor, kernel: torch.Tensor, eps: float = DDC_EPS) -> torch.Tensor:
    """DDC's Cauchy-Schwarz term between the columns of ``a`` (B x C) under ``kernel`` (B x B).

    ``2 / (C (C-1)) * sum_{i<j} a_i^T K a_j / sqrt(a_i^T K a_i * a_j^T K a_j)``
    (numerators floored at ``eps``, squared denominators at ``eps^2``, as the
    reference code). Minimising it makes the cluster columns "orthogonal" in
    the kernel's feature space. Eq. 4 of MSDIB writes ``1/c`` in front; this
    follows Kampffmeyer et al. (``(C choose 2)^-1``), see METHOD.md 4.
    """
    c = a.shape[1]
    nom = a.t() @ kernel @ a
    diag = torch.diagonal(nom)
    dnom_sq = (diag.unsqueeze(1) * diag.unsqueeze(0)).clamp_min(eps * eps)
    ratio = nom.clamp_min(eps) / dnom_sq.sqrt()
    return 2.0 / (c * (c - 1)) * torch.triu(ratio, diagonal=1).sum()


def ddc_orthogonality(a: torch.Tensor) -> torch.Tensor:
    """DDC term 2 (METHOD.md 4): ``2 / (n (n-1)) * sum_{i<j} (A A^T)_ij`` over the B samples.

    Small when different samples have orthogonal (different one-hot)
    assignments. (MSDIB's Eq. 4 writes ``triu(C^T C)``, the C x C variant; METHOD.md fixes this one.)
    """
    n = a.shape[0]
    return 2.0 / (n * (n - 1)) * torch.triu(a @ a.t(), diagonal=1).sum()


def simplex_memberships(a: torch.Tensor) -> torch.Tensor:
    """``m_ij = exp(-||a_i - e_j||^2)``, with ``e_j`` the j-th corner of the simplex.

    ``||a_i - e_j||^2 = |a_i|^2 - 2 a_ij + 1`` (exact, no cancellation).
    """
    return torch.exp(-(a.pow(2).sum(dim=1, keepdim=True) - 2.0 * a + 1.0))


def ddc_simplex(a: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """DDC term 3: the CS term of the simplex memberships ``m`` (pushes rows to corners)."""
    return cs_divergence(simplex_memberships(a), kernel)


def ddc_terms(a: torch.Tensor, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three DDC terms of the fused assignment ``a`` (B x C) with its 100-unit hidden layer.

    Returns ``{"ddc_cs", "ddc_orth", "ddc_simplex", "ddc"}`` (``ddc`` = their unweighted sum, Eq. 4).
    """
    kernel = gaussian_kernel(hidden)
    terms = {
        "ddc_cs": cs_divergence(a, kernel),
        "ddc_orth": ddc_orthogonality(a),
        "ddc_simplex": ddc_simplex(a, kernel),
    }
    terms["ddc"] = terms["ddc_cs"] + terms["ddc_orth"] + terms["ddc_simplex"]
    return terms

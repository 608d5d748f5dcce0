"""Loss terms of CLIB as pure functions of tensors.

Equation numbers refer to the CLIB paper (ICLR 2026,
``../shared/papers/CLIB-ICLR2026-paper.md``); the choices the paper leaves
open follow ``../shared/docs/METHOD.md`` section 1. Every function here is
stateless (the MINE moving average is passed in and returned) so each can be
unit-tested against a hand-computed value.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mmib.methods.bounds import gaussian_kl, mine_dv  # noqa: F401 (Eq. 3's compression and Eq. 4's MINE term)

EPS = 1e-8


# ---------------------------------------------------------------- stage 1: L_IB
def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric NT-Xent between two views (Eq. 3 alignment term, Theorem 3).

    Features are L2-normalised; the score is cosine similarity / temperature;
    row i of view a is the positive of row i of view b and every other row of
    b is a negative. The loss is the mean of both directions, so
    ``I(H^a; H^b) >= log(B) - loss`` (Appendix A.5). At chance it equals log(B).
    """
    a = F.normalize(z_a, dim=1)
    b = F.normalize(z_b, dim=1)
    logits = a @ b.t() / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def reconstruction_loss(xs: list[torch.Tensor], x_hats: list[torch.Tensor]) -> torch.Tensor:
    """``sum_m mean_i ||x^m_i - xhat^m_i||^2 / d_m``: per-view decoders from h^m (a switch, not in the paper).

    The autoencoder term of MFLVC (Xu et al., CVPR 2022): it keeps in h^m the
    structure the view already has, which instance-level NT-Xent alone erodes
    (README "Deviations"). Mean squared error per feature, summed over views.
    """
    return sum(F.mse_loss(x_hat, x) for x, x_hat in zip(xs, x_hats))


# ---------------------------------------------------------------- stage 2: L_Cal
def soft_cross_entropy(target: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_k -target_ik log p_ik``: one view's part of L_caliH (Eq. 7)."""
    return -(target * log_prob).sum(dim=1).mean()


def calibration_head_loss(target: torch.Tensor, cal_log_probs: list[torch.Tensor]) -> torch.Tensor:
    """L_caliH (Eq. 7): each calibration head fits the cluster-averaged target q_{c(i)}.

    ``target`` (B x C) is the detached mean cluster-head prediction of the
    sample's K-Means pseudo-cluster; summed over views, averaged over the batch.
    """
    return sum(soft_cross_entropy(target, lp) for lp in cal_log_probs)


def matched_hard_targets(cluster_labels: torch.Tensor, head_probs: torch.Tensor) -> torch.Tensor:
    """One-hot targets from pseudo-clusters Q_c, renamed to the cluster head's clusters (a switch).

    The alternative to the cluster-averaged target q_c of Eq. 7: Q_c's labels
    are matched one-to-one to the cluster head's argmax by the Hungarian
    algorithm on their contingency table (scipy), so two pseudo-clusters never
    share one target even where the head has merged them. Returns N x C.
    """
    from scipy.optimize import linear_sum_assignment

    c = head_probs.shape[1]
    pred = head_probs.argmax(dim=1)
    table = torch.zeros(c, c, dtype=torch.float64)
    table.index_put_((cluster_labels.cpu(), pred.cpu()), torch.ones(len(pred), dtype=torch.float64), accumulate=True)
    rows, cols = linear_sum_assignment(table.numpy(), maximize=True)
    rename = torch.empty(c, dtype=torch.long)
    rename[torch.from_numpy(rows)] = torch.from_numpy(cols)
    return F.one_hot(rename.to(cluster_labels.device)[cluster_labels], c).to(head_probs.dtype)


def entropy_regulariser(cal_probs: list[torch.Tensor]) -> torch.Tensor:
    """L_re (Eq. 8): ``(1/M) sum_m sum_k pbar_mk log pbar_mk``.

    The negative entropy of each view's batch-mean prediction; minimising it
    spreads predictions over clusters and prevents collapse.
    """
    terms = []
    for p in cal_probs:
        p_bar = p.mean(dim=0).clamp_min(EPS)
        terms.append((p_bar * p_bar.log()).sum())
    return torch.stack(terms).mean()


def cluster_head_loss(clu_log_prob: torch.Tensor, pseudo_labels: torch.Tensor,
                      selected: torch.Tensor) -> torch.Tensor:
    """L_cluH (Eq. 10): cross-entropy of the cluster head on the screened (i, m) pairs.

    ``pseudo_labels`` and ``selected`` are B x M (label of view m's calibration
    head, and whether the pair is in the screened set S). The loss is averaged
    over |S| within the batch; zero (with a graph) when the batch has none.
    """
    n_sel = selected.sum()
    if n_sel == 0:
        return clu_log_prob.sum() * 0.0
    picked = clu_log_prob.gather(1, pseudo_labels)  # B x M: log p^clu_i[y_im]
    return -(picked * selected).sum() / n_sel


def consistency_loss(cal_probs: list[torch.Tensor], clu_log_prob: torch.Tensor) -> torch.Tensor:
    """L_con (Eq. 11): ``sum_m KL(p^cal_m || p^clu)``, batch mean.

    The calibration predictions are the (detached) reference; the gradient
    reaches only the cluster head, pushing it to a flatter output where views
    disagree.
    """
    total = clu_log_prob.new_zeros(())
    for p in cal_probs:
        p = p.detach()
        total = total + (p * (p.clamp_min(EPS).log() - clu_log_prob)).sum(dim=1).mean()
    return total


# ---------------------------------------------------------------- screening (Eq. 9, 12)
def quality_score(prob: torch.Tensor, n: float) -> torch.Tensor:
    """``S_n(p) = 1 - H(p) / (n log C)`` (Eq. 9 for n = 2, Eq. 12 in general)."""
    c = prob.shape[1]
    entropy = -(prob * prob.clamp_min(EPS).log()).sum(dim=1)
    return 1.0 - entropy / (n * math.log(c))


SCREENING_RULES = ("s1", "s2", "s3", "maxprob")


def screening_scores(prob: torch.Tensor, rule: str) -> torch.Tensor:
    """Per-sample score of one view's calibration predictions under a Table 3 rule."""
    if rule == "maxprob":
        return prob.max(dim=1).values
    if rule in ("s1", "s2", "s3"):
        return quality_score(prob, float(rule[1]))
    raise ValueError(f"unknown screening rule {rule!r}; expected one of {SCREENING_RULES}")


SCREENING_RANKS = ("score", "maxprob")


def screen(prob: torch.Tensor, rule: str, rank: str = "score") -> tuple[torch.Tensor, torch.Tensor, int]:
    """Pseudo-label screening of one view over all N samples (Section 3.2.2).

    ``K = floor(sum_i score_i)`` (Eq. 9 summed) samples are selected; their
    pseudo-label is the argmax of the calibration head. ``rank`` says which
    K: the highest score (``score``, METHOD.md) or the highest top
    probability (``maxprob``, the paper's sentence "samples are ranked
    according to their top probability values"). Returns
    ``(selected mask N, pseudo-labels N, K)``.
    """
    if rank not in SCREENING_RANKS:
        raise ValueError(f"unknown screening rank {rank!r}; expected one of {SCREENING_RANKS}")
    scores = screening_scores(prob, rule)
    k = int(math.floor(float(scores.sum()) + 1e-6))
    k = max(0, min(k, prob.shape[0]))
    selected = torch.zeros(prob.shape[0], dtype=torch.bool, device=prob.device)
    if k > 0:
        # stable ordering: ties broken by sample index, so screening is deterministic
        key = scores if rank == "score" else prob.max(dim=1).values
        order = torch.argsort(key, descending=True, stable=True)
        selected[order[:k]] = True
    return selected, prob.argmax(dim=1), k

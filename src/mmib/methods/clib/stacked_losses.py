"""CLIB's loss terms (:mod:`mmib.methods.clib.losses`) for R seeds at once: inputs carry a leading seed
dimension (R x B x ...), results are one value per seed (R). Pure functions; seed k's value is
the :mod:`mmib.methods.clib.losses` value of slice k (up to float rounding of the batch mean), and
no value of one seed reaches another's (every reduction is within a seed's slice)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmib.methods.clib.losses import EPS


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.gaussian_kl` per seed: KL summed over latent dimensions, mean over the batch."""
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)
    return kl.sum(dim=-1).mean(dim=-1)


def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.info_nce` per seed: symmetric NT-Xent, row i of a against every row of b
    of the same seed (never another seed's rows)."""
    r, b, _ = z_a.shape
    a = F.normalize(z_a, dim=-1)
    bb = F.normalize(z_b, dim=-1)
    logits = torch.bmm(a, bb.transpose(1, 2)) / temperature  # R x B x B
    target = torch.arange(b, device=z_a.device).repeat(r)
    rows = F.cross_entropy(logits.reshape(r * b, b), target, reduction="none").view(r, b).mean(dim=1)
    cols = F.cross_entropy(logits.transpose(1, 2).reshape(r * b, b), target, reduction="none").view(r, b).mean(dim=1)
    return 0.5 * (rows + cols)


def reconstruction_loss(xs: list[torch.Tensor], x_hats: list[torch.Tensor]) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.reconstruction_loss` per seed: mean squared error per feature, summed over views."""
    return sum(((x_hat - x) ** 2).mean(dim=(1, 2)) for x, x_hat in zip(xs, x_hats))


# ---------------------------------------------------------------- stage 2: L_Cal (Eq. 7-11)
def soft_cross_entropy(target: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.soft_cross_entropy` per seed: ``mean_i sum_k -target_ik log p_ik``
    (one view's part of L_caliH, Eq. 7); ``target``, ``log_prob`` R x B x C."""
    return -(target * log_prob).sum(dim=-1).mean(dim=-1)


def calibration_head_loss(target: torch.Tensor, cal_log_probs: list[torch.Tensor]) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.calibration_head_loss` per seed: L_caliH (Eq. 7), each calibration
    head against the seed's cluster-averaged targets q_{c(i)} (R x B x C), summed over views."""
    return sum(soft_cross_entropy(target, lp) for lp in cal_log_probs)


def entropy_regulariser(probs: list[torch.Tensor]) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.entropy_regulariser` per seed: L_re (Eq. 8),
    ``(1/M) sum_m sum_k pbar_mk log pbar_mk`` with ``pbar`` the mean over the seed's own batch rows."""
    terms = []
    for p in probs:
        p_bar = p.mean(dim=1).clamp_min(EPS)  # R x C
        terms.append((p_bar * p_bar.log()).sum(dim=-1))
    return torch.stack(terms, dim=1).mean(dim=1)


def cluster_head_loss(clu_log_prob: torch.Tensor, pseudo_labels: torch.Tensor,
                      selected: torch.Tensor) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.cluster_head_loss` per seed: L_cluH (Eq. 10), the cluster head's
    cross-entropy on the seed's screened (i, m) pairs, averaged over its own |S| in the batch.

    ``clu_log_prob`` R x B x C; ``pseudo_labels``, ``selected`` R x B x M. A seed with no pair
    selected gets zero, with a graph (all its gradients zero), as the per-seed loss.
    """
    n_sel = selected.sum(dim=(1, 2))  # R
    picked = clu_log_prob.gather(2, pseudo_labels)  # R x B x M: log p^clu_i[y_im]
    return -(picked * selected).sum(dim=(1, 2)) / n_sel.clamp_min(1.0)


def consistency_loss(cal_probs: list[torch.Tensor], clu_log_prob: torch.Tensor) -> torch.Tensor:
    """:func:`mmib.methods.clib.losses.consistency_loss` per seed: L_con (Eq. 11),
    ``sum_m KL(p^cal_m || p^clu)``, the mean over the seed's batch; the calibration predictions
    are detached (the gradient reaches the cluster head only)."""
    total = clu_log_prob.new_zeros(clu_log_prob.shape[0])
    for p in cal_probs:
        p = p.detach()
        total = total + (p * (p.clamp_min(EPS).log() - clu_log_prob)).sum(dim=-1).mean(dim=-1)
    return total

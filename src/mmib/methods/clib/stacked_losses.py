"""The warm-up's loss terms (:mod:`mmib.methods.clib.losses`) for R seeds at once: inputs carry a leading seed
dimension (R x B x ...), results are one value per seed (R). Pure functions; seed k's value is
the :mod:`mmib.methods.clib.losses` value of slice k (up to float rounding of the batch mean)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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

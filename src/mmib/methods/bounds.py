"""The variational bounds more than one method uses, as pure functions of tensors.

``gaussian_kl``: the compression bound of CLIB (Eq. 3), MSDIB (L_IC) and OMIB (L_OMF);
``mine_dv``: MINE's Donsker-Varadhan estimate, CLIB's preservation term (Eq. 4, the paper's reading)
and OMIB's entropy and mutual-information estimates of its bound M_u.
"""

from __future__ import annotations

import math

import torch


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Compression bound on I(X^m; H^m) (Eq. 3, Theorem 2; METHOD.md 1).

    ``KL(N(mu, sigma^2) || N(0, I))`` summed over latent dimensions and
    averaged over the batch: the standard variational IB bound (Alemi et al.).
    """
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)
    return kl.sum(dim=1).mean()


def mine_dv(t_joint: torch.Tensor, t_marginal: torch.Tensor, log_ema: torch.Tensor | None,
            ema_rate: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MINE Donsker-Varadhan bound with the bias-corrected gradient (Eq. 4; METHOD.md 1).

    ``I_DV = E_joint[T] - log E_marginal[e^T]``. The mini-batch gradient of the
    log term is biased; MINE replaces its denominator by a moving average of
    ``E[e^T]``. Here the average is kept in log space (``log_ema``) so large
    critic outputs never overflow.

    Returns ``(estimate, surrogate, new_log_ema)``: ``estimate`` is the DV
    value to log; ``surrogate`` has the same value's joint part and the
    bias-corrected gradient (maximise it); ``new_log_ema`` is detached.
    """
    n = t_marginal.shape[0]
    log_mean_exp = torch.logsumexp(t_marginal.reshape(-1), dim=0) - math.log(n)
    estimate = t_joint.mean() - log_mean_exp
    current = log_mean_exp.detach()
    if log_ema is None:
        new_log_ema = current
    else:
        new_log_ema = torch.logaddexp(log_ema + math.log1p(-ema_rate), current + math.log(ema_rate))
    # d/dtheta exp(lme - c) = E[e^T dT] / ema: the corrected gradient of log E[e^T].
    surrogate = t_joint.mean() - torch.exp(log_mean_exp - new_log_ema)
    return estimate, surrogate, new_log_ema

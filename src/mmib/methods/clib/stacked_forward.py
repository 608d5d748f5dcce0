"""CLIB's training forward pass and its two stages' losses for R seeds at once, on stacked tensors
(:class:`mmib.methods.clib.stacked.Stack`): :func:`encode` is ``CLIBNet.encode(xb, sample=True)``,
:func:`ib_loss` is :meth:`CLIB._ib_loss` (Eq. 5) and :func:`calibration_loss` is
:meth:`CLIB._calibration_loss` (Eq. 2, 6-11), each seed's slice its own seed's value.

``params`` and ``buffers`` are a Stack's (``Stack.params()``, ``Stack.buffers``) named as the
network's ``named_parameters``; ``model`` (any seed of the recipe) gives the layers' types and the
loss settings only. The terms are the pure functions of :mod:`mmib.methods.clib.stacked_losses`,
combined by the same objectives as the per-seed path (:mod:`mmib.methods.clib.objectives`), whose
parts are then R-vectors.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from mmib.methods.clib import stacked, stacked_losses
from mmib.methods.clib.objectives import calibration_objective, ib_objective, stage2_objective
from mmib.methods.objective import Bound, Surrogate
from mmib.networks import Encoded

Tensors = dict[str, torch.Tensor]


def seed_noise(gens: list[torch.Generator], n_rows: int, latent_dim: int, n_views: int) -> list[torch.Tensor]:
    """Each seed's reparameterisation noise for one step, drawn from its own generator in the order
    its own ``encode`` draws it (view by view, ``n_rows x latent_dim`` each): R x B x H per view."""
    noise = [[torch.randn(n_rows, latent_dim, generator=g) for _ in range(n_views)] for g in gens]
    return [torch.stack([own[m] for own in noise]) for m in range(n_views)]


def encode(net: torch.nn.Module, params: Tensors, buffers: Tensors, xb: list[torch.Tensor],
           eps: list[torch.Tensor], fused: bool = True) -> Encoded:
    """``CLIBNet.encode(xb, sample=True)`` of every seed: the views ``xb`` (R x B x d_m) through the
    variational encoders, ``h^m = mu + sigma * eps[m]`` and the fusion ``h^f`` (:func:`fuse`; all
    R x B x H).

    ``fused=False`` leaves ``h^f`` None, for :func:`ib_loss` to fuse where it needs it: the warm-up's
    order of ops (autograd sums a tensor's gradients in the order its uses were created, so
    computing h^f first would round the warm-up's gradients of h^m differently).
    """
    mus, logvars, hs = [], [], []
    for m, x in enumerate(xb):
        mu, logvar = stacked.sequential(net.encoders[m].net, f"encoders.{m}.net", params, buffers, x).chunk(2, dim=-1)
        logvar = logvar.clamp(-10.0, 10.0)
        mus.append(mu)
        logvars.append(logvar)
        hs.append(mu + torch.exp(0.5 * logvar) * eps[m])
    return Encoded(mus, logvars, hs, fuse(params, hs) if fused else None)


def fuse(params: Tensors, hs: list[torch.Tensor]) -> torch.Tensor:
    """:class:`mmib.networks.WeightedFusion` of every seed: ``h^f = sum_m w_m h^m``, ``w`` the softmax of
    the seed's fusion logits."""
    fw = torch.softmax(params["fusion.logits"], dim=-1)  # R x M
    return sum(fw[:, m, None, None] * h for m, h in enumerate(hs))


def ib_loss(model, params: Tensors, buffers: Tensors, xb: list[torch.Tensor], enc: Encoded
            ) -> tuple[torch.Tensor, Tensors]:
    """L_IB of :meth:`CLIB._ib_loss` (Eq. 5) for every seed (R values) on the stacked batches ``xb``
    and their encodings ``enc`` (:func:`encode`; h^f fused here when ``enc`` has none). The MINE
    critics are not stacked."""
    net, w = model.net_, model.warmup
    hs = enc.hs
    kl = sum(stacked_losses.gaussian_kl(mu, lv) for mu, lv in zip(enc.mus, enc.logvars))
    zs = [stacked.sequential(net.projections[m].net, f"projections.{m}.net", params, buffers, h)
          for m, h in enumerate(hs)] if len(net.projections) else hs
    pairs = list(itertools.combinations(range(len(zs)), 2))
    nce = sum(stacked_losses.info_nce(zs[i], zs[j], w.temperature) for i, j in pairs)
    if w.alignment_reduction == "mean":
        nce = nce / len(pairs)
    terms = {"kl": kl, "nce": nce}
    if w.preservation == "infonce":
        fused = fuse(params, hs) if enc.fused is None else enc.fused
        pres_nce = sum(stacked_losses.info_nce(h, fused, w.temperature) for h in hs)
        terms["preservation"] = Bound(pres_nce, len(hs) * np.log(fused.shape[1]) - pres_nce)
    elif w.preservation == "mine":
        raise ValueError("the MINE critics are not stacked")
    if len(net.decoders):
        x_hats = [stacked.sequential(net.decoders[m].net, f"decoders.{m}.net", params, buffers, h)
                  for m, h in enumerate(hs)]
        terms["recon"] = stacked_losses.reconstruction_loss(xb, x_hats)
    loss, parts = ib_objective(w, model.beta).combine(terms)
    parts["loss"] = parts["ib"]
    return loss, parts


def head(net: torch.nn.Module, name: str, params: Tensors, buffers: Tensors, h: torch.Tensor) -> torch.Tensor:
    """A :class:`mmib.networks.ClusterHead` (``cluster_head`` or ``cal_heads.<m>``) of every seed on
    R x B x H features: logits R x B x C."""
    return stacked.sequential(net.get_submodule(name).net, f"{name}.net", params, buffers, h)


def calibration_loss(model, params: Tensors, buffers: Tensors, xb: list[torch.Tensor], eps: list[torch.Tensor],
                     tb: Tensors) -> tuple[torch.Tensor, Tensors]:
    """``L_IB + alpha * L_Cal`` of :meth:`CLIB._calibration_loss` (Eq. 2, 6-11) for every seed (R values).

    ``tb`` holds each seed's per-sample targets of the batch: ``target`` R x B x C (q_{c(i)}),
    ``selected`` and ``pseudo`` R x B x M (the screened set S and the calibration heads' labels).
    The cluster head reads h^f; the calibration heads read detached h^m (Section 3.2.1 Note)
    unless ``calibrate.cal_heads_backprop``.
    """
    net, cal = model.net_, model.calibrate
    enc = encode(net, params, buffers, xb, eps)
    ib, parts = ib_loss(model, params, buffers, xb, enc)
    clu_logp = F.log_softmax(head(net, "cluster_head", params, buffers, enc.fused), dim=-1)
    cal_in = enc.hs if cal.cal_heads_backprop else [h.detach() for h in enc.hs]
    cal_logp = [F.log_softmax(head(net, f"cal_heads.{m}", params, buffers, h), dim=-1) for m, h in enumerate(cal_in)]
    cal_p = [lp.exp() for lp in cal_logp]
    l_cal, cal_parts = calibration_objective(cal).combine({
        "caliH": lambda: stacked_losses.calibration_head_loss(tb["target"], cal_logp)
        / model._view_divisor(cal.caliH_reduction),
        "re": lambda: stacked_losses.entropy_regulariser(cal_p),
        "cluH": lambda: stacked_losses.cluster_head_loss(clu_logp, tb["pseudo"], tb["selected"]),
        "con": lambda: stacked_losses.consistency_loss(cal_p, clu_logp) / model._view_divisor(cal.con_reduction),
        "balance": lambda: stacked_losses.entropy_regulariser([clu_logp.exp()]),
    })
    loss, total_parts = stage2_objective(model.alpha, cal.keep_ib).combine(
        {"ib": Surrogate(ib, parts["ib"]), "cal": l_cal})
    return loss, {**parts, **cal_parts, **total_parts}

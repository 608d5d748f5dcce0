"""CLIB's warm-up for R seeds as one stacked model (``seed_batching``; README "Speed").

Each seed is an ordinary :class:`mmib.methods.clib.estimator.CLIB`: it is built and
initialised exactly as ``fit_warmup`` builds it (``seed_everything(seed)``,
then its network), keeps its own batch order (its generator) and its own
noise stream (the global torch RNG state its own ``fit_warmup`` would draw
from), its own gradient clipping, trace K-Means, history and finiteness
check. Only the arithmetic is shared: the seeds' warm-up parameters are
stacked (:mod:`mmib.methods.clib.stacked`) so every op of a step runs once for all R
seeds, and one Adam updates the stack (Adam is elementwise: the same update
as R Adams). After every epoch the stack is copied back into each seed's
network, so after training each seed is a plain CLIB whose ``state()`` is
what the per-seed path saves.

What is not stacked runs one seed per process as before: the calibration
stage, and a warm-up with the MINE critics (``warmup.preservation: mine``,
the paper's reading), which :func:`supports` refuses.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

import numpy as np
import torch

from mmib.methods.clib import stacked, stacked_losses
from mmib.methods.clib.objectives import ib_objective
from mmib.methods.objective import Bound
from mmib.config import Params
from mmib.errors import InputError
from mmib.methods.base import _adam, _as_tensors, _batches
from mmib.methods.clib.estimator import CLIB, trace_warmup_epochs
from mmib.methods import table as method_table
from mmib.runtime import resolve_device, seed_everything
from mmib.training_record import EPOCH_SECONDS


def supports(params: Params) -> bool:
    """Whether the warm-up of ``params`` can be stacked: a method whose table row says so (CLIB), on the
    CPU, without the MINE critics."""
    return (method_table.spec(params.method).stacked_warmup and params.warmup.preservation != "mine"
            and resolve_device(params.device).type == "cpu")


def seed_groups(seeds: list[int], n_groups: int) -> list[list[int]]:
    """``seeds`` dealt round-robin into at most ``n_groups`` non-empty groups (one stacked model each)."""
    n = max(1, min(n_groups, len(seeds)))
    return [list(seeds[i::n]) for i in range(n)]


def new_models(params: Params, n_clusters: int, seeds: list[int], progress: bool = False) -> list[CLIB]:
    """One unfitted CLIB per seed, as the stages build them."""
    return [CLIB.from_params(params, n_clusters, seed=seed, progress=progress) for seed in seeds]


class _Seeds:
    """The per-seed state of a stacked warm-up: models (built as their own ``fit_warmup`` builds them),
    batch-order and noise generators, the views as tensors."""

    def __init__(self, models: list[CLIB], views: list[np.ndarray]) -> None:
        self.models = models
        self.batch_gens, self.noise_gens = [], []
        for model in models:
            model._check_params()
            model.device_ = resolve_device(model.device)
            if model.device_.type != "cpu":
                raise InputError("stacked seeds run on the CPU only", field="device", fix="set seed_batching: false")
            self.batch_gens.append(seed_everything(model.seed))
            self.xs = _as_tensors(views, model.device_)
            model._build(self.xs)
            noise = torch.Generator()
            noise.set_state(torch.get_rng_state())  # where this seed's fit_warmup draws its noise from
            self.noise_gens.append(noise)
        self.nets = [model.net_ for model in models]


def _ib_names(net: torch.nn.Module) -> list[str]:
    """Names of the warm-up's parameters (``CLIBNet.ib_parameters``), in that order."""
    ids = {id(p) for p in net.ib_parameters()}
    return [name for name, p in net.named_parameters() if id(p) in ids]


def _stacked_ib_loss(model: CLIB, params: dict, buffers: dict, xb: list[torch.Tensor], eps: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_IB of :meth:`CLIB._ib_loss` for every seed (R values), on stacked batches ``xb`` (R x B x d_m)
    with the seeds' reparameterisation noise ``eps`` (R x B x H per view)."""
    net, w = model.net_, model.warmup
    mus, logvars, hs = [], [], []
    for m, x in enumerate(xb):
        mu, logvar = stacked.sequential(net.encoders[m].net, f"encoders.{m}.net", params, buffers, x).chunk(2, dim=-1)
        logvar = logvar.clamp(-10.0, 10.0)
        mus.append(mu)
        logvars.append(logvar)
        hs.append(mu + torch.exp(0.5 * logvar) * eps[m])
    kl = sum(stacked_losses.gaussian_kl(mu, lv) for mu, lv in zip(mus, logvars))
    zs = [stacked.sequential(net.projections[m].net, f"projections.{m}.net", params, buffers, h)
          for m, h in enumerate(hs)] if len(net.projections) else hs
    pairs = list(itertools.combinations(range(len(zs)), 2))
    nce = sum(stacked_losses.info_nce(zs[i], zs[j], w.temperature) for i, j in pairs)
    if w.alignment_reduction == "mean":
        nce = nce / len(pairs)
    terms = {"kl": kl, "nce": nce}
    if w.preservation == "infonce":
        fw = torch.softmax(params["fusion.logits"], dim=-1)  # R x M
        fused = sum(fw[:, m, None, None] * h for m, h in enumerate(hs))
        pres_nce = sum(stacked_losses.info_nce(h, fused, w.temperature) for h in hs)
        terms["preservation"] = Bound(pres_nce, len(hs) * np.log(fused.shape[1]) - pres_nce)
    if len(net.decoders):
        x_hats = [stacked.sequential(net.decoders[m].net, f"decoders.{m}.net", params, buffers, h)
                  for m, h in enumerate(hs)]
        terms["recon"] = stacked_losses.reconstruction_loss(xb, x_hats)
    loss, parts = ib_objective(w, model.beta).combine(terms)
    parts["loss"] = parts["ib"]
    return loss, parts


def fit_warmup_batched(models: list[CLIB], views: list[np.ndarray]) -> list[CLIB]:
    """Stage 1 of every model at once (each as its own ``fit_warmup`` would, see the module's docstring).

    The models must share every param but the seed (one recipe).
    """
    first = models[0]
    if any(m.get_params() | {"seed": 0} != first.get_params() | {"seed": 0} for m in models):
        raise InputError("stacked seeds need one recipe: the models differ in more than the seed", field="seed",
                         fix="stack only seeds of one params.yaml")
    if first.warmup.preservation == "mine":
        raise InputError("the MINE critics are not stacked", field="warmup.preservation",
                         fix="set seed_batching: false, or preservation: none | infonce")
    seeds = _Seeds(models, views)
    xs, nets, r = seeds.xs, seeds.nets, len(models)
    names = _ib_names(nets[0])
    stack = stacked.Stack(nets, names)
    leaves = list(stack.leaves.values())
    opt = _adam(leaves, first.warmup.lr, first.warmup.weight_decay)
    n_rows, n_epochs, h = xs[0].shape[0], first.warmup_epochs, first.model.latent_dim
    hists = [defaultdict(list) for _ in models]
    bars = [m._epoch_bar(n_epochs, "warmup") for m in models]
    for epoch in range(n_epochs):
        t0 = time.perf_counter()
        batches = [_batches(n_rows, first.warmup.batch_size, gen) for gen in seeds.batch_gens]
        sums: dict[str, torch.Tensor] = defaultdict(float)
        for step in range(len(batches[0])):
            idx = torch.stack([b[step] for b in batches])  # R x B: each seed's own rows
            xb = [x[idx] for x in xs]
            noise = [[torch.randn(idx.shape[1], h, generator=g) for _ in xs] for g in seeds.noise_gens]
            eps = [torch.stack([noise[k][m] for k in range(r)]) for m in range(len(xs))]
            loss, parts = _stacked_ib_loss(first, stack.params(), stack.buffers, xb, eps)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # seeds share no parameter: each gradient is its own seed's
            if first.warmup.grad_clip > 0:
                stacked.clip_grad_norms_(leaves, first.warmup.grad_clip)
            opt.step()
            for k, v in parts.items():
                sums[k] = sums[k] + v
        stack.unstack_into(nets)
        t_end = time.perf_counter()
        for k, (model, hist) in enumerate(zip(models, hists)):
            # every seed's epoch took the stacked epoch's wall time (not the other seeds' trace K-Means)
            model._record(hist, {key: v[k] for key, v in sums.items()}, len(batches[0]),
                          t0 + time.perf_counter() - t_end)
            model._check_finite(hist, epoch, n_epochs, "warmup")
        trace_warmup_epochs(models, xs, epoch)  # the torch backend: every seed's K-Means in one call
        for model, hist, bar in zip(models, hists, bars):
            model._show_epoch(bar, epoch, hist["loss"][-1], hist[EPOCH_SECONDS][-1])
            bar.update(1)
    for model, hist, bar in zip(models, hists, bars):
        bar.close()
        model.history_["warmup"] = dict(hist)
        model.stages_done_ = ["warmup"]
    return models

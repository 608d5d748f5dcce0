"""CLIB's calibration (stage 2) for R seeds as one stacked model (``seed_batching``; README "Speed").

Each seed is an ordinary :class:`mmib.methods.clib.estimator.CLIB` holding its warm-up and gets
what its own ``fit_calibration`` does: its stage-2 start (``seed + STAGE2_SEED_OFFSET``: its batch
order), its cold start of the heads (per seed, as it is: a few cheap epochs), its per-epoch targets
(pseudo-clusters Q_c, q_c, the screening; Eq. 7-10) from its own network, its own noise stream (a
generator at the global torch RNG state its own run draws its noise from: neither the cold start
nor the targets draw from that RNG), its own gradient clipping, history, trace and finiteness
check. Only the epoch's steps are shared: every parameter of the seeds' networks is stacked
(:mod:`mmib.methods.clib.stacked`), each step runs ``L_IB + alpha * L_Cal``
(:func:`mmib.methods.clib.stacked_forward.calibration_loss`) once for all seeds on each seed's own
batch and targets, and one fused Adam updates the stack. After every epoch the stack is copied
back into each seed's network (weights and BatchNorm statistics) before that seed's next targets.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from mmib.methods.base import _adam
from mmib.methods.clib import stacked, stacked_forward
from mmib.methods.clib.estimator import CLIB, PER_SAMPLE_TARGETS, screened_values
from mmib.methods.clib.seed_batch import check_stackable, global_noise, record_epoch, stacked_epoch
from mmib.training_record import EPOCH_SECONDS


def fit_calibration_batched(models: list[CLIB], views: list[np.ndarray]) -> list[CLIB]:
    """Stage 2 of every model at once, each as its own ``fit_calibration`` would (see the module's
    docstring). The models must hold their warm-ups and share every param but the seed."""
    check_stackable(models)
    for model in models:
        model._require_warmup()
    first = models[0]
    batch_gens, noise_gens, hists = [], [], []
    for model in models:
        gen, xs, hist = model._begin_calibration(views)
        batch_gens.append(gen)
        hists.append(hist)
        noise_gens.append(global_noise())  # where this seed's fit_calibration draws its noise from
    nets = [model.net_ for model in models]
    stack = stacked.Stack(nets)  # every parameter: stage 2 trains the whole network
    opt = _adam(stack.leaves.values(), first.calibrate.lr, first.warmup.weight_decay)
    n_epochs = first.calibration_epochs
    bars = [model._epoch_bar(n_epochs, "calibrate") for model in models]
    seeds = torch.arange(len(models)).unsqueeze(1)
    for epoch in range(n_epochs):
        targets, seconds = [], []
        for model in models:  # each seed's targets from its own network, as its before_epoch
            t0 = time.perf_counter()
            targets.append(model._epoch_targets(xs, epoch))
            seconds.append(time.perf_counter() - t0)
        per_sample = {k: torch.stack([t[k] for t in targets]) for k in PER_SAMPLE_TARGETS}  # R x N x ...

        def loss(idx: torch.Tensor, xb: list[torch.Tensor], eps: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
            tb = {k: v[seeds, idx] for k, v in per_sample.items()}  # each seed's rows of its own targets
            return stacked_forward.calibration_loss(first, stack.params(), stack.buffers, xb, eps, tb)

        t0 = time.perf_counter()
        sums, n_batches = stacked_epoch(stack, opt, xs, batch_gens, noise_gens, first.calibration_batch_size,
                                        first.model.latent_dim, first.warmup.grad_clip, loss)
        stack.unstack_into(nets)
        steps = time.perf_counter() - t0
        # a seed's epoch: its own targets and the stacked steps (not the other seeds' targets)
        record_epoch(models, hists, sums, n_batches, [s + steps for s in seconds], epoch, n_epochs, "calibrate",
                     [screened_values(t) for t in targets])
        for model, hist, bar in zip(models, hists, bars):
            model._show_epoch(bar, epoch, hist["loss"][-1], hist[EPOCH_SECONDS][-1])
            bar.update(1)
    for model, hist, bar in zip(models, hists, bars):
        bar.close()
        model._end_calibration(xs, hist)
    return models

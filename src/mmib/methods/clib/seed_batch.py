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

The calibration stage stacks the same way
(:mod:`mmib.methods.clib.seed_batch_calibration`); both share this module's
checks and step loop (:func:`stacked_epoch`). What is not stacked runs one
seed per process as before: the MINE critics (``warmup.preservation: mine``,
the paper's reading) and GPU runs, which :func:`supports` refuses.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import torch

from mmib.methods.clib import stacked, stacked_forward
from mmib.config import Params
from mmib.errors import InputError
from mmib.methods.base import _adam, _as_tensors, _batches
from mmib.methods.clib.estimator import CLIB, trace_warmup_epochs
from mmib.methods import table as method_table
from mmib.runtime import resolve_device, seed_everything
from mmib.training_record import EPOCH_SECONDS


def supports(params: Params) -> bool:
    """Whether the warm-up and calibration of ``params`` can be stacked: a method whose table row says
    so (CLIB), on the CPU, without the MINE critics."""
    return (method_table.spec(params.method).stacked_seeds and params.warmup.preservation != "mine"
            and resolve_device(params.device).type == "cpu")


def seed_groups(seeds: list[int], n_groups: int) -> list[list[int]]:
    """``seeds`` dealt round-robin into at most ``n_groups`` non-empty groups (one stacked model each)."""
    n = max(1, min(n_groups, len(seeds)))
    return [list(seeds[i::n]) for i in range(n)]


def new_models(params: Params, n_clusters: int, seeds: list[int], progress: bool = False) -> list[CLIB]:
    """One unfitted CLIB per seed, as the stages build them."""
    return [CLIB.from_params(params, n_clusters, seed=seed, progress=progress) for seed in seeds]


def check_stackable(models: list[CLIB]) -> None:
    """Refuse seeds that cannot train as one stacked model: models that differ in more than the seed
    (one recipe), the MINE critics, a device other than the CPU."""
    first = models[0]
    if any(m.get_params() | {"seed": 0} != first.get_params() | {"seed": 0} for m in models):
        raise InputError("stacked seeds need one recipe: the models differ in more than the seed", field="seed",
                         fix="stack only seeds of one params.yaml")
    if first.warmup.preservation == "mine":
        raise InputError("the MINE critics are not stacked", field="warmup.preservation",
                         fix="set seed_batching: false, or preservation: none | infonce")
    if resolve_device(first.device).type != "cpu":
        raise InputError("stacked seeds run on the CPU only", field="device", fix="set seed_batching: false")


class _Seeds:
    """The per-seed state of a stacked warm-up: models (built as their own ``fit_warmup`` builds them),
    batch-order and noise generators, the views as tensors."""

    def __init__(self, models: list[CLIB], views: list[np.ndarray]) -> None:
        self.models = models
        self.batch_gens, self.noise_gens = [], []
        for model in models:
            model._check_params()
            model.device_ = resolve_device(model.device)
            self.batch_gens.append(seed_everything(model.seed))
            self.xs = _as_tensors(views, model.device_)
            model._build(self.xs)
            self.noise_gens.append(global_noise())  # where this seed's fit_warmup draws its noise from
        self.nets = [model.net_ for model in models]


def global_noise() -> torch.Generator:
    """A generator at the global torch RNG's state: the noise stream a per-seed run draws from next."""
    noise = torch.Generator()
    noise.set_state(torch.get_rng_state())
    return noise


def _ib_names(net: torch.nn.Module) -> list[str]:
    """Names of the warm-up's parameters (``CLIBNet.ib_parameters``), in that order."""
    ids = {id(p) for p in net.ib_parameters()}
    return [name for name, p in net.named_parameters() if id(p) in ids]


StackedLoss = Callable[[torch.Tensor, list[torch.Tensor], list[torch.Tensor]], tuple[torch.Tensor, dict]]
"""``loss(idx, xb, eps)`` of one stacked step: the seeds' rows (R x B), their views and noise; R losses
and the R-vector parts."""


def stacked_epoch(stack: stacked.Stack, opt: torch.optim.Optimizer, xs: list[torch.Tensor],
                  batch_gens: list[torch.Generator], noise_gens: list[torch.Generator], batch_size: int,
                  latent_dim: int, grad_clip: float, loss: StackedLoss) -> tuple[dict[str, torch.Tensor], int]:
    """One epoch of every seed's steps at once: each seed's own shuffled batches (its generator) and
    noise; per step ``loss``, the backward of the seeds' sum (seeds share no parameter: each gradient
    is its own seed's), each seed's own gradient clip (``grad_clip`` > 0), one optimiser step over the
    stack. Returns the parts summed over the steps (R-vectors) and the number of steps."""
    batches = [_batches(xs[0].shape[0], batch_size, gen) for gen in batch_gens]
    leaves = list(stack.leaves.values())
    sums: dict[str, torch.Tensor] = defaultdict(float)
    for step in range(len(batches[0])):
        idx = torch.stack([b[step] for b in batches])  # R x B: each seed's own rows
        eps = stacked_forward.seed_noise(noise_gens, idx.shape[1], latent_dim, len(xs))
        value, parts = loss(idx, [x[idx] for x in xs], eps)
        opt.zero_grad(set_to_none=True)
        value.sum().backward()
        if grad_clip > 0:
            stacked.clip_grad_norms_(leaves, grad_clip)
        opt.step()
        for k, v in parts.items():
            sums[k] = sums[k] + v
    return sums, len(batches[0])


def record_epoch(models: list[CLIB], hists: list[dict], sums: dict[str, torch.Tensor], n_batches: int,
                 seconds: list[float], epoch: int, n_epochs: int, stage: str,
                 values: list[dict[str, float]] | None = None) -> None:
    """Each seed's :meth:`_record` of a stacked epoch (its slice of ``sums``, its ``values``, its epoch's
    ``seconds``) and its finiteness check; the networks must hold the epoch's weights."""
    for k, (model, hist) in enumerate(zip(models, hists)):
        model._record(hist, {key: v[k] for key, v in sums.items()}, n_batches, time.perf_counter() - seconds[k],
                      values[k] if values is not None else None)
        model._check_finite(hist, epoch, n_epochs, stage)


def fit_warmup_batched(models: list[CLIB], views: list[np.ndarray]) -> list[CLIB]:
    """Stage 1 of every model at once (each as its own ``fit_warmup`` would, see the module's docstring).

    The models must share every param but the seed (one recipe).
    """
    check_stackable(models)
    first = models[0]
    seeds = _Seeds(models, views)
    xs, nets = seeds.xs, seeds.nets
    stack = stacked.Stack(nets, _ib_names(nets[0]))
    opt = _adam(stack.leaves.values(), first.warmup.lr, first.warmup.weight_decay)
    n_epochs = first.warmup_epochs
    hists = [defaultdict(list) for _ in models]
    bars = [m._epoch_bar(n_epochs, "warmup") for m in models]

    def loss(idx: torch.Tensor, xb: list[torch.Tensor], eps: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        params = stack.params()
        return stacked_forward.ib_loss(first, params, stack.buffers, xb,
                                       stacked_forward.encode(first.net_, params, stack.buffers, xb, eps, fused=False))

    for epoch in range(n_epochs):
        t0 = time.perf_counter()
        sums, n_batches = stacked_epoch(stack, opt, xs, seeds.batch_gens, seeds.noise_gens,
                                        first.warmup.batch_size, first.model.latent_dim, first.warmup.grad_clip, loss)
        stack.unstack_into(nets)
        # every seed's epoch took the stacked epoch's wall time (not the other seeds' trace K-Means)
        record_epoch(models, hists, sums, n_batches, [time.perf_counter() - t0] * len(models), epoch, n_epochs,
                     "warmup")
        trace_warmup_epochs(models, xs, epoch)  # the torch backend: every seed's K-Means in one call
        for model, hist, bar in zip(models, hists, bars):
            model._show_epoch(bar, epoch, hist["loss"][-1], hist[EPOCH_SECONDS][-1])
            bar.update(1)
    for model, hist, bar in zip(models, hists, bars):
        bar.close()
        model.history_["warmup"] = dict(hist)
        model.stages_done_ = ["warmup"]
    return models

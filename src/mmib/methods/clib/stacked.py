"""R copies of a network as one set of stacked tensors (a leading seed dimension), and their forward pass.

Training R seeds of a small model one at a time on the CPU spends most of a
step on per-op overhead (dispatch, autograd, Python), not on arithmetic
(README "Speed"). Stacking the seeds' parameters turns each of a seed's ops
into one op over R seeds: ``Linear`` becomes one ``baddbmm``, ``BatchNorm1d``
one ``batch_norm`` over ``R x width`` channels, so the overhead is paid once
for all seeds while each seed's arithmetic stays its own (no value of one
seed reaches another: every op is per seed slice).

Only what the CLIB networks use is supported (``Linear``, ``BatchNorm1d``,
``ReLU`` inside ``nn.Sequential``); anything else is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


import torch
import torch.nn.functional as F
from torch import nn


PAD = 64
"""Each seed's slice of a stacked parameter starts at a multiple of this many elements (see :class:`Stack`)."""


class Stack:
    """R modules' parameters (those named) and their buffers, stacked along a new first dimension.

    Each parameter is held as one leaf of R x n_pad elements (seed k's n
    values, then zeros up to a multiple of :data:`PAD`), and the network reads
    a view of its first n columns. The padding keeps every seed's values at
    the same offsets within the vector lanes of the CPU kernels whatever R
    is: fused Adam updates a tensor's last ``numel % vector width`` elements
    in a scalar loop that rounds differently from its vector loop, so
    without it a seed's update would depend on how many seeds sit beside
    it. The padded elements have zero gradients and stay zero.
    """

    def __init__(self, modules: list[nn.Module], names: Iterable[str] | None = None) -> None:
        first = dict(modules[0].named_parameters())
        keep = list(first) if names is None else list(names)
        owners = {name.rsplit(".", 1)[0] for name in keep}
        # a Linear weight (out x in) is held transposed, in x out: the layout baddbmm reads and
        # writes its gradient in (a transposed stack costs a strided copy of every weight gradient)
        self.transposed = {name for name in keep if first[name].dim() == 2}
        self.shapes = {name: tuple(first[name].t().shape if name in self.transposed else first[name].shape)
                       for name in keep}
        self.leaves: dict[str, torch.Tensor] = {}
        for name in keep:
            rows = torch.stack([_layout(dict(m.named_parameters())[name].detach(), name in self.transposed)
                                for m in modules])
            n = math.prod(self.shapes[name])
            # most weights (512 x d) need no padding: they stay R x shape, read without a copy
            self.leaves[name] = (rows if n % PAD == 0 else F.pad(rows.reshape(len(modules), n), (0, -n % PAD))
                                 ).requires_grad_()
        self.buffers = {name: torch.stack([dict(m.named_buffers())[name].detach() for m in modules]).clone()
                        for name, _ in modules[0].named_buffers() if name.rsplit(".", 1)[0] in owners}

    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters as the network reads them, R x shape, 2-D weights R x in x out
        (views of the leaves, with autograd)."""
        return {name: leaf if leaf.shape[1:] == self.shapes[name] else
                leaf[:, :math.prod(self.shapes[name])].view(leaf.shape[0], *self.shapes[name])
                for name, leaf in self.leaves.items()}

    def unstack_into(self, modules: list[nn.Module]) -> None:
        """Copy seed k's slice of every parameter and buffer into ``modules[k]`` (in place, no autograd)."""
        with torch.no_grad():
            tensors = {**self.params(), **self.buffers}
            for k, module in enumerate(modules):
                own = {**dict(module.named_parameters()), **dict(module.named_buffers())}
                for name, stacked in tensors.items():
                    own[name].copy_(_layout(stacked[k], name in self.transposed))


def _layout(tensor: torch.Tensor, transposed: bool) -> torch.Tensor:
    return tensor.t().contiguous() if transposed else tensor


class _AddBias(torch.autograd.Function):
    """``y + bias[:, None, :]`` whose bias gradient is a per-seed ``bmm`` with ones.

    Autograd's own gradient of the broadcast (a sum over the batch rows of
    R x B x out) rounds differently for different R at some widths, and the
    bias of a Linear that feeds a BatchNorm has a gradient of pure rounding
    noise (the batch mean removes the bias), which Adam scales to steps of
    ``lr``: a seed would then depend on how many seeds sit beside it. A
    ``bmm`` computes each seed's slice alone, whatever R is.
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return y + bias.unsqueeze(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ones = grad.new_ones(grad.shape[0], 1, grad.shape[1])
        return grad, torch.bmm(ones, grad).squeeze(1)


def linear(x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-seed ``x[k] @ weight_t[k] + bias[k]``: ``x`` R x B x in, ``weight_t`` R x in x out (a Linear's
    weight transposed, as :class:`Stack` holds it), ``bias`` R x out."""
    return _AddBias.apply(torch.bmm(x, weight_t), bias)


def batch_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, running_mean: torch.Tensor,
               running_var: torch.Tensor, num_batches_tracked: torch.Tensor, layer: nn.BatchNorm1d) -> torch.Tensor:
    """``BatchNorm1d`` in training mode, per seed: batch statistics over seed k's rows only.

    ``x`` R x B x F is read as B rows of R x F channels, so one native
    ``batch_norm`` normalises every (seed, feature) channel over its own B
    rows and updates the stacked running statistics in place, as R separate
    layers would (same momentum and eps, unbiased running variance).
    """
    r, b, f = x.shape
    flat = x.transpose(0, 1).reshape(b, r * f)
    out = F.batch_norm(flat, running_mean.view(-1), running_var.view(-1), weight.reshape(-1), bias.reshape(-1),
                       training=True, momentum=layer.momentum, eps=layer.eps)
    num_batches_tracked.add_(1)
    return out.view(b, r, f).transpose(0, 1)


def sequential(seq: nn.Sequential, prefix: str, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
               x: torch.Tensor) -> torch.Tensor:
    """The stacked forward pass (training mode) of ``seq``, whose tensors are ``params[f"{prefix}.{i}.weight"]`` etc.

    ``seq`` (any one seed's module) gives only the layer types and settings.
    """
    for i, layer in enumerate(seq):
        name = f"{prefix}.{i}"
        if isinstance(layer, nn.Linear):
            x = linear(x, params[f"{name}.weight"], params[f"{name}.bias"])
        elif isinstance(layer, nn.BatchNorm1d):
            x = batch_norm(x, params[f"{name}.weight"], params[f"{name}.bias"], buffers[f"{name}.running_mean"],
                           buffers[f"{name}.running_var"], buffers[f"{name}.num_batches_tracked"], layer)
        elif isinstance(layer, nn.ReLU):
            x = torch.relu(x)
        else:
            raise TypeError(f"stacked layers support Linear, BatchNorm1d and ReLU, not {type(layer).__name__}")
    return x


def clip_grad_norms_(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for each seed separately: seed k's gradients are scaled by
    ``min(1, max_norm / (||g_k|| + 1e-6))``, ``||g_k||`` the 2-norm over all of seed k's gradients.

    Returns the R norms (before clipping).
    """
    grads = [p.grad for p in params if p.grad is not None]
    r = grads[0].shape[0]
    # R x P, each seed's norms in one contiguous row: a row's reduction is the same whatever R is
    # (a reduction over the strided first dimension of P x R rounds differently for R = 1 and R = 5)
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(r, -1), 2.0, dim=1) for g in grads], dim=1)
    total = torch.linalg.vector_norm(norms, 2.0, dim=1)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    if bool((coef < 1.0).any()):  # a product with 1.0 is exact: no pass over the gradients when none is clipped
        for g in grads:
            g.mul_(coef.view(r, *([1] * (g.dim() - 1))))
    return total

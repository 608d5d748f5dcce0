"""The gradient-norm clip of every training step (``mmib.methods.base._clip_grad_norm``) against
``torch.nn.utils.clip_grad_norm_``: same norm and same gradients, bit for bit, clipped or not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmib.methods.base import _clip_grad_norm


def _grads(scale: float) -> list[nn.Parameter]:
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(shape)) for shape in ((37, 5), (5,), (130,))]
    params.append(nn.Parameter(torch.randn(3)))  # no gradient: skipped, as torch skips it
    for p in params[:3]:
        p.grad = torch.randn_like(p) * scale
    return params


@pytest.mark.parametrize("scale", [1e-3, 0.05, 1.0, 10.0])
def test_clip_equals_torchs_clip_grad_norm(scale):
    ours, theirs = _grads(scale), _grads(scale)
    norm = _clip_grad_norm(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert torch.equal(norm, expected)
    for a, b in zip(ours, theirs):
        assert (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad)


def test_a_norm_below_the_limit_leaves_the_gradients_untouched_and_one_above_clips_to_it():
    small, big = _grads(1e-3), _grads(10.0)
    before = [p.grad.clone() for p in small[:3]]
    _clip_grad_norm(small, 1.0)
    assert all(torch.equal(p.grad, g) for p, g in zip(small[:3], before))
    _clip_grad_norm(big, 1.0)
    clipped = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in big[:3]]))
    assert clipped == pytest.approx(1.0, rel=1e-5)


def test_no_gradients_give_a_zero_norm():
    assert float(_clip_grad_norm([nn.Parameter(torch.ones(2))], 1.0)) == 0.0

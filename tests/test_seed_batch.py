"""Stacked seeds (``seed_batching``): the stacked layers and losses against their per-seed originals,
and the stacked warm-up against each seed's own ``fit_warmup`` (CPU, tiny models, seconds).

The claims: a seed's stacked warm-up is the same whatever other seeds sit beside it (bit for
bit), the same params give the same numbers twice, and it is the per-seed warm-up's algorithm
(same init, batch order, noise) up to float rounding; its states are ordinary CLIB states.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmib.methods.clib import losses, stacked, stacked_losses
from mmib.config import ModelParams
from mmib.errors import InputError
from mmib.methods.clib import defaults as shipped
from mmib.methods.clib.estimator import CLIB
from mmib.methods.clib.seed_batch import fit_warmup_batched, seed_groups, supports
from mmib.networks import mlp
from mmib.state_io import state_bytes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

C = 3


def make(seed: int, epochs: int = 2, **warmup) -> CLIB:
    """The shipped recipe (decoders, projection head, no MINE) at toy widths."""
    return CLIB(C, model=ModelParams(latent_dim=8, encoder_width=32, head_width=16, mine_width=16),
                warmup=shipped.WARMUP.model_copy(update={"epochs": epochs, "batch_size": 16, **warmup}),
                calibrate=shipped.CALIBRATE.model_copy(update={"epochs": 1, "cold_start_epochs": 1}),
                seed=seed, device="cpu", progress=False)


@pytest.fixture(scope="module")
def views(blobs) -> list[np.ndarray]:
    return blobs(20, C, dims=(5, 3, 7))[0]


# ---------------------------------------------------------------- stacked layers (pure)
def test_linear_is_each_seeds_linear():
    torch.manual_seed(0)
    layers = [nn.Linear(7, 5) for _ in range(3)]
    x = torch.randn(3, 4, 7)
    stack = stacked.Stack(layers)
    out = stacked.linear(x, stack.params()["weight"], stack.params()["bias"])
    grad = torch.randn_like(out)
    out.backward(grad)
    for k, layer in enumerate(layers):
        torch.testing.assert_close(out[k], layer(x[k]))  # same values; small shapes may round differently
        layer(x[k]).backward(grad[k])
        torch.testing.assert_close(stack.leaves["weight"].grad[k, :35].view(7, 5), layer.weight.grad.t())  # padded, in x out
        torch.testing.assert_close(stack.leaves["bias"].grad[k, :5], layer.bias.grad)


def test_a_seeds_gradients_do_not_depend_on_the_other_seeds():
    """Bit for bit, at a width where autograd's own bias gradient would not be (see stacked._AddBias)."""
    torch.manual_seed(0)
    seqs = [mlp(6, 16, 4) for _ in range(3)]
    x, grad = torch.randn(3, 16, 6), torch.randn(3, 16, 4)
    grads = []
    for group in (seqs, seqs[:1]):
        stack = stacked.Stack(group)
        _run_unprefixed(group, stack, x[:len(group)]).backward(grad[:len(group)])
        grads.append({name: leaf.grad[0] for name, leaf in stack.leaves.items()})
    for name in grads[0]:
        assert torch.equal(grads[0][name], grads[1][name]), name


def test_batch_norm_is_each_seeds_batch_norm_with_its_running_statistics():
    torch.manual_seed(0)
    seqs = [mlp(6, 8, 4) for _ in range(3)]
    for s in seqs:  # not the identity affine map, so a mix-up of seeds would show
        with torch.no_grad():
            s[1].weight.uniform_(0.5, 1.5)
            s[1].bias.uniform_(-1, 1)
    x = torch.randn(3, 10, 6)
    stack = stacked.Stack(seqs)
    out = _run_unprefixed(seqs, stack, x)
    for k, s in enumerate(seqs):
        s.train()
        torch.testing.assert_close(out[k], s(x[k]), rtol=1e-6, atol=1e-6)
    fresh = [mlp(6, 8, 4) for _ in range(3)]
    stack.unstack_into(fresh)
    for k, s in enumerate(seqs):
        for name, buf in s.named_buffers():
            torch.testing.assert_close(dict(fresh[k].named_buffers())[name], buf, rtol=1e-6, atol=1e-7)


def _run_unprefixed(seqs: list[nn.Sequential], stack: stacked.Stack, x: torch.Tensor) -> torch.Tensor:
    """``stacked.sequential`` on modules whose parameter names have no prefix (``0.weight``)."""
    wrapped = {f"m.{k}": v for k, v in stack.params().items()}
    bufs = {f"m.{k}": v for k, v in stack.buffers.items()}
    return stacked.sequential(seqs[0], "m", wrapped, bufs, x)


def test_sequential_refuses_an_unsupported_layer():
    with pytest.raises(TypeError, match="Tanh"):
        stacked.sequential(nn.Sequential(nn.Tanh()), "m", {}, {}, torch.zeros(1, 2, 3))


def test_stack_round_trip_and_zero_padding():
    torch.manual_seed(0)
    layers = [nn.Linear(3, 5) for _ in range(2)]  # 15 weights, 5 biases: both padded to 64
    stack = stacked.Stack(layers)
    assert all(leaf.shape == (2, stacked.PAD) for leaf in stack.leaves.values())
    assert float(stack.leaves["bias"].detach()[:, 5:].abs().sum()) == 0.0
    fresh = [nn.Linear(3, 5) for _ in range(2)]
    stack.unstack_into(fresh)
    for a, b in zip(layers, fresh):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_clip_grad_norms_clips_each_seed_by_its_own_norm():
    torch.manual_seed(0)
    grads = [torch.randn(3, 4, 5), torch.randn(3, 6)]
    grads[0][1] *= 100.0  # seed 1 alone is far above the limit
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    totals = stacked.clip_grad_norms_(params, 20.0)
    for k in range(3):
        ref = [torch.zeros_like(g[k], requires_grad=True) for g in grads]
        for p, g in zip(ref, grads):
            p.grad = g[k].clone()
        total = torch.nn.utils.clip_grad_norm_(ref, 20.0)
        torch.testing.assert_close(totals[k], total)
        for p, r in zip(params, ref):
            torch.testing.assert_close(p.grad[k], r.grad)
    assert float(totals[1]) > 20.0 > max(float(totals[0]), float(totals[2]))


# ---------------------------------------------------------------- stacked losses (pure)
def test_stacked_losses_are_each_seeds_losses():
    torch.manual_seed(0)
    a, b, lv = torch.randn(3, 8, 4), torch.randn(3, 8, 4), torch.randn(3, 8, 4)
    xs, xh = [torch.randn(3, 8, 5), torch.randn(3, 8, 2)], [torch.randn(3, 8, 5), torch.randn(3, 8, 2)]
    kl, nce = stacked_losses.gaussian_kl(a, lv), stacked_losses.info_nce(a, b, 0.5)
    rec = stacked_losses.reconstruction_loss(xs, xh)
    for k in range(3):
        torch.testing.assert_close(kl[k], losses.gaussian_kl(a[k], lv[k]))
        torch.testing.assert_close(nce[k], losses.info_nce(a[k], b[k], 0.5))
        torch.testing.assert_close(rec[k], losses.reconstruction_loss([x[k] for x in xs], [x[k] for x in xh]))


# ---------------------------------------------------------------- the stacked warm-up
def test_seed_groups_split_the_seeds_round_robin():
    assert seed_groups([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert seed_groups([7], 4) == [[7]]
    assert seed_groups([3, 1, 2], 3) == [[3], [1], [2]]


def test_a_seed_alone_equals_the_same_seed_among_five(views):
    alone = fit_warmup_batched([make(3)], views)[0]
    among = fit_warmup_batched([make(s) for s in range(5)], views)[3]
    assert state_bytes(alone.state()) == state_bytes(among.state())
    assert np.array_equal(alone.transform(views), among.transform(views))
    assert alone.history_["warmup"]["loss"] == among.history_["warmup"]["loss"]


def test_same_params_give_the_same_numbers_twice(views):
    first = fit_warmup_batched([make(0), make(1)], views)
    second = fit_warmup_batched([make(0), make(1)], views)
    for a, b in zip(first, second):
        assert state_bytes(a.state()) == state_bytes(b.state())
    assert state_bytes(first[0].state()) != state_bytes(first[1].state())


def test_stacked_warmup_is_the_per_seed_warmup_up_to_rounding(views):
    """Same init, batch order and noise as ``fit_warmup``; after one epoch only float rounding apart.

    Except where rounding is all there is: a Linear bias that feeds a BatchNorm has no effect on
    the output (the batch mean removes it), so its gradient is rounding noise, which Adam scales
    to steps of ``lr``; it (and the BatchNorm's running mean, which tracks it) differs by up to
    ``lr`` x steps in either path, and the eval-mode features by as much."""
    ref = make(2, epochs=1).fit_warmup(views)
    got = fit_warmup_batched([make(2, epochs=1)], views)[0]
    want, have = ref.net_.state_dict(), got.net_.state_dict()
    assert want.keys() == have.keys()
    noise_only = {f"{seq}.{i}.bias" for seq in _sequentials(ref.net_) for i in (0, 3)} | \
                 {f"{seq}.{i}.running_mean" for seq in _sequentials(ref.net_) for i in (1, 4)}
    for name in want.keys() - noise_only:
        torch.testing.assert_close(have[name], want[name], rtol=1e-4, atol=1e-5, msg=name)
    steps = 1 * (len(views[0]) // 16)
    for name in noise_only:
        assert float((have[name] - want[name]).abs().max()) <= 2 * 1e-3 * steps, name
    np.testing.assert_allclose(got.transform(views), ref.transform(views), atol=2e-3)
    np.testing.assert_allclose(got.history_["warmup"]["loss"], ref.history_["warmup"]["loss"], rtol=1e-5)
    assert got.history_["warmup"].keys() == ref.history_["warmup"].keys()
    assert got.state().keys() == ref.state().keys()
    assert got.trace_.to_state().keys() == ref.trace_.to_state().keys()


def _sequentials(net: nn.Module) -> list[str]:
    """Names of the encoders' and decoders' MLPs (``Linear - BN - ReLU`` twice, then a Linear)."""
    return [f"{kind}.{m}.net" for kind in ("encoders", "decoders") for m in range(len(getattr(net, kind)))]


def test_a_stacked_warmup_calibrates_as_a_per_seed_one(views):
    warm = fit_warmup_batched([make(0)], views)[0]
    restored = make(0).load_state(warm.state())
    assert np.array_equal(warm.fit_calibration(views).predict(views), restored.fit_calibration(views).predict(views))


def test_infonce_preservation_stacks_too(views):
    alone = fit_warmup_batched([make(1, preservation="infonce")], views)[0]
    among = fit_warmup_batched([make(s, preservation="infonce") for s in range(3)], views)[1]
    assert state_bytes(alone.state()) == state_bytes(among.state())
    assert "preservation" in alone.history_["warmup"]


def test_mine_and_mixed_recipes_are_refused(views):
    with pytest.raises(InputError, match="MINE"):
        fit_warmup_batched([make(0, preservation="mine")], views)
    with pytest.raises(InputError, match="one recipe"):
        fit_warmup_batched([make(0), make(1, epochs=3)], views)


def test_supports_only_clib_on_the_cpu_without_mine():
    from mmib.config import load_params

    params = load_params()
    assert supports(params.model_copy(update={"device": "cpu"}))
    mine = params.warmup.model_copy(update={"preservation": "mine"})
    assert not supports(params.model_copy(update={"device": "cpu", "warmup": mine}))
    assert not supports(params.model_copy(update={"device": "cpu", "method": "msdib"}))


def test_clip_grad_norms_leaves_gradients_below_the_limit_untouched():
    torch.manual_seed(0)
    p = torch.zeros(2, 3, requires_grad=True)
    p.grad = torch.randn(2, 3)
    before = p.grad.clone()
    stacked.clip_grad_norms_([p], 1e6)
    assert torch.equal(p.grad, before)

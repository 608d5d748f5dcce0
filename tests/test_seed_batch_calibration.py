"""Stacked seeds in the calibration stage (``seed_batching``): the stacked L_Cal terms against their
per-seed originals, and the stacked calibration against each seed's own ``fit_calibration`` (CPU, tiny
models, seconds).

The claims, as for the warm-up (tests/test_seed_batch.py): a seed's stacked calibration is the same
whatever other seeds sit beside it (bit for bit, from a stacked or a per-seed warm-up), the same
params give the same numbers twice, and it is the per-seed calibration's algorithm (same stage-2
seed, cold start, batch order, noise, targets) up to float rounding. The widths are multiples of 8
(README "Numbers"); the heads' output width C is not (3 here), and needs not be.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mmib.errors import InputError
from mmib.methods.clib import losses, stacked, stacked_forward, stacked_losses
from mmib.methods.clib.estimator import CLIB, PER_SAMPLE_TARGETS
from mmib.methods.clib.seed_batch import fit_warmup_batched
from mmib.methods.clib.seed_batch_calibration import fit_calibration_batched
from mmib.state_io import state_bytes
from test_seed_batch import C, make

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EPOCHS = 3


def calibrating(seed: int, **calibrate) -> CLIB:
    """:func:`test_seed_batch.make` with ``EPOCHS`` calibration epochs (and ``calibrate`` changes)."""
    model = make(seed)
    model.calibrate = model.calibrate.model_copy(update={"epochs": EPOCHS, **calibrate})
    return model


@pytest.fixture(scope="module")
def views(blobs) -> list[np.ndarray]:
    return blobs(20, C, dims=(5, 3, 7))[0]


@pytest.fixture(scope="module")
def warm_states(views) -> dict[str, list[dict]]:
    """Seeds 0-4 warmed up stacked (one model) and one by one (``fit_warmup``): their states."""
    return {"stacked": [m.state() for m in fit_warmup_batched([make(s) for s in range(5)], views)],
            "per-seed": [make(s).fit_warmup(views).state() for s in range(5)]}


def loaded(seeds, states: list[dict], **calibrate) -> list[CLIB]:
    return [calibrating(s, **calibrate).load_state(states[s]) for s in seeds]


# ---------------------------------------------------------------- stacked L_Cal terms (pure)
def test_stacked_calibration_terms_are_each_seeds_terms():
    torch.manual_seed(0)
    r, b, c, m = 3, 10, 4, 2
    target = torch.softmax(torch.randn(r, b, c), dim=-1)
    clu = torch.log_softmax(torch.randn(r, b, c), dim=-1)
    cal = [torch.log_softmax(torch.randn(r, b, c), dim=-1) for _ in range(m)]
    cal_p = [lp.exp() for lp in cal]
    pseudo = torch.randint(0, c, (r, b, m))
    selected = (torch.rand(r, b, m) > 0.5).float()
    selected[1] = 0.0  # seed 1: no pair screened in
    got = {"ce": stacked_losses.soft_cross_entropy(target, clu),
           "caliH": stacked_losses.calibration_head_loss(target, cal),
           "re": stacked_losses.entropy_regulariser(cal_p),
           "cluH": stacked_losses.cluster_head_loss(clu, pseudo, selected),
           "con": stacked_losses.consistency_loss(cal_p, clu)}
    for k in range(r):
        want = {"ce": losses.soft_cross_entropy(target[k], clu[k]),
                "caliH": losses.calibration_head_loss(target[k], [lp[k] for lp in cal]),
                "re": losses.entropy_regulariser([p[k] for p in cal_p]),
                "cluH": losses.cluster_head_loss(clu[k], pseudo[k], selected[k]),
                "con": losses.consistency_loss([p[k] for p in cal_p], clu[k])}
        for name in want:
            assert got[name].shape == (r,)
            torch.testing.assert_close(got[name][k], want[name], msg=name)
    assert float(got["cluH"][1]) == 0.0


def test_stacked_cluster_head_loss_of_a_seed_with_none_selected_has_zero_gradients():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 3, requires_grad=True)
    selected = torch.ones(2, 6, 2)
    selected[0] = 0.0
    loss = stacked_losses.cluster_head_loss(torch.log_softmax(logits, -1), torch.randint(0, 3, (2, 6, 2)), selected)
    loss.sum().backward()
    assert float(logits.grad[0].abs().max()) == 0.0 and float(logits.grad[1].abs().max()) > 0.0


def test_stacked_calibration_loss_is_each_seeds_calibration_loss(views, warm_states):
    """The whole stacked ``L_IB + alpha L_Cal`` (forward, every part) against each seed's own
    ``_calibration_loss`` on its batch, targets and noise (Section 3.2's switches all on)."""
    on = make(0).calibrate.losses.model_copy(update={"con": True})
    models = loaded(range(3), warm_states["stacked"], losses=on)
    xs = [torch.from_numpy(v) for v in views]
    targets = [model._epoch_targets(xs, 0) for model in models]
    idx = torch.stack([torch.randperm(len(xs[0]), generator=torch.Generator().manual_seed(k))[:16] for k in range(3)])
    tb = {k: torch.stack([t[k] for t in targets])[torch.arange(3).unsqueeze(1), idx] for k in PER_SAMPLE_TARGETS}
    gens = [torch.Generator().manual_seed(10 + k) for k in range(3)]
    eps = stacked_forward.seed_noise([copy.deepcopy(g) for g in gens], 16, make(0).model.latent_dim, len(xs))
    stack = stacked.Stack([copy.deepcopy(m.net_) for m in models])
    loss, parts = stacked_forward.calibration_loss(models[0], stack.params(), stack.buffers, [x[idx] for x in xs],
                                                   eps, tb)
    for k, model in enumerate(models):
        model.net_.train()
        torch.set_rng_state(gens[k].get_state())  # the per-seed encode draws its noise from the global RNG
        want, want_parts = model._calibration_loss([x[idx[k]] for x in xs], {n: t[k] for n, t in tb.items()})
        torch.testing.assert_close(loss[k], want, rtol=1e-5, atol=1e-6)
        assert parts.keys() == want_parts.keys()
        for name in want_parts:
            torch.testing.assert_close(parts[name][k], want_parts[name], rtol=1e-5, atol=1e-6, msg=name)
    assert {"caliH", "re", "cluH", "con", "balance", "cal", "ib", "loss"} <= parts.keys()


# ---------------------------------------------------------------- the stacked calibration
@pytest.mark.parametrize("warmup", ["stacked", "per-seed"])
def test_a_seed_alone_equals_the_same_seed_among_five(views, warm_states, warmup):
    states = warm_states[warmup]
    alone = fit_calibration_batched(loaded([3], states), views)[0]
    among = fit_calibration_batched(loaded(range(5), states), views)[3]
    assert state_bytes(alone.state()) == state_bytes(among.state())
    assert np.array_equal(alone.predict_proba(views), among.predict_proba(views))
    assert alone.history_["calibrate"]["loss"] == among.history_["calibrate"]["loss"]
    assert len(alone.history_["calibrate"]["loss"]) == EPOCHS


def test_same_params_give_the_same_numbers_twice(views, warm_states):
    states = warm_states["stacked"]
    first = fit_calibration_batched(loaded([0, 1], states), views)
    second = fit_calibration_batched(loaded([0, 1], states), views)
    for a, b in zip(first, second):
        assert state_bytes(a.state()) == state_bytes(b.state())
    assert state_bytes(first[0].state()) != state_bytes(first[1].state())


@pytest.mark.parametrize("warmup", ["stacked", "per-seed"])
def test_stacked_calibration_is_the_per_seed_calibration_up_to_rounding(views, warm_states, warmup):
    """Same stage-2 seed, cold start, batch order, noise and targets as ``fit_calibration``: the cold
    start (not stacked) is the same bit for bit, the first epoch's terms agree within 1e-4, the
    predictions all but agree; the state holds what the per-seed state holds."""
    ref = loaded([2], warm_states[warmup])[0].fit_calibration(views)
    got = fit_calibration_batched(loaded([2], warm_states[warmup]), views)[0]
    want, have = ref.history_["calibrate"], got.history_["calibrate"]
    assert list(have) == list(want)  # the same keys in the same order (cold start first)
    assert have["cold_start_loss"] == want["cold_start_loss"]
    for name in want:
        if name != "epoch_seconds":
            np.testing.assert_allclose(have[name][0], want[name][0], rtol=1e-4, atol=1e-6, err_msg=name)
    assert np.mean(got.predict(views) == ref.predict(views)) >= 0.95
    np.testing.assert_allclose(got.predict_proba(views), ref.predict_proba(views), atol=5e-3)
    assert got.state().keys() == ref.state().keys() and got.stages_done_ == ref.stages_done_
    assert got.trace_.to_state().keys() == ref.trace_.to_state().keys()
    assert len(got.trace_.to_state()["calibrate"]) == len(ref.trace_.to_state()["calibrate"]) == EPOCHS + 1


@pytest.mark.parametrize("recipe", [{}, {"cold_start_clusters": "kmeans", "pseudo_clusters": "kmeans"},
                                    {"cold_start_clusters": "spectral", "pseudo_clusters": "spectral"},
                                    {"pseudo_clusters": "kmeans", "kmeans_backend": "torch", "targets": "hungarian"}])
def test_neither_the_cold_start_nor_the_targets_draw_from_the_global_torch_rng(views, warm_states, recipe):
    """Why a seed's noise generator may start at the global RNG state after its cold start and stay
    apart from its targets: in ``fit_calibration`` only the training steps' noise draws from it."""
    model = loaded([1], warm_states["stacked"], **recipe)[0]
    gen, xs = model._begin_stage2(views)
    seeded = torch.get_rng_state()
    model._cold_start(xs, gen, {})
    model._epoch_targets(xs, 0)
    model._epoch_targets(xs, 1)
    assert torch.equal(torch.get_rng_state(), seeded)


def test_every_switch_of_stage_two_stacks(views, warm_states):
    """L_con, K-Means pseudo-clusters, calibration heads backpropagating, L_IB off: still bit for bit
    alone and among others."""
    recipe = dict(losses=make(0).calibrate.losses.model_copy(update={"con": True}), pseudo_clusters="kmeans",
                  cal_heads_backprop=True, keep_ib=False, con_reduction="sum")
    states = warm_states["stacked"]
    alone = fit_calibration_batched(loaded([4], states, **recipe), views)[0]
    among = fit_calibration_batched(loaded([2, 4], states, **recipe), views)[1]
    assert state_bytes(alone.state()) == state_bytes(among.state())
    assert "con" in alone.history_["calibrate"] and "kmeans_inertia" in alone.history_["calibrate"]


def test_refuses_mine_mixed_recipes_and_models_without_a_warmup(views, warm_states):
    states = warm_states["stacked"]
    with pytest.raises(InputError, match="MINE"):
        fit_calibration_batched([make(0, preservation="mine")], views)
    mixed = loaded([0, 1], states)
    mixed[1].alpha = 0.25
    with pytest.raises(InputError, match="one recipe"):
        fit_calibration_batched(mixed, views)
    fresh = loaded([0], states) + [calibrating(1)]
    with pytest.raises(InputError, match="warmed-up"):
        fit_calibration_batched(fresh, views)
    assert fresh[0].history_.keys() == {"warmup"}  # refused before any seed started its calibration

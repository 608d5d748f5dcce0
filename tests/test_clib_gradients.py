"""Where the CLIB calibration gradients go (paper Section 3.2; METHOD.md section 1, stage 2).

- L_caliH and L_re train the calibration heads only: the heads read
  ``h^m.detach()`` (stop-gradient, Section 3.2.1 Note) unless
  ``calibrate.cal_heads_backprop`` (Table 2 row II) is on.
- L_cluH reaches the cluster head, the fusion logits and the encoders.
- L_con (KL with the calibration predictions detached) reaches the cluster
  head and the encoders, never the calibration heads.
- The cold start fits the heads with the encoders frozen: encoder weights and
  batch-norm buffers are untouched.

The IB loss is always part of ``_calibration_loss``; to isolate L_Cal the
tests either compare two calls with identical randomness (term on vs off) or
wrap ``_ib_loss`` so that its loss is multiplied by 0 (the real code still
runs, its gradient contribution is exactly zero).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mmib.config import CalibrateParams, LossSwitches, LossWeights, ModelParams, WarmupParams
from mmib.methods.clib.estimator import CLIB
from switches import PAPER_CALIBRATE, PAPER_WARMUP

N, C = 40, 3
DIMS = (5, 3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_clib(*, cal_heads_backprop: bool = False, switches: dict | None = None,
              cold_start_epochs: int = 2, warmup_epochs: int = 1, con_reduction: str = "sum") -> CLIB:
    sw = {"caliH": False, "re": False, "cluH": False, "con": False, **(switches or {})}
    return CLIB(
        n_clusters=C, alpha=1.0, beta=0.0,
        model=ModelParams(latent_dim=4, encoder_width=8, head_width=8, mine_width=8),
        warmup=WarmupParams(epochs=warmup_epochs, batch_size=16, lr=1e-2, weight_decay=0.0, kl_weight=0.0,
                            temperature=0.5, mine_ema_rate=0.01, mine_clamp=10.0, grad_clip=5.0,
                            **PAPER_WARMUP),
        calibrate=CalibrateParams(epochs=1, lr=1e-2, screening="s2", cold_start_epochs=cold_start_epochs,
                                  kmeans_n_init=1, kmeans_warm_start=True, kmeans_backend="auto",
                                  losses=LossSwitches(**sw),
                                  weights=LossWeights(caliH=1.0, re=1.0, cluH=1.0, con=1.0), con_reduction=con_reduction,
                                  warmup_free=False, cal_heads_backprop=cal_heads_backprop, **PAPER_CALIBRATE),
        seed=0, device="cpu", progress=False)


def views(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(N, d, generator=g) for d in DIMS]


def targets() -> dict[str, torch.Tensor]:
    """Hand-made per-sample targets: a soft target row, every (i, m) pair selected, labels i mod C."""
    target = torch.tensor([0.6, 0.3, 0.1]).repeat(N, 1)
    pseudo = torch.stack([torch.arange(N) % C, (torch.arange(N) + 1) % C], dim=1)
    selected = torch.ones(N, len(DIMS))
    return {"target": target, "selected": selected, "pseudo": pseudo}


def built(**kw) -> tuple[CLIB, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = make_clib(**kw)
    model.device_ = torch.device("cpu")
    xs = views()
    model._build(xs)
    model.net_.train()
    return model, xs


def zero_ib(model: CLIB) -> None:
    """Run the real L_IB but multiply its loss by 0: only L_Cal's gradient remains."""
    real = model._ib_loss

    def wrapped(xb, enc):
        loss, parts = real(xb, enc)
        return loss * 0.0, parts

    model._ib_loss = wrapped


def grad_norms(loss: torch.Tensor, named: dict[str, torch.nn.Module]) -> dict[str, float]:
    """Sum of |grad| over each module's parameters (an unused parameter counts as 0)."""
    out = {}
    mods = list(named.items())
    params = [p for _, m in mods for p in m.parameters()]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    i = 0
    for name, m in mods:
        k = len(list(m.parameters()))
        out[name] = float(sum(0.0 if g is None else g.abs().sum() for g in grads[i:i + k]))
        i += k
    return out


def modules(model: CLIB) -> dict[str, torch.nn.Module]:
    net = model.net_
    return {"enc0": net.encoders[0], "enc1": net.encoders[1], "fusion": net.fusion,
            "critics": net.critics, "cluster_head": net.cluster_head,
            "cal0": net.cal_heads[0], "cal1": net.cal_heads[1]}


def cal_only_grads(**kw) -> dict[str, float]:
    model, xs = built(**kw)
    zero_ib(model)
    loss, _ = model._calibration_loss(xs, targets())
    return grad_norms(loss, modules(model))


# ---------------------------------------------------------------- L_caliH, L_re


@pytest.mark.parametrize("term", ["caliH", "re"])
def test_calibration_head_terms_stop_at_the_heads(term):
    g = cal_only_grads(switches={term: True})
    assert g["enc0"] == 0.0 and g["enc1"] == 0.0
    assert g["fusion"] == 0.0 and g["critics"] == 0.0 and g["cluster_head"] == 0.0
    assert g["cal0"] > 0.0 and g["cal1"] > 0.0


@pytest.mark.parametrize("term", ["caliH", "re"])
def test_calibration_head_terms_reach_encoders_with_backprop_switch(term):
    # Table 2 row II: the heads read h^m itself, so encoder m gets a gradient;
    # they never read h^f, so the fusion logits still get none
    g = cal_only_grads(switches={term: True}, cal_heads_backprop=True)
    assert g["enc0"] > 0.0 and g["enc1"] > 0.0
    assert g["cal0"] > 0.0 and g["cal1"] > 0.0
    assert g["fusion"] == 0.0 and g["cluster_head"] == 0.0


def test_calibration_head_terms_leave_the_full_encoder_gradient_unchanged():
    # Without wrapping L_IB: the full loss with L_caliH + L_re on and off, with identical
    # randomness, gives bit-identical encoder / fusion / critic gradients.
    def encoder_grads(switches):
        model, xs = built(switches=switches)
        torch.manual_seed(123)
        loss, parts = model._calibration_loss(xs, targets())
        params = [*model.net_.encoders.parameters(), *model.net_.fusion.parameters(),
                  *model.net_.critics.parameters()]
        return [g.clone() for g in torch.autograd.grad(loss, params)], parts

    on, parts_on = encoder_grads({"caliH": True, "re": True})
    off, parts_off = encoder_grads({})
    assert all(torch.equal(a, b) for a, b in zip(on, off))
    assert set(parts_on) >= {"caliH", "re", "cal"} and "caliH" not in parts_off
    # loss = ib + alpha * cal with alpha = 1 and unit weights: cal = caliH + re
    assert float(parts_on["cal"]) == pytest.approx(float(parts_on["caliH"] + parts_on["re"]), rel=1e-6)
    assert float(parts_on["loss"]) == pytest.approx(float(parts_on["ib"] + parts_on["cal"]), rel=1e-6)


# ---------------------------------------------------------------- L_cluH, L_con


def test_cluster_head_loss_reaches_encoders_fusion_and_cluster_head():
    g = cal_only_grads(switches={"cluH": True})
    for name in ("enc0", "enc1", "fusion", "cluster_head"):
        assert g[name] > 0.0, name
    assert g["cal0"] == 0.0 and g["cal1"] == 0.0


def test_cluster_head_loss_is_zero_without_selected_pairs():
    model, xs = built(switches={"cluH": True})
    zero_ib(model)
    tb = targets()
    tb["selected"] = torch.zeros_like(tb["selected"])
    loss, parts = model._calibration_loss(xs, tb)
    assert float(parts["cluH"]) == 0.0
    assert all(v == 0.0 for v in grad_norms(loss, modules(model)).values())


@pytest.mark.parametrize("backprop", [False, True])
def test_consistency_loss_reaches_cluster_head_and_encoders_not_cal_heads(backprop):
    g = cal_only_grads(switches={"con": True}, cal_heads_backprop=backprop)
    for name in ("enc0", "enc1", "fusion", "cluster_head"):
        assert g[name] > 0.0, name
    assert g["cal0"] == 0.0 and g["cal1"] == 0.0


def test_term_values_match_the_loss_functions():
    # the 'parts' reported by _calibration_loss are the losses.* functions of the net outputs
    from mmib.methods.clib import losses
    import torch.nn.functional as F

    model, xs = built(switches={"caliH": True, "re": True, "cluH": True, "con": True})
    model.net_.eval()  # running BN stats: the forward depends on the batch only through eps
    tb = targets()
    torch.manual_seed(7)
    _, parts = model._calibration_loss(xs, tb)
    # _calibration_loss samples h = mu + sigma * eps first: redo the same draw by hand
    torch.manual_seed(7)
    net = model.net_
    enc = net.encode(xs, sample=True)
    clu = F.log_softmax(net.cluster_head(enc.fused), dim=1)
    cal = [F.log_softmax(hd(h), dim=1) for hd, h in zip(net.cal_heads, enc.hs)]
    expect = {
        "caliH": losses.calibration_head_loss(tb["target"], cal),
        "re": losses.entropy_regulariser([c.exp() for c in cal]),
        "cluH": losses.cluster_head_loss(clu, tb["pseudo"], tb["selected"]),
        "con": losses.consistency_loss([c.exp() for c in cal], clu),
    }
    for k, v in expect.items():
        assert float(parts[k]) == pytest.approx(float(v.detach()), rel=1e-5), k
    assert float(parts["cal"]) == pytest.approx(float(sum(expect.values()).detach()), rel=1e-5)


def test_con_reduction_mean_divides_eq11_by_the_number_of_views():
    # con_reduction: mean -> L_con / M; with M = 2 views the reported term halves exactly
    values = {}
    for reduction in ("sum", "mean"):
        model, xs = built(switches={"con": True}, con_reduction=reduction)
        model.net_.eval()
        torch.manual_seed(7)
        _, parts = model._calibration_loss(xs, targets())
        values[reduction] = float(parts["con"])
    assert len(xs) == 2
    assert values["mean"] == pytest.approx(values["sum"] / 2, rel=1e-6)


@pytest.mark.parametrize("term", ["caliH", "re", "cluH", "con"])
def test_a_switched_off_term_is_absent_and_a_weight_scales_its_term(term):
    # Table 2 switches: only the switched-on terms enter L_Cal; calibrate.weights.<term> multiplies it
    def cal_of(switches, weight):
        model, xs = built(switches=switches)
        model.calibrate = model.calibrate.model_copy(
            update={"weights": model.calibrate.weights.model_copy(update={term: weight})})
        model.net_.eval()
        torch.manual_seed(7)
        _, parts = model._calibration_loss(xs, targets())
        return parts

    others = [t for t in ("caliH", "re", "cluH", "con") if t != term]
    off = cal_of({t: True for t in others}, 1.0)
    assert term not in off
    assert float(off["cal"]) == pytest.approx(sum(float(off[t]) for t in others), rel=1e-5)
    on = cal_of({t: True for t in others + [term]}, 3.0)
    assert float(on["cal"]) == pytest.approx(float(off["cal"]) + 3.0 * float(on[term]), rel=1e-5)


@pytest.mark.parametrize("rule", ["s1", "s2", "s3", "maxprob"])
def test_screening_switch_selects_k_equal_to_the_floor_of_the_rules_score_sum(rule):
    # Table 3: calibrate.screening decides K_m and which (i, m) pairs supervise the cluster head
    from mmib.methods.clib import losses

    model, xs = built(switches={"cluH": True})
    model.calibrate = model.calibrate.model_copy(update={"screening": rule})
    tgt = model._epoch_targets(xs, epoch=0)
    _, _, p_cal = model._eval_outputs(xs)
    for m, p in enumerate(p_cal):
        scores = losses.screening_scores(p, rule)
        k = int(torch.floor(scores.sum() + 1e-6))
        assert tgt["k_selected"][m] == k
        chosen = tgt["selected"][:, m].bool()
        assert int(chosen.sum()) == k
        if 0 < k < N:  # the selected pairs are the k best-scored samples
            assert float(scores[chosen].min()) >= float(scores[~chosen].max()) - 1e-7


# ---------------------------------------------------------------- cold start


def test_cold_start_freezes_encoders_and_trains_heads():
    model = make_clib(cold_start_epochs=2, warmup_epochs=1)
    np_views = [x.numpy() for x in views()]
    model.fit_warmup(np_views)
    net = model.net_
    frozen = {name: copy.deepcopy(m.state_dict()) for name, m in
              [("encoders", net.encoders), ("fusion", net.fusion), ("critics", net.critics)]}
    heads_before = copy.deepcopy(net.cluster_head.state_dict()), copy.deepcopy(net.cal_heads.state_dict())
    # encoder state includes the batch-norm running stats and counters
    assert any("running_mean" in k for k in frozen["encoders"])
    assert any("num_batches_tracked" in k for k in frozen["encoders"])

    hist: dict = {}
    xs = [torch.from_numpy(v) for v in np_views]
    model._cold_start(xs, torch.Generator().manual_seed(0), hist)

    for name, mod in [("encoders", net.encoders), ("fusion", net.fusion), ("critics", net.critics)]:
        after = mod.state_dict()
        for k, v in frozen[name].items():
            assert torch.equal(after[k], v), f"{name}.{k} changed during the cold start"
    clu_after, cal_after = net.cluster_head.state_dict(), net.cal_heads.state_dict()
    assert any(not torch.equal(clu_after[k], v) for k, v in heads_before[0].items())
    for m in range(len(DIMS)):
        keys = [k for k in heads_before[1] if k.startswith(f"{m}.") and "weight" in k]
        assert any(not torch.equal(cal_after[k], heads_before[1][k]) for k in keys), m
    assert len(hist["cold_start_loss"]) == 2
    assert all(np.isfinite(hist["cold_start_loss"]))


def test_cold_start_switched_off_changes_nothing():
    model = make_clib(cold_start_epochs=0, warmup_epochs=1)
    np_views = [x.numpy() for x in views()]
    model.fit_warmup(np_views)
    before = copy.deepcopy(model.net_.state_dict())
    hist: dict = {}
    model._cold_start([torch.from_numpy(v) for v in np_views], torch.Generator().manual_seed(0), hist)
    after = model.net_.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert hist["cold_start_loss"] == []


# ---------------------------------------------------------------- MINE critic plumbing


def test_mine_critic_joint_and_marginal_equals_forward():
    # the shared-projection fast path computes T([a_i, b_i]) and T([a_i, b_perm(i)])
    model, xs = built()
    critic = model.net_.critics[0]
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    joint, marg = critic.joint_and_marginal(a, b, perm)
    torch.testing.assert_close(joint, critic(a, b))
    torch.testing.assert_close(marg, critic(a, b[perm]))

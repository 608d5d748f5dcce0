"""CLIB loss terms (``mmib.methods.clib.losses``) against values computed by hand.

Equation numbers refer to the CLIB paper (``../shared/papers/CLIB-ICLR2026-paper.md``);
the open choices follow ``../shared/docs/METHOD.md`` section 1. Every expected
value below is worked out in a comment; tensors are float64 so the tolerances
can be tight.
"""

from __future__ import annotations

import math

import pytest
import torch

from mmib.methods.clib import losses

D = torch.float64
LN2, LN3 = math.log(2.0), math.log(3.0)


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


def approx(x: float, rel: float = 1e-12, abs: float = 1e-12):
    return pytest.approx(x, rel=rel, abs=abs)


# ---------------------------------------------------------------- gaussian_kl (Eq. 3 compression)


def test_gaussian_kl_hand_value():
    # KL(N(mu, e^lv) || N(0, 1)) per dim = 0.5 * (mu^2 + e^lv - lv - 1)
    # dim 0: mu=1, lv=0     -> 0.5 * (1 + 1 - 0 - 1)       = 0.5
    # dim 1: mu=0, lv=ln 2  -> 0.5 * (0 + 2 - ln2 - 1)     = 0.5 - 0.5 ln2
    # summed over dims: 1 - 0.5 ln2 = 0.65342641...
    kl = losses.gaussian_kl(t([[1.0, 0.0]]), t([[0.0, LN2]]))
    assert kl.item() == approx(1.0 - 0.5 * LN2)


def test_gaussian_kl_is_zero_at_the_prior_and_averages_over_the_batch():
    assert losses.gaussian_kl(torch.zeros(3, 4, dtype=D), torch.zeros(3, 4, dtype=D)).item() == 0.0
    # row 0 as above (1 - 0.5 ln2), row 1 at the prior (0): batch mean = (1 - 0.5 ln2) / 2
    kl = losses.gaussian_kl(t([[1.0, 0.0], [0.0, 0.0]]), t([[0.0, LN2], [0.0, 0.0]]))
    assert kl.item() == approx((1.0 - 0.5 * LN2) / 2)
    # mu = 2 in one dim, lv = 0: 0.5 * 4 = 2 ; sums over dims (2 dims of mu=2 -> 4)
    assert losses.gaussian_kl(t([[2.0, 2.0]]), t([[0.0, 0.0]])).item() == approx(4.0)


# ---------------------------------------------------------------- info_nce (Eq. 3 alignment)


def test_info_nce_orthogonal_pairs():
    # normalised a = b = I (2x2): cosine matrix = I; temperature 0.5 -> logits [[2, 0], [0, 2]]
    # each row: CE = -2 + log(e^2 + e^0) = log(1 + e^-2); same for the transpose
    loss = losses.info_nce(t([[3.0, 0.0], [0.0, 0.5]]), t([[1.0, 0.0], [0.0, 7.0]]), temperature=0.5)
    assert loss.item() == approx(math.log1p(math.exp(-2.0)))


def test_info_nce_non_symmetric_hand_case():
    # a = [[1,0],[1,1]] -> normalised [[1,0],[s,s]] with s = 1/sqrt 2 ; b = [[2,0],[0,3]] -> I
    # temperature 1: logits = a b^T = [[1, 0], [s, s]]
    #   a->b rows: r0 (target 0): -1 + log(e + 1)   = log(1 + e^-1)
    #              r1 (target 1): -s + log(2 e^s)   = log 2
    #   b->a rows (logits^T = [[1, s], [0, s]]):
    #              r0 (target 0): -1 + log(e + e^s) = log(1 + e^(s-1))
    #              r1 (target 1): -s + log(1 + e^s) = log(1 + e^-s)
    # loss = 0.5 * (mean(a->b) + mean(b->a))
    s = 1.0 / math.sqrt(2.0)
    ab = 0.5 * (math.log1p(math.exp(-1.0)) + LN2)
    ba = 0.5 * (math.log1p(math.exp(s - 1.0)) + math.log1p(math.exp(-s)))
    loss = losses.info_nce(t([[1.0, 0.0], [1.0, 1.0]]), t([[2.0, 0.0], [0.0, 3.0]]), temperature=1.0)
    assert loss.item() == approx(0.5 * (ab + ba))


@pytest.mark.parametrize("batch", [2, 4, 7])
def test_info_nce_chance_level_is_log_batch(batch):
    # identical features: every logit equal, so each CE = log(B) (the MI bound log B - loss = 0)
    z = torch.ones(batch, 3, dtype=D)
    assert losses.info_nce(z, 2.0 * z, temperature=0.5).item() == approx(math.log(batch))


# ---------------------------------------------------------------- mine_dv (Eq. 4)


def test_mine_dv_first_call_estimate_and_ema():
    # t_joint = [1, 2, 3] -> mean 2 ; t_marg = [0, ln 3] -> mean e^T = (1 + 3)/2 = 2
    # estimate = 2 - ln 2 ; first call: log_ema = ln 2 ; surrogate = 2 - exp(ln2 - ln2) = 1
    est, sur, log_ema = losses.mine_dv(t([1.0, 2.0, 3.0]), t([0.0, LN3]), None, ema_rate=0.01)
    assert est.item() == approx(2.0 - LN2)
    assert log_ema.item() == approx(LN2)
    assert sur.item() == approx(1.0)
    assert not log_ema.requires_grad


def test_mine_dv_ema_update_in_log_space():
    # old ema: E = 2 (log 2); batch: t_marg = [ln 4, ln 4] -> mean e^T = 4; rate r = 0.25
    # new = logaddexp(log(0.75) + log 2, log(0.25) + log 4) = log(1.5 + 1.0) = log 2.5
    _, _, log_ema = losses.mine_dv(t([0.0]), t([math.log(4.0)] * 2), t(LN2), ema_rate=0.25)
    assert log_ema.item() == approx(math.log(2.5))
    # the surrogate uses the updated average: 0 - exp(log 4 - log 2.5) = -1.6
    _, sur, _ = losses.mine_dv(t([0.0]), t([math.log(4.0)] * 2), t(LN2), ema_rate=0.25)
    assert sur.item() == approx(-1.6)


def test_mine_dv_bias_corrected_gradient():
    # old ema: E = 4 (log 4), r = 0.5; t_marg = [0, ln 3] -> batch mean e^T = 2 (n = 2)
    # new ema = 0.5 * 4 + 0.5 * 2 = 3
    # surrogate = mean(t_j) - exp(lme - log ema)  with ema detached
    # d sur / d t_marg_k = -e^{t_k} / (n * ema) = -[1, 3] / (2 * 3) = [-1/6, -1/2]
    # d sur / d t_joint_k = 1 / 3 (three joint samples)
    # the plain DV estimate has d est / d t_marg = -softmax(t_marg) = -[1/4, 3/4]
    tj = t([1.0, 2.0, 3.0]).requires_grad_()
    tm = t([0.0, LN3]).requires_grad_()
    est, sur, log_ema = losses.mine_dv(tj, tm, t(math.log(4.0)), ema_rate=0.5)
    assert log_ema.item() == approx(LN3)
    g_j, g_m = torch.autograd.grad(sur, [tj, tm], retain_graph=True)
    torch.testing.assert_close(g_j, t([1 / 3, 1 / 3, 1 / 3]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_m, t([-1 / 6, -1 / 2]), rtol=1e-12, atol=1e-12)
    (g_est,) = torch.autograd.grad(est, [tm])
    torch.testing.assert_close(g_est, t([-0.25, -0.75]), rtol=1e-12, atol=1e-12)


def test_mine_dv_large_critic_outputs_do_not_overflow():
    # float32 exp(1000) = inf; the log-space average keeps everything finite
    tm = torch.full((4,), 1000.0)
    est, sur, log_ema = losses.mine_dv(torch.full((4,), 1000.0), tm, torch.tensor(1000.0), 0.01)
    assert est.item() == pytest.approx(0.0, abs=1e-3)
    assert log_ema.item() == pytest.approx(1000.0)
    assert math.isfinite(sur.item())


# ---------------------------------------------------------------- L_caliH (Eq. 7)


def test_soft_cross_entropy_hand_value():
    # row 0: target [1, 0],     p [1/2, 1/2]  -> -ln(1/2)                       = ln 2
    # row 1: target [1/2, 1/2], p [1/4, 3/4]  -> -(0.5 ln 1/4 + 0.5 ln 3/4)    = 0.5 (ln 4 + ln 4/3)
    # batch mean
    target = t([[1.0, 0.0], [0.5, 0.5]])
    logp = t([[0.5, 0.5], [0.25, 0.75]]).log()
    expected = 0.5 * (LN2 + 0.5 * (math.log(4.0) + math.log(4.0 / 3.0)))
    assert losses.soft_cross_entropy(target, logp).item() == approx(expected)


def test_calibration_head_loss_sums_over_views():
    # view 0 as in the test above ; view 1: p = target exactly ->
    # row 0: -(1 ln 1) = 0 (the 0 * log p term with p = 1e-300 is 0); row 1: ln 2 ; mean ln2/2
    target = t([[1.0, 0.0], [0.5, 0.5]])
    lp0 = t([[0.5, 0.5], [0.25, 0.75]]).log()
    lp1 = t([[1.0, 1e-300], [0.5, 0.5]]).log()
    v0 = 0.5 * (LN2 + 0.5 * (math.log(4.0) + math.log(4.0 / 3.0)))
    v1 = 0.5 * LN2
    assert losses.calibration_head_loss(target, [lp0, lp1]).item() == approx(v0 + v1)


# ---------------------------------------------------------------- L_re (Eq. 8)


def test_entropy_regulariser_uniform_batch_mean_is_minus_log_c():
    # p_bar = (1/3, 1/3, 1/3) -> sum p log p = log(1/3) = -ln 3
    p = torch.eye(3, dtype=D)
    assert losses.entropy_regulariser([p]).item() == approx(-LN3)


def test_entropy_regulariser_collapsed_is_zero_and_mean_over_views():
    # collapsed view: p_bar = (1, 0, 0) -> 1 ln 1 + 2 * (eps ln eps), eps = 1e-8 clamp -> ~ -3.7e-7
    collapsed = t([[1.0, 0.0, 0.0]] * 4).requires_grad_()
    val = losses.entropy_regulariser([collapsed])
    assert val.item() == pytest.approx(0.0, abs=1e-6)
    assert val.item() == approx(2 * 1e-8 * math.log(1e-8))
    (g,) = torch.autograd.grad(val, [collapsed])
    assert torch.isfinite(g).all()
    # two views: (1/M) sum_m -> (-ln 3 + ~0) / 2
    both = losses.entropy_regulariser([torch.eye(3, dtype=D), collapsed.detach()])
    assert both.item() == pytest.approx(-LN3 / 2, abs=1e-6)


# ---------------------------------------------------------------- L_cluH (Eq. 10)


def test_cluster_head_loss_averages_over_selected_pairs_only():
    # p_clu rows: [1/2, 1/2], [1/4, 3/4], [1/8, 7/8]   (B = 3, C = 2)
    # pseudo (B x M=2): [[0, 1], [1, 0], [0, 0]] ; selected: [[1, 1], [1, 0], [0, 0]]
    # selected pairs: (0,0): -ln 1/2, (0,1): -ln 1/2, (1,0): -ln 3/4   -> |S| = 3
    # loss = (2 ln 2 + ln 4/3) / 3 ; the unselected (1,1) -ln 1/4 and (2,*) -ln 1/8 do not count
    logp = t([[0.5, 0.5], [0.25, 0.75], [0.125, 0.875]]).log()
    pseudo = torch.tensor([[0, 1], [1, 0], [0, 0]])
    selected = t([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    expected = (2 * LN2 + math.log(4.0 / 3.0)) / 3
    assert losses.cluster_head_loss(logp, pseudo, selected).item() == approx(expected)
    # a boolean mask gives the same value
    assert losses.cluster_head_loss(logp, pseudo, selected.bool()).item() == approx(expected)


def test_cluster_head_loss_zero_with_graph_when_nothing_selected():
    logp = t([[0.5, 0.5], [0.25, 0.75]]).log().requires_grad_()
    loss = losses.cluster_head_loss(logp, torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2, dtype=D))
    assert loss.item() == 0.0
    assert loss.requires_grad
    (g,) = torch.autograd.grad(loss, [logp])
    assert torch.equal(g, torch.zeros_like(logp))


# ---------------------------------------------------------------- L_con (Eq. 11)


def test_consistency_loss_hand_value():
    # KL([1/2, 1/2] || [1/4, 3/4]) = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln 2 + 0.5 ln 2/3
    #                              = 0.5 ln(4/3)
    # view 1 = [1, 0] vs [1/4, 3/4]: 1 ln(1 / 0.25) + 0 = ln 4   (0 log 0 -> 0 via clamp)
    # summed over views, batch of one row
    clu = t([[0.25, 0.75]]).log()
    val = losses.consistency_loss([t([[0.5, 0.5]]), t([[1.0, 0.0]])], clu)
    assert val.item() == approx(0.5 * math.log(4.0 / 3.0) + math.log(4.0))


def test_consistency_loss_zero_when_heads_agree():
    p = t([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    assert losses.consistency_loss([p, p], p.log()).item() == approx(0.0, abs=1e-15)


def test_consistency_loss_gradient_reaches_only_the_cluster_head():
    # d/d logp_clu [sum_m mean_i sum_k p_mik (log p_mik - logp_clu_ik)] = -sum_m p_mik / B
    # B = 2: -(p0 + p1) / 2
    p0 = t([[0.5, 0.5], [0.9, 0.1]]).requires_grad_()
    p1 = t([[0.2, 0.8], [0.4, 0.6]]).requires_grad_()
    clu = t([[0.3, 0.7], [0.6, 0.4]]).log().requires_grad_()
    val = losses.consistency_loss([p0, p1], clu)
    g_clu, g_p0, g_p1 = torch.autograd.grad(val, [clu, p0, p1], allow_unused=True)
    assert g_p0 is None and g_p1 is None
    torch.testing.assert_close(g_clu, -(p0 + p1).detach() / 2, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- screening (Eq. 9, 12)


@pytest.mark.parametrize("n", [1.0, 2.0, 3.0])
def test_quality_score_one_hot_and_uniform(n):
    # one-hot: H = 0 -> S = 1 ; uniform over C = 4: H = ln 4 = H_max -> S = 1 - 1/n
    prob = t([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    s = losses.quality_score(prob, n)
    assert s[0].item() == approx(1.0)
    assert s[1].item() == approx(1.0 - 1.0 / n)


def test_quality_score_hand_case_c3():
    # p = (1/2, 1/4, 1/4): H = 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2 ; H_max = ln 3
    # S_2 = 1 - 1.5 ln2 / (2 ln3) = 0.526802...   S_1 = 1 - 1.5 ln2 / ln3 = 0.053605...
    prob = t([[0.5, 0.25, 0.25]])
    assert losses.quality_score(prob, 2.0).item() == approx(1 - 1.5 * LN2 / (2 * LN3))
    assert losses.quality_score(prob, 1.0).item() == approx(1 - 1.5 * LN2 / LN3)
    assert losses.quality_score(prob, 2.0).item() == pytest.approx(0.526802, abs=1e-6)


def test_screen_selects_floor_of_summed_scores_highest_first():
    # maxprob scores: .9, .6, .8, .5, .7 -> sum 3.5 -> K = floor(3.5) = 3
    # three highest: rows 0 (.9), 2 (.8), 4 (.7) ; pseudo-labels = argmax (row 3 tie -> first index 0)
    prob = t([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5], [0.3, 0.7]])
    selected, labels, k = losses.screen(prob, "maxprob")
    assert k == 3
    assert selected.dtype == torch.bool
    assert selected.tolist() == [True, False, True, False, True]
    assert labels.tolist() == [0, 0, 1, 0, 1]


def test_screen_ties_are_broken_by_index():
    # 5 uniform rows, C = 2: S_2 = 1/2 each -> sum 2.5 -> K = 2 ; all tied -> rows 0 and 1
    selected, labels, k = losses.screen(torch.full((5, 2), 0.5, dtype=D), "s2")
    assert k == 2
    assert selected.tolist() == [True, True, False, False, False]
    assert labels.tolist() == [0] * 5
    # 4 uniform rows: sum exactly 2.0 -> K = 2 (floor of an integer sum is that integer)
    assert losses.screen(torch.full((4, 2), 0.5, dtype=D), "s2")[2] == 2


# rows (C = 3): 0 uniform, 1 one-hot on class 2, 2 uniform, 3 hand row (1/4, 1/2, 1/4), 4-5 uniform
#   S_1: U = 0, one-hot = 1, hand = 1 - 1.5 ln2/ln3 = 0.0536      sum 1.0536 -> K = 1
#   S_2: U = 1/2, one-hot = 1, hand = 0.5268                        sum 3.5268 -> K = 3
#   S_3: U = 2/3, one-hot = 1, hand = 1 - 1.5 ln2/(3 ln3) = 0.6845  sum 4.3512 -> K = 4
#   maxprob: U = 1/3, one-hot = 1, hand = 1/2                       sum 2.8333 -> K = 2
# order by score (ties by index): one-hot (1), hand (3) [S_1, maxprob: hand > U; S_2: .527 > .5;
#   S_3: .6845 > .6667], then the uniform rows 0, 2, 4, 5
U = [1 / 3, 1 / 3, 1 / 3]
RULE_PROB = [U, [0.0, 0.0, 1.0], U, [0.25, 0.5, 0.25], U, U]


@pytest.mark.parametrize("rule, k, chosen", [
    ("s1", 1, {1}),
    ("s2", 3, {1, 3, 0}),
    ("s3", 4, {1, 3, 0, 2}),
    ("maxprob", 2, {1, 3}),
])
def test_screening_rules_hand_example(rule, k, chosen):
    selected, labels, k_got = losses.screen(t(RULE_PROB), rule)
    assert k_got == k
    assert set(torch.nonzero(selected).flatten().tolist()) == chosen
    assert labels.tolist() == [0, 2, 0, 1, 0, 0]


def test_screening_scores_maxprob_values():
    s = losses.screening_scores(t(RULE_PROB), "maxprob")
    torch.testing.assert_close(s, t([1 / 3, 1.0, 1 / 3, 0.5, 1 / 3, 1 / 3]))


@pytest.mark.parametrize("rule", ["s4", "S2", "entropy", ""])
def test_unknown_screening_rule_raises(rule):
    with pytest.raises(ValueError, match="unknown screening rule"):
        losses.screening_scores(t(RULE_PROB), rule)
    with pytest.raises(ValueError, match="unknown screening rule"):
        losses.screen(t(RULE_PROB), rule)

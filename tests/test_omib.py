"""OMIB (ICML 2025), the supervised reference: pure functions by hand, split, label hygiene, estimator.

Formulas: ``../shared/papers/OMIB-ICML2025-summary.md`` and METHOD.md section 5;
the choices the summary leaves open are listed in ``mmib.methods.omib.estimator``.
The estimator tests run on three separable Gaussian blobs seen through two
views (CPU, one thread, a few seconds in all).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmib.errors import InputError
from mmib.state_io import state_bytes
from mmib.methods.omib import losses as ol
from mmib.methods.omib.estimator import STATE_FORMAT, OMIB, OMIBParams, stratified_split

D = torch.float64
TANH1 = math.tanh(1.0)  # 0.7615941559557649


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


def approx(x: float, tol: float = 1e-9):
    return pytest.approx(x, rel=tol, abs=tol)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- dynamic weight r
def test_r_is_one_for_equal_mean_kls():
    # means 0.3 and 0.3: r = 1 - tanh(ln 1) = 1 - tanh(0) = 1
    assert float(ol.dynamic_weight_r(t([0.2, 0.4]), t([0.3, 0.3]))) == approx(1.0)


def test_r_for_ratio_e():
    # mean(view) = e * 0.5, mean(ref) = 0.5: r = 1 - tanh(ln e) = 1 - tanh(1) = 0.2384058440442351
    kl_view = t([0.5 * math.e - 0.1, 0.5 * math.e + 0.1])
    assert float(ol.dynamic_weight_r(kl_view, t([0.5, 0.5]))) == approx(1.0 - TANH1)


def test_r_for_ratio_one_over_e():
    # ratio 1/e: r = 1 - tanh(-1) = 1 + tanh(1) = 1.7615941559557650 (the view is compressed more)
    assert float(ol.dynamic_weight_r(t([1.0]), t([math.e]))) == approx(1.0 + TANH1)


def test_r_uses_the_ratio_of_means_not_the_mean_of_ratios():
    # view [1, 1], ref [0.5, 1.5]: means 1 and 1 -> r = 1 (METHOD.md 5).
    # The mean of per-sample ratios would be (2 + 2/3) / 2 = 4/3 -> r = 1 - tanh(ln 4/3) = 0.7143.
    assert float(ol.dynamic_weight_r(t([1.0, 1.0]), t([0.5, 1.5]))) == approx(1.0)


def test_r_stays_in_zero_two_and_is_finite_on_zero_kls():
    # both KLs 0: EPS on both means gives ratio 1 -> r = 1 (not NaN)
    assert float(ol.dynamic_weight_r(t([0.0, 0.0]), t([0.0, 0.0]))) == approx(1.0)
    r_big = float(ol.dynamic_weight_r(t([1e3]), t([1e-3])))   # ratio 1e6: tanh(13.8) ~ 1 -> r ~ 0
    r_small = float(ol.dynamic_weight_r(t([1e-3]), t([1e3])))  # ratio 1e-6 -> r ~ 2
    assert 0.0 <= r_big < 1e-6 and 2.0 - 1e-6 < r_small <= 2.0


def test_categorical_kl_by_hand():
    # p = (1/2, 1/2), q = (1/4, 3/4): 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 (ln 2 + ln 2/3) = 0.14384103622589045
    kl = ol.categorical_kl(t([[0.5, 0.5]]).log(), t([[0.25, 0.75]]).log())
    assert kl.shape == (1,)
    assert float(kl[0]) == approx(0.5 * (math.log(2.0) + math.log(2.0 / 3.0)))


# ---------------------------------------------------------------- beta bound M_u
def test_beta_upper_bound_by_hand():
    # r = 1, H(v1) = 3, H(v2) = 2, I = 1: (1 + 1)(3 + 2 - 1) = 8 -> M_u = 1/8
    assert float(ol.beta_upper_bound(1.0, 3.0, 2.0, 1.0)) == approx(0.125)
    # r = 1 - tanh(1) = 0.23840584, H = 2 + 2 - 0.5 = 3.5: M_u = 1 / (1.23840584 * 3.5) = 1 / 4.33442045 = 0.2307114
    r = 1.0 - TANH1
    assert float(ol.beta_upper_bound(r, 2.0, 2.0, 0.5)) == approx(1.0 / ((1.0 + r) * 3.5))
    assert float(ol.beta_upper_bound(r, 2.0, 2.0, 0.5)) == pytest.approx(0.2307114, abs=1e-7)


def test_beta_upper_bound_accepts_a_tensor_r():
    # r as a tensor (how the estimator calls it): (1 + 0.5)(1 + 1 - 0) = 3 -> 1/3
    assert float(ol.beta_upper_bound(torch.tensor(0.5), 1.0, 1.0, 0.0)) == approx(1.0 / 3.0)


def test_beta_upper_bound_is_infinite_when_the_joint_entropy_is_not_positive():
    # H(v1) + H(v2) - I = 1 + 1 - 2 = 0: no bound
    assert math.isinf(float(ol.beta_upper_bound(1.0, 1.0, 1.0, 2.0)))
    assert math.isinf(float(ol.beta_upper_bound(1.0, -3.0, 1.0, 0.0)))


def test_beta_upper_bound_multi_by_hand():
    # three views, r = (0.5, 1.5): weights 1 + 0.5 + 1.5 = 3;
    # H = 2 + 2 + 2 - I(v1; v0) - I(v2; v0 v1) = 6 - 1 - 0.5 = 4.5 -> M_u = 1 / (3 * 4.5) = 1/13.5
    assert ol.joint_entropy([2.0, 2.0, 2.0], [1.0, 0.5]) == approx(4.5)
    assert float(ol.beta_upper_bound_multi(t([0.5, 1.5]), [2.0, 2.0, 2.0], [1.0, 0.5])) == approx(1.0 / 13.5)
    # two views: the same as the paper's formula
    assert float(ol.beta_upper_bound_multi(t([0.7]), [3.0, 2.0], [1.0])) == approx(1.0 / (1.7 * 4.0))
    with pytest.raises(ValueError):
        ol.beta_upper_bound_multi(t([0.5]), [2.0, 2.0, 2.0], [1.0, 0.5])


def test_effective_beta_and_weighted_kl():
    # beta_eff = min(beta, M_u)
    assert float(ol.effective_beta(0.1, t(0.03))) == approx(0.03)
    assert float(ol.effective_beta(0.1, t(math.inf))) == approx(0.1)
    # KL_0 + r_1 KL_1 + r_2 KL_2 = 1 + 0.5 * 2 + 2 * 3 = 8
    assert float(ol.weighted_kl([t(1.0), t(2.0), t(3.0)], t([0.5, 2.0]))) == approx(8.0)


# ---------------------------------------------------------------- stratified split
def test_stratified_split_keeps_class_proportions_and_is_seeded():
    labels = np.repeat([0, 1, 2], [60, 30, 90])  # 180 rows, proportions 1/3, 1/6, 1/2
    train, test = stratified_split(labels, 0.2, seed=3)
    assert len(test) == 36 and len(train) == 144
    np.testing.assert_array_equal(np.bincount(labels[test]), [12, 6, 18])  # 20% of each class
    np.testing.assert_array_equal(np.bincount(labels[train]), [48, 24, 72])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(180))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    again = stratified_split(labels, 0.2, seed=3)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(stratified_split(labels, 0.2, seed=4)[1], test)


def test_stratified_split_rejects_bad_input():
    with pytest.raises(InputError, match="test_fraction"):
        stratified_split(np.array([0, 0, 1, 1]), 1.0, seed=0)
    with pytest.raises(InputError, match="stratified"):
        stratified_split(np.array([0, 0, 0, 1]), 0.5, seed=0)  # class 1 has one member


# ---------------------------------------------------------------- estimator
N_PER, C = 40, 3
N = N_PER * C
CONFIG = OMIBParams(warmup_epochs=10, epochs=15, batch_size=16, lr=1e-2, beta=0.1, latent_dim=8, width=16,
                    noise_std=1.0, mine_steps=20, mine_clamp=10.0, mine_ema_rate=0.01, grad_clip=5.0,
                    test_fraction=0.3)


def make(seed: int = 0) -> OMIB:
    return OMIB(C, config=CONFIG, seed=seed, device="cpu", progress=False)


@pytest.fixture(scope="module")
def data(blobs) -> tuple[list[np.ndarray], np.ndarray]:
    """Three separable Gaussian blobs seen through two views (4 and 3 features)."""
    return blobs(N_PER, C, scale=4.0)


@pytest.fixture(scope="module")
def fitted(data) -> OMIB:
    views, y = data
    return make().fit(views, y)


def _no_timing(history: dict) -> dict:
    """History without the wall-clock column (the only entry that may differ between identical runs)."""
    return {s: {k: v for k, v in h.items() if k != "epoch_seconds"} for s, h in history.items()}


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a["net"].items():
        assert torch.equal(v, b["net"][k]), k
    assert _no_timing(a["history"]) == _no_timing(b["history"])
    assert a["bound"] == b["bound"]
    assert a["train_idx"] == b["train_idx"] and a["test_idx"] == b["test_idx"]


def test_fit_makes_the_stratified_split(fitted, data):
    _, y = data
    train, test = stratified_split(y, CONFIG.test_fraction, seed=0)
    np.testing.assert_array_equal(fitted.train_idx_, train)
    np.testing.assert_array_equal(fitted.test_idx_, test)
    assert fitted.stages_done_ == ["warmup", "calibrate"]


def test_test_accuracy_is_well_above_chance(fitted, data):
    views, y = data
    te = fitted.test_idx_
    acc = float((fitted.predict(views)[te] == y[te]).mean())
    assert acc >= 0.9, acc  # chance is 1/3


def test_predict_proba_rows_are_distributions(fitted, data):
    views, _ = data
    p = fitted.predict_proba(views)
    assert p.shape == (N, C) and np.all(p >= 0.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(fitted.predict(views), p.argmax(axis=1))
    assert fitted.transform(views).shape == (N, CONFIG.latent_dim)


def test_history_has_every_term_per_epoch(fitted):
    cal = fitted.history_["calibrate"]
    for term in ("ce", "kl_view0", "kl_view1", "r", "r_view1", "beta_eff", "M_u", "total", "epoch_seconds"):
        assert len(cal[term]) == CONFIG.epochs, term
    for term in ("ce_view0", "ce_view1", "total", "epoch_seconds"):
        assert len(fitted.history_["warmup"][term]) == CONFIG.warmup_epochs, term
    assert all(0.0 < r < 2.0 for r in cal["r"])
    # the bound is finite here; beta_eff = min(beta, M_u) batch by batch, so the epoch means obey <=
    bound = fitted.history_["bound"]
    assert bound["joint_entropy"][0] > 0 and len(bound["mine_mi_view1"]) == CONFIG.mine_steps
    assert len(bound["mine_h_view0"]) == CONFIG.mine_steps and bound["h_view0"][0] >= 0.0
    assert all(math.isfinite(m) and m > 0 for m in cal["M_u"])
    assert all(b <= min(CONFIG.beta, m) + 1e-12 for b, m in zip(cal["beta_eff"], cal["M_u"]))


def test_training_never_reads_test_labels(fitted, data):
    """Test rows hold -1 (a CE on -1 raises): training still works and gives the identical model."""
    views, y = data
    with pytest.raises((IndexError, RuntimeError)):
        F.cross_entropy(torch.zeros(1, C), torch.tensor([-1]))
    masked = y.copy()
    masked[fitted.test_idx_] = -1
    model = make().fit(views, masked, train_idx=fitted.train_idx_)
    _same_state(model.state(), fitted.state())
    # a sentinel on a training row is an error, not a silent wrong label
    masked[fitted.train_idx_[0]] = -1
    with pytest.raises(InputError, match="labels"):
        make().fit_warmup(views, masked, fitted.train_idx_)


def test_deterministic_on_cpu_for_a_seed(fitted, data):
    views, y = data
    again = make().fit(views, y)
    _same_state(again.state(), fitted.state())
    np.testing.assert_array_equal(again.predict_proba(views), fitted.predict_proba(views))


def test_staged_fit_equals_fit(fitted, data):
    """The pipeline path: warm-up -> state -> load_state -> main stage, as one fit()."""
    views, y = data
    warm = make().fit_warmup(views, y, fitted.train_idx_)
    resumed = make().load_state(torch.load(io.BytesIO(state_bytes(warm.state())), weights_only=True))
    assert resumed.stages_done_ == ["warmup"]
    resumed.fit_calibration(views, y)
    _same_state(resumed.state(), fitted.state())


def test_state_round_trip_is_identical(fitted, data):
    views, _ = data
    state = fitted.state()
    assert state["format"] == STATE_FORMAT
    loaded = make(seed=5).load_state(torch.load(io.BytesIO(state_bytes(state)), weights_only=True))
    np.testing.assert_array_equal(loaded.predict_proba(views), fitted.predict_proba(views))
    np.testing.assert_array_equal(loaded.train_idx_, fitted.train_idx_)
    np.testing.assert_array_equal(loaded.test_idx_, fitted.test_idx_)
    assert loaded.history_ == fitted.saved_history() and loaded.stages_done_ == fitted.stages_done_
    _same_state(loaded.state() | {"seed": state["seed"]}, state)


def test_input_errors(fitted, data):
    views, y = data
    with pytest.raises(InputError, match="warmed-up"):
        make().fit_calibration(views, y)
    with pytest.raises(InputError, match="format"):
        make().load_state({"format": "mmib-clib-1"})
    with pytest.raises(InputError, match="train_idx"):
        make().fit_warmup(views, y, np.array([0, 0, 1]))
    with pytest.raises(InputError, match="views"):
        fitted.predict_proba([views[0]])
    with pytest.raises(InputError, match="latent_dim"):
        OMIB(C, config=CONFIG.model_copy(update={"latent_dim": 4}), device="cpu").load_state(fitted.state())
    with pytest.raises(InputError, match="n_clusters"):
        OMIB(1, config=CONFIG).fit(views, y)


def test_paper_defaults_are_valid():
    cfg = OMIBParams.paper_defaults()
    assert cfg.beta < 1.0 and 0 < cfg.test_fraction < 1
    with pytest.raises(Exception):
        OMIBParams(warmup_epochs=1)  # no defaults: every field is required

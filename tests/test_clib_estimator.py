"""The CLIB estimator API on a tiny synthetic 3-cluster, 2-view data set (CPU, seconds).

Checks shapes and probabilities, bit-exact determinism on the CPU, that the
two-stage pipeline path (fit_warmup -> state -> load_state -> fit_calibration)
equals one ``fit``, the warm-up-free epoch budget (Table 2 row I), the
screened counts of rule s2 and the ``InputError`` contract for bad input.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from mmib.config import CalibrateParams, LossSwitches, LossWeights, ModelParams, WarmupParams
from mmib.errors import InputError
from mmib.state_io import state_bytes
from switches import PAPER_CALIBRATE, PAPER_WARMUP
from mmib.methods.clib.estimator import STATE_FORMAT, CLIB

N_PER, C, LATENT = 30, 3, 4
N = N_PER * C
W_EPOCHS, C_EPOCHS = 3, 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_clib(seed: int = 0, *, warmup_free: bool = False, screening: str = "s2",
              con_reduction: str = "sum") -> CLIB:
    return CLIB(
        n_clusters=C, alpha=0.5, beta=0.5,
        model=ModelParams(latent_dim=LATENT, encoder_width=16, head_width=16, mine_width=16),
        warmup=WarmupParams(epochs=W_EPOCHS, batch_size=32, lr=1e-2, weight_decay=0.0, kl_weight=1e-3,
                            temperature=0.5, mine_ema_rate=0.01, mine_clamp=10.0, grad_clip=5.0,
                            **PAPER_WARMUP),
        calibrate=CalibrateParams(epochs=C_EPOCHS, lr=1e-2, screening=screening, cold_start_epochs=1,
                                  kmeans_n_init=1, kmeans_warm_start=True, kmeans_backend="auto",
                                  losses=LossSwitches(caliH=True, re=True, cluH=True, con=True),
                                  weights=LossWeights(caliH=1.0, re=1.0, cluH=1.0, con=1.0), con_reduction=con_reduction,
                                  warmup_free=warmup_free, cal_heads_backprop=False,
                                  **PAPER_CALIBRATE),
        seed=seed, device="cpu", progress=False)


@pytest.fixture(scope="module")
def views(blobs) -> list[np.ndarray]:
    """Three Gaussian blobs seen through two views (4 and 3 features)."""
    return blobs(N_PER, C)[0]


@pytest.fixture(scope="module")
def fitted(views) -> CLIB:
    return make_clib(seed=0).fit(views)


# ---------------------------------------------------------------- outputs


def test_predict_proba_is_a_distribution_per_row(fitted, views):
    p = fitted.predict_proba(views)
    assert p.shape == (N, C)
    assert np.all(p >= 0.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-5)


def test_predict_is_argmax_of_proba(fitted, views):
    pred = fitted.predict(views)
    assert pred.shape == (N,)
    np.testing.assert_array_equal(pred, fitted.predict_proba(views).argmax(axis=1))


def test_transform_and_fusion_weights(fitted, views):
    h = fitted.transform(views)
    assert h.shape == (N, LATENT)
    assert np.isfinite(h).all()
    w = fitted.fusion_weights()
    assert w.shape == (2,)
    assert w.sum() == pytest.approx(1.0, abs=1e-6)


def test_fit_predict_equals_fit_then_predict(fitted, views):
    # y is accepted and ignored (scikit-learn signature); same seed -> same labels
    labels = make_clib(seed=0).fit_predict(views, y=np.zeros(N))
    np.testing.assert_array_equal(labels, fitted.predict(views))


def test_history_has_one_entry_per_epoch(fitted):
    assert fitted.stages_done_ == ["warmup", "calibrate"]
    assert len(fitted.history_["warmup"]["loss"]) == W_EPOCHS
    cal = fitted.history_["calibrate"]
    assert len(cal["loss"]) == C_EPOCHS
    assert len(cal["cold_start_loss"]) == 1
    for key in ("caliH", "re", "cluH", "con", "cal", "ib", "fusion_w_view0", "fusion_w_view1"):
        assert len(cal[key]) == C_EPOCHS and np.isfinite(cal[key]).all(), key


# ---------------------------------------------------------------- training trace (Figure 3, Table 5)
def test_trace_has_one_assignment_per_epoch_and_the_first_calibration_snapshot(fitted, views):
    trace = fitted.trace_
    assert len(trace.warmup) == W_EPOCHS
    assert len(trace.calibrate) == C_EPOCHS + 1  # after the cold start, then after every epoch
    assert all(a.shape == (N,) and a.min() >= 0 and a.max() < C for a in trace.warmup + trace.calibrate)
    # the last snapshot is the final model's prediction
    assert np.array_equal(trace.calibrate[-1], fitted.predict(views))
    assert trace.first_calibration_proba.shape == (N, C)
    assert np.allclose(trace.first_calibration_proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(trace.calibrate[0], trace.first_calibration_proba.argmax(axis=1))
    # quality under s2 is S_2 averaged over views, so in [1/2, 1]
    q = trace.first_calibration_quality
    assert q.shape == (N,) and (q >= 0.5 - 1e-6).all() and (q <= 1 + 1e-6).all()


def test_last_warmup_snapshot_is_a_kmeans_partition_of_the_warmup_features(views):
    from sklearn.metrics import adjusted_rand_score

    warm = make_clib(seed=0).fit_warmup(views)
    features = warm.transform(views)
    labels = warm.trace_.warmup[-1]
    # every sample is nearer its own cluster's mean than any other's (a Lloyd fixed point)
    means = np.stack([features[labels == k].mean(axis=0) for k in np.unique(labels)])
    nearest = np.unique(labels)[((features[:, None, :] - means[None]) ** 2).sum(-1).argmin(axis=1)]
    assert adjusted_rand_score(nearest, labels) == 1.0


def test_trace_survives_the_state_round_trip(fitted):
    loaded = make_clib(seed=0).load_state(fitted.state())
    for a, b in zip(loaded.trace_.warmup + loaded.trace_.calibrate, fitted.trace_.warmup + fitted.trace_.calibrate):
        assert np.array_equal(a, b)
    assert np.array_equal(loaded.trace_.first_calibration_quality, fitted.trace_.first_calibration_quality)


def test_a_state_without_trace_loads_with_an_empty_trace(fitted):
    state = dict(fitted.state())
    del state["trace"]
    loaded = make_clib(seed=0).load_state(state)
    assert loaded.trace_.warmup == [] and loaded.trace_.calibrate == []


# ---------------------------------------------------------------- determinism and resuming


def test_same_seed_is_bit_identical_on_cpu(fitted, views):
    again = make_clib(seed=0).fit(views)
    assert np.array_equal(again.predict_proba(views), fitted.predict_proba(views))
    assert again.history_["calibrate"]["loss"] == fitted.history_["calibrate"]["loss"]


def test_different_seed_gives_different_output(fitted, views):
    other = make_clib(seed=1).fit(views)
    assert not np.array_equal(other.predict_proba(views), fitted.predict_proba(views))


def test_warmup_state_round_trip_then_calibration_equals_one_fit(fitted, views):
    # the pipeline path: warmup stage saves state(), calibrate stage loads it into a new estimator
    warm = make_clib(seed=0).fit_warmup(views)
    state = warm.state()
    assert state["format"] == STATE_FORMAT and state["stages_done"] == ["warmup"]
    resumed = make_clib(seed=0).load_state(torch.load(io.BytesIO(state_bytes(state)), weights_only=True))
    resumed.fit_calibration(views)
    assert np.array_equal(resumed.predict_proba(views), fitted.predict_proba(views))
    assert resumed.history_["calibrate"]["loss"] == fitted.history_["calibrate"]["loss"]
    assert resumed.history_["warmup"]["loss"] == fitted.history_["warmup"]["loss"]
    assert all(np.array_equal(a, b) for a, b in zip(resumed.trace_.calibrate, fitted.trace_.calibrate))
    assert resumed.stages_done_ == ["warmup", "calibrate"]


def test_full_state_round_trip_predicts_identically(fitted, views):
    loaded = make_clib(seed=0).load_state(fitted.state())
    assert np.array_equal(loaded.predict_proba(views), fitted.predict_proba(views))
    assert np.array_equal(loaded.transform(views), fitted.transform(views))


# ---------------------------------------------------------------- epoch budget, screening


def test_warmup_free_moves_the_warmup_budget_into_calibration(views):
    model = make_clib(seed=0, warmup_free=True)
    assert model.warmup_epochs == 0
    assert model.calibration_epochs == W_EPOCHS + C_EPOCHS
    model.fit(views)
    assert model.history_["warmup"].get("loss", []) == []
    assert model.trace_.warmup == [] and len(model.trace_.calibrate) == W_EPOCHS + C_EPOCHS + 1
    assert len(model.history_["calibrate"]["loss"]) == W_EPOCHS + C_EPOCHS
    # the default keeps the stages apart
    default = make_clib(seed=0)
    assert (default.warmup_epochs, default.calibration_epochs) == (W_EPOCHS, C_EPOCHS)


def test_s2_screened_counts_are_between_half_and_all(fitted):
    # S_2 = 1 - H / (2 log C) >= 1/2 for every row, so K = floor(sum S_2) >= floor(N / 2) = 45
    cal = fitted.history_["calibrate"]
    for m in range(2):
        counts = cal[f"n_selected_view{m}"]
        assert len(counts) == C_EPOCHS
        for k in counts:
            assert float(k).is_integer()
            assert math.floor(N / 2) <= k <= N


# ---------------------------------------------------------------- bad input


def test_views_with_different_row_counts(views):
    with pytest.raises(InputError, match="same number of rows") as exc:
        make_clib().fit([views[0], views[1][:-1]])
    assert exc.value.field == "views"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_views(views, bad):
    v1 = views[1].copy()
    v1[5, 1] = bad
    with pytest.raises(InputError, match=r"views\[1\] contains (NaN|infinity)"):
        make_clib().fit([views[0], v1])


@pytest.mark.parametrize("arg", [[], "not views", np.zeros((4, 3))])
def test_not_a_list_of_views(arg):
    with pytest.raises(InputError, match="at least two view arrays"):
        make_clib().fit(arg)


def test_one_dimensional_view(views):
    with pytest.raises(InputError, match="2-D"):
        make_clib().fit([views[0], views[1][:, 0]])


def test_more_clusters_than_samples(views):
    with pytest.raises(InputError, match="3 clusters for 2 samples") as exc:
        make_clib().fit([views[0][:2], views[1][:2]])
    assert exc.value.field == "n_clusters"


@pytest.mark.parametrize("kwargs", [{"n_clusters": 1}, {"n_clusters": 3, "alpha": -0.5},
                                    {"n_clusters": 3, "beta": -1.0}])
def test_bad_arguments_are_refused_when_fit_starts(kwargs, views):
    model = CLIB(**kwargs, progress=False)  # scikit-learn's convention: __init__ only stores
    with pytest.raises(InputError):
        model.fit(views)


def test_calibration_before_warmup(views):
    with pytest.raises(InputError, match="warmed-up") as exc:
        make_clib().fit_calibration(views)
    assert exc.value.field == "stage"


@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform"])
def test_predict_before_fit(views, method):
    with pytest.raises(InputError, match="not fitted"):
        getattr(make_clib(), method)(views)


def test_state_and_weights_before_fit():
    with pytest.raises(InputError, match="not fitted"):
        make_clib().state()
    with pytest.raises(InputError, match="not fitted"):
        make_clib().fusion_weights()


@pytest.mark.parametrize("state", [{"format": "mmib-msdib-1", "net": {}}, {}, {"format": None}])
def test_state_of_another_format(state):
    with pytest.raises(InputError, match="not a CLIB state") as exc:
        make_clib().load_state(state)
    assert exc.value.field == "format"


# ---------------------------------------------------------------- views must match the fitted model


@pytest.mark.parametrize("n_views", [1, 3])
def test_predict_with_a_different_number_of_views_raises(fitted, views, n_views):
    wrong = [views[0]] if n_views == 1 else [views[0], views[1], views[1]]
    with pytest.raises(InputError):
        fitted.predict_proba(wrong)


def test_predict_with_a_wrong_view_width_raises_input_error(fitted, views):
    with pytest.raises(InputError):
        fitted.predict_proba([views[0][:, :3], views[1]])


def test_calibration_on_more_views_than_the_warmup_raises(views):
    warm = make_clib(seed=0).fit_warmup(views)
    with pytest.raises(InputError):
        warm.fit_calibration([views[0], views[1], views[1]])


def test_single_view_is_rejected_with_input_error(views):
    with pytest.raises(InputError):
        make_clib(seed=0).fit([views[0]])


# ---------------------------------------------------------------- per-epoch K-Means warm start
def test_kmeans_warm_start_reuses_the_previous_centroids(fitted, views):
    import torch
    from sklearn.cluster import KMeans

    features = torch.from_numpy(fitted.transform(views))
    fitted._kmeans_centers = None
    first, _ = fitted._pseudo_clusters(features, salt=0, mode="kmeans")
    centres = fitted._kmeans_centers
    # warm-started: one Lloyd run from the previous centroids, which are already a fixed point
    second, _ = fitted._pseudo_clusters(features, salt=1, mode="kmeans")
    assert np.array_equal(first, second)
    assert np.allclose(centres, fitted._kmeans_centers)
    # the same call without warm start is an independent k-means++ fit with its own seed
    cold = fitted.calibrate.model_copy(update={"kmeans_warm_start": False})
    fitted.calibrate, saved = cold, fitted.calibrate
    try:
        third, _ = fitted._pseudo_clusters(features, salt=1, mode="kmeans")
        ref = KMeans(fitted.n_clusters, n_init=cold.kmeans_n_init,
                     random_state=(fitted.seed * 7919 + 1) % (2**31 - 1)).fit(features.numpy().astype(np.float64))
        assert np.array_equal(third, ref.labels_)
    finally:
        fitted.calibrate = saved

"""calibrate.confidence: seeds / seeds_and_ncuts (mmib.confidence), checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmib.confidence import (agreement, agreement_temperatures, fit_agreement_temperature,
                             reference_partitions, temperature_scale)


def test_temperature_scale_by_hand():
    # T = 0.5 squares the probabilities: [0.25, 0.0625, 0.0625] / 0.375
    out = temperature_scale(np.array([[0.5, 0.25, 0.25]]), 0.5)
    np.testing.assert_allclose(out, [[2 / 3, 1 / 6, 1 / 6]], rtol=1e-9)
    # T = 1 is the identity; T -> large flattens towards uniform; the argmax never moves
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_allclose(temperature_scale(p, 1.0), p, rtol=1e-9)
    flat = temperature_scale(p, 50.0)
    assert np.all(flat.max(axis=1) < 0.36)
    np.testing.assert_array_equal(flat.argmax(axis=1), p.argmax(axis=1))


def test_agreement_matches_cluster_ids_first():
    ref = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(agreement(ref, np.array([1, 1, 0, 0]), 2), [True] * 4)  # renamed ids
    np.testing.assert_array_equal(agreement(ref, np.array([1, 1, 0, 1]), 2), [True, True, True, False])


def test_agreement_counts_an_unmatched_cluster_as_disagreeing():
    # `other` uses three ids for a two-cluster reference: id 2 gets no partner
    ref = np.array([0, 0, 1, 1, 1])
    np.testing.assert_array_equal(agreement(ref, np.array([0, 0, 1, 1, 2]), 3), [True] * 4 + [False])


def test_fitted_temperature_makes_confidence_the_agreement_rate():
    # every sample at [0.6, 0.4]; 80% agreement. The likelihood is maximal where the scaled top
    # probability is 0.8: 1.5^(1/T) = 4, so T = ln 1.5 / ln 4.
    proba = np.tile([0.6, 0.4], (50, 1))
    agree = np.array([1.0] * 40 + [0.0] * 10)
    t = fit_agreement_temperature(proba, [agree])
    assert t == pytest.approx(math.log(1.5) / math.log(4), rel=1e-3)
    assert temperature_scale(proba, t).max(axis=1) == pytest.approx(0.8, rel=1e-3)


def test_seed_temperatures_sharpen_agreeing_seeds_and_soften_scattered_ones():
    rng = np.random.default_rng(0)
    n, c = 300, 3
    base = rng.dirichlet(np.ones(c) * 2, size=n)
    # seeds that agree everywhere (up to renamed clusters): the confidence goes up
    agreeing = [base, base[:, [2, 0, 1]], base[:, [1, 2, 0]]]
    temps = agreement_temperatures(agreeing)
    assert all(t < 1 for t in temps)
    assert temperature_scale(base, temps[0]).max(axis=1).mean() > base.max(axis=1).mean()
    # seeds whose argmaxes are independent: agreement ~1/3, so confidence goes down towards it
    scattered = [rng.dirichlet(np.ones(c) * 0.3, size=n) for _ in range(3)]
    temps = agreement_temperatures(scattered)
    assert all(t > 1 for t in temps)
    conf = temperature_scale(scattered[0], temps[0]).max(axis=1).mean()
    assert conf < scattered[0].max(axis=1).mean() and conf < 0.5


def test_one_seed_keeps_the_head_confidence():
    assert agreement_temperatures([np.full((4, 2), 0.5)]) == [1.0]


def test_references_share_the_likelihood_with_the_seeds():
    # two identical seeds (agreement 100%) and a reference that agrees on 60% of the samples; with
    # half of the weight each, the best constant confidence is 0.5 * 1.0 + 0.5 * 0.6 = 0.8
    proba = np.tile([0.6, 0.4], (50, 1))
    ref = np.array([0] * 30 + [1] * 20)
    t_both = agreement_temperatures([proba, proba], [ref], reference_weight=0.5)
    assert t_both == pytest.approx([math.log(1.5) / math.log(4)] * 2, rel=1e-3)
    # a single seed: the reference alone (0.6 = the head's own 0.6: T = 1)
    assert agreement_temperatures([proba], [ref]) == pytest.approx([1.0], rel=1e-3)
    # weights by hand: 0.25 * 1.0 + 0.75 * 0.6 = 0.7 -> 1.5^(1/T) = 7/3
    t = fit_agreement_temperature(proba, [np.ones(50), ref == 0], weights=[0.25, 0.75])
    assert t == pytest.approx(math.log(1.5) / math.log(7 / 3), rel=1e-3)


def test_reference_partitions_are_the_raw_views_normalized_cut():
    from mmib.baselines import concatenate_views, ncuts_predict

    rng = np.random.default_rng(1)
    views = [rng.normal(size=(40, 3)) + np.repeat([[0.0], [6.0]], 20, axis=0) for _ in range(2)]
    assert reference_partitions(views, 2, "seeds", 0) == []
    (ref,) = reference_partitions(views, 2, "seeds_and_ncuts", 0)
    np.testing.assert_array_equal(ref, ncuts_predict(concatenate_views(views), 2, 0))
    assert len(set(ref[:20])) == 1 and len(set(ref[20:])) == 1 and ref[0] != ref[-1]


@pytest.mark.usefixtures("one_torch_thread")
def test_clib_predict_proba_applies_the_temperature_and_keeps_it_in_its_state():
    import yaml

    from mmib.config import DEFAULT_PARAMS, parse_params
    from mmib.methods.clib.estimator import CLIB
    from mmib.recipes import apply_overrides

    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, size=(3, 6))
    views = [(centers[np.repeat(np.arange(3), 20)] + rng.normal(size=(60, 6))).astype(np.float32)[:, :d]
             for d in (6, 4)]
    raw_params = yaml.safe_load(DEFAULT_PARAMS.read_text())
    params = parse_params(apply_overrides(raw_params, ["warmup.epochs=1", "calibrate.epochs=1",
                                                       "calibrate.cold_start_epochs=1"]))
    model = CLIB.from_params(params, 3, seed=0, progress=False)
    model.device = "cpu"
    model.fit_warmup(views).fit_calibration(views)
    raw = model.predict_proba(views)
    model.set_temperature(0.5)
    np.testing.assert_allclose(model.predict_proba(views), temperature_scale(raw, 0.5), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(views, raw=True), raw, rtol=1e-6)
    restored = CLIB.from_params(params, 3, seed=0, progress=False).load_state(model.state())
    assert restored.temperature_ == 0.5
    np.testing.assert_allclose(restored.predict_proba(views), model.predict_proba(views), rtol=1e-5)
    with pytest.raises(Exception, match="temperature"):
        model.set_temperature(float("nan"))
    model.fit_calibration(views)  # a new calibration starts from the head's own confidence
    assert model.temperature_ == 1.0

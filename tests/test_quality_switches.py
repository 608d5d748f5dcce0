"""The quality switches (issue "Quality"): each one changes exactly what it says.

Pure functions against hand-computed values (reconstruction, matched hard
targets, the screening rank), then the estimator: which modules exist, which
loss terms appear, and what reaches the encoders, one switch at a time
against the paper's reading.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmib.methods.clib import losses
from mmib.config import CalibrateParams, LossSwitches, LossWeights, ModelParams, WarmupParams, parse_params
from mmib.methods.clib.estimator import CLIB
from mmib.methods.trace import TrainingTrace
from mmib.recipes import PAPER_READING, apply_overrides
from shipped_params import shipped_params
from switches import PAPER_CALIBRATE, PAPER_WARMUP

pytestmark = pytest.mark.usefixtures("one_torch_thread")
C, N_PER = 3, 20


# ---------------------------------------------------------------- pure functions
def test_reconstruction_loss_is_the_per_feature_mse_summed_over_views():
    xs = [torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[3.0], [1.0]])]
    x_hats = [torch.tensor([[0.0, 2.0], [0.0, 2.0]]), torch.tensor([[1.0], [1.0]])]
    # view 0: (1 + 0 + 0 + 4) / 4 = 1.25; view 1: (4 + 0) / 2 = 2.0
    assert losses.reconstruction_loss(xs, x_hats).item() == pytest.approx(3.25)


def test_matched_hard_targets_rename_clusters_to_the_heads_argmax():
    # K-Means labels 0,0,1,1,2,2; the head calls them 2,2,0,0,1,(0): best match 0->2, 1->0, 2->1
    km = torch.tensor([0, 0, 1, 1, 2, 2])
    head = torch.tensor([2, 2, 0, 0, 1, 0])
    probs = torch.nn.functional.one_hot(head, 3).float() * 0.7 + 0.1
    out = losses.matched_hard_targets(km, probs)
    assert out.argmax(dim=1).tolist() == [2, 2, 0, 0, 1, 1]
    assert torch.all(out.sum(dim=1) == 1) and set(out.unique().tolist()) == {0.0, 1.0}


def test_matched_hard_targets_never_give_two_clusters_one_target():
    km = torch.tensor([0, 0, 1, 1, 2, 2])
    merged = torch.tensor([[0.9, 0.05, 0.05]] * 6)  # the head has merged everything into cluster 0
    out = losses.matched_hard_targets(km, merged).argmax(dim=1)
    assert len(set(out.tolist())) == 3


def test_screening_rank_maxprob_keeps_the_same_count_but_ranks_by_top_probability():
    # a: top 0.6 spread over the rest (higher entropy); b: top 0.55 with one near-zero class
    a = [0.6, 0.2, 0.2]
    b = [0.55, 0.45, 0.0]
    prob = torch.tensor([a, b, [1 / 3] * 3])
    scores = losses.screening_scores(prob, "s2")
    assert scores[1] > scores[0]  # S ranks b first; the top probability ranks a first
    k = math.floor(float(scores.sum()) + 1e-6)
    sel_s, _, k_s = losses.screen(prob, "s2", "score")
    sel_p, _, k_p = losses.screen(prob, "s2", "maxprob")
    assert k_s == k_p == k == 1
    assert sel_s.tolist() == [False, True, False]
    assert sel_p.tolist() == [True, False, False]
    with pytest.raises(ValueError):
        losses.screen(prob, "s2", "entropy")


# ---------------------------------------------------------------- the estimator
def make(warmup: dict | None = None, calibrate: dict | None = None, **kw) -> CLIB:
    return CLIB(
        n_clusters=C, alpha=1.0, beta=0.5,
        model=ModelParams(latent_dim=4, encoder_width=8, head_width=8, mine_width=8),
        warmup=WarmupParams(epochs=1, batch_size=20, lr=1e-2, weight_decay=0.0, kl_weight=1e-3, temperature=0.5,
                            mine_ema_rate=0.01, mine_clamp=10.0, grad_clip=5.0, **{**PAPER_WARMUP, **(warmup or {})}),
        calibrate=CalibrateParams(epochs=1, lr=1e-2, screening="s2", cold_start_epochs=1, kmeans_n_init=1,
                                  kmeans_warm_start=True, kmeans_backend="auto",
                                  losses=LossSwitches(caliH=True, re=True, cluH=True, con=True),
                                  weights=LossWeights(caliH=1.0, re=1.0, cluH=1.0, con=1.0), con_reduction="sum",
                                  warmup_free=False, cal_heads_backprop=False, **{**PAPER_CALIBRATE, **(calibrate or {})}),
        seed=0, device="cpu", progress=False, **kw)


@pytest.fixture(scope="module")
def views(blobs) -> list[np.ndarray]:
    return blobs(N_PER, C, scale=4.0, seed=1, dims=(5, 3))[0]


def one_batch(model: CLIB, views) -> tuple[list[torch.Tensor], object]:
    model.fit_warmup(views)
    xs = [torch.from_numpy(v) for v in views]
    model.net_.train()
    return xs, model.net_.encode(xs, sample=True)


@pytest.mark.parametrize("preservation, critics, key", [("mine", 2, "mine"), ("infonce", 0, "preservation"),
                                                        ("none", 0, None)])
def test_preservation_estimator_switch(views, preservation, critics, key):
    model = make({"preservation": preservation})
    xs, enc = one_batch(model, views)
    assert len(model.net_.critics) == critics
    _, parts = model._ib_loss(xs, enc)
    present = {k for k in ("mine", "preservation") if k in parts}
    assert present == ({key} if key else set())
    if preservation == "infonce":  # log B - NT-Xent is a bounded estimate: in [0, log B] per view
        assert 0.0 <= float(parts["preservation"]) <= 2 * math.log(xs[0].shape[0]) + 1e-5


def test_infonce_preservation_adds_beta_times_the_nt_xent_of_each_view_with_the_fusion(views):
    model = make({"preservation": "infonce"})
    xs, enc = one_batch(model, views)
    loss, _ = model._ib_loss(xs, enc)
    base, _ = _with_preservation(model, "none")._ib_loss(xs, enc)
    expected = sum(losses.info_nce(h, enc.fused, 0.5) for h in enc.hs)
    assert (loss - base).item() == pytest.approx(0.5 * expected.item(), rel=1e-5)


def _with_preservation(model: CLIB, preservation: str) -> CLIB:
    """Another switch setting on the same network (no MINE critics are needed for ``none``)."""
    clone = make({"preservation": preservation})
    clone.net_ = model.net_
    return clone


def test_reconstruction_switch_builds_decoders_and_adds_the_weighted_term(views):
    model = make({"reconstruction_weight": 2.0, "preservation": "none"})
    xs, enc = one_batch(model, views)
    assert [d.net[-1].out_features for d in model.net_.decoders] == [5, 3]
    loss, parts = model._ib_loss(xs, enc)
    recon = losses.reconstruction_loss(xs, [dec(h) for dec, h in zip(model.net_.decoders, enc.hs)])
    assert float(parts["recon"]) == pytest.approx(float(recon.detach()), rel=1e-5)
    without = _with_preservation(model, "none")._ib_loss(xs, enc)[0]
    assert (loss - without).item() == pytest.approx(2.0 * float(recon.detach()), rel=1e-4)
    paper = make()
    one_batch(paper, views)
    assert not len(paper.net_.decoders) and not len(paper.net_.projections)


def test_projection_switch_moves_nt_xent_to_the_projection_heads(views):
    model = make({"projection_dim": 6, "preservation": "none"})
    xs, enc = one_batch(model, views)
    assert [p.net[-1].out_features for p in model.net_.projections] == [6, 6]
    _, parts = model._ib_loss(xs, enc)
    zs = [p(h) for p, h in zip(model.net_.projections, enc.hs)]
    assert float(parts["nce"]) == pytest.approx(float(losses.info_nce(zs[0], zs[1], 0.5).detach()), rel=1e-5)
    assert float(parts["nce"]) != pytest.approx(float(losses.info_nce(enc.hs[0], enc.hs[1], 0.5).detach()), rel=1e-3)


def test_alignment_reduction_mean_divides_eq3_by_the_number_of_view_pairs():
    rng = np.random.default_rng(2)
    three = [(rng.normal(size=(30, d))).astype(np.float32) for d in (4, 3, 2)]
    sums, means = make({"preservation": "none"}), make({"preservation": "none", "alignment_reduction": "mean"})
    xs, enc = one_batch(sums, three)
    means.net_ = sums.net_
    a = float(sums._ib_loss(xs, enc)[1]["nce"])
    b = float(means._ib_loss(xs, enc)[1]["nce"])
    assert b == pytest.approx(a / 3, rel=1e-6)  # 3 views: 3 pairs


def _targets(n: int) -> dict[str, torch.Tensor]:
    return {"target": torch.full((n, C), 1.0 / C), "pseudo": torch.stack([torch.arange(n) % C] * 2, dim=1),
            "selected": torch.ones(n, 2)}


def test_keep_ib_false_removes_l_ib_from_stage_two(views):
    """``keep_ib: false``: stage 2 minimises alpha * L_Cal alone (Eq. 2 with L_IB at weight 0)."""
    on, off = make(), make(calibrate={"keep_ib": False})
    xs, _ = one_batch(on, views)
    one_batch(off, views)
    off.net_.load_state_dict(on.net_.state_dict())
    torch.manual_seed(0)
    loss_on, parts_on = on._calibration_loss(xs, _targets(len(xs[0])))
    torch.manual_seed(0)
    loss_off, parts_off = off._calibration_loss(xs, _targets(len(xs[0])))
    # L_IB is still measured (the same value) but has weight 0: it leaves the loss
    assert float(parts_off["ib"]) == pytest.approx(float(parts_on["ib"]), rel=1e-5) and float(parts_on["ib"]) != 0.0
    assert float(parts_on["loss"]) == pytest.approx(float(parts_on["ib"]) + on.alpha * float(parts_on["cal"]), rel=1e-5)
    assert float(parts_off["cal"]) == pytest.approx(float(parts_on["cal"]), rel=1e-5)
    assert float(loss_off.detach()) == pytest.approx(float(off.alpha * parts_off["cal"]), rel=1e-5)


def test_balance_weight_adds_the_negative_entropy_of_the_cluster_heads_batch_mean(views):
    model = make(calibrate={"balance_weight": 2.0})
    xs, _ = one_batch(model, views)
    _, parts = model._calibration_loss(xs, _targets(len(xs[0])))
    assert -math.log(C) - 1e-6 <= float(parts["balance"]) <= 0.0
    plain = {k: float(v) for k, v in parts.items() if k in ("caliH", "re", "cluH", "con")}
    assert float(parts["cal"]) == pytest.approx(sum(plain.values()) + 2.0 * float(parts["balance"]), rel=1e-5)
    paper = make()
    paper.net_, paper._mine_log_ema = model.net_, [None, None]
    assert "balance" not in paper._calibration_loss(xs, _targets(len(xs[0])))[1]


def test_batch_per_cluster_raises_stage_twos_batch_to_that_many_samples_per_cluster(views, monkeypatch):
    import mmib.methods.base as base_module
    import mmib.methods.clib.estimator as clib_module

    assert make().calibration_batch_size == 20  # 0 = the warm-up's batch
    assert make(calibrate={"batch_per_cluster": 2.0}).calibration_batch_size == 20  # 2 x 3 < 20
    model = make(calibrate={"batch_per_cluster": 12.5})
    assert model.calibration_batch_size == 38  # ceil(12.5 x 3)
    model.fit_warmup(views)
    sizes: list[tuple[str, int]] = []
    real = base_module._batches

    def recording(where):
        def draw(n, batch_size, gen):
            sizes.append((where, batch_size))
            return real(n, batch_size, gen)
        return draw

    monkeypatch.setattr(clib_module, "_batches", recording("cold start"))
    monkeypatch.setattr(base_module, "_batches", recording("epoch"))
    model.fit_calibration(views)
    # the cold start (cross-entropy, no batch-mean term) keeps warmup.batch_size; calibration uses the larger batch
    assert sorted(set(sizes)) == [("cold start", 20), ("epoch", 38)]


def test_caliH_reduction_mean_divides_eq7_by_the_number_of_views(views):
    s, m = make(), make(calibrate={"caliH_reduction": "mean"})
    xs, _ = one_batch(s, views)
    m.net_, m._mine_log_ema = s.net_, [None, None]
    s.net_.eval()  # no sampling noise or batch statistics between the two calls
    torch.manual_seed(0)
    a = s._calibration_loss(xs, _targets(len(xs[0])))[1]["caliH"]
    torch.manual_seed(0)
    b = m._calibration_loss(xs, _targets(len(xs[0])))[1]["caliH"]
    assert float(b) == pytest.approx(float(a) / 2, rel=1e-5)


@pytest.mark.parametrize("switch", [{"targets": "hungarian"}, {"pseudo_clusters": "spectral"},
                                    {"pseudo_clusters": "head"}, {"cold_start_clusters": "spectral"},
                                    {"cold_start_clusters": "spectral_views"}, {"screening_rank": "maxprob"}])
def test_stage_two_switches_train_and_change_the_model(views, switch):
    base = make().fit(views).predict_proba(views)
    other = make(calibrate=switch).fit(views).predict_proba(views)
    assert np.allclose(other.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(base, other)


def test_hungarian_targets_are_one_hot_rows_of_the_pseudo_clusters(views):
    model = make(calibrate={"targets": "hungarian"})
    model.fit_warmup(views)
    xs = [torch.from_numpy(v) for v in views]
    out = model._epoch_targets(xs, epoch=0)
    assert set(out["target"].unique().tolist()) == {0.0, 1.0}
    assert torch.all(out["target"].sum(dim=1) == 1)


def test_head_pseudo_clusters_average_the_cluster_head_over_its_own_argmax_groups(views):
    model = make(calibrate={"pseudo_clusters": "head"})
    model.fit_warmup(views)
    xs = [torch.from_numpy(v) for v in views]
    _, p_clu, _ = model._eval_outputs(xs)
    out = model._epoch_targets(xs, epoch=0)
    groups = p_clu.argmax(dim=1)
    for k in groups.unique():
        expected = p_clu[groups == k].mean(dim=0)
        assert torch.allclose(out["target"][groups == k], expected.expand(int((groups == k).sum()), -1), atol=1e-6)


def test_spectral_cold_start_fits_the_heads_to_a_normalized_cut_and_seeds_kmeans_with_its_means(views):
    from mmib.baselines import ncuts_predict

    model = make(calibrate={"cold_start_clusters": "spectral"})
    model.fit_warmup(views)
    fused = torch.from_numpy(model.transform(views))
    labels, inertia = model._pseudo_clusters(fused, salt=-1, mode="spectral")
    assert math.isnan(inertia)
    x = fused.numpy().astype(np.float64)
    assert np.array_equal(labels, ncuts_predict(x, C, (model.seed * 7919 - 1) % (2**31 - 1)))
    means = np.stack([x[labels == k].mean(axis=0) for k in range(C)])
    assert np.allclose(model._kmeans_centers, means)


def test_joint_features_give_each_block_unit_mean_squared_norm():
    from mmib.baselines import joint_features

    fused = np.array([[0.0, 2.0], [2.0, 0.0]])  # centred: +-[1, -1], squared norm 2 -> scale sqrt(2)
    views = [np.array([[1.0], [3.0]]), np.array([[5.0], [5.0]])]  # raw block centred: +-[1, 0], norm 1
    s = 1 / np.sqrt(2)
    expected = np.array([[-s, s, -1.0, 0.0], [s, -s, 1.0, 0.0]])
    assert np.allclose(joint_features(fused, views), expected)


def test_spectral_views_cold_start_cuts_fused_and_raw_views_and_keeps_centroids_in_fused_space(views):
    from mmib.baselines import joint_features, ncuts_predict

    model = make(calibrate={"cold_start_clusters": "spectral_views", "pseudo_clusters": "kmeans"})
    model.fit_warmup(views)
    fused = model.transform(views).astype(np.float64)
    xs = [torch.from_numpy(v) for v in views]
    model._cold_start(xs, torch.Generator().manual_seed(0), {})
    labels = ncuts_predict(joint_features(fused, views), C, (model.seed * 7919 - 1) % (2**31 - 1))
    means = np.stack([fused[labels == k].mean(axis=0) for k in range(C)])
    assert np.allclose(model._kmeans_centers, means, atol=1e-5)
    model.fit_calibration(views)  # per-epoch K-Means warm-starts from those centroids
    assert np.allclose(model.predict_proba(views).sum(axis=1), 1.0, atol=1e-5)


def test_screening_agreement_keeps_only_pairs_whose_label_is_the_cluster_heads_argmax(views):
    plain, agree = make(), make(calibrate={"screening_agreement": True})
    plain.fit_warmup(views)
    agree.net_, agree.device_, agree._kmeans_centers = plain.net_, plain.device_, None
    agree.trace_ = TrainingTrace()  # an unfitted CLIB has no fitted attributes (scikit-learn's convention)
    xs = [torch.from_numpy(v) for v in views]
    _, p_clu, _ = plain._eval_outputs(xs)
    a = plain._epoch_targets(xs, epoch=0)
    b = agree._epoch_targets(xs, epoch=0)
    head = p_clu.argmax(dim=1, keepdim=True)
    expected = a["selected"].bool() & (a["pseudo"] == head)
    assert torch.equal(b["selected"].bool(), expected)
    assert a["k_selected"] == b["k_selected"]  # K_m is Eq. 9's count; agreement only filters it


# ---------------------------------------------------------------- the recipes
def test_paper_reading_overrides_every_quality_switch_of_params_yaml():
    raw = parse_params(shipped_params()).model_dump()
    paper = apply_overrides(raw, PAPER_READING)
    assert paper["warmup"]["preservation"] == "mine"
    assert paper["calibrate"]["targets"] == "cluster_mean"
    switched = {o.split("=")[0] for o in PAPER_READING}
    new_fields = {f"warmup.{k}" for k in PAPER_WARMUP} | {f"calibrate.{k}" for k in PAPER_CALIBRATE}
    assert new_fields <= switched
    with pytest.raises(KeyError):
        apply_overrides(raw, ["warmup.no_such_switch=1"])


def test_recipe_label_tells_the_paper_reading_the_shipped_default_and_custom_runs():
    from mmib.recipes import recipe_label

    shipped = parse_params(shipped_params()).model_dump()
    paper = apply_overrides(shipped, PAPER_READING)
    assert recipe_label(paper, shipped) == "paper"
    assert recipe_label({"alpha": 0.5}, shipped) == "paper"  # a run from before the switches existed
    if shipped["warmup"]["preservation"] != "mine":  # the shipped recipe differs from the paper
        assert recipe_label(shipped, shipped) == "default"
    assert recipe_label(apply_overrides(paper, ["calibrate.balance_weight=0.5"]), shipped) == "custom"

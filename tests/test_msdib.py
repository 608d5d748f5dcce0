"""MSDIB (AAAI 2025): loss terms against hand-computed values, the loss assembly, and the estimator API.

Equation numbers refer to ``../shared/papers/MSDIB-AAAI2025-paper.md``; the open
choices follow ``../shared/docs/METHOD.md`` section 4. Every expected value is
worked out in a comment; loss tests use float64 so tolerances can be tight.
The estimator tests train a tiny 2-view 3-blob problem on the CPU (seconds).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pydantic
import pytest
import torch

from mmib.errors import InputError
from mmib.state_io import state_bytes
from mmib.methods.clib.losses import gaussian_kl
from mmib.methods.msdib import losses as L
from mmib.methods.msdib.estimator import LOSS_TERMS, STATE_FORMAT, MSDIB, MSDIBParams

D = torch.float64
LN2 = math.log(2.0)


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


def approx(x: float, rel: float = 1e-12, abs: float = 1e-12):
    return pytest.approx(x, rel=rel, abs=abs)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- IIC mutual information (Eq. 14-15)


def test_iic_identical_balanced_one_hot_is_log2():
    # a = b = one-hot of clusters (0, 1): P = sum_n a_n b_n^T = [[1,0],[0,1]] -> /2 = [[.5,0],[0,.5]]
    # marginals (.5, .5) both; I = 2 * .5 * log(.5 / (.5*.5)) = log 2
    # (the two empty cells are clamped at machine eps and add 2 eps log(4 eps) ~ -1.5e-14)
    a = t([[1.0, 0.0], [0.0, 1.0]])
    assert L.iic_mutual_information(a, a).item() == approx(LN2, abs=1e-13)


def test_iic_independent_assignments_is_zero():
    # a = clusters (0,0,1,1), b = (0,1,0,1): every pair once -> P = [[1,1],[1,1]] / 4
    # marginals (.5,.5): every cell log(.25 / .25) = 0 -> I = 0
    a = t([[1, 0], [1, 0], [0, 1], [0, 1]])
    b = t([[1, 0], [0, 1], [1, 0], [0, 1]])
    assert L.iic_mutual_information(a, b).item() == approx(0.0)


def test_iic_uniform_soft_assignments_is_zero():
    # every row (.5,.5): P = .25 everywhere, the product of its marginals -> I = 0
    a = t([[0.5, 0.5]] * 3)
    assert L.iic_mutual_information(a, a).item() == approx(0.0)


def test_iic_symmetrises_square_joints():
    # a = (0, 0), b = (1, 1): raw P = [[0,2],[0,0]]; symmetrised [[0,1],[1,0]], /2 -> [[0,.5],[.5,0]]
    # marginals (.5,.5): I = 2 * .5 * log(.5/.25) = log 2.
    # (Unsymmetrised it would be P = [[0,1],[0,0]], marginals (1,0),(0,1): I = 1 log(1/1) = 0.)
    a = t([[1, 0], [1, 0]])
    b = t([[0, 1], [0, 1]])
    torch.testing.assert_close(L.iic_joint(a, b), t([[0.0, 0.5], [0.5, 0.0]]), rtol=0, atol=1e-15)
    assert L.iic_mutual_information(a, b).item() == approx(LN2, abs=1e-13)


def test_iic_rectangular_joint_is_not_symmetrised():
    # a: 2 clusters, b: 3 clusters; samples (0->0), (1->1): P = [[.5,0,0],[0,.5,0]] (no transpose possible)
    # rows (.5,.5), cols (.5,.5,0 -> eps): I = 2 * .5 * log(.5/.25) = log 2 (+ O(eps log eps))
    a = t([[1, 0], [0, 1]])
    b = t([[1, 0, 0], [0, 1, 0]])
    torch.testing.assert_close(L.iic_joint(a, b), t([[0.5, 0, 0], [0, 0.5, 0]]), rtol=0, atol=1e-15)
    assert L.iic_mutual_information(a, b).item() == approx(LN2, abs=1e-13)


def test_feature_mi_applies_softmax_first():
    # h = rows (50, 0), (0, 50); shifted = h + 7. softmax ignores the shift: both are ~one-hot
    # (0), (1) (off-entries e^-50, clamped at eps), as the first test -> log 2 (to ~1e-14).
    # On the raw features the joint would be h^T shifted = [[2850, 350], [350, 2850]] / 6400,
    # marginals (.5, .5): I = 2 (2850/6400) log(2850/1600) + 2 (350/6400) log(350/1600) = 0.34794 != log 2.
    h = t([[50.0, 0.0], [0.0, 50.0]])
    shifted = h + 7.0
    assert L.feature_mutual_information(h, shifted).item() == approx(LN2, abs=1e-12)
    expected = L.iic_mutual_information(torch.softmax(h, 1), torch.softmax(shifted, 1))
    assert L.feature_mutual_information(h, shifted).item() == approx(expected.item())
    assert L.iic_mutual_information(h, shifted).item() == approx(0.347940555168, abs=1e-11)


def test_iic_rejects_mismatched_batches():
    with pytest.raises(ValueError):
        L.iic_joint(t([[1.0, 0.0]]), t([[1.0, 0.0], [0.0, 1.0]]))


# ---------------------------------------------------------------- DDC terms (Eq. 4; Kampffmeyer et al.)

A3 = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]  # n = 3 samples, C = 2 clusters


def test_ddc_orthogonality_hand_value():
    # A A^T = [[1,0,.5],[0,1,.5],[.5,.5,.5]]; strict upper triangle 0 + .5 + .5 = 1
    # 2 / (n (n-1)) = 2/6 -> 1/3
    assert L.ddc_orthogonality(t(A3)).item() == approx(1.0 / 3.0)


def test_cs_divergence_identity_kernel():
    # K = I: A^T A = [[1.25, .25], [.25, 1.25]]; .25 / sqrt(1.25 * 1.25) = .2; 2/(C(C-1)) = 1 -> 0.2
    assert L.cs_divergence(t(A3), torch.eye(3, dtype=D)).item() == approx(0.2)


def test_cs_divergence_fixed_kernel():
    # K = [[1,.5,0],[.5,1,0],[0,0,1]]; columns a1 = (1,0,.5), a2 = (0,1,.5)
    # K a1 = (1,.5,.5), K a2 = (.5,1,.5); a1 K a1 = 1.25, a2 K a2 = 1.25, a1 K a2 = .5 + .25 = .75
    # .75 / sqrt(1.25 * 1.25) = 0.6, times 2/(2*1) = 1 -> 0.6
    k = t([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert L.cs_divergence(t(A3), k).item() == approx(0.6)


def test_cs_divergence_three_clusters_normalisation():
    # C = 3, K = all ones: a_i^T K a_j = (sum a_i)(sum a_j) -> every ratio = 1; 3 pairs * 2/(3*2) = 1
    a = t([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    assert L.cs_divergence(a, torch.ones(2, 2, dtype=D)).item() == approx(1.0)


def test_simplex_memberships_hand_values():
    # m_ij = exp(-||a_i - e_j||^2): a = (1,0): j=0 -> exp(0) = 1, j=1 -> exp(-(1+1)) = e^-2
    # a = (.5,.5): ||a - e_j||^2 = .25 + .25 = .5 -> e^-.5 for both
    m = L.simplex_memberships(t([[1.0, 0.0], [0.5, 0.5]]))
    torch.testing.assert_close(m, t([[1.0, math.exp(-2)], [math.exp(-0.5), math.exp(-0.5)]]),
                               rtol=0, atol=1e-15)


def test_ddc_simplex_hand_value():
    # A = one-hot (0),(1), K = I: M = [[1, e^-2], [e^-2, 1]]; M^T M = [[1+e^-4, 2e^-2], [2e^-2, 1+e^-4]]
    # ratio 2e^-2 / (1 + e^-4) = 2 / (e^2 + e^-2) = 1/cosh(2) = 0.26580..., times 1
    value = L.ddc_simplex(t([[1.0, 0.0], [0.0, 1.0]]), torch.eye(2, dtype=D))
    assert value.item() == approx(1.0 / math.cosh(2.0))


def test_gaussian_kernel_median_bandwidth():
    # 1-D hidden points 0, 1, 3: squared distances [[0,1,9],[1,0,4],[9,4,0]]
    # sorted 9 entries 0,0,0,1,1,4,4,9,9 -> median 1 -> sigma^2 = .15 * 1
    # K_ij = exp(-d_ij / (2 * .15)) = exp(-d_ij / .3): K_01 = e^(-10/3), K_12 = e^(-40/3), K_02 = e^-30
    k = L.gaussian_kernel(t([[0.0], [1.0], [3.0]]))
    expected = t([[1.0, math.exp(-10 / 3), math.exp(-30)],
                  [math.exp(-10 / 3), 1.0, math.exp(-40 / 3)],
                  [math.exp(-30), math.exp(-40 / 3), 1.0]])
    torch.testing.assert_close(k, expected, rtol=1e-12, atol=1e-15)


def test_gaussian_kernel_bandwidth_is_detached():
    # sigma^2 is a constant for autograd: d/dx exp(-x^2 / (2 s)) at the pair (0, x)
    # with s fixed = .15 * median; if s were differentiated the gradient would differ.
    x = t([[0.0], [1.0], [3.0]]).requires_grad_(True)
    L.gaussian_kernel(x)[0, 1].backward()
    # K_01 = exp(-(x1 - x0)^2 / .3): dK/dx1 = -2 (x1 - x0) / .3 * K_01 = -(20/3) e^(-10/3)
    assert x.grad[1, 0].item() == approx(-(20.0 / 3.0) * math.exp(-10 / 3))


def test_ddc_terms_sum():
    a = torch.softmax(t([[2.0, 0.0], [0.0, 1.0], [0.5, 0.4], [1.0, -1.0]]), dim=1)
    hidden = t([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [2.0, 1.0]])
    terms = L.ddc_terms(a, hidden)
    kernel = L.gaussian_kernel(hidden)
    assert terms["ddc_cs"].item() == approx(L.cs_divergence(a, kernel).item())
    assert terms["ddc_orth"].item() == approx(L.ddc_orthogonality(a).item())
    assert terms["ddc_simplex"].item() == approx(L.ddc_simplex(a, kernel).item())
    assert terms["ddc"].item() == approx((terms["ddc_cs"] + terms["ddc_orth"] + terms["ddc_simplex"]).item())


# ---------------------------------------------------------------- L_IC, L_IP and Eq. 1


def test_compression_terms_hand_value():
    # two views, one sample each; KL_1 = 0 (mu 0, lv 0); KL_2 = .5 * 1^2 = .5 -> mean .25
    # inter-view MI of one sample seen identically by both views (features h = (1, 0)):
    # P = u u^T with u = softmax(h) is symmetric, rank one and equals the product of its
    # marginals u, u -> I = 0; (1/M) * 0 = 0. (Two *different* single rows u != v would not
    # give 0: the symmetrised (u v^T + v u^T)/2 is no longer a product of its marginals.)
    mus = [t([[0.0, 0.0]]), t([[1.0, 0.0]])]
    lvs = [t([[0.0, 0.0]]), t([[0.0, 0.0]])]
    kl, mi = L.compression_terms(mus, lvs, [mus[1], mus[1]])
    assert kl.item() == approx(0.25)
    assert mi.item() == approx(0.0)
    # L_IC = kl_weight * KL + MI = .1 * .25 + 0
    assert L.compression_loss(kl, mi, 0.1).item() == approx(0.025)


def test_compression_divides_pair_sum_by_m():
    # M = 3 views with ~one-hot softmax features, identical across views: each pair I ~ log 2,
    # 3 pairs -> sum 3 log 2, divided by M = 3 -> log 2
    h = t([[60.0, 0.0], [0.0, 60.0]])
    _, mi = L.compression_terms([h] * 3, [torch.zeros_like(h)] * 3, [h] * 3)
    assert mi.item() == approx(LN2, abs=1e-12)


def test_preservation_sums_over_views():
    # 2 views, features and assignments identical to the fused ones, ~one-hot balanced:
    # sum_m I(H^m; H^s) = 2 log 2, sum_m I(Y^m; Y^s) = 2 log 2 (sums, METHOD.md 4)
    h = t([[60.0, 0.0], [0.0, 60.0]])
    y = t([[1.0, 0.0], [0.0, 1.0]])
    mi_feat, mi_assign = L.preservation_terms([h, h], h, [y, y], y)
    assert mi_feat.item() == approx(2 * LN2, abs=1e-12)
    assert mi_assign.item() == approx(2 * LN2, abs=1e-12)


# ---------------------------------------------------------------- estimator

N_PER, C, LATENT = 30, 3, 4
N = N_PER * C
EPOCHS = 3


def small_config(**over) -> MSDIBParams:
    base = dict(epochs=EPOCHS, batch_size=32, lr=1e-2, alpha=0.3, beta=0.7, kl_weight=0.01,
                latent_dim=LATENT, encoder_width=16, ddc_hidden=8, grad_clip=5.0)
    base.update(over)
    return MSDIBParams(**base)


def make(seed: int = 0, **over) -> MSDIB:
    return MSDIB(C, config=small_config(**over), seed=seed, device="cpu", progress=False)


@pytest.fixture(scope="module")
def views(blobs) -> list[np.ndarray]:
    """Three Gaussian blobs seen through two views (4 and 3 features)."""
    return blobs(N_PER, C)[0]


@pytest.fixture(scope="module")
def fitted(views) -> MSDIB:
    return make().fit(views)


def test_loss_assembly_on_one_batch(views):
    """total == ddc - alpha * ip + beta * ic, each term recomputed independently from the same batch."""
    model = make().fit_warmup(views)
    net = model.net_
    net.train()
    xb = [torch.from_numpy(v[:32]) for v in views]
    torch.manual_seed(123)
    loss, parts = model._batch_loss(xb)
    torch.manual_seed(123)  # same reparameterisation noise
    with torch.no_grad():
        enc = net.encode(xb, sample=True)
        logits, hidden = net.fused_head(enc.fused)
        ys = torch.softmax(logits, 1)
        yv = [torch.softmax(head(h)[0], 1) for head, h in zip(net.view_heads, enc.hs)]
        ddc = sum(L.ddc_terms(ys, hidden)[k] for k in ("ddc_cs", "ddc_orth", "ddc_simplex"))
        kl = 0.5 * (gaussian_kl(enc.mus[0], enc.logvars[0]) + gaussian_kl(enc.mus[1], enc.logvars[1]))
        sm = [torch.softmax(h, 1) for h in enc.hs]
        ic = 0.01 * kl + 0.5 * L.iic_mutual_information(sm[0], sm[1])      # M = 2: (1/M) * one pair
        fs = torch.softmax(enc.fused, 1)
        ip = sum(L.iic_mutual_information(s, fs) for s in sm) + sum(L.iic_mutual_information(y, ys) for y in yv)
    tol = dict(rel=1e-5, abs=1e-6)
    assert parts["ddc"].item() == pytest.approx(ddc.item(), **tol)
    assert parts["l_ic"].item() == pytest.approx(ic.item(), **tol)
    assert parts["l_ip"].item() == pytest.approx(ip.item(), **tol)
    expected = ddc - 0.3 * ip + 0.7 * ic
    assert loss.item() == pytest.approx(expected.item(), **tol)
    assert parts["total"].item() == pytest.approx(loss.item(), rel=0, abs=0)
    # the parts are detached, the loss is not
    assert loss.requires_grad and not parts["total"].requires_grad


def test_predict_proba_rows_are_distributions(fitted, views):
    p = fitted.predict_proba(views)
    assert p.shape == (N, C)
    assert np.all(p >= 0.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(fitted.predict(views), p.argmax(axis=1))
    assert fitted.transform(views).shape == (N, LATENT)
    assert fitted.fusion_weights().sum() == pytest.approx(1.0, abs=1e-6)


def test_history_has_every_term(fitted):
    assert fitted.stages_done_ == ["warmup", "calibrate"]
    assert fitted.history_["warmup"] == {}
    hist = fitted.history_["calibrate"]
    for key in (*LOSS_TERMS, "fusion_w_view0", "fusion_w_view1", "epoch_seconds"):
        assert len(hist[key]) == EPOCHS and np.isfinite(hist[key]).all(), key
    assert hist["loss"] == hist["total"]
    # per-epoch means keep the assembly: total = ddc - alpha ip + beta ic
    for e in range(EPOCHS):
        assert hist["total"][e] == pytest.approx(hist["ddc"][e] - 0.3 * hist["l_ip"][e] + 0.7 * hist["l_ic"][e],
                                                 rel=1e-5, abs=1e-6)


def test_same_seed_is_bit_identical_on_cpu(fitted, views):
    again = make().fit_predict(views, y=np.zeros(N))  # y is ignored
    np.testing.assert_array_equal(again, fitted.predict(views))
    twin = make().fit(views)
    assert np.array_equal(twin.predict_proba(views), fitted.predict_proba(views))
    assert twin.history_["calibrate"]["loss"] == fitted.history_["calibrate"]["loss"]
    other = make(seed=1).fit(views)
    assert not np.array_equal(other.predict_proba(views), fitted.predict_proba(views))


def _roundtrip(state: dict) -> dict:
    """Through the pipeline's state files: checked plain values, loaded with weights_only=True."""
    return torch.load(io.BytesIO(state_bytes(state)), weights_only=True)


def test_state_round_trip_gives_identical_predictions(fitted, views):
    state = _roundtrip(fitted.state())
    assert state["format"] == STATE_FORMAT
    loaded = make().load_state(state)
    assert np.array_equal(loaded.predict_proba(views), fitted.predict_proba(views))
    assert loaded.history_ == fitted.saved_history()  # the timings stay out of the state
    assert loaded.stages_done_ == ["warmup", "calibrate"]


def test_two_stage_pipeline_path_equals_fit(fitted, views):
    """fit_warmup -> state -> (new process) load_state -> fit_calibration equals one fit()."""
    warm = _roundtrip(make().fit_warmup(views).state())
    resumed = make().load_state(warm).fit_calibration(views)
    assert np.array_equal(resumed.predict_proba(views), fitted.predict_proba(views))


def test_input_errors(views):
    with pytest.raises(InputError, match="calibration|built"):
        make().fit_calibration(views)
    with pytest.raises(InputError, match="at least two"):
        make().fit(views[:1])
    with pytest.raises(InputError, match="n_clusters"):
        MSDIB(1, config=small_config()).fit(views)
    with pytest.raises(InputError, match="not an MSDIB state"):
        make().load_state({"format": "mmib-clib-1"})
    warm = make().fit_warmup(views).state()
    with pytest.raises(InputError, match="latent_dim"):
        make(latent_dim=LATENT + 1).load_state(warm)
    with pytest.raises(InputError, match="widths"):
        make().load_state(warm).predict_proba([views[0][:, :3], views[1]])


def test_params_have_no_defaults_and_paper_values():
    with pytest.raises(pydantic.ValidationError):
        MSDIBParams()
    with pytest.raises(pydantic.ValidationError):
        small_config(unknown=1)
    p = MSDIBParams.paper_defaults()
    # paper, "Implementation Details": 100 epochs, batch 100, Adam lr 1e-4; alpha/beta not published
    assert (p.epochs, p.batch_size, p.lr, p.alpha, p.beta) == (100, 100, 1e-4, 0.5, 0.5)
    assert (p.latent_dim, p.encoder_width, p.ddc_hidden) == (256, 512, 100)

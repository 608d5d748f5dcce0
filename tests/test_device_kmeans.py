"""K-Means on the device (issue "Speed", item 3): :mod:`mmib.methods.clib.device_kmeans` against
scikit-learn from the same centres, batched seeds against single calls, k-means++ restarts, and
CLIB's ``calibrate.kmeans_backend`` switch (CPU, seconds; the CUDA checks run where there is one).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mmib.config import ModelParams, parse_params
from mmib.errors import InputError
from mmib.methods.clib import defaults as shipped
from mmib.methods.clib.device_kmeans import kmeans
from mmib.methods.clib.estimator import CLIB
from mmib.methods.clib.seed_batch import fit_warmup_batched
from mmib.state_io import state_bytes
from shipped_params import shipped_params
from switches import PAPER_CALIBRATE

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


# ---------------------------------------------------------------- data with sklearn's start
def _separated() -> tuple[np.ndarray, np.ndarray]:
    x, _, centres = make_blobs(300, 5, centers=4, cluster_std=0.5, random_state=0, return_centers=True)
    return x, centres + np.random.default_rng(0).normal(scale=0.5, size=centres.shape)


def _overlapping() -> tuple[np.ndarray, np.ndarray]:
    x, _ = make_blobs(400, 6, centers=5, cluster_std=4.0, random_state=1)
    return x, x[np.random.default_rng(1).choice(len(x), 5, replace=False)]


def _empty_cluster() -> tuple[np.ndarray, np.ndarray]:
    """A bad start: the third centre is far from every point, so its cluster is empty at once."""
    x, _ = make_blobs(300, 2, centers=3, cluster_std=0.5, random_state=0)
    return x, np.array([x[0], x[0] + 1e-3, [100.0, 100.0]])


DATASETS = {"separated": _separated, "overlapping": _overlapping, "empty_cluster": _empty_cluster}


def _torch(x: np.ndarray, init: np.ndarray, **kw):
    return kmeans(torch.from_numpy(x)[None], init=torch.from_numpy(init)[None], **kw)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_warm_start_matches_sklearn_from_the_same_centres(name):
    x, init = DATASETS[name]()
    ref = KMeans(len(init), init=init, n_init=1).fit(x)
    got = _torch(x, init)
    assert got.labels.shape == (1, len(x)) and got.labels.dtype == torch.int64
    assert np.array_equal(got.labels[0].numpy(), ref.labels_)
    assert float(got.inertia[0]) == pytest.approx(ref.inertia_, rel=1e-6)
    np.testing.assert_allclose(got.centers[0].numpy(), ref.cluster_centers_, rtol=0, atol=1e-6)
    assert int(got.n_iter[0]) == ref.n_iter_  # the same iterations: sklearn's relative tol and stopping rule


def test_the_bad_start_does_empty_a_cluster_and_it_is_relocated():
    x, init = _empty_cluster()
    first = ((x[:, None] - init[None]) ** 2).sum(-1).argmin(1)
    assert 2 not in first  # the start leaves cluster 2 empty
    got = _torch(x, init)
    assert len(np.unique(got.labels[0].numpy())) == 3


def test_a_capped_run_ends_with_the_labels_of_its_centres_as_sklearn():
    x, init = _overlapping()
    ref = KMeans(5, init=init, n_init=1, max_iter=2, tol=0.0).fit(x)
    got = _torch(x, init, max_iter=2, tol=0.0)
    assert int(got.n_iter[0]) == ref.n_iter_ == 2
    assert np.array_equal(got.labels[0].numpy(), ref.labels_)
    assert float(got.inertia[0]) == pytest.approx(ref.inertia_, rel=1e-6)
    centres = got.centers[0].numpy()
    assert np.array_equal(((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1), got.labels[0].numpy())


def test_the_tolerance_is_relative_to_the_data_and_stops_where_sklearns_does():
    x, init = _overlapping()
    x, init = 30.0 * x, 30.0 * init  # a large variance: an absolute tol would stop much later
    strict = KMeans(5, init=init, n_init=1, tol=0.0).fit(x)
    ref = KMeans(5, init=init, n_init=1, tol=1e-2).fit(x)
    assert ref.n_iter_ < strict.n_iter_  # the tolerance, not label convergence, stopped it
    got = _torch(x, init, tol=1e-2)
    assert int(got.n_iter[0]) == ref.n_iter_
    assert np.array_equal(got.labels[0].numpy(), ref.labels_)
    np.testing.assert_allclose(got.centers[0].numpy(), ref.cluster_centers_, rtol=0, atol=1e-6)


def test_float32_stays_float32_and_on_its_device():
    x, init = _separated()
    got = kmeans(torch.from_numpy(x).float()[None], init=torch.from_numpy(init)[None])
    assert got.centers.dtype == torch.float32 and got.centers.device == torch.device("cpu")
    assert adjusted_rand_score(got.labels[0].numpy(), KMeans(4, init=init, n_init=1).fit(x).labels_) == 1.0


# ---------------------------------------------------------------- batched seeds
def _three() -> tuple[torch.Tensor, torch.Tensor]:
    data = [make_blobs(250, 8, centers=5, cluster_std=2.0 + s, random_state=s) for s in range(3)]
    x = torch.from_numpy(np.stack([d[0] for d in data]))
    init = torch.stack([x[s, torch.randperm(250, generator=torch.Generator().manual_seed(s))[:5]] for s in range(3)])
    return x, init


def test_three_seeds_in_one_call_equal_three_single_calls():
    x, init = _three()
    together = kmeans(x, init=init, tol=1e-2)  # a loose tol: a seed stopped early must stay stopped
    for s in range(3):
        alone = kmeans(x[s:s + 1], init=init[s:s + 1], tol=1e-2)
        assert torch.equal(together.labels[s], alone.labels[0])
        torch.testing.assert_close(together.centers[s], alone.centers[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(together.inertia[s], alone.inertia[0], rtol=1e-12, atol=0)
        assert together.n_iter[s] == alone.n_iter[0]
    assert len(set(together.n_iter.tolist())) > 1  # the seeds stopped at different iterations


def test_kmeans_plusplus_seeds_in_one_call_equal_single_calls():
    x, _ = _three()
    gens = [torch.Generator().manual_seed(100 + s) for s in range(3)]
    together = kmeans(x, 5, generator=gens, n_init=4)
    for s in range(3):
        alone = kmeans(x[s:s + 1], 5, generator=torch.Generator().manual_seed(100 + s), n_init=4)
        assert torch.equal(together.labels[s], alone.labels[0])
        torch.testing.assert_close(together.restart_inertia[s], alone.restart_inertia[0], rtol=1e-12, atol=0)


# ---------------------------------------------------------------- k-means++
def test_kmeans_plusplus_is_deterministic_per_generator_and_keeps_the_best_restart():
    x, _ = _overlapping()
    xt = torch.from_numpy(x)[None]
    a = kmeans(xt, 5, generator=torch.Generator().manual_seed(7), n_init=10)
    b = kmeans(xt, 5, generator=torch.Generator().manual_seed(7), n_init=10)
    c = kmeans(xt, 5, generator=torch.Generator().manual_seed(8), n_init=10)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centers, b.centers)
    assert not torch.equal(a.restart_inertia, c.restart_inertia)  # another seed, other draws
    assert a.restart_inertia.shape == (1, 10)
    assert bool((a.restart_inertia >= a.inertia.unsqueeze(1) * (1 - 1e-12)).all())
    assert float(a.restart_inertia.max()) > float(a.inertia[0])  # the restarts differ; the best won
    sk = KMeans(5, n_init=10, random_state=7).fit(x)  # other draws, a comparable optimum
    assert float(a.inertia[0]) <= sk.inertia_ * 1.01


def test_kmeans_plusplus_finds_well_separated_clusters():
    x, _ = _separated()
    got = kmeans(torch.from_numpy(x)[None], 4, generator=torch.Generator().manual_seed(0), n_init=3)
    assert adjusted_rand_score(got.labels[0].numpy(), KMeans(4, n_init=3, random_state=0).fit(x).labels_) == 1.0


def test_bad_arguments_are_input_errors():
    x = torch.zeros(1, 5, 2)
    with pytest.raises(InputError, match="clusters"):
        kmeans(x, 6, generator=torch.Generator())
    with pytest.raises(InputError) as exc:
        kmeans(x, init=torch.zeros(2, 3, 2))
    assert exc.value.field == "init"
    with pytest.raises(InputError) as exc:
        kmeans(x, 2)
    assert exc.value.field == "generator"
    with pytest.raises(InputError):
        kmeans(torch.zeros(5, 2), 2, generator=torch.Generator())


# ---------------------------------------------------------------- CLIB's switch
C = 3


def make(backend: str, seed: int = 0, **calibrate) -> CLIB:
    """The paper's K-Means everywhere (cold start, per-epoch Q_c, warm-up trace) at toy widths."""
    return CLIB(C, model=ModelParams(latent_dim=4, encoder_width=16, head_width=16, mine_width=16),
                warmup=shipped.WARMUP.model_copy(update={"epochs": 3, "batch_size": 16, "lr": 1e-2}),
                calibrate=shipped.CALIBRATE.model_copy(update={
                    **PAPER_CALIBRATE, "epochs": 2, "cold_start_epochs": 1, "kmeans_n_init": 3,
                    "kmeans_backend": backend, **calibrate}),
                seed=seed, device="cpu", progress=False)


@pytest.fixture(scope="module")
def views(blobs) -> list[np.ndarray]:
    return blobs(20, C, scale=6.0, seed=2, dims=(5, 3))[0]


@pytest.fixture(scope="module")
def sklearn_fit(views) -> CLIB:
    return make("sklearn").fit(views)


def test_auto_on_the_cpu_is_the_sklearn_path_bit_for_bit(views, sklearn_fit):
    auto = make("auto").fit(views)
    assert auto._kmeans_backend() == "sklearn"
    assert np.array_equal(auto.predict_proba(views), sklearn_fit.predict_proba(views))
    assert state_bytes(auto.state()) == state_bytes(sklearn_fit.state())


def test_torch_on_the_cpu_trains_and_partitions_as_the_sklearn_path(views, sklearn_fit):
    model = make("torch").fit(views)
    assert model._kmeans_backend() == "torch"
    assert torch.is_tensor(model._trace_centers) and torch.is_tensor(model._kmeans_centers)
    assert model._kmeans_centers.dtype == torch.float64 and model._kmeans_centers.shape == (C, 4)
    # the warm-up trains the same network either way: only the trace's K-Means differs
    assert len(model.trace_.warmup) == 3
    for ours, theirs in zip(model.trace_.warmup, sklearn_fit.trace_.warmup):
        assert ours.dtype == theirs.dtype and adjusted_rand_score(ours, theirs) >= 0.95
    # calibration's first K-Means sees the same features too (the cold start trains the heads only)
    inertia = model.history_["calibrate"]["kmeans_inertia"]
    assert len(inertia) == 2 and all(isinstance(v, float) and v > 0 for v in inertia)
    assert inertia[0] == pytest.approx(sklearn_fit.history_["calibrate"]["kmeans_inertia"][0], rel=1e-4)
    assert np.allclose(model.predict_proba(views).sum(axis=1), 1.0, atol=1e-5)
    restored = make("torch").load_state(model.state())  # centres are not state: the load starts afresh
    assert restored._kmeans_centers is None and np.array_equal(restored.predict(views), model.predict(views))


def test_cluster_means_of_a_tensor_equal_those_of_the_array(sklearn_fit, views):
    x = sklearn_fit.transform(views).astype(np.float64)
    labels = np.array([0] * 30 + [2] * 30)  # cluster 1 empty: row 1 stands in
    want = sklearn_fit._cluster_means(x, labels)
    got = sklearn_fit._cluster_means(torch.from_numpy(x), torch.from_numpy(labels))
    assert torch.is_tensor(got)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")
def test_spectral_cold_start_hands_the_torch_kmeans_device_centres(views):
    model = make("torch", cold_start_clusters="spectral_views").fit(views)
    assert torch.is_tensor(model._kmeans_centers)
    assert np.allclose(model.predict_proba(views).sum(axis=1), 1.0, atol=1e-5)


def test_stacked_seeds_run_one_kmeans_and_each_seed_gets_its_own_result(views):
    alone = fit_warmup_batched([make("torch", seed=3)], views)[0]
    among = fit_warmup_batched([make("torch", seed=s) for s in range(5)], views)[3]
    assert len(alone.trace_.warmup) == 3
    for a, b in zip(alone.trace_.warmup, among.trace_.warmup):
        assert np.array_equal(a, b)
    torch.testing.assert_close(alone._trace_centers, among._trace_centers, rtol=0, atol=1e-12)
    assert state_bytes(alone.state()) == state_bytes(among.state())


def test_the_backend_is_validated_by_name():
    raw = copy.deepcopy(shipped_params())
    assert raw["calibrate"]["kmeans_backend"] == "auto" == shipped.CALIBRATE.kmeans_backend
    raw["calibrate"]["kmeans_backend"] = "gpu"
    with pytest.raises(InputError) as exc:
        parse_params(raw)
    assert exc.value.field == "calibrate.kmeans_backend"
    assert "sklearn" in exc.value.fix and "torch" in exc.value.fix


# ---------------------------------------------------------------- on a GPU
@CUDA
def test_on_cuda_the_result_stays_on_the_device_and_matches_sklearn():
    x, init = _overlapping()
    xt, it = torch.from_numpy(x).cuda()[None], torch.from_numpy(init).cuda()[None]
    kmeans(xt, init=it)  # CUDA context and kernels loaded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            got = kmeans(xt, init=it)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert 1 <= len(syncs) <= int(got.n_iter.max())  # the convergence check, once per Lloyd iteration
    assert got.labels.is_cuda and got.centers.is_cuda and got.inertia.is_cuda
    ref = KMeans(5, init=init, n_init=1).fit(x)
    assert np.array_equal(got.labels[0].cpu().numpy(), ref.labels_)
    np.testing.assert_allclose(got.centers[0].cpu().numpy(), ref.cluster_centers_, rtol=0, atol=1e-6)


@CUDA
def test_auto_on_cuda_is_the_torch_backend(views):
    model = make("auto")
    model.device = "cuda"
    model.fit(views)
    assert model._kmeans_backend() == "torch" and model._kmeans_centers.is_cuda and model._trace_centers.is_cuda
    assert len(model.trace_.warmup) == 3

"""Seconds per warm-started K-Means: scikit-learn (as CLIB calls it) against the torch backend.

    PYTHONPATH=src python benchmarks/kmeans_speed.py [--repeats 7] [--seeds 5]

CLIB runs a K-Means of the fused features h^f after every warm-up epoch (the
trace) and, with ``pseudo_clusters: kmeans``, before every calibration epoch,
warm-started from the previous epoch's centres. This times one such call on
features shaped like mfeat's (2000 x 256, K = 10) and Caltech-2V's
(1400 x 256, K = 7): overlapping Gaussian blobs of unequal sizes (sklearn's
partition from the start agrees with the blobs at ARI ~0.8), float32 like h^f;
the start is the true centres slightly perturbed (the last epoch's centres,
nearly right: 5-10 Lloyd iterations).

Paths, from the float32 features to the labels (conversions included):

- sklearn: ``.cpu().numpy().astype(float64)`` then ``KMeans(init=centres,
  n_init=1)``, as ``CLIB._kmeans`` calls it; R seeds = R calls in a row;
- torch: ``device_kmeans.kmeans`` in float64 on the features' device; R
  seeds = one batched call (the stacked warm-up's trace);
- on CUDA when there is one (synchronised before the clock stops).

Each at one thread (torch's ``set_num_threads(1)``, sklearn's OpenMP and BLAS held
to 1 by threadpoolctl) and at every core. The stages' seed workers run torch on
one thread but leave sklearn's threads alone: today's stage runs the sklearn
rows at every core, beside the other seeds' workers. The median of
``--repeats`` runs after one untimed run. Also the first epoch's fit, not
warm-started: ``kmeans_n_init`` = 10 k-means++ restarts (its iterations: the
best restart's; torch's batched restarts run until the slowest converges).
Every torch row checks itself against sklearn: from the same start, the share
of seeds whose labels equal sklearn's; k-means++ draws other random numbers,
so there the ratio of the inertias.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mmib.methods.clib.device_kmeans import kmeans  # noqa: E402

SHAPES = {"mfeat": (2000, 256, 10), "caltech_2v": (1400, 256, 7)}


def features(n: int, d: int, k: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Blobs + noise (float32, like h^f) and a warm start: the true centres, slightly perturbed."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.0, size=(k, d))
    sizes = rng.multinomial(n, rng.dirichlet(np.full(k, 5.0)))  # unequal clusters
    y = np.repeat(np.arange(k), sizes)
    x = centres[y] + rng.normal(scale=5.0, size=(n, d)) * rng.uniform(0.6, 1.4, size=(1, d))  # overlapping
    start = centres + rng.normal(scale=0.3, size=centres.shape)
    return torch.from_numpy(x.astype(np.float32)), start


def clock(fn, repeats: int, sync=lambda: None) -> tuple[float, object]:
    out = fn()  # untimed: allocations, kernels, caches
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def sklearn_fits(xs: list[torch.Tensor], starts: list[np.ndarray] | None, k: int) -> list[KMeans]:
    fits = []
    for s, x in enumerate(xs):
        x64 = x.detach().cpu().numpy().astype(np.float64)
        if starts is None:
            fits.append(KMeans(k, n_init=10, random_state=s).fit(x64))
        else:
            fits.append(KMeans(k, init=starts[s], n_init=1, random_state=s).fit(x64))
    return fits


def torch_fit(xs: list[torch.Tensor], starts: torch.Tensor | None, k: int):
    """As ``mmib.methods.clib.estimator.batched_kmeans``: the R features stacked, float64, where they are;
    the starts (R x K x D) already there (the model keeps the last epoch's centres on the device)."""
    x = torch.stack(xs).to(torch.float64)
    if starts is None:
        gens = [torch.Generator(device=x.device).manual_seed(s) for s in range(len(xs))]
        return kmeans(x, k, generator=gens, n_init=10)
    return kmeans(x, init=starts)


def agreement(fit, refs: list[KMeans], warm: bool) -> str:
    """Warm start: how many seeds' partitions equal sklearn's from the same start. k-means++ draws
    other numbers than sklearn's, so on overlapping blobs the local optima differ: the inertia ratio."""
    if warm:
        labels = fit.labels.cpu().numpy()
        return f"same labels {sum(np.array_equal(a, r.labels_) for a, r in zip(labels, refs))}/{len(refs)}"
    ratios = fit.inertia.cpu().numpy() / np.array([r.inertia_ for r in refs])
    return f"inertia / sklearn's {ratios.min():.4f}-{ratios.max():.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seeds", type=int, default=5, help="R of the batched rows")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    cuda = torch.cuda.is_available()
    print(f"# {platform.machine()} CPU, {cores} cores, torch {torch.__version__}, "
          f"CUDA: {torch.cuda.get_device_name() if cuda else 'none'}; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"# median of {args.repeats} runs; seconds per call, and per seed (call / R)")
    print("| data | fit | path | threads | R | s / call | s / seed | iterations | check |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (n, d, k) in SHAPES.items():
        data = [features(n, d, k, seed=100 * s + k) for s in range(args.seeds)]
        xs = [x for x, _ in data]
        for warm in (True, False):
            starts = [s for _, s in data] if warm else None
            fit_name = "warm start" if warm else "k-means++ x10"
            for threads in sorted({1, cores}):
                torch.set_num_threads(threads)
                with threadpool_limits(threads):
                    for r in (1, args.seeds):
                        sub = starts[:r] if warm else None
                        t_sk, refs = clock(lambda: sklearn_fits(xs[:r], sub, k), args.repeats)
                        iters = "/".join(str(f.n_iter_) for f in refs)
                        print(f"| {name} | {fit_name} | sklearn (float64) | {threads} | {r} | {t_sk:.4f} | "
                              f"{t_sk / r:.4f} | {iters} | |")
                        init = None if sub is None else torch.from_numpy(np.stack(sub))
                        t_t, fit = clock(lambda: torch_fit(xs[:r], init, k), args.repeats)
                        print(f"| {name} | {fit_name} | torch cpu (float64) | {threads} | {r} | {t_t:.4f} | "
                              f"{t_t / r:.4f} | {'/'.join(map(str, fit.n_iter.tolist()))} | "
                              f"{agreement(fit, refs, warm)}; sklearn / torch {t_sk / t_t:.2f}x |")
            if cuda:
                dev = torch.device("cuda")
                on_dev = [x.to(dev) for x in xs]
                for r in (1, args.seeds):
                    sub = starts[:r] if warm else None
                    refs = sklearn_fits(xs[:r], sub, k)
                    init = None if sub is None else torch.from_numpy(np.stack(sub)).to(dev)
                    t_c, fit = clock(lambda: torch_fit(on_dev[:r], init, k), args.repeats, torch.cuda.synchronize)
                    print(f"| {name} | {fit_name} | torch cuda (float64) | - | {r} | {t_c:.4f} | {t_c / r:.4f} | "
                          f"{'/'.join(map(str, fit.n_iter.tolist()))} | {agreement(fit, refs, warm)} |")
    print(f"# load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""What one warm-up training step spends its time on: today's per-seed step and the stacked step of R seeds.

    PYTHONPATH=src python benchmarks/step_profile.py [--dataset mfeat] [--seeds 5]

One thread, params.yaml's recipe. For each path: the step's wall time and its
phases (forward, backward, gradient clipping, Adam; timed without the
profiler), the number of top-level aten ops per step, and ``torch.profiler``'s
split of the op time into GEMMs, Adam, clipping, BatchNorm, gathering / noise /
copies and the other ops. The profiler adds its own overhead per op, so its
milliseconds exceed the plain timing; read its shares, not its totals.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

GEMM = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
CLIP = {"aten::linalg_vector_norm", "aten::mul_"}
MOVES = {"aten::copy_", "aten::index", "aten::cat", "aten::stack", "aten::normal_"}


def category(name: str) -> str:
    if name in GEMM:
        return "gemm"
    if name == "aten::_fused_adam_":
        return "adam"
    if "batch_norm" in name:
        return "batchnorm"
    if name in CLIP:
        return "norm / mul_ (clip)"
    if name in MOVES:
        return "copy / gather / noise"
    return "other ops"


def report(label: str, phases, r: int, n: int = 20) -> None:
    """Time ``phases`` (forward, backward, clip, adam callables for step i) and profile them."""
    def step(i: int, times: list | None = None) -> None:
        marks = [time.perf_counter()]
        state = phases["forward"](i)
        marks.append(time.perf_counter())
        phases["backward"](state)
        marks.append(time.perf_counter())
        phases["clip"]()
        marks.append(time.perf_counter())
        phases["adam"]()
        marks.append(time.perf_counter())
        if times is not None:
            times.append([b - a for a, b in zip(marks, marks[1:])])

    for i in range(3):
        step(i)
    times: list = []
    for i in range(3, 3 + n):
        step(i, times)
    mean = [sum(t[k] for t in times) / n * 1e3 for k in range(4)]
    wall = sum(mean)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(3 + n, 3 + 2 * n):
            step(i)
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    shares: collections.Counter = collections.Counter()
    for e in events:
        shares[category(e.name)] += e.self_cpu_time_total
    total = sum(shares.values())
    print(f"{label}: step {wall:.1f} ms ({wall / r:.1f} ms per seed): forward {mean[0]:.1f}, backward {mean[1]:.1f}, "
          f"clip {mean[2]:.1f}, Adam {mean[3]:.1f}; {len(top) / n:.0f} top-level aten ops per step "
          f"({len(top) / n / r:.0f} per seed); profiler split:")
    for name, value in shares.most_common():
        print(f"    {name:<22} {100 * value / total:5.1f}%")


def main() -> None:
    from epoch_speed import load_views
    from seed_speed import short_params

    from mmib.methods.clib import seed_batch, stacked
    from mmib.config import load_params
    from mmib.methods.base import _adam
    from mmib.methods.clib.estimator import CLIB

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mfeat")
    ap.add_argument("--seeds", type=int, default=5, help="R of the stacked step")
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = short_params(load_params(ROOT / "params.yaml"), 0)
    views, n_clusters = load_views(args.dataset)
    xs = [torch.from_numpy(v) for v in views]
    n, b = xs[0].shape[0], params.warmup.batch_size
    gen = torch.Generator().manual_seed(0)
    rows = [torch.randperm(n, generator=gen)[:b] for _ in range(100)]

    model = CLIB.from_params(params, n_clusters, seed=0, progress=False).fit_warmup(views)  # 0 epochs: built
    net = model.net_
    net.train()
    opt = _adam(net.ib_parameters(), params.warmup.lr, 0.0)

    def forward(i: int):
        xb = [x[rows[i % 100]] for x in xs]
        return model._ib_loss(xb, net.encode(xb, sample=True))[0]

    def backward(loss) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()

    report("per-seed step (today)", {
        "forward": forward, "backward": backward,
        "clip": lambda: torch.nn.utils.clip_grad_norm_(net.ib_parameters(), params.warmup.grad_clip),
        "adam": opt.step}, 1)

    r = args.seeds
    models = seed_batch.new_models(params, n_clusters, list(range(r)))
    seeds = seed_batch._Seeds(models, views)
    stack = stacked.Stack(seeds.nets, seed_batch._ib_names(seeds.nets[0]))
    leaves = list(stack.leaves.values())
    opt_r = _adam(leaves, params.warmup.lr, 0.0)
    h = params.model.latent_dim

    def forward_r(i: int):
        idx = torch.stack([rows[(i + k) % 100] for k in range(r)])
        xb = [x[idx] for x in xs]
        noise = [[torch.randn(b, h, generator=g) for _ in xs] for g in seeds.noise_gens]
        eps = [torch.stack([noise[k][m] for k in range(r)]) for m in range(len(xs))]
        return seed_batch._stacked_ib_loss(models[0], stack.params(), stack.buffers, xb, eps)[0]

    def backward_r(loss) -> None:
        opt_r.zero_grad(set_to_none=True)
        loss.sum().backward()

    report(f"stacked step, R={r}", {
        "forward": forward_r, "backward": backward_r,
        "clip": lambda: stacked.clip_grad_norms_(leaves, params.warmup.grad_clip), "adam": opt_r.step}, r)


if __name__ == "__main__":
    main()

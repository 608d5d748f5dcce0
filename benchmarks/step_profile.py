"""What one warm-up training step spends its time on: today's per-seed step and the stacked step of R seeds.

    PYTHONPATH=src python benchmarks/step_profile.py [--dataset mfeat] [--seeds 5]

One thread, params.yaml's recipe. For each path: the step's wall time and its
phases (forward, backward, gradient clipping, Adam; timed without the
profiler), the number of top-level aten ops per step, and ``torch.profiler``'s
split of the op time into GEMMs, Adam, clipping, BatchNorm, gathering / noise /
copies and the other ops. The profiler adds its own overhead per op, so its
milliseconds exceed the plain timing; read its shares, not its totals.

Then the floor of a step on this machine, measured in the same run: the
step's GEMMs timed alone at their own shapes (their arithmetic at this CPU's
matmul rate), and the memory a step must move whatever the batch: every
trained parameter's weight read in the forward and in the backward pass, its
gradient written and read by the clip's norm, and Adam's four reads and three
writes (11 x 4 bytes per parameter), at the single-thread bandwidth of a plain
copy and of the fused Adam kernel alone. The floor's GFLOP/s is the best an
epoch could reach if every other op cost nothing.
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

    from mmib.methods.clib import seed_batch, stacked, stacked_forward
    from mmib.config import load_params
    from mmib.methods.base import _adam, _clip_grad_norm
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
        "clip": lambda: _clip_grad_norm(net.ib_parameters(), params.warmup.grad_clip),  # as training clips
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
        eps = stacked_forward.seed_noise(seeds.noise_gens, b, h, len(xs))
        p = stack.params()
        enc = stacked_forward.encode(models[0].net_, p, stack.buffers, xb, eps, fused=False)
        return stacked_forward.ib_loss(models[0], p, stack.buffers, xb, enc)[0]

    def backward_r(loss) -> None:
        opt_r.zero_grad(set_to_none=True)
        loss.sum().backward()

    report(f"stacked step, R={r}", {
        "forward": forward_r, "backward": backward_r,
        "clip": lambda: stacked.clip_grad_norms_(leaves, params.warmup.grad_clip), "adam": opt_r.step}, r)

    step_floor(lambda: backward(forward(0)), sum(p.numel() for p in net.ib_parameters()))


def _seconds(fn, repeats: int = 5) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` (after one untimed call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _copy_bandwidth(n: int = 50_000_000) -> float:
    """GB/s read + written by a plain copy of ``n`` float32 (200 MB: past every cache), one thread."""
    src = torch.randn(n)
    dst = torch.empty_like(src)
    return 2 * n * 4 / _seconds(lambda: dst.copy_(src)) / 1e9


def step_floor(forward_backward, n_params: int) -> None:
    """What a per-seed step cannot go below on this machine (see the module's docstring)."""
    from torch.profiler import profile, ProfilerActivity
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        forward_backward()
    flops = counter.get_total_flops()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        forward_backward()
    gemms: collections.Counter = collections.Counter()
    for e in prof.events():
        if e.name in GEMM and e.input_shapes and all(e.input_shapes[:2]):
            a, b = e.input_shapes[1:3] if e.name in ("aten::addmm", "aten::baddbmm") else e.input_shapes[:2]
            gemms[(tuple(a), tuple(b))] += 1
    gemm_s = sum(count * _seconds(lambda: (torch.bmm if len(a) == 3 else torch.mm)(*operands))
                 for (a, b), count in gemms.items() for operands in [(torch.randn(a), torch.randn(b))])
    copy_gbs = _copy_bandwidth()
    leaf = torch.nn.Parameter(torch.randn(n_params))
    leaf.grad = torch.randn(n_params)
    adam = torch.optim.Adam([leaf], lr=1e-3, fused=True)
    adam_s = _seconds(adam.step)
    memory_s = adam_s + 4 * n_params * 4 / (copy_gbs * 1e9)  # + weight reads (2), gradient write and read
    floor = gemm_s + memory_s
    print(f"floor of a per-seed step: {flops / 1e9:.2f} GFLOP in {sum(gemms.values())} GEMMs, "
          f"{gemm_s * 1e3:.1f} ms timed alone at their shapes ({flops / gemm_s / 1e9:.0f} GFLOP/s); "
          f"{n_params / 1e6:.2f} M trained parameters: fused Adam alone {adam_s * 1e3:.1f} ms, "
          f"4 more passes at the copy bandwidth ({copy_gbs:.1f} GB/s) {(memory_s - adam_s) * 1e3:.1f} ms; "
          f"floor {floor * 1e3:.1f} ms -> at most {flops / floor / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()

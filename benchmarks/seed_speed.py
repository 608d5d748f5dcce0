"""Seconds per seed-epoch of CLIB for R = 1 and R = 5 seeds, and the FLOP rate an epoch achieves.

    PYTHONPATH=src python benchmarks/seed_speed.py [--dataset mfeat] [--epochs 3] [--seeds 1 5]
        [--stacked] [--no-processes]

Measured in ONE run, on this machine, with params.yaml's recipe (only the
epochs are shortened to ``--epochs``):

- *per-seed processes* (today's path, :func:`mmib.stages.seed_pool.fit_all_seeds`):
  every seed in its own single-thread worker process, ``min(R, 2 x cores)``
  workers, the warm-up of all seeds, then their calibration (two pools, as
  the two DVC stages). A stage's wall time runs from the first seed's start
  of training to the last seed's end (process start, imports and data
  loading excluded; the first epoch, the per-epoch trace K-Means and the
  calibration's cold start included: they are part of a stage).
  ``s/seed-epoch`` = stage wall / (R x epochs); ``wall R/1`` = the stage's
  wall with R seeds / with one seed (5 = no gain from more seeds at once,
  2.5 = two cores shared perfectly). ``CPU s/seed-epoch``: the workers' CPU
  time over the same span / (R x epochs), the work done, which a busy
  machine distorts less than the wall time (under load the scheduler gives
  more CPU to a path with more processes).
- *stacked* (``--stacked``, ``seed_batching: true``, :mod:`mmib.methods.clib.seed_batch`,
  :mod:`mmib.methods.clib.seed_batch_calibration`): the warm-up of the R seeds
  dealt into one stacked model per core, each in a single-thread worker
  process, as the warm-up stage runs it, then their calibration the same way
  (each seed from its stacked warm-up, as the calibrate stage runs it; the
  per-seed cold starts and targets included).
- *one core* (``--one-core``): the warm-up in this process on one thread,
  the R seeds one after the other (per-seed) or as one stacked model: what
  one core gets through, the figure least distorted by other jobs.
- GFLOP/s: the FLOPs of one training step (``torch.utils.flop_counter``, forward
  and backward; the optimiser and the per-epoch targets uncounted) x steps
  per epoch x R x epochs / stage wall; next to a plain float32 matmul's rate
  (64 x 512 @ 512 x 512, the encoders' hidden layer at batch 64; and 2048^3),
  measured in this run with 1 thread and with ``--threads``.

The machine is shared and noisy: compare figures within one run, and repeat.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmib.config import Params, load_params  # noqa: E402


def short_params(params: Params, epochs: int) -> Params:
    """params.yaml's recipe with ``epochs`` epochs in each stage (the benchmark's only change)."""
    return params.model_copy(update={
        "warmup": params.warmup.model_copy(update={"epochs": epochs}),
        "calibrate": params.calibrate.model_copy(update={"epochs": epochs, "warmup_free": False}),
    })


def matmul_gflops(m: int, k: int, n: int, threads: int, seconds: float = 1.0) -> float:
    """Achieved GFLOP/s of a plain float32 ``(m x k) @ (k x n)`` with ``threads`` torch threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(m, k), torch.randn(k, n)
        out = torch.empty(m, n)
        for _ in range(3):
            torch.mm(a, b, out=out)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            torch.mm(a, b, out=out)
            reps += 1
        return 2.0 * m * k * n * reps / (time.perf_counter() - t0) / 1e9
    finally:
        torch.set_num_threads(old)


def step_flops(params: Params, views: list[np.ndarray], n_clusters: int) -> dict[str, float]:
    """FLOPs of one warm-up and one calibration training step (forward + backward) of one seed."""
    from torch.utils.flop_counter import FlopCounterMode

    from mmib.methods.clib.estimator import CLIB

    model = CLIB.from_params(short_params(params, 1), n_clusters, seed=0, progress=False)
    model.fit_warmup(views)
    model.fit_calibration(views)
    net, xs = model.net_, [torch.from_numpy(v) for v in views]
    net.train()
    wb = torch.arange(params.warmup.batch_size)
    cb = torch.arange(model.calibration_batch_size)
    targets = model._epoch_targets(xs, 1)
    per_sample = {k: v for k, v in targets.items() if torch.is_tensor(v)}
    net.train()
    out = {}
    with FlopCounterMode(display=False) as counter:
        xb = [x[wb] for x in xs]
        loss, _ = model._ib_loss(xb, net.encode(xb, sample=True))
        loss.backward()
    out["warmup"] = float(counter.get_total_flops())
    with FlopCounterMode(display=False) as counter:
        loss, _ = model._calibration_loss([x[cb] for x in xs], {k: v[cb] for k, v in per_sample.items()})
        loss.backward()
    out["calibrate"] = float(counter.get_total_flops())
    return out


# ---------------------------------------------------------------- per-seed processes (today's path)
def _worker_init() -> None:
    torch.set_num_threads(1)  # as mmib.stages.seed_pool.fit_seed on the CPU


def _seed_job(stage: str, dataset: str, params_dict: dict, seed: int, state: dict | None):
    """One seed's stage in a worker process: (state, start, end, epoch seconds)."""
    from epoch_speed import load_views

    from mmib.methods.clib.estimator import CLIB

    torch.set_num_threads(1)
    params = Params.model_validate(params_dict)
    views, n_clusters = load_views(dataset)
    model = CLIB.from_params(params, n_clusters, seed=seed, progress=False)
    if state is not None:
        model.load_state(state)
    t0, c0 = time.monotonic(), time.process_time()  # CLOCK_MONOTONIC: one clock for every process
    model.fit_warmup(views) if stage == "warmup" else model.fit_calibration(views)
    t1, c1 = time.monotonic(), time.process_time()
    return model.state(), t0, t1, [model.history_[stage]["epoch_seconds"]], c1 - c0


def per_seed_processes(dataset: str, params: Params, seeds: list[int]) -> dict[str, dict]:
    """Both stages of ``seeds`` in single-thread worker processes, as the pipeline runs them."""
    return _stages_in_pool(_seed_job, seeds, dataset, params, min(len(seeds), 2 * (os.cpu_count() or 1)))


def _stages_in_pool(job, units: list, dataset: str, params: Params, workers: int) -> dict[str, dict]:
    """The warm-up, then the calibration from its states, of ``units`` (seeds, or groups of seeds) by
    ``job`` in ``workers`` single-thread worker processes: per stage, its wall time (first start to
    last end), every epoch's seconds and the workers' CPU seconds."""
    out, states = {}, [None] * len(units)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init) as pool:
        list(pool.map(_noop, range(workers)))  # start the workers before the clock
        for stage in ("warmup", "calibrate"):
            jobs = [(stage, dataset, params.model_dump(), unit, state) for unit, state in zip(units, states)]
            results = list(pool.map(job, *zip(*jobs)))
            states = [r[0] for r in results]
            wall = max(r[2] for r in results) - min(r[1] for r in results)
            out[stage] = {"wall": wall, "epoch_seconds": [e for r in results for e in r[3]],
                          "cpu": sum(r[4] for r in results)}
    return out


def _noop(_: int) -> None:
    from mmib.methods.clib import estimator  # noqa: F401  (imports paid before the clock)


# ---------------------------------------------------------------- stacked seeds (seed_batching: true)
def _group_job(stage: str, dataset: str, params_dict: dict, seeds: list[int], states: list[dict] | None):
    """One group's stacked stage in a worker process (the calibration from the seeds' warm-up
    ``states``): (states, start, end, epoch seconds per seed, CPU seconds)."""
    from epoch_speed import load_views

    from mmib.methods.clib.seed_batch import fit_warmup_batched, new_models
    from mmib.methods.clib.seed_batch_calibration import fit_calibration_batched

    torch.set_num_threads(1)
    params = Params.model_validate(params_dict)
    views, n_clusters = load_views(dataset)
    models = new_models(params, n_clusters, seeds)
    if states is not None:
        models = [model.load_state(state) for model, state in zip(models, states)]
    t0, c0 = time.monotonic(), time.process_time()
    fit_warmup_batched(models, views) if stage == "warmup" else fit_calibration_batched(models, views)
    t1, c1 = time.monotonic(), time.process_time()
    return [m.state() for m in models], t0, t1, [m.history_[stage]["epoch_seconds"] for m in models], c1 - c0


def stacked_groups(dataset: str, params: Params, seeds: list[int]) -> dict[str, dict]:
    """Both stages of ``seeds`` as the stages run them with ``seed_batching: true``: one stacked model
    per core (:func:`mmib.methods.clib.seed_batch.seed_groups`), each in a single-thread worker process;
    the warm-up, then the calibration from its states."""
    from mmib.methods.clib.seed_batch import seed_groups

    groups = seed_groups(seeds, os.cpu_count() or 1)
    return _stages_in_pool(_group_job, groups, dataset, params, len(groups))


# ---------------------------------------------------------------- one core: this process, one thread
def _in_process(fit_group, dataset: str, params: Params, seeds: list[int]) -> dict[str, dict]:
    from epoch_speed import load_views

    torch.set_num_threads(1)
    views, n_clusters = load_views(dataset)
    t0, c0 = time.monotonic(), time.process_time()
    models = fit_group(params, n_clusters, seeds, views)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    return {"warmup": {"wall": wall, "cpu": cpu, "epoch_seconds": [m.history_["warmup"]["epoch_seconds"] for m in models]}}


def per_seed_one_core(dataset: str, params: Params, seeds: list[int]) -> dict[str, dict]:
    """The warm-up of ``seeds`` one after the other in this process on one thread: a core's throughput."""
    from mmib.methods.clib.estimator import CLIB

    return _in_process(lambda p, c, ss, v: [CLIB.from_params(p, c, seed=s, progress=False).fit_warmup(v) for s in ss],
                       dataset, params, seeds)


def stacked_one_core(dataset: str, params: Params, seeds: list[int]) -> dict[str, dict]:
    """The warm-up of ``seeds`` as one stacked model in this process on one thread."""
    from mmib.methods.clib.seed_batch import fit_warmup_batched, new_models

    return _in_process(lambda p, c, ss, v: fit_warmup_batched(new_models(p, c, ss), v), dataset, params, seeds)


def main() -> None:
    from epoch_speed import load_views

    from mmib.methods.clib.estimator import CLIB

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mfeat")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each stage")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 5], help="numbers of seeds R")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of the second matmul rate")
    ap.add_argument("--stacked", action="store_true",
                    help="also time the stacked warm-up and calibration (seed_batching: true)")
    ap.add_argument("--no-processes", action="store_true", help="skip today's per-seed processes")
    ap.add_argument("--one-core", action="store_true",
                    help="also the warm-up on one core: per-seed one after another vs stacked, this process, 1 thread")
    args = ap.parse_args()
    params = short_params(load_params(ROOT / "params.yaml"), args.epochs)
    views, n_clusters = load_views(args.dataset)
    n = views[0].shape[0]
    probe = CLIB.from_params(params, n_clusters, seed=0, progress=False)
    steps = {"warmup": n // min(params.warmup.batch_size, n),
             "calibrate": n // min(probe.calibration_batch_size, n)}
    torch.set_num_threads(1)
    flops = step_flops(params, views, n_clusters)
    print(f"machine   : {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f} at start (a shared machine: figures are noisy)")
    print(f"dataset   : {args.dataset}, N={n}, dims={[v.shape[1] for v in views]}, C={n_clusters}; "
          f"{args.epochs} epochs per stage; batches {params.warmup.batch_size} / {probe.calibration_batch_size}")
    print(f"FLOPs/step: warmup {flops['warmup'] / 1e9:.3f} GFLOP, calibrate {flops['calibrate'] / 1e9:.3f} GFLOP "
          f"(fwd+bwd, one seed); steps/epoch {steps['warmup']} / {steps['calibrate']}")
    ref = {t: (matmul_gflops(64, 512, 512, t), matmul_gflops(2048, 2048, 2048, t)) for t in sorted({1, args.threads})}
    for t, (small, big) in ref.items():
        print(f"matmul    : {t} thread(s): 64x512x512 {small:.0f} GFLOP/s, 2048^3 {big:.0f} GFLOP/s")
    kinds = ([] if args.no_processes else [("per-seed processes", per_seed_processes)]) + \
            ([("stacked (seed_batching)", stacked_groups)] if args.stacked else []) + \
            ([("per-seed, 1 core", per_seed_one_core), ("stacked, 1 core", stacked_one_core)] if args.one_core else [])
    print(f"{'path':<24} {'R':>2} {'stage':<9} {'wall s':>7} {'s/seed-epoch':>12} {'wall R/1':>9} "
          f"{'GFLOP/s':>8} {'epoch s (mean)':>14} {'CPU s/seed-epoch':>16}")
    for name, run in kinds:
        base = {}
        for r in args.seeds:
            res = run(args.dataset, params, list(range(r)))
            for stage in res:
                wall = res[stage]["wall"]
                per = wall / (r * args.epochs)
                base.setdefault(stage, wall)
                rate = flops[stage] * steps[stage] * r * args.epochs / wall / 1e9
                ep = float(np.mean([np.mean(e) for e in res[stage]["epoch_seconds"]]))
                cpu = res[stage]["cpu"] / (r * args.epochs)
                print(f"{name:<24} {r:>2} {stage:<9} {wall:7.2f} {per:12.3f} {wall / base[stage]:9.2f} "
                      f"{rate:8.1f} {ep:14.3f} {cpu:16.3f}", flush=True)


if __name__ == "__main__":
    main()

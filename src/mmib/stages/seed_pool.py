"""The seeds of a training stage, in parallel single-thread worker processes on the CPU (in turn on a GPU)."""

from __future__ import annotations

from typing import Any

from mmib.config import Params
from mmib.stages.paths import model_path
from mmib.stages.training_inputs import supervised_targets, training_views
from mmib.state_io import load_state

_SEED_EVENTS: Any = None
"""In a seed worker process: the queue its seed run's events go to (:mod:`mmib.seed_runs`)."""


def _init_seed_worker(parent: int, events: Any) -> None:
    """Initializer of the seed workers: end with the stage process; report to ``events``."""
    from mmib.lifeline import die_with_parent

    global _SEED_EVENTS
    die_with_parent(parent)
    _SEED_EVENTS = events


def _single_threaded() -> None:
    """One thread for torch and for scikit-learn's and NumPy's pools (OpenMP, BLAS): a seed's numbers do
    not depend on the machine's cores, and the seeds, which already fill the cores, do not
    oversubscribe them (README "Speed")."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def _tracked_model(params: Params, n_clusters: int, seed: int, position: int, run: Any) -> tuple[Any, Any]:
    """A seed's estimator as the stages build it, its MLflow seed run tagged with the device, and the
    logger that sends its epochs to that run."""
    from mmib.epoch_metrics import EpochLogger
    from mmib.methods import registry

    model = registry.build(params, n_clusters, seed)
    model.progress_position = position
    run.set_tags({"device": model.resolved_device()})
    epochs = EpochLogger(run)
    return epochs.attach(model), epochs


def _load_warmup(model: Any, dataset: str, seed: int) -> None:
    """The seed's saved warm-up (models/<dataset>/warmup/) into ``model``: where its calibration starts."""
    model.load_state(load_state(model_path(dataset, "warmup", seed), f"warmup@{dataset}"))


def fit_seed(stage: str, dataset: str, params_dict: dict, seed: int, position: int,
              events: Any = None) -> tuple[dict, str, dict]:
    """Train one seed (in a worker process on the CPU); returns its state, device name and this
    stage's history with the timings (which the state leaves out: they go to MLflow and the curves).

    On the CPU every seed runs on exactly one thread (:func:`_single_threaded`), whatever the
    number of workers, so the numbers do not depend on the machine's cores.
    ``events`` (default: the worker's queue, :func:`_init_seed_worker`; None: no tracking):
    where the seed's MLflow run is reported, opened around the training, each epoch's values as
    it ends (:mod:`mmib.seed_runs`; the stage process logs them, so no worker imports MLflow).
    """
    from mmib.methods import registry
    from mmib.runtime import resolve_device
    from mmib.seed_runs import seed_report

    params = Params.model_validate(params_dict)
    views, n_clusters = training_views(dataset)
    if resolve_device(params.device).type == "cpu":
        _single_threaded()
    with seed_report(events if events is not None else _SEED_EVENTS, seed) as run:
        model, epochs = _tracked_model(params, n_clusters, seed, position, run)
        supervision = supervised_targets(dataset, params, seed) if params.method in registry.SUPERVISED else ()
        if stage == "warmup":
            model.fit_warmup(views, *supervision)
        else:
            _load_warmup(model, dataset, seed)
            model.fit_calibration(views, *supervision)
        epochs.finish(model.history_[stage])
    return model.state(), str(model.device_), model.history_[stage]


STACKED_STAGES = ("warmup", "calibrate")
"""The stages ``seed_batching`` stacks (CLIB's, :mod:`mmib.methods.clib.seed_batch`)."""


def fit_seed_group(stage: str, dataset: str, params_dict: dict, seeds: list[int], positions: list[int],
                   events: Any = None) -> list[tuple[dict, str, dict]]:
    """CLIB's warm-up or calibration of ``seeds`` as one stacked model (``seed_batching``,
    :mod:`mmib.methods.clib.seed_batch`, :mod:`mmib.methods.clib.seed_batch_calibration`) on one CPU
    thread, each seed's calibration from its saved warm-up (as :func:`fit_seed`); per seed, what
    :func:`fit_seed` returns, and its own MLflow seed run."""
    from contextlib import ExitStack

    from mmib.methods.clib.seed_batch import fit_warmup_batched
    from mmib.methods.clib.seed_batch_calibration import fit_calibration_batched
    from mmib.seed_runs import seed_report

    if stage not in STACKED_STAGES:
        raise ValueError(f"only the warm-up and the calibration stack seeds, not {stage!r}")
    params = Params.model_validate(params_dict)
    views, n_clusters = training_views(dataset)
    _single_threaded()  # as fit_seed
    with ExitStack() as runs:
        models, loggers = [], []
        for seed, position in zip(seeds, positions):
            run = runs.enter_context(seed_report(events if events is not None else _SEED_EVENTS, seed))
            model, epochs = _tracked_model(params, n_clusters, seed, position, run)
            if stage == "calibrate":
                _load_warmup(model, dataset, seed)
            models.append(model)
            loggers.append(epochs)
        if stage == "warmup":
            fit_warmup_batched(models, views)
        else:
            fit_calibration_batched(models, views)
        for model, epochs in zip(models, loggers):
            epochs.finish(model.history_[stage])
    return [(model.state(), str(model.device_), model.history_[stage]) for model in models]


def fit_all_seeds(stage: str, dataset: str, params: Params, events: Any = None) -> list[tuple[dict, str, dict]]:
    """Seeds in parallel single-thread worker processes on the CPU, in turn on a GPU.

    All seeds start at once (up to two per core): single-thread processes
    time-share the cores without the spin-waiting of oversubscribed thread
    pools, and no core idles while the last seed finishes. One seed runs in
    this process. With ``seed_batching`` (where :func:`mmib.methods.clib.seed_batch.supports`
    the recipe: CLIB without MINE, on the CPU) the seeds of the warm-up and of the calibration are
    dealt into one stacked model per core instead (:func:`_fit_stacked`).
    """
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from mmib.runtime import resolve_device

    seeds = list(params.seeds)
    if stage in STACKED_STAGES and params.seed_batching:
        from mmib.methods.clib.seed_batch import supports

        if supports(params):
            return _fit_stacked(stage, dataset, params, events)
        print(f"{stage} {dataset}: seed_batching applies to CLIB's warm-up and calibration on the CPU without MINE; "
              "training one seed per process", flush=True)
    jobs = [(stage, dataset, params.model_dump(), seed, i) for i, seed in enumerate(seeds)]
    workers = min(len(seeds), 2 * (os.cpu_count() or 1))
    if resolve_device(params.device).type != "cpu" or workers == 1:
        return [fit_seed(*job, events=events) for job in jobs]
    # spawn, not fork: forking after torch has started its thread pools can hang
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_seed_worker, initargs=(os.getpid(), events)) as pool:
        return list(pool.map(fit_seed, *zip(*jobs)))


def _fit_stacked(stage: str, dataset: str, params: Params, events: Any) -> list[tuple[dict, str, dict]]:
    """The seeds dealt round-robin into one stacked model per core, each in a single-thread worker
    process (one group: in this process); results in the order of ``params.seeds``."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from mmib.methods.clib.seed_batch import seed_groups

    seeds = list(params.seeds)
    groups = seed_groups(seeds, os.cpu_count() or 1)
    jobs = [(stage, dataset, params.model_dump(), group, [seeds.index(s) for s in group]) for group in groups]
    if len(groups) == 1:
        results = [fit_seed_group(*jobs[0], events=events)]
    else:
        with ProcessPoolExecutor(max_workers=len(groups), mp_context=mp.get_context("spawn"),
                                 initializer=_init_seed_worker, initargs=(os.getpid(), events)) as pool:
            results = list(pool.map(fit_seed_group, *zip(*jobs)))
    by_seed = {seed: result for group, group_results in zip(groups, results)
               for seed, result in zip(group, group_results)}
    return [by_seed[seed] for seed in seeds]


def seed_event_queue(run: Any) -> Any:
    """The queue the seeds report their MLflow runs to (:mod:`mmib.seed_runs`): a process queue,
    which seed worker processes inherit and this process can use too; None when tracking is off."""
    import multiprocessing as mp

    return mp.get_context("spawn").Queue() if run.enabled else None


"""DVC stages ``warmup@<dataset>`` (stage 1) and ``calibrate@<dataset>`` (stage 2): every seed
trained (:mod:`mmib.stages.seed_pool`), its state in models/<dataset>/<stage>/, its loss curves, MLflow runs.
Training never loads labels (:mod:`mmib.stages.training_inputs`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmib.atomic_io import write_csv
from mmib.config import Params
from mmib.methods import table as method_table
from mmib.stages import cli
from mmib.stages.declared import tracked_params
from mmib.stages.paths import MODELS, PROCESSED, curves_path, model_path
from mmib.stages.seed_pool import fit_all_seeds, seed_event_queue
from mmib.stages.training_inputs import training_views
from mmib.state_io import save_state
from mmib.training_record import TrainingRecord

CURVE_COLUMNS = ("seed", "epoch", "kind", "term", "value")


def _curves_frame(histories: dict[int, dict[str, list[float]]]) -> pd.DataFrame:
    """Every per-epoch series of every seed in long form (:data:`CURVE_COLUMNS`): ``kind`` is
    ``loss term`` or ``diagnostic`` (fusion weights, screened counts, K-Means inertia, epoch seconds;
    :class:`mmib.training_record.TrainingRecord`), so the `dvc plots` template
    (.dvc/plots/terms.json) draws one panel per loss term, one line per seed."""
    frames = []
    for seed, hist in histories.items():
        record = TrainingRecord.of(hist)
        epochs = np.arange(1, record.n_epochs + 1)
        for kind, series in (("loss term", record.loss_terms), ("diagnostic", record.per_epoch_diagnostics())):
            for term, values in series.items():
                frames.append(pd.DataFrame({"seed": seed, "epoch": epochs, "kind": kind, "term": term,
                                            "value": values}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CURVE_COLUMNS)


def train(stage: str, dataset: str, params: Params) -> None:
    """Warm-up (stage 1) or calibration (stage 2) of every seed, with tracking."""
    from mmib import seed_runs, tracking

    views, _ = training_views(dataset)  # fail early, in this process, on a missing or bad input
    with tracking.start_stage_run(stage, dataset, tracked_params(params, stage),
                                  pipeline_params=params.model_dump()) as run:
        run.log_dataset(dataset, PROCESSED / f"{dataset}.npz", views, "training")
        # one child run per seed, reported by the process that trains it (mmib.seed_runs)
        with seed_runs.SeedRunRelay(run, seed_event_queue(run)) as relay:
            results = fit_all_seeds(stage, dataset, params, relay.queue)
        run.set_tags({"device": results[0][1]})
        if stage == "calibrate" and method_table.spec(params.method).fits_temperature \
                and params.calibrate.confidence != "head":
            _set_temperatures(dataset, params, [state for state, _, _ in results])
        histories = {seed: history for seed, (_, _, history) in zip(params.seeds, results)}
        # write every seed's state only after all succeeded: a failure leaves old outputs intact
        for seed, (state, _, _) in zip(params.seeds, results):
            save_state(model_path(dataset, stage, seed), state)
        write_csv(curves_path(dataset, stage), _curves_frame(histories))
    print(f"{stage} {dataset}: {len(params.seeds)} seed(s) -> {MODELS / dataset / stage}")


def _set_temperatures(dataset: str, params: Params, states: list[dict]) -> None:
    """``calibrate.confidence`` ``seeds`` / ``seeds_and_ncuts``: each seed's temperature from its
    agreement with the other seeds (and with a normalized cut of the raw views) on the training
    views, label-free (:mod:`mmib.confidence`); stored in its state."""
    from mmib.confidence import agreement_temperatures, reference_partitions
    from mmib.methods import registry

    views, n_clusters = training_views(dataset)
    probas = [registry.restore(state, params, n_clusters, seed).predict_proba(views, raw=True)
              for seed, state in zip(params.seeds, states)]
    refs = reference_partitions(views, n_clusters, params.calibrate.confidence, params.seeds[0])
    for state, temperature in zip(states, agreement_temperatures(probas, refs)):
        state["temperature"] = temperature
    if len(states) < 2 and not refs:
        print(f"calibrate {dataset}: one seed, so no seed agreement to fit a temperature to (T = 1)")


def main(stage: str, argv: list[str] | None = None) -> int:
    """``pipeline/warmup.py`` and ``pipeline/calibrate.py``: ``<stage>.py <dataset> [--params params.yaml]``."""
    return cli.main(stage, lambda dataset, params: train(stage, dataset, params), argv)

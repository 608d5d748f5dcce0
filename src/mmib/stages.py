"""What each DVC stage does, beyond the estimator: I/O, tracking and plots.

The scripts in ``pipeline/`` are thin command-line wrappers around these
functions. Training stages never load labels: only :func:`evaluate` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from mmib import plots
from mmib.atomic_io import atomic_path, write_json, write_text
from mmib.config import Params, load_params
from mmib.errors import InputError
from mmib.state_io import load_state, save_state

MODELS = Path("models")
METRICS = Path("metrics")
PROCESSED = Path("data/processed")

# Params each stage declares in dvc.yaml (and logs to MLflow): one list, used by both.
STAGE_PARAMS = {
    "warmup": ["seeds", "method", "device", "beta", "model", "warmup", "calibrate.warmup_free", "msdib", "omib"],
    "calibrate": ["seeds", "method", "device", "alpha", "beta", "model", "warmup", "calibrate", "msdib", "omib"],
    "baselines": ["seeds", "baselines"],
    "report": ["datasets", "seeds", "report"],
}
PAPER_TABLES = Path("data/reference/paper_tables.csv")
METHOD_SECTIONS = ("msdib", "omib")
"""Sections of params.yaml that belong to one method each (``method: msdib`` reads ``msdib:``)."""
CLIB_PARAMS = ("alpha", "beta", "model", "warmup", "calibrate")
"""Top-level params only CLIB reads (MSDIB and OMIB read their own section)."""


# ---------------------------------------------------------------- paths
def model_path(dataset: str, stage: str, seed: int) -> Path:
    return MODELS / dataset / stage / f"seed{seed}.pt"


def curves_path(dataset: str, stage: str) -> Path:
    return METRICS / dataset / f"{stage}_curves.csv"


def evaluation_path(dataset: str) -> Path:
    return METRICS / "evaluate" / f"{dataset}.json"


# ---------------------------------------------------------------- helpers
def _select(params: Params, keys: list[str]) -> dict[str, Any]:
    """The declared subset of params, as nested dicts (``calibrate.warmup_free`` -> dotted leaf)."""
    full = params.model_dump()
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = full
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def tracked_params(params: Params, stage: str) -> dict[str, Any]:
    """The params a stage's MLflow run logs: those the stage used. Its declared params
    (:data:`STAGE_PARAMS`) less the sections of the methods it does not run; evaluate logs the
    params its models were trained with (calibrate's) and ``evaluate``; report only the
    ``report.paper_names`` of this run's datasets."""
    keys = [*STAGE_PARAMS["calibrate"], "evaluate"] if stage == "evaluate" else STAGE_PARAMS[stage]
    method_only = params.method in METHOD_SECTIONS
    unused = {s for s in METHOD_SECTIONS if s != params.method} | (set(CLIB_PARAMS) if method_only else set())
    out = _select(params, [k for k in keys if k.split(".")[0] not in unused])
    if "report" in out:
        names = out["report"].get("paper_names") or {}
        out["report"] = {**out["report"], "paper_names": {d: names[d] for d in params.datasets if d in names}}
    return out


def _training_views(dataset: str) -> tuple[list[np.ndarray], int]:
    """Views and cluster count: deliberately no labels (honest protocol)."""
    from mmib.data.processed import load_processed

    views, _labels, n_clusters = load_processed(PROCESSED / f"{dataset}.npz")
    return views, n_clusters


CURVE_COLUMNS = ("seed", "epoch", "kind", "term", "value")
DIAGNOSTIC_PREFIXES = ("fusion_w_", "n_selected_", "epoch_seconds")  # per-epoch series that are not loss terms


def _curves_frame(histories: dict[int, dict[str, list[float]]]) -> pd.DataFrame:
    """Every per-epoch series of every seed in long form (:data:`CURVE_COLUMNS`): ``kind`` is
    ``loss term`` or ``diagnostic`` (fusion weights, screened counts, epoch seconds), so the
    `dvc plots` template (.dvc/plots/terms.json) draws one panel per loss term, one line per seed."""
    frames = []
    for seed, hist in histories.items():
        n = len(hist["loss"]) if "loss" in hist else max((len(v) for v in hist.values()), default=0)
        cols = {k: v for k, v in hist.items() if len(v) == n}  # per-epoch series only (not the cold start)
        for term, values in cols.items():
            kind = "diagnostic" if term.startswith(DIAGNOSTIC_PREFIXES) else "loss term"
            frames.append(pd.DataFrame({"seed": seed, "epoch": np.arange(1, n + 1), "kind": kind,
                                        "term": term, "value": values}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CURVE_COLUMNS)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


# ---------------------------------------------------------------- training stages
_SEED_EVENTS: Any = None
"""In a seed worker process: the queue its seed run's events go to (:mod:`mmib.seed_runs`)."""


def _init_seed_worker(parent: int, events: Any) -> None:
    """Initializer of the seed workers: end with the stage process; report to ``events``."""
    from mmib.lifeline import die_with_parent

    global _SEED_EVENTS
    die_with_parent(parent)
    _SEED_EVENTS = events


def _fit_seed(stage: str, dataset: str, params_dict: dict, seed: int, position: int,
              events: Any = None) -> tuple[dict, str, dict]:
    """Train one seed (in a worker process on the CPU); returns its state, device name and this
    stage's history with the timings (which the state leaves out: they go to MLflow and the curves).

    On the CPU every seed runs on exactly one torch thread, whatever the
    number of workers, so the numbers do not depend on the machine's cores.
    ``events`` (default: the worker's queue, :func:`_init_seed_worker`; None: no tracking):
    where the seed's MLflow run is reported, opened around the training, each epoch's values as
    it ends (:mod:`mmib.seed_runs`; the stage process logs them, so no worker imports MLflow).
    """
    import torch

    from mmib.config import Params
    from mmib.epoch_metrics import EpochLogger
    from mmib.methods import registry
    from mmib.seed_runs import seed_report

    params = Params.model_validate(params_dict)
    views, n_clusters = _training_views(dataset)
    with seed_report(events if events is not None else _SEED_EVENTS, seed) as run:
        model = registry.build(params, n_clusters, seed)
        model.progress_position = position
        if model.resolved_device().type == "cpu":
            torch.set_num_threads(1)
        run.set_tags({"device": model.resolved_device()})
        epochs = EpochLogger(run)
        epochs.attach(model)
        supervision = _supervision(dataset, params, seed) if params.method in registry.SUPERVISED else ()
        if stage == "warmup":
            model.fit_warmup(views, *supervision)
        else:
            model.load_state(load_state(model_path(dataset, "warmup", seed), f"warmup@{dataset}"))
            model.fit_calibration(views, *supervision)
        epochs.finish(model.history_[stage])
    return model.state(), str(model.device_), model.history_[stage]


def _supervision(dataset: str, params: Params, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and the stratified training split, for the supervised reference (OMIB) only.

    This is the one place outside evaluation that reads labels, and only when
    ``method: omib`` (a supervised ceiling, reported apart from clustering).
    OMIB itself uses the rows of ``train_idx`` only; its metrics are on the rest.
    """
    from mmib.data.processed import load_processed
    from mmib.methods.omib import stratified_split

    _views, targets, _c = load_processed(PROCESSED / f"{dataset}.npz")
    if targets is None:
        raise InputError("method omib is supervised and the dataset has no labels",
                         file=str(PROCESSED / f"{dataset}.npz"), field="method",
                         fix="use method: clib or msdib for unlabelled data")
    return targets, stratified_split(targets, params.omib.test_fraction, seed)[0]


def _fit_all_seeds(stage: str, dataset: str, params: Params, events: Any = None) -> list[tuple[dict, str, dict]]:
    """Seeds in parallel single-thread worker processes on the CPU, in turn on a GPU.

    All seeds start at once (up to two per core): single-thread processes
    time-share the cores without the spin-waiting of oversubscribed thread
    pools, and no core idles while the last seed finishes. One seed runs in
    this process.
    """
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from mmib.runtime import resolve_device

    seeds = list(params.seeds)
    jobs = [(stage, dataset, params.model_dump(), seed, i) for i, seed in enumerate(seeds)]
    workers = min(len(seeds), 2 * (os.cpu_count() or 1))
    if resolve_device(params.device).type != "cpu" or workers == 1:
        return [_fit_seed(*job, events=events) for job in jobs]
    # spawn, not fork: forking after torch has started its thread pools can hang
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_seed_worker, initargs=(os.getpid(), events)) as pool:
        return list(pool.map(_fit_seed, *zip(*jobs)))


def train(stage: str, dataset: str, params: Params) -> None:
    """Warm-up (stage 1) or calibration (stage 2) of every seed, with tracking."""
    from mmib import seed_runs, tracking

    _training_views(dataset)  # fail early, in this process, on a missing or bad input
    with tracking.start_stage_run(stage, dataset, tracked_params(params, stage),
                                  pipeline_params=params.model_dump()) as run:
        # one child run per seed, reported by the process that trains it (mmib.seed_runs)
        with seed_runs.SeedRunRelay(run, _seed_event_queue(run)) as relay:
            results = _fit_all_seeds(stage, dataset, params, relay.queue)
        run.set_tags({"device": results[0][1]})
        if stage == "calibrate" and params.method == "clib" and params.calibrate.confidence != "head":
            _set_temperatures(dataset, params, [state for state, _, _ in results])
        histories = {seed: history for seed, (_, _, history) in zip(params.seeds, results)}
        # write every seed's state only after all succeeded: a failure leaves old outputs intact
        for seed, (state, _, _) in zip(params.seeds, results):
            save_state(model_path(dataset, stage, seed), state)
        _write_csv(curves_path(dataset, stage), _curves_frame(histories))
    print(f"{stage} {dataset}: {len(params.seeds)} seed(s) -> {MODELS / dataset / stage}")


def _seed_event_queue(run: Any) -> Any:
    """The queue the seeds report their MLflow runs to (:mod:`mmib.seed_runs`): a process queue,
    which seed worker processes inherit and this process can use too; None when tracking is off."""
    import multiprocessing as mp

    return mp.get_context("spawn").Queue() if run.enabled else None


def _set_temperatures(dataset: str, params: Params, states: list[dict]) -> None:
    """``calibrate.confidence`` ``seeds`` / ``seeds_and_ncuts``: each seed's temperature from its
    agreement with the other seeds (and with a normalized cut of the raw views) on the training
    views, label-free (:mod:`mmib.confidence`); stored in its state."""
    from mmib.confidence import agreement_temperatures, reference_partitions
    from mmib.methods import registry

    views, n_clusters = _training_views(dataset)
    probas = [registry.restore(state, params, n_clusters, seed).predict_proba(views, raw=True)
              for seed, state in zip(params.seeds, states)]
    refs = reference_partitions(views, n_clusters, params.calibrate.confidence, params.seeds[0])
    for state, temperature in zip(states, agreement_temperatures(probas, refs)):
        state["temperature"] = temperature
    if len(states) < 2 and not refs:
        print(f"calibrate {dataset}: one seed, so no seed agreement to fit a temperature to (T = 1)")


# ---------------------------------------------------------------- evaluate
def assignments_path(dataset: str) -> Path:
    return METRICS / dataset / "assignments.csv"


def evaluate(dataset: str, params: Params) -> dict[str, Any]:
    """Every sample's cluster and confidence per seed (``assignments.csv``), the label-free
    diagnostics (:mod:`mmib.label_free`) and, when the dataset has labels, ACC/NMI/ARI/ECE per seed
    and mean +- std; the figures, and an MLflow run.

    Without labels the pipeline still finishes: the scores that need labels are skipped with a
    note (``note`` in the JSON), the figures that need none are drawn. The MLflow run is open
    around the whole stage.
    """
    from mmib import tracking

    with tracking.start_stage_run("evaluate", dataset, tracked_params(params, "evaluate"), device="cpu",
                                  pipeline_params=params.model_dump()) as run:
        result, method, traced, figures = _evaluate(dataset, params)
        _log_evaluation(run, dataset, params, method, result, traced, figures)
    return result


def _evaluate(dataset: str, params: Params) -> tuple[dict[str, Any], str, "TracedSeeds", list[Path]]:
    """The work of :func:`evaluate`: its result, the method, the traced seeds and the figures."""
    from mmib import label_free, metrics
    from mmib.data.processed import load_processed
    from mmib.methods import registry

    views, labels, n_clusters = load_processed(PROCESSED / f"{dataset}.npz")
    states, models, probas, features = {}, {}, {}, {}
    for seed in params.seeds:
        states[seed] = load_state(model_path(dataset, "calibrate", seed), f"calibrate@{dataset}")
        models[seed] = registry.restore(states[seed], params, n_clusters, seed)
        probas[seed] = models[seed].predict_proba(views)
        features[seed] = models[seed].transform(views)
    method = registry.method_of_state(states[params.seeds[0]])
    final_loss = {seed: _final_loss(state) for seed, state in states.items()}
    chosen = min(final_loss, key=final_loss.get)  # label-free choice (METHOD.md section 2)
    out_dir = METRICS / dataset
    _write_csv(assignments_path(dataset), label_free.assignments_frame(probas))
    result: dict[str, Any] = {
        "method": method,
        "scored_on": "test split" if method in registry.SUPERVISED else "all samples",
        "n_seeds": len(params.seeds),
        "labels": labels is not None,
        "label_free": label_free.diagnostics(probas, features),
    }
    traced = TracedSeeds()
    for seed in params.seeds:
        traced.add(seed, states[seed], probas[seed], labels, params)
    if labels is None:
        result["note"] = label_free.NO_LABELS_NOTE
        result["mean_confidence"] = result["label_free"]["mean_confidence"]
        result["lowest_loss_seed"] = {"seed": chosen, "final_loss": final_loss[chosen],
                                      **result["label_free"]["per_seed"][f"seed{chosen}"]}
        confidences, corrects = [p.max(axis=1) for p in probas.values()], [np.full(len(p), np.nan) for p in probas.values()]
        print(f"evaluate {dataset}: no labels, so no ACC/NMI/ECE; assignments -> {assignments_path(dataset)}")
    else:
        per_seed, confidences, corrects = _scored_seeds(params, models, probas, views, labels, method)
        result.update(metrics.mean_std(list(per_seed.values())))
        result["lowest_loss_seed"] = {"seed": chosen, "final_loss": final_loss[chosen], **per_seed[f"seed{chosen}"]}
        result["per_seed"] = per_seed
        if traced.hard:
            result["hard_samples"] = traced.hard_summary(params.evaluate.hard_fraction)
    figures = _evaluation_figures(dataset, params, views, labels, n_clusters, models, probas, traced,
                                  np.concatenate(confidences), np.concatenate(corrects),
                                  {seed: states[seed]["history"] for seed in params.seeds},
                                  result["ece"]["mean"] if "ece" in result else None)
    write_json(evaluation_path(dataset), result)
    return result, method, traced, figures


def _final_loss(state: dict) -> float:
    final = state["history"]["calibrate"]
    return float((final.get("loss") or final.get("total") or [float("nan")])[-1])


def _scored_seeds(params: Params, models: dict, probas: dict, views: list[np.ndarray], labels: np.ndarray,
                  method: str) -> tuple[dict[str, dict[str, float]], list[np.ndarray], list[np.ndarray]]:
    """Per-seed ACC/NMI/ARI/ECE (the supervised reference on its held-out split only), and each
    seed's confidences and correctness for the pooled reliability table."""
    from mmib import metrics
    from mmib.methods import registry

    bins = params.evaluate.ece_bins
    per_seed, confidences, corrects = {}, [], []
    for seed, model in models.items():
        rows = np.asarray(model.test_idx_) if method in registry.SUPERVISED else np.arange(len(labels))
        proba = probas[seed][rows]
        per_seed[f"seed{seed}"] = metrics.evaluate_soft_clustering(labels[rows], proba, n_bins=bins)
        if hasattr(model, "temperature_"):  # CLIB: the head's own ECE beside the tempered one (mmib.confidence)
            raw = metrics.evaluate_soft_clustering(labels[rows], model.predict_proba(views, raw=True)[rows], n_bins=bins)
            per_seed[f"seed{seed}"].update(temperature=model.temperature_, ece_head=raw["ece"],
                                           mean_confidence_head=raw["mean_confidence"])
        _pred, conf, correct, _map = metrics.soft_predictions(labels[rows], proba)
        confidences.append(conf)
        corrects.append(correct)
    return per_seed, confidences, corrects


def _evaluation_figures(dataset: str, params: Params, views: list[np.ndarray], labels: np.ndarray | None,
                        n_clusters: int, models: dict, probas: dict, traced: "TracedSeeds",
                        confidence: np.ndarray, correct: np.ndarray, histories: dict[int, dict],
                        seed_mean_ece: float | None = None) -> list[Path]:
    """The tables (CSV, for `dvc plots`) and figures (PNG) of evaluate. Without labels the
    reliability table holds the confidence histogram only (accuracy empty) and has no figure."""
    from mmib import metrics

    out_dir = METRICS / dataset
    first = params.seeds[0]
    table = metrics.reliability_table(confidence, correct, n_bins=params.evaluate.ece_bins)
    _write_csv(out_dir / "reliability.csv", table)
    figures = []
    if labels is not None:
        figures.append(plots.reliability_diagram(
            table, out_dir / "plots" / "reliability.png",
            title=f"{dataset}: reliability, the samples of all seeds pooled", seed_mean_ece=seed_mean_ece))
    figures.append(plots.training_curves(_loss_curves(histories), out_dir / "plots" / "training_curves.png",
                                         title=f"{dataset}: training curves (seed {first})"))
    fusion = _fusion_curve(histories[first])
    if fusion:  # methods with a weighted-mean fusion (CLIB, MSDIB)
        figures.append(plots.fusion_weights_plot(fusion, [f"view{m}" for m in range(len(views))],
                                                 out_dir / "plots" / "fusion_weights.png",
                                                 title=f"{dataset}: fusion weights (seed {first})"))
        _write_csv(out_dir / "fusion_weights.csv", _long_series(fusion, "view", "weight"))
    figures += traced.write(dataset, out_dir, len(views[0]))
    colours = labels if labels is not None else probas[first].argmax(axis=1)
    figures += _tsne_figure(dataset, params, views, colours, n_clusters, out_dir, models[first],
                            "class" if labels is not None else f"cluster of seed {first} (no labels)")
    return figures


def _log_evaluation(run: Any, dataset: str, params: Params, method: str, result: dict[str, Any],
                    traced: "TracedSeeds", figures: list[Path]) -> None:
    """The evaluate run in MLflow: mean +- std over seeds (also on the pipeline run, as
    ``<dataset>.<metric>_mean``), the label-free summary, tables, figures, the lowest-loss seed's model (:mod:`mmib.mlflow_model`); and one child
    run per seed with its scores and Figure 3's ``epoch_acc`` / ``epoch_nmi`` (step = epoch over
    both stages), under the same names in every seed."""
    out_dir = METRICS / dataset
    scores = {k: v for k, v in result.items() if isinstance(v, dict) and set(v) == {"mean", "std"}}
    free = result["label_free"]
    run.set_tags({"method": method})
    run.log_metrics({f"{k}_mean": v["mean"] for k, v in scores.items()})
    run.log_metrics({f"{k}_std": v["std"] for k, v in scores.items()})
    run.log_pipeline_metrics({f"{dataset}.{k}_mean": v["mean"] for k, v in scores.items()})
    for key in ("silhouette", "mean_confidence"):
        if free[key]:
            run.log_metrics({f"label_free.{key}_mean": free[key]["mean"], f"label_free.{key}_std": free[key]["std"]})
    if free["seed_agreement"]:
        run.log_metrics({f"label_free.seed_agreement.{k}_mean": free["seed_agreement"][k]["mean"]
                         for k in ("ari", "nmi")})
    run.log_artifact(evaluation_path(dataset), "metrics")
    for table in sorted(out_dir.glob("*.csv")):
        run.log_artifact(table, "metrics")
    for fig in figures:
        run.log_artifact(fig, "plots")
    if run.enabled:  # the lowest-loss seed as an MLflow model (the module imports mlflow)
        from mmib.mlflow_model import log_evaluation_model

        log_evaluation_model(run, dataset, params, method, model_path(dataset, "calibrate",
                             result["lowest_loss_seed"]["seed"]), PROCESSED / f"{dataset}.npz")
    convergence = {int(f["seed"].iloc[0]): f for f in traced.convergence} if result["labels"] else {}
    for seed in params.seeds:
        with run.seed_run(seed) as child:
            child.set_tags({"method": method})
            child.log_metrics(result.get("per_seed", {}).get(f"seed{seed}", {}))
            child.log_metrics({f"label_free.{k}": v for k, v in free["per_seed"].get(f"seed{seed}", {}).items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)})
            for (_stage,), rows in (convergence[seed].groupby(["stage"], sort=False) if seed in convergence else []):
                child.log_curve({"epoch_acc": rows["acc"].tolist(), "epoch_nmi": rows["nmi"].tolist()},
                                start=int(rows["epoch"].iloc[0]))


class TracedSeeds:
    """Per-seed scores of the training traces (CLIB): Figure 3, Table 5 and the screened counts."""

    def __init__(self) -> None:
        self.convergence: list[pd.DataFrame] = []
        self.screened: list[pd.DataFrame] = []
        self.hard: list[dict[str, Any]] = []

    def add(self, seed: int, state: dict, proba: np.ndarray, labels: np.ndarray | None, params: Params) -> None:
        """Without labels: the losses of Figure 3 and the screened counts (no ACC/NMI, no Table 5)."""
        from mmib import trace_metrics
        from mmib.methods.trace import TrainingTrace

        trace = TrainingTrace.from_state(state.get("trace"))
        if not trace.calibrate:  # a method without a trace (MSDIB, OMIB)
            return
        self.convergence.append(trace_metrics.convergence_frame(seed, state["history"], trace, labels))
        self.screened.append(trace_metrics.screened_frame(seed, state["history"]["calibrate"]))
        if labels is not None:
            self.hard.append(trace_metrics.hard_sample_study(trace, proba, labels, params.evaluate.hard_fraction,
                                                             params.evaluate.ece_bins))

    def hard_summary(self, fraction: float) -> dict[str, Any]:
        """Table 5 over the seeds: mean +- std at the first calibration epoch and at the end."""
        from mmib import metrics

        return {"fraction": fraction, "n_samples": self.hard[0]["n_samples"],
                **{when: metrics.mean_std([h[when] for h in self.hard])
                   for when in ("first_calibration_epoch", "end")}}

    def write(self, dataset: str, out_dir: Path, n_samples: int) -> list[Path]:
        """CSV tables (dvc plots) and PNG figures (dvc plots, MLflow) of the traced seeds."""
        if not self.convergence:  # MSDIB / OMIB keep no trace: header-only tables, as dvc.yaml declares them
            _write_csv(out_dir / "convergence.csv", pd.DataFrame(columns=CONVERGENCE_COLUMNS))
            _write_csv(out_dir / "screened.csv", pd.DataFrame(columns=("epoch", "view", "n_selected", "series")))
            return []
        convergence = pd.concat(self.convergence, ignore_index=True)
        screened = pd.concat(self.screened, ignore_index=True)
        _write_csv(out_dir / "convergence.csv", _convergence_long(convergence))
        mean_screened = screened.groupby(["epoch", "view"], as_index=False)["n_selected"].mean()
        _write_csv(out_dir / "screened.csv", mean_screened.assign(series="view" + mean_screened["view"].astype(str)))
        figures = [plots.convergence_plot(convergence, out_dir / "plots" / "convergence.png",
                                          title=f"{dataset}: convergence over both stages")]
        if not screened.empty:
            figures.append(plots.screened_plot(screened, n_samples, out_dir / "plots" / "screened.png",
                                               title=f"{dataset}: screened samples per view (mean over seeds)"))
        return figures


CONVERGENCE_COLUMNS = ("seed", "epoch", "stage", "quantity", "value", "series")


def _convergence_long(frame: pd.DataFrame) -> pd.DataFrame:
    """Figure 3 in long form for `dvc plots` (one panel per quantity, one line per seed)."""
    long = frame.melt(id_vars=["seed", "epoch", "stage"], value_vars=["loss", "acc", "nmi"],
                      var_name="quantity", value_name="value")
    long["quantity"] = long["quantity"].map({"loss": "total loss", "acc": "ACC (%)", "nmi": "NMI (%)"})
    long["series"] = "seed " + long["seed"].astype(str)
    return long.dropna(subset=["value"])


def _long_series(rows: list[list[float]], name: str, value: str) -> pd.DataFrame:
    """Per-epoch rows of per-item values as long form (``epoch, <name>, <value>, series``)."""
    out = [{"epoch": e, name: m, value: v, "series": f"{name}{m}"}
           for e, row in enumerate(rows) for m, v in enumerate(row)]
    return pd.DataFrame(out, columns=("epoch", name, value, "series"))


def _tsne_figure(dataset: str, params: Params, views: list[np.ndarray], labels: np.ndarray,
                 n_clusters: int, out_dir: Path, final_model: Any, coloured_by: str = "class") -> list[Path]:
    """Figure 5: t-SNE of the first seed's fused features after the warm-up stage and at the end
    (``final_model``: that seed's trained model, already restored by :func:`evaluate`), coloured by
    ``labels`` (the classes, or the clusters when there are no labels: ``coloured_by`` says which)."""
    from mmib.embedding import tsne_frame
    from mmib.methods import registry

    cfg = params.evaluate
    if cfg.tsne_max_samples == 0:
        return []
    seed = params.seeds[0]
    warm = registry.restore(load_state(model_path(dataset, "warmup", seed), f"warmup@{dataset}"),
                            params, n_clusters, seed)
    snapshots = {}
    for name, model in (("end of warm-up", warm), ("end of training", final_model)):
        epochs = sum(len(h.get("loss", [])) for h in model.history_.values())
        snapshots[f"{name} (epoch {epochs})"] = model.transform(views)
    frame = tsne_frame(snapshots, labels, cfg.tsne_max_samples, cfg.tsne_perplexity, seed)
    _write_csv(out_dir / "tsne.csv", frame)
    return [plots.tsne_plot(frame, out_dir / "plots" / "tsne.png",
                            title=f"{dataset}: t-SNE of fused features (seed {seed}), coloured by {coloured_by}")]


def _loss_curves(histories: dict[int, dict]) -> dict[str, list[float]]:
    """Both stages of the first seed, end to end (x = epoch over the whole run)."""
    hist = next(iter(histories.values()))
    curves: dict[str, list[float]] = {}
    for stage in ("warmup", "calibrate"):
        for key, values in hist.get(stage, {}).items():
            if key.startswith("fusion_w") or key.startswith("n_selected") or key == "cold_start_loss":
                continue
            curves.setdefault(key, [])
            pad = len(hist.get("warmup", {}).get("loss", [])) if stage == "calibrate" else 0
            curves[key] += [float("nan")] * max(0, pad - len(curves[key])) + list(values)
    return curves


def _fusion_curve(hist: dict) -> list[list[float]]:
    rows: list[list[float]] = []
    for stage in ("warmup", "calibrate"):
        h = hist.get(stage, {})
        keys = sorted(k for k in h if k.startswith("fusion_w_view"))
        rows += [list(r) for r in zip(*(h[k] for k in keys))]
    return rows


# ---------------------------------------------------------------- summary
def summarize(params: Params) -> dict[str, Any]:
    """Two files nested by dataset: the headline scores in metrics/metrics.json (the metrics file
    `dvc exp show` lists: mean and std of ACC, NMI, ARI, ECE, mean confidence), the rest (lowest-loss
    seed, Table 5's hard samples) in metrics/details.json, a plain output, so `dvc exp show` stays
    narrow. A dataset without labels has no ACC/NMI/ARI/ECE: its row holds the label-free
    diagnostics and a note."""
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    notes = []
    for dataset in params.datasets:
        path = evaluation_path(dataset)
        if not path.exists():
            raise InputError("evaluation missing", file=str(path), fix=f"run `dvc repro evaluate@{dataset}`")
        ev = json.loads(path.read_text())
        out[dataset] = {k: ev[k] for k in SUMMARY_METRICS if k in ev}
        details[dataset] = {"lowest_loss_seed": {k: ev["lowest_loss_seed"][k] for k in ("seed", "acc", "nmi", "ece")
                                                 if k in ev["lowest_loss_seed"]}}
        if "hard_samples" in ev:  # Table 5 (CLIB)
            details[dataset]["hard_samples"] = {when: {k: ev["hard_samples"][when][k] for k in ("acc", "nmi", "ece")}
                                                for when in ("first_calibration_epoch", "end")}
        if ev.get("labels") is False:  # its only scores: the label-free diagnostics (`dvc exp show` columns)
            free = ev["label_free"]
            out[dataset]["label_free"] = {k: free[k] for k in ("silhouette", "seed_agreement") if free.get(k)}
            notes.append(f"{dataset}: no labels, so no ACC/NMI/ARI/ECE; assignments in "
                         f"{assignments_path(dataset)}, label-free diagnostics in {path}")
    write_json(METRICS / "metrics.json", out)
    write_json(DETAILS_PATH, details)
    lines = ["| dataset | ACC | NMI | ARI | ECE | mean conf |", "|---|---|---|---|---|---|"]
    for name, m in out.items():
        cells = [f"{m[k]['mean']:.1f} ± {m[k]['std']:.1f}" if k in m else "—" for k in SUMMARY_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_text(METRICS / "metrics.md", "\n".join(lines + [""] + notes) + "\n")
    return out


SUMMARY_METRICS = ("acc", "nmi", "ari", "ece", "mean_confidence")
DETAILS_PATH = METRICS / "details.json"  # summarize's second file: not a DVC metrics file (mmib.experiments reads it)


# ---------------------------------------------------------------- baselines
def baselines_path(dataset: str) -> Path:
    return METRICS / "baselines" / f"{dataset}.json"


def baselines(dataset: str, params: Params) -> dict[str, Any]:
    """KM / Ncuts (best view and mean over views), ALLKM, ALLNcuts over the seeds; JSON and MLflow.

    The partitions are computed without labels (:func:`mmib.baselines.cluster_baselines`);
    labels are read here only to score them, as in :func:`evaluate`.
    """
    from mmib import baselines as bl
    from mmib import tracking
    from mmib.data.processed import load_processed

    npz = PROCESSED / f"{dataset}.npz"
    views, labels, n_clusters = load_processed(npz)
    if labels is None:  # nothing to score them with: skipped, with a note (the report shows dashes)
        result = {"n_seeds": len(params.seeds), "seeds": list(params.seeds), "n_views": len(views),
                  "n_clusters": n_clusters, "labels": False, "methods": {},
                  "note": "the dataset has no labels: the baselines are scored with labels only, so none was run"}
        write_json(baselines_path(dataset), result)
        print(f"baselines {dataset}: no labels, nothing to score -> {baselines_path(dataset)}")
        return result
    with tracking.start_stage_run("baselines", dataset, tracked_params(params, "baselines"), device="cpu",
                                  extra_tags={"method": "baselines"}, pipeline_params=params.model_dump()) as run:
        cfg = params.baselines
        partitions = bl.cluster_baselines(views, n_clusters, params.seeds, kmeans_n_init=cfg.kmeans_n_init,
                                          ncuts_affinity=cfg.ncuts_affinity,
                                          ncuts_n_neighbors=cfg.ncuts_n_neighbors)
        methods = bl.score_baselines(partitions, labels)
        result = {"n_seeds": len(params.seeds), "seeds": list(params.seeds), "n_views": len(views),
                  "n_clusters": n_clusters, "config": cfg.model_dump(), "methods": methods}
        write_json(baselines_path(dataset), result)
        run.log_metrics({f"{m}.{k}_mean": v[k]["mean"] for m, v in methods.items() for k in ("acc", "nmi", "ari")})
        run.log_metrics({f"{m}.{k}_std": v[k]["std"] for m, v in methods.items() for k in ("acc", "nmi", "ari")})
        run.log_artifact(baselines_path(dataset), "metrics")
    line = ", ".join(f"{m} {v['acc']['mean']:.1f}" for m, v in methods.items())
    print(f"baselines {dataset} (ACC, {len(params.seeds)} seed(s)): {line} -> {baselines_path(dataset)}")
    return result


# ---------------------------------------------------------------- report
def report(params: Params, paper_path: str | Path = PAPER_TABLES) -> pd.DataFrame:
    """Ours (evaluate + baselines) next to the papers' numbers: metrics/report.{md,csv}, MLflow."""
    from mmib import report as rp
    from mmib import tracking

    paper = rp.load_paper_table(paper_path)
    names = params.report.paper_names
    rows: list[dict[str, Any]] = []
    lowest: dict[str, int] = {}
    notes: dict[str, str] = {}
    for dataset in params.datasets:
        needed = {"evaluate": evaluation_path(dataset), "baselines": baselines_path(dataset)}
        loaded = {}
        for stage, path in needed.items():
            if not path.exists():
                raise InputError(f"{stage} output missing", file=str(path),
                                 fix=f"run `dvc repro {stage}@{dataset}`")
            loaded[stage] = json.loads(path.read_text())
        rows += rp.dataset_rows(dataset, loaded["evaluate"], loaded["baselines"], paper, names.get(dataset))
        if loaded["evaluate"].get("labels") is False:
            notes[dataset] = loaded["evaluate"]["note"]
        if loaded["evaluate"].get("method", "clib") == "clib" and \
                "seed" in (loaded["evaluate"].get("lowest_loss_seed") or {}):
            lowest[dataset] = int(loaded["evaluate"]["lowest_loss_seed"]["seed"])
    bench = rp.load_benchmark(params.report.benchmark)
    for dataset in params.datasets:
        rows += rp.benchmark_rows(dataset, bench)
    frame = rp.report_frame(rows)
    md_path, csv_path = METRICS / "report.md", METRICS / "report.csv"
    write_text(md_path, rp.render_markdown(frame, params.datasets, names, len(params.seeds), lowest, notes))
    _write_csv(csv_path, frame)
    ours = frame[frame["source"] == "ours"]
    with tracking.start_stage_run("report", "all", tracked_params(params, "report"),
                                  pipeline_params=params.model_dump()) as run:
        run.log_metrics({f"{r.dataset}.{r.method}.{r.metric}": r.value for r in ours.itertuples()})
        run.log_artifact(md_path, "report")
        run.log_artifact(csv_path, "report")
    print(f"report: {len(params.datasets)} dataset(s) -> {md_path}, {csv_path}")
    return frame


# ---------------------------------------------------------------- CLI wrapper
def run_cli(fn: Callable[..., Any], *args: Any, params_path: str = "params.yaml") -> int:
    """Run a stage function; bad input becomes a one-paragraph message and exit status 2."""
    from mmib.data.freshness import check_sources_unchanged

    try:
        params = load_params(params_path)
        for dataset in args:
            check_dataset_declared(dataset, params)
            check_sources_unchanged(dataset, params.model_dump())
        fn(*args, params)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


STAGES: dict[str, Callable[..., Any]] = {
    "warmup": lambda dataset, params: train("warmup", dataset, params),
    "calibrate": lambda dataset, params: train("calibrate", dataset, params),
    "evaluate": lambda dataset, params: evaluate(dataset, params),
    "summarize": lambda params: summarize(params),
    "baselines": lambda dataset, params: baselines(dataset, params),
    "report": lambda params: report(params),
}


WHOLE_RUN_STAGES = ("summarize", "report")  # stages over all `datasets`, no dataset argument


def main(stage: str, argv: list[str] | None = None) -> int:
    """Command line of one stage: ``<stage>.py [dataset] [--params params.yaml]``, bound to its
    launcher and under the repository's stage lock (:mod:`mmib.entry`)."""
    import argparse

    from mmib.entry import stage_process

    parser = argparse.ArgumentParser(prog=f"pipeline/{stage}.py", description=f"DVC stage {stage}")
    per_dataset = stage not in WHOLE_RUN_STAGES
    if per_dataset:
        parser.add_argument("dataset", help="a name from data/catalog.yaml")
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    datasets = [args.dataset] if per_dataset else []
    try:
        with stage_process("@".join([stage, *datasets]), args.params):
            return run_cli(STAGES[stage], *datasets, params_path=args.params)
    except InputError as exc:  # another run in the way
        print(f"error: {exc}", file=sys.stderr)
        return 2


def check_dataset_declared(dataset: str, params: Params) -> None:
    if dataset not in params.catalog:
        raise InputError(f"unknown dataset {dataset!r}; known: {sorted(params.catalog)}",
                         file="params.yaml", field="datasets",
                         fix="use a name from data/catalog.yaml, or add an entry for it there")

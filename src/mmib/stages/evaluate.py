"""DVC stage ``evaluate@<dataset>``: scores, assignments, figures and an MLflow run; the one stage
that reads labels (when the dataset has them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmib import plots
from mmib.atomic_io import write_csv, write_json
from mmib.config import Params
from mmib.stages import cli
from mmib.stages.declared import tracked_params
from mmib.stages.paths import METRICS, PROCESSED, assignments_path, evaluation_path, model_path
from mmib.training_record import TrainingRecord
from mmib.stages.traced_seeds import TracedSeeds
from mmib.state_io import load_state


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
        if run.enabled:  # the input, with its labels (evaluate is where they are read)
            from mmib.data.processed import load_processed

            views, labels, _ = load_processed(PROCESSED / f"{dataset}.npz")
            run.log_dataset(dataset, PROCESSED / f"{dataset}.npz", views, "evaluation", labels)
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
    write_csv(assignments_path(dataset), label_free.assignments_frame(probas))
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
    write_csv(out_dir / "reliability.csv", table)
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
        write_csv(out_dir / "fusion_weights.csv", _long_series(fusion, "view", "weight"))
    figures += traced.write(dataset, out_dir, len(views[0]))
    colours = labels if labels is not None else probas[first].argmax(axis=1)
    figures += _tsne_figure(dataset, params, views, colours, n_clusters, out_dir, models[first],
                            "class" if labels is not None else f"cluster of seed {first} (no labels)")
    return figures


def _log_evaluation(run: Any, dataset: str, params: Params, method: str, result: dict[str, Any],
                    traced: "TracedSeeds", figures: list[Path]) -> None:
    """The evaluate run in MLflow: mean +- std over seeds (also on the pipeline run, as
    ``<dataset>.<metric>_mean``, with ``<dataset>.seed_agreement_mean``), the label-free summary, tables, figures, the lowest-loss seed's model (:mod:`mmib.mlflow_model`); and one child
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
        # beside ACC on the pipeline run, where runs are compared: label-free (README "Choosing a recipe")
        run.log_pipeline_metrics({f"{dataset}.seed_agreement_mean": free["seed_agreement"]["nmi"]["mean"]})
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
    write_csv(out_dir / "tsne.csv", frame)
    return [plots.tsne_plot(frame, out_dir / "plots" / "tsne.png",
                            title=f"{dataset}: t-SNE of fused features (seed {seed}), coloured by {coloured_by}")]


def _loss_curves(histories: dict[int, dict]) -> dict[str, list[float]]:
    """Both stages of the first seed, end to end (x = epoch over the whole run)."""
    hist = next(iter(histories.values()))
    curves: dict[str, list[float]] = {}
    for stage in ("warmup", "calibrate"):
        for key, values in TrainingRecord.of(hist.get(stage, {})).loss_terms.items():
            curves.setdefault(key, [])
            pad = len(hist.get("warmup", {}).get("loss", [])) if stage == "calibrate" else 0
            curves[key] += [float("nan")] * max(0, pad - len(curves[key])) + list(values)
    return curves


def _fusion_curve(hist: dict) -> list[list[float]]:
    """Figure 6: the fusion weights ``[epoch][view]`` over both stages."""
    return [row for stage in ("warmup", "calibrate") for row in TrainingRecord.of(hist.get(stage, {})).fusion_weights]


def main(argv: list[str] | None = None) -> int:
    """``pipeline/evaluate.py <dataset> [--params params.yaml]``."""
    return cli.main("evaluate", evaluate, argv)

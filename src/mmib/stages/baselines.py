"""DVC stage ``baselines@<dataset>``: the papers' KM / Ncuts / ALLKM / ALLNcuts rows, JSON and MLflow."""

from __future__ import annotations

from typing import Any

from mmib.atomic_io import write_json
from mmib.config import Params
from mmib.stages import cli
from mmib.stages.declared import tracked_params
from mmib.stages.paths import PROCESSED, baselines_path


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


def main(argv: list[str] | None = None) -> int:
    """``pipeline/baselines.py <dataset> [--params params.yaml]``."""
    return cli.main("baselines", baselines, argv)

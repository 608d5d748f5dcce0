"""Which partition should the cold start fit the heads to? (issue "Quality")

The default's final ACC is within a point of its cold start's (the
calibration no longer drifts), so the cold-start partition bounds the
result. This benchmark trains the warm-up only (params.yaml, R seeds), keeps
the fused features h^f, and scores label-free partitions of them against
the labels, offline:

- ``kmeans``: K-Means of h^f (the paper);
- ``spectral``: normalized cut of the 10-NN graph of h^f (the 2026-11-24 default);
- ``raw``: normalized cut of the raw concatenated views (the ALLNcuts baseline);
- ``joint``: normalized cut of the mean of the two 10-NN graphs (h^f and raw views);
- ``views``: normalized cut of the mean of h^f's graph and every raw view's graph.

Labels are read only to score. Usage::

    python benchmarks/cold_start_partitions.py --datasets caltech_2v cub --seeds 0 1 2 \\
        --features /tmp/warmup-features --out benchmarks/cold-start-partitions.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "src"))

from mmib.data.catalog import read_params  # noqa: E402
from quality import ALL_DATASETS, load_views  # noqa: E402


def warmup_features(job: dict) -> str:
    """Train the warm-up of one (dataset, seed) and save h^f, the views and the labels."""
    import torch

    torch.set_num_threads(1)
    from mmib.config import parse_params
    from mmib.methods.clib.estimator import CLIB

    path = Path(job["features"]) / f"{job['dataset']}-{job['seed']}.npz"
    if path.exists():
        return str(path)
    raw = read_params(job["params"])
    views, labels, c = load_views(raw, job["dataset"])
    model = CLIB.from_params(parse_params(raw), c, job["seed"], progress=False)
    model.device = "cpu"
    model.fit_warmup(views)
    fused = model.transform(views)
    np.savez_compressed(path, fused=fused, labels=labels, n_views=len(views),
                        **{f"view{i}": v for i, v in enumerate(views)})
    return str(path)


def knn_graph(x: np.ndarray, k: int = 10):
    """Symmetrised k-NN connectivity (as sklearn's SpectralClustering builds it)."""
    from sklearn.neighbors import kneighbors_graph

    g = kneighbors_graph(x, n_neighbors=min(k, x.shape[0] - 1), include_self=True)
    return 0.5 * (g + g.T)


def partitions(path: str, seed: int) -> dict:
    from sklearn.cluster import KMeans, SpectralClustering

    from mmib.baselines import concatenate_views
    from mmib.metrics import clustering_accuracy, nmi

    d = np.load(path)
    fused, labels = d["fused"].astype(np.float64), d["labels"]
    views = [d[f"view{i}"].astype(np.float64) for i in range(int(d["n_views"]))]
    c = int(labels.max()) + 1
    raw = concatenate_views(views)
    graphs = {
        "spectral": knn_graph(fused),
        "raw": knn_graph(raw),
    }
    graphs["joint"] = 0.5 * (graphs["spectral"] + graphs["raw"])
    graphs["views"] = (graphs["spectral"] + sum(knn_graph(v) for v in views)) / (1 + len(views))
    out = {"kmeans": KMeans(c, n_init=10, random_state=seed).fit_predict(fused)}
    for name, g in graphs.items():
        sc = SpectralClustering(c, affinity="precomputed", assign_labels="kmeans", random_state=seed)
        out[name] = sc.fit_predict(g)
    return {name: [round(clustering_accuracy(labels, p), 2), round(nmi(labels, p), 2)] for name, p in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=ALL_DATASETS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--params", default=str(ROOT.parent / "params.yaml"))
    ap.add_argument("--features", required=True, help="folder for the warm-up features (reused when present)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/cold-start-partitions.jsonl")
    args = ap.parse_args()
    Path(args.features).mkdir(parents=True, exist_ok=True)
    jobs = [{"dataset": d, "seed": s, "params": args.params, "features": args.features}
            for d in args.datasets for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        paths = list(pool.map(warmup_features, jobs))
        scores = list(pool.map(partitions, paths, [j["seed"] for j in jobs]))
    with open(args.out, "a") as fh:
        for job, sc in zip(jobs, scores):
            fh.write(json.dumps({"dataset": job["dataset"], "seed": job["seed"], **sc}) + "\n")
    by_ds: dict = {}
    for job, sc in zip(jobs, scores):
        by_ds.setdefault(job["dataset"], []).append(sc)
    names = list(scores[0])
    print("| dataset | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for ds, rows in by_ds.items():
        cells = [f"{np.mean([r[n][0] for r in rows]):.1f} / {np.mean([r[n][1] for r in rows]):.1f}" for n in names]
        print(f"| {ds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

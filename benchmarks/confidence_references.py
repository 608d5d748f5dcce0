"""Which model-free references, at which weight, should the label-free temperature agree with?

    PYTHONPATH=src python benchmarks/confidence_references.py \\
        --probas benchmarks/quality-2026-12-02.jsonl.probas [--datasets bdgp mnist_usps] \\
        [--weights 0.5 0.65 0.75] [--recipe default]

Re-scores, offline, the saved probabilities of a quality benchmark run made
with ``--dump`` (one ``<dataset>-<recipe>-<seed>.npz`` per seed: the head's
``proba`` and the ``labels``): each seed's temperature is fitted as the
calibrate stage fits it (:func:`mmib.confidence.agreement_temperatures`: the
other seeds plus the references, ``weight`` = the references' share of the
likelihood), against these reference sets:

- ``ncuts``: the normalized cut of the concatenated raw views (the shipped
  ``calibrate.confidence: seeds_and_ncuts``);
- ``ncuts+kmeans``: and K-Means of the concatenated raw views;
- ``ncuts+views``: and the normalized cut of each view alone.

Prints, per dataset, the mean ACC of the seeds and, per reference set and
weight, the mean ECE and mean confidence (percent). The argmax never moves, so
ACC/NMI are the same in every column. Labels are read only to score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import ALL_DATASETS, load_views  # noqa: E402

from mmib.baselines import concatenate_views, ncuts_predict  # noqa: E402
from mmib.confidence import agreement_temperatures, temperature_scale  # noqa: E402
from mmib.data.catalog import read_params  # noqa: E402
from mmib.metrics import evaluate_soft_clustering  # noqa: E402


def reference_sets(views: list[np.ndarray], n_clusters: int, seed: int) -> dict[str, list[np.ndarray]]:
    from sklearn.cluster import KMeans

    joined = concatenate_views(views)
    ncuts = ncuts_predict(joined, n_clusters, seed)
    kmeans = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(joined)
    per_view = [ncuts_predict(v, n_clusters, seed) for v in views]
    return {"ncuts": [ncuts], "ncuts+kmeans": [ncuts, kmeans], "ncuts+views": [ncuts, *per_view]}


def scored(labels: np.ndarray, probas: list[np.ndarray], refs: list[np.ndarray], weight: float) -> tuple[float, float]:
    """Mean ECE and mean confidence over the seeds, each tempered against the others and ``refs``."""
    temps = agreement_temperatures(probas, refs, weight)
    rows = [evaluate_soft_clustering(labels, temperature_scale(p, t)) for p, t in zip(probas, temps)]
    return float(np.mean([r["ece"] for r in rows])), float(np.mean([r["mean_confidence"] for r in rows]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probas", required=True, help="the --dump directory of a quality benchmark run")
    ap.add_argument("--datasets", nargs="+", default=ALL_DATASETS)
    ap.add_argument("--recipe", default="default")
    ap.add_argument("--weights", nargs="+", type=float, default=[0.5, 0.65, 0.75])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    args = ap.parse_args(argv)
    raw = read_params(args.params)
    print("| dataset | seeds | ACC | " + " | ".join(f"{name} @ {w}: ECE / conf" for name in
                                                 ("ncuts", "ncuts+kmeans", "ncuts+views") for w in args.weights) + " |")
    print("|---" * (3 + 3 * len(args.weights)) + "|")
    for ds in args.datasets:
        files = sorted(Path(args.probas).glob(f"{ds}-{args.recipe}-*.npz"))
        if not files:
            print(f"| {ds} | 0 | no saved probabilities |")
            continue
        loaded = [np.load(f) for f in files]
        labels, probas = loaded[0]["labels"], [d["proba"] for d in loaded]
        views, _, n_clusters = load_views(raw, ds)
        acc = np.mean([evaluate_soft_clustering(labels, p)["acc"] for p in probas])
        cells = []
        for refs in reference_sets(views, n_clusters, seed=0).values():
            for w in args.weights:
                ece, conf = scored(labels, probas, refs, w)
                cells.append(f"{ece:.1f} / {conf:.1f}")
        print(f"| {ds} | {len(probas)} | {acc:.1f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

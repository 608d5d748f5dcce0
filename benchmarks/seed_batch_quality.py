"""Does ``seed_batching`` change the results? ACC / NMI of the same seeds trained with today's per-seed
stages and with the stacked ones, as the stages run them (the warm-up, :mod:`mmib.methods.clib.seed_batch`,
then the calibration, :mod:`mmib.methods.clib.seed_batch_calibration`; before 2026-12-02 late the
calibration was the per-seed code in both paths).

    PYTHONPATH=src python benchmarks/seed_batch_quality.py --dataset mfeat [--seeds 0 1 2] [--out file.jsonl]

params.yaml's recipe and epochs, on the CPU, one thread. Per seed: ACC, NMI of the final model
(labels read here only, to score), and how far the two paths' warm-up features are apart.
The stacked stages are the same algorithm up to float rounding (tests/test_seed_batch*.py), and
training amplifies rounding, so the two paths' seeds are two draws of the same recipe, not copies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _nudged_warmup(model):
    """``model.fit_warmup`` with every parameter moved by one float step (``nextafter``) once built."""
    from mmib.methods.clib.estimator import CLIB

    def fit_warmup(views):
        build = model._build

        def nudged_build(xs):
            build(xs)
            with torch.no_grad():
                for p in model.net_.parameters():
                    p.copy_(torch.nextafter(p, torch.full_like(p, float("inf"))))
        model._build = nudged_build
        try:
            return CLIB.fit_warmup(model, views)
        finally:
            del model._build
    return fit_warmup


def main() -> None:
    from quality import load_views

    from mmib.config import load_params
    from mmib.data.catalog import read_params
    from mmib.methods.clib.estimator import CLIB
    from mmib.metrics import clustering_accuracy, nmi
    from mmib.methods.clib.seed_batch import fit_warmup_batched, new_models
    from mmib.methods.clib.seed_batch_calibration import fit_calibration_batched

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mfeat")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None, help="append one JSON line per (path, seed)")
    ap.add_argument("--control", action="store_true",
                    help="also a third path: per-seed with every initial weight moved by one float step "
                         "(the spread that rounding alone causes, to judge the stacked path's differences by)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml").model_copy(update={"device": "cpu"})
    views, labels, n_clusters = load_views(read_params(ROOT / "params.yaml"), args.dataset)
    t0 = time.perf_counter()
    per_seed = [CLIB.from_params(params, n_clusters, seed=s, progress=False).fit_warmup(views) for s in args.seeds]
    t1 = time.perf_counter()
    stacked = fit_warmup_batched(new_models(params, n_clusters, args.seeds), views)
    t2 = time.perf_counter()
    print(f"{args.dataset}: warm-up of {len(args.seeds)} seeds, one thread: per-seed {t1 - t0:.0f} s, "
          f"stacked {t2 - t1:.0f} s", flush=True)
    paths = [("per-seed", per_seed), ("stacked", stacked)]
    if args.control:
        nudged = new_models(params, n_clusters, args.seeds)
        for model in nudged:
            model.fit_warmup = _nudged_warmup(model)
        paths.append(("nudged", [m.fit_warmup(views) for m in nudged]))
    rows = []
    for path, models in paths:
        warm_features = [model.transform(views) for model in models]
        if path == "stacked":
            fit_calibration_batched(models, views)
        else:
            for model in models:
                model.fit_calibration(views)
        for seed, model, features in zip(args.seeds, models, warm_features):
            pred = model.predict(views)
            rows.append({"dataset": args.dataset, "path": path, "seed": seed,
                         "acc": clustering_accuracy(labels, pred), "nmi": nmi(labels, pred),
                         "warm_features": features})
    base = rows[:len(args.seeds)]
    for i, row in enumerate(rows):
        row["warmup_feature_gap"] = float(np.abs(row["warm_features"] - base[i % len(base)]["warm_features"]).max())
    for row in rows:
        del row["warm_features"]
    for row in rows:
        print(f"{row['dataset']:<11} {row['path']:<9} seed {row['seed']}: ACC {row['acc']:.2f} NMI {row['nmi']:.2f} "
              f"(max |h^f - per-seed's| after warm-up {row['warmup_feature_gap']:.2e})", flush=True)
    for path, _ in paths:
        acc = [r["acc"] for r in rows if r["path"] == path]
        nm = [r["nmi"] for r in rows if r["path"] == path]
        print(f"{args.dataset:<11} {path:<9} mean: ACC {np.mean(acc):.2f} +- {np.std(acc):.2f}, "
              f"NMI {np.mean(nm):.2f} +- {np.std(nm):.2f}")
    if args.out:
        with open(args.out, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

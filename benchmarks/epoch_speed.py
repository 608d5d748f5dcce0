"""Seconds per epoch of each CLIB stage, and the projected time of a full run.

    PYTHONPATH=src python benchmarks/epoch_speed.py [--dataset mfeat] [--epochs 3]
        [--batch-size 256] [--threads N]

Uses params.yaml (the same hyper-parameters as `dvc repro`) and the dataset's
processed file when it exists, else loads it through the catalog. Prints the
device, the steady-state seconds per epoch of warm-up and calibration (first
epoch excluded), and the projection for params.yaml's epochs and seeds.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmib.config import load_params  # noqa: E402
from mmib.methods.clib.estimator import CLIB  # noqa: E402


def load_views(name: str) -> tuple[list[np.ndarray], int]:
    from mmib.data import dataset_entry, load, prepare, read_params
    from mmib.data.processed import load_processed

    processed = ROOT / "data" / "processed" / f"{name}.npz"
    if processed.exists():
        views, _, n_clusters = load_processed(processed)
        return views, n_clusters
    raw = read_params(ROOT / "params.yaml")
    entry = dataset_entry(raw, name)
    arrays = prepare(load(raw, name, base=ROOT), raw["preprocess"]["scaling"], entry.expect.n_clusters)
    views = [arrays[f"view{m}"] for m in range(sum(k.startswith("view") for k in arrays))]
    return views, entry.expect.n_clusters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mfeat")
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed per stage (first is warm-up)")
    ap.add_argument("--batch-size", type=int, default=None, help="override warmup.batch_size")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(ROOT / "params.yaml")
    views, n_clusters = load_views(args.dataset)
    model = CLIB.from_params(params, n_clusters, seed=0, progress=False)
    bs = args.batch_size or params.warmup.batch_size
    model.warmup = model.warmup.model_copy(update={"epochs": args.epochs + 1, "batch_size": bs})
    model.calibrate = model.calibrate.model_copy(update={"epochs": args.epochs + 1, "warmup_free": False})
    t0 = time.perf_counter()
    model.fit_warmup(views)
    t1 = time.perf_counter()
    model.fit_calibration(views)
    t2 = time.perf_counter()
    warm = float(np.mean(model.history_["warmup"]["epoch_seconds"][1:]))
    cal = float(np.mean(model.history_["calibrate"]["epoch_seconds"][1:]))
    n_seeds = len(params.seeds)
    projected = n_seeds * (warm * params.warmup.epochs + cal * params.calibrate.epochs)
    print(f"machine        : {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"device         : {model.device_}")
    print(f"dataset        : {args.dataset}, N={views[0].shape[0]}, dims={[v.shape[1] for v in views]}, "
          f"C={n_clusters}")
    print(f"batch size     : {bs}")
    print(f"warmup         : {warm:.3f} s/epoch (steady state over {args.epochs} epochs)")
    print(f"calibrate      : {cal:.3f} s/epoch (incl. per-epoch K-Means and screening)")
    print(f"wall           : warmup {t1 - t0:.1f} s, calibrate {t2 - t1:.1f} s (incl. first epochs, cold start)")
    print(f"projected      : {projected / 60:.1f} min of training for {n_seeds} seeds x "
          f"({params.warmup.epochs} + {params.calibrate.epochs}) epochs")


if __name__ == "__main__":
    main()

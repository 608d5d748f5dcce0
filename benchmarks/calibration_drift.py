"""Where calibration loses accuracy: one seed, per calibration epoch, scored with the labels.

Prints, before each calibration epoch: the cluster head's ACC, the ACC of a
normalized cut of the *current* fused features (do the features drift, or the
head?), each view's calibration-head ACC, the screened count K_m per view,
the cluster head's mean confidence and the fusion weights. This is the
diagnosis behind the switches ``screening_agreement`` and ``balance_weight``
(README "Deviations"); labels are read here only, to score.

    python benchmarks/calibration_drift.py mfeat
    python benchmarks/calibration_drift.py mfeat calibrate.screening_agreement=false calibrate.epochs=12
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import load_views  # noqa: E402

from mmib.baselines import ncuts_predict  # noqa: E402
from mmib.config import parse_params  # noqa: E402
from mmib.data.catalog import read_params  # noqa: E402
from mmib.methods.clib.estimator import CLIB  # noqa: E402
from mmib.metrics import clustering_accuracy  # noqa: E402
from mmib.recipes import apply_overrides  # noqa: E402


def main(argv: list[str]) -> None:
    dataset, overrides = argv[0], argv[1:]
    torch.set_num_threads(1)
    raw = apply_overrides(read_params(ROOT / "params.yaml"), overrides)
    views, y, c = load_views(raw, dataset)
    model = CLIB.from_params(parse_params(raw), c, 0, progress=False)
    model.device = "cpu"
    model.fit_warmup(views)
    targets = model._epoch_targets

    def scored(xs, epoch):
        out = targets(xs, epoch)
        enc, p_clu, p_cal = model._eval_outputs(xs)
        cut = ncuts_predict(enc.fused.numpy(), c, 0)
        print(f"epoch {epoch:3d} head {clustering_accuracy(y, p_clu.argmax(1).numpy()):5.1f} "
              f"ncut(h^f) {clustering_accuracy(y, cut):5.1f} "
              f"cal {[round(clustering_accuracy(y, p.argmax(1).numpy()), 1) for p in p_cal]} "
              f"K {out['k_selected']} conf {float(p_clu.max(1).values.mean()):.3f} "
              f"w {np.round(model.fusion_weights(), 2).tolist()}", flush=True)
        return out

    model._epoch_targets = scored
    model.fit_calibration(views)


if __name__ == "__main__":
    main(sys.argv[1:])

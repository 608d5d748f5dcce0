"""Each plot writes a non-empty PNG, atomically (no temporary file left behind)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmib.errors import InputError
from mmib.metrics import reliability_table
from mmib.plots import (convergence_plot, fusion_weights_plot, heatmap, reliability_diagram, screened_plot,
                        training_curves, tsne_plot)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_reliability_diagram(tmp_path):
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, 300)
    correct = rng.random(300) < conf
    out = reliability_diagram(reliability_table(conf, correct), tmp_path / "d" / "rel.png", "CLIB")
    _assert_png(out)


def test_training_curves(tmp_path):
    curves = {"loss": [3.0, 2.0, 1.5, 1.2], "kl": [0.1, 0.2, 0.2, 0.3], "nce": [5, 4, 3, 3],
              "mine": [0.0, 0.5, 0.9, 1.0]}  # 4 curves: two rows of subplots
    _assert_png(training_curves(curves, tmp_path / "curves.png", "warm-up"))
    with pytest.raises(InputError):
        training_curves({}, tmp_path / "empty.png")


def test_fusion_weights_plot(tmp_path):
    weights = [[0.5, 0.5], [0.55, 0.45], [0.6, 0.4]]
    _assert_png(fusion_weights_plot(weights, ["img", "txt"], tmp_path / "w.png"))
    with pytest.raises(InputError, match="views"):
        fusion_weights_plot(weights, ["a", "b", "c"], tmp_path / "bad.png")


def test_same_data_same_bytes(tmp_path):
    table = reliability_table([0.9, 0.8, 0.3], [1, 0, 1])
    a = reliability_diagram(table, tmp_path / "a" / "r.png").read_bytes()
    b = reliability_diagram(table, tmp_path / "b" / "r.png").read_bytes()
    assert a == b  # stable DVC hashes for identical results


def test_convergence_plot(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"seed": [0] * 4 + [1] * 4, "epoch": [1, 2, 2, 3] * 2,
                          "stage": ["warmup", "warmup", "calibrate", "calibrate"] * 2,
                          "loss": [5, 4, float("nan"), 3] * 2, "acc": [50, 60, 55, 70] * 2,
                          "nmi": [40, 45, 44, 50] * 2})
    _assert_png(convergence_plot(frame, tmp_path / "c.png"))
    with pytest.raises(InputError, match="columns"):
        convergence_plot(frame.drop(columns="nmi"), tmp_path / "bad.png")


def test_tsne_and_screened_plots(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    points = pd.DataFrame({"snapshot": ["a"] * 30 + ["b"] * 30, "x": rng.normal(size=60),
                           "y": rng.normal(size=60), "label": np.tile(np.arange(3), 20)})
    _assert_png(tsne_plot(points, tmp_path / "t" / "t.png"))
    screened = pd.DataFrame({"seed": 0, "epoch": [1, 2, 1, 2], "view": [0, 0, 1, 1], "n_selected": [50, 60, 55, 58]})
    _assert_png(screened_plot(screened, 100, tmp_path / "s" / "s.png"))
    with pytest.raises(InputError):
        tsne_plot(points.iloc[:0], tmp_path / "empty.png")


def test_heatmap(tmp_path):
    import pandas as pd

    grid = pd.DataFrame([[50.0, 55.0], [60.0, float("nan")]], index=pd.Index([0.1, 0.2], name="beta"),
                        columns=pd.Index([0.1, 0.2], name="alpha"))
    _assert_png(heatmap(grid, tmp_path / "h.png", "ACC", "ACC (%)"))
    with pytest.raises(InputError, match="sweep"):
        heatmap(grid.iloc[:0], tmp_path / "empty.png", "ACC", "ACC (%)")


def test_reliability_title_labels_the_pooled_ece_and_the_mean_of_the_seeds():
    """Issue 13.7: the figure pools every seed's samples, the metric ``ece`` averages the seeds'
    ECEs; the title says which number is which."""
    from mmib.metrics import ece_from_table
    from mmib.plots import reliability_title

    table = reliability_table([0.9, 0.8, 0.3, 0.6], [1, 0, 1, 1])
    title = reliability_title(table, "mfeat: reliability", seed_mean_ece=22.49)
    lines = title.splitlines()
    assert lines[0] == "mfeat: reliability"
    assert lines[1].startswith("pooled samples: ECE ") and f"{ece_from_table(table):.2f}%" in lines[1]
    assert lines[2] == "mean of the seeds' ECEs (metric ece): 22.49%"
    assert "metric ece" not in reliability_title(table, "x")  # no seed mean given, none claimed

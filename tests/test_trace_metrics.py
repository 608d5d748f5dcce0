"""Scores of the training trace (Figure 3, Table 5, screened counts) against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmib.embedding import tsne_frame
from mmib.errors import InputError
from mmib.methods.trace import TrainingTrace
from mmib.trace_metrics import convergence_frame, hard_sample_indices, hard_sample_study, screened_frame

LABELS = np.array([0, 0, 1, 1, 2, 2])


def _trace() -> TrainingTrace:
    trace = TrainingTrace()
    trace.add_warmup(np.array([1, 1, 0, 0, 2, 2]))      # perfect up to renaming: ACC 100
    trace.add_warmup(np.array([0, 0, 0, 1, 2, 2]))      # one error: ACC 5/6
    first = np.array([[.9, .05, .05], [.1, .8, .1], [.2, .7, .1], [.1, .8, .1], [.1, .1, .8], [.1, .1, .8]])
    trace.add_calibration(first, quality=np.array([.9, .1, .6, .8, .3, .7]))
    trace.add_calibration(np.eye(3)[[0, 0, 1, 1, 2, 2]])
    return trace


HISTORY = {"warmup": {"loss": [5.0, 4.0]}, "calibrate": {"loss": [3.0]}}


def test_convergence_frame_runs_over_both_stages():
    frame = convergence_frame(7, HISTORY, _trace(), LABELS)
    assert list(frame["epoch"]) == [1, 2, 2, 3]
    assert list(frame["stage"]) == ["warmup", "warmup", "calibrate", "calibrate"]
    assert frame["loss"].iloc[:2].tolist() == [5.0, 4.0] and math.isnan(frame["loss"].iloc[2])
    assert frame["loss"].iloc[3] == 3.0
    # first calibration snapshot argmax [0, 1, 1, 1, 2, 2]: one error, ACC 5/6
    assert frame["acc"].tolist() == pytest.approx([100.0, 500 / 6, 500 / 6, 100.0])
    assert frame["nmi"].iloc[0] == pytest.approx(100.0) and frame["nmi"].iloc[1] < 100.0
    assert (frame["seed"] == 7).all()


def test_convergence_frame_rejects_a_trace_that_does_not_match_the_history():
    with pytest.raises(InputError, match="trace"):
        convergence_frame(0, {"warmup": {"loss": [1.0]}, "calibrate": {"loss": [3.0]}}, _trace(), LABELS)


def test_hard_sample_indices_take_the_lowest_quality_fraction():
    q = np.array([.9, .1, .6, .8, .3, .7])
    assert hard_sample_indices(q, 0.2).tolist() == [1, 4]        # ceil(1.2) = 2 lowest
    assert hard_sample_indices(q, 0.5).tolist() == [1, 2, 4]
    assert hard_sample_indices(np.array([.5, .5, .5]), 0.3).tolist() == [0]  # ties: lower index first
    with pytest.raises(InputError):
        hard_sample_indices(q, 0.0)


def test_hard_sample_study_scores_the_subset_then_and_at_the_end():
    trace = _trace()
    final = np.eye(3)[[0, 1, 1, 1, 2, 2]] * 0.5 + 0.5 / 3
    out = hard_sample_study(trace, final, LABELS, fraction=0.5, n_bins=15)
    # hard samples 1, 2, 4 (labels 0, 1, 2); first predictions 1, 1, 2 -> best mapping: 2 of 3 right
    assert out["n_samples"] == 3
    first = out["first_calibration_epoch"]
    assert first["acc"] == pytest.approx(200 / 3)
    # confidence = max probability of each hard sample: .8, .7, .8
    assert first["mean_confidence"] == pytest.approx(100 * (0.8 + 0.7 + 0.8) / 3)
    assert 0.0 < first["ece"] <= 100.0
    end = out["end"]
    assert end["acc"] == pytest.approx(200 / 3)
    assert end["mean_confidence"] == pytest.approx(100 * (0.5 + 0.5 / 3))


def test_hard_sample_study_needs_the_first_calibration_snapshot():
    with pytest.raises(InputError, match="snapshot"):
        hard_sample_study(TrainingTrace(), np.eye(3)[[0, 0, 1, 1, 2, 2]], LABELS, 0.2, 15)


def test_screened_frame_lists_each_view_per_epoch():
    frame = screened_frame(3, {"n_selected_view0": [5.0, 6.0], "n_selected_view1": [4.0, 7.0], "loss": [1, 2]})
    assert frame.to_dict("records") == [
        {"seed": 3, "epoch": 1, "view": 0, "n_selected": 5.0}, {"seed": 3, "epoch": 2, "view": 0, "n_selected": 6.0},
        {"seed": 3, "epoch": 1, "view": 1, "n_selected": 4.0}, {"seed": 3, "epoch": 2, "view": 1, "n_selected": 7.0}]


def test_tsne_frame_shows_the_same_samples_in_every_snapshot():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    snaps = {"a": rng.normal(size=(60, 5)), "b": rng.normal(size=(60, 5)) + labels[:, None]}
    frame = tsne_frame(snaps, labels, max_samples=25, perplexity=30.0, seed=0)
    assert len(frame) == 50 and set(frame["snapshot"]) == {"a", "b"}
    a, b = frame[frame["snapshot"] == "a"], frame[frame["snapshot"] == "b"]
    assert a["sample"].tolist() == b["sample"].tolist() and a["sample"].is_unique
    assert (labels[a["sample"]] == a["label"]).all()
    again = tsne_frame(snaps, labels, max_samples=25, perplexity=30.0, seed=0)
    assert np.array_equal(again[["x", "y"]].to_numpy(), frame[["x", "y"]].to_numpy())

"""The training record: the one reader of the methods' per-epoch history names."""

from __future__ import annotations

import pandas as pd
import pytest

from mmib.training_record import (COLD_START_LOSS, EPOCH_SECONDS, KMEANS_INERTIA, TrainingRecord, fusion_weight_key,
                                  metric_name, screened_key, without_timings)

CLIB_CALIBRATE = {
    "loss": [3.0, 2.0, 1.5], "kl": [9.0, 8.0, 7.0], "caliH": [0.5, 0.4, 0.3],
    fusion_weight_key(0): [0.5, 0.6, 0.7], fusion_weight_key(1): [0.5, 0.4, 0.3],
    screened_key(0): [10.0, 11.0, 12.0], screened_key(1): [20.0, 21.0, 22.0],
    KMEANS_INERTIA: [100.0, 90.0, 80.0], EPOCH_SECONDS: [1.5, 1.4, 1.3],
    COLD_START_LOSS: [2.0, 1.0, 0.5, 0.25, 0.125],
}


def test_a_clib_history_reads_as_its_parts():
    record = TrainingRecord.of(CLIB_CALIBRATE)
    assert record.loss_terms == {"loss": [3.0, 2.0, 1.5], "kl": [9.0, 8.0, 7.0], "caliH": [0.5, 0.4, 0.3]}
    assert record.fusion_weights == [[0.5, 0.5], [0.6, 0.4], [0.7, 0.3]]
    assert record.screened == [[10.0, 20.0], [11.0, 21.0], [12.0, 22.0]]
    assert record.diagnostics == {KMEANS_INERTIA: [100.0, 90.0, 80.0]}
    assert record.epoch_seconds == [1.5, 1.4, 1.3]
    assert record.cold_start_loss == [2.0, 1.0, 0.5, 0.25, 0.125]
    assert record.estimates == {} and record.n_epochs == 3


def test_the_cold_start_is_its_own_loop_even_when_its_length_equals_the_stage():
    hist = {"loss": [1.0, 0.5], COLD_START_LOSS: [4.0, 3.0]}
    record = TrainingRecord.of(hist)
    assert "cold_start_loss" not in record.loss_terms and record.cold_start_loss == [4.0, 3.0]


def test_views_are_ordered_by_number_not_by_name():
    hist = {"loss": [1.0]} | {fusion_weight_key(m): [float(m)] for m in (10, 2, 0, 1)}
    assert TrainingRecord.of(hist).fusion_weights == [[0.0, 1.0, 2.0, 10.0]]


def test_series_on_another_axis_are_estimates_not_epochs():
    """MINE steps and single entropy values beside per-epoch losses."""
    hist = {"loss": [2.0, 1.0], "kl_view0": [0.3, 0.2], "mine_h_view1": [0.1, 0.2, 0.3, 0.4], "h_view1": [1.7]}
    record = TrainingRecord.of(hist)
    assert record.loss_terms == {"loss": [2.0, 1.0], "kl_view0": [0.3, 0.2]}
    assert record.estimates == {"mine_h_view1": [0.1, 0.2, 0.3, 0.4], "h_view1": [1.7]}


def test_omib_counts_its_epochs_by_total_and_its_bound_holds_estimates_only():
    saved = {"ce_view0": [0.9, 0.8, 0.7], "ce": [1.8, 1.6, 1.4], "total": [1.8, 1.6, 1.4]}  # no timings saved
    record = TrainingRecord.of(saved)
    assert record.n_epochs == 3 and set(record.loss_terms) == {"ce_view0", "ce", "total"}
    bound = TrainingRecord.of({"mine_h_view0": [0.1, 0.2, 0.3], "h_view0": [0.3], "joint_entropy": [0.9]})
    assert bound.loss_terms == {} and set(bound.estimates) == {"mine_h_view0", "h_view0", "joint_entropy"}


def test_per_epoch_diagnostics_give_back_the_history_names():
    diag = TrainingRecord.of(CLIB_CALIBRATE).per_epoch_diagnostics()
    assert diag == {k: CLIB_CALIBRATE[k] for k in (fusion_weight_key(0), fusion_weight_key(1), screened_key(0),
                                                   screened_key(1), KMEANS_INERTIA, EPOCH_SECONDS)}


def test_an_empty_history_is_an_empty_record():
    record = TrainingRecord.of({})
    assert record == TrainingRecord() and record.per_epoch_diagnostics() == {} and record.n_epochs == 0


def test_a_saved_history_has_no_timings():
    assert EPOCH_SECONDS not in without_timings(CLIB_CALIBRATE)
    assert without_timings(CLIB_CALIBRATE)["loss"] == [3.0, 2.0, 1.5]


@pytest.mark.parametrize("key, name", [(fusion_weight_key(2), "fusion_w/view2"), (screened_key(0), "n_selected/view0"),
                                       ("kl_view1", "kl/view1"), ("loss", "loss"), (COLD_START_LOSS, COLD_START_LOSS)])
def test_mlflow_names_group_per_view_series(key, name):
    assert metric_name(key) == name


def test_the_curves_csv_is_built_from_the_record():
    from mmib.stages.train import _curves_frame

    frame = _curves_frame({0: CLIB_CALIBRATE, 1: {"loss": [1.0, 2.0, 3.0], EPOCH_SECONDS: [0.1, 0.1, 0.1]}})
    kinds = frame.groupby("term")["kind"].first().to_dict()
    assert kinds == {"loss": "loss term", "kl": "loss term", "caliH": "loss term", "fusion_w_view0": "diagnostic",
                     "fusion_w_view1": "diagnostic", "n_selected_view0": "diagnostic", "n_selected_view1": "diagnostic",
                     "kmeans_inertia": "diagnostic", "epoch_seconds": "diagnostic"}
    assert "cold_start_loss" not in set(frame["term"])
    seed1 = frame[frame["seed"] == 1].sort_values(["term", "epoch"])
    pd.testing.assert_series_equal(seed1[seed1["term"] == "loss"]["value"].reset_index(drop=True),
                                   pd.Series([1.0, 2.0, 3.0], name="value"))
    assert set(frame[frame["term"] == "n_selected_view1"]["value"]) == {20.0, 21.0, 22.0}

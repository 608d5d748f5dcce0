"""Metrics against values computed by hand (METHOD.md, "Prediction, confidence, metrics")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from mmib.errors import InputError
from mmib.metrics import (
    UNMATCHED,
    ari,
    clustering_accuracy,
    ece_from_table,
    evaluate_hard_clustering,
    evaluate_soft_clustering,
    expected_calibration_error,
    hungarian_mapping,
    mean_confidence_from_table,
    mean_std,
    nmi,
    reliability_table,
)

# ---------------------------------------------------------------- ACC


def test_acc_permuted_labelling_is_100():
    # cluster 2 <-> class 0, 0 <-> 1, 1 <-> 2: a pure renaming
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [2, 2, 0, 0, 1, 1]
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(100.0)
    np.testing.assert_array_equal(hungarian_mapping(y_true, y_pred), [1, 2, 0])


def test_acc_small_contingency():
    # contingency (cluster x class): c0 = {t0: 2}, c1 = {t0: 1, t1: 3}
    # best matching c0->t0 (2) + c1->t1 (3) = 5 of 6 -> 83.33 %
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [0, 0, 1, 1, 1, 1]
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(500 / 6)


def test_acc_more_clusters_than_classes_counts_unmatched_as_wrong():
    # c0 = {t0: 2}, c1 = {t1: 1}, c2 = {t1: 1}: only one of c1, c2 gets t1
    # -> 3 of 4 correct = 75 %, the other cluster maps to -1
    y_true = [0, 0, 1, 1]
    y_pred = [0, 0, 1, 2]
    mapping = hungarian_mapping(y_true, y_pred)
    assert mapping[0] == 0
    assert sorted(mapping[1:].tolist()) == [UNMATCHED, 1]
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(75.0)


def test_acc_fewer_clusters_than_classes():
    # c0 = {t0: 1, t1: 1}, c1 = {t2: 2}: c0->t0 or t1 (1) + c1->t2 (2) = 3/4
    assert clustering_accuracy([0, 1, 2, 2], [0, 0, 1, 1]) == pytest.approx(75.0)


def test_mapping_covers_unpredicted_clusters():
    # 4 output columns but only clusters 0 and 1 predicted: 2 and 3 are unmatched
    mapping = hungarian_mapping([0, 1], [1, 0], n_clusters=4)
    assert mapping.tolist()[:2] == [1, 0]
    assert len(mapping) == 4


def test_labels_must_be_non_negative_integers():
    with pytest.raises(InputError, match="non-negative"):
        clustering_accuracy([-1, 0], [0, 1])
    with pytest.raises(InputError, match="integers"):
        clustering_accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(InputError, match="length mismatch"):
        clustering_accuracy([0, 1, 1], [0, 1])
    # integer-valued floats and column vectors (as loaded from .mat) are fine
    assert clustering_accuracy(np.array([[1.0], [2.0]]), [0, 1]) == pytest.approx(100.0)


# ---------------------------------------------------------------- NMI / ARI


def test_nmi_ari_by_hand():
    y_true = [0, 0, 1, 1]
    y_pred = [0, 0, 0, 1]
    # ARI: sum_ij C(n_ij,2) = C(2,2) = 1; sum_i C(a_i,2) = C(3,2) = 3 (pred sizes 3,1);
    # sum_j C(b_j,2) = 1 + 1 = 2; C(4,2) = 6; expected = 3*2/6 = 1; max = (3+2)/2 = 2.5
    # ARI = (1 - 1) / (2.5 - 1) = 0
    assert ari(y_true, y_pred) == pytest.approx(0.0, abs=1e-12)
    # NMI: p(c0,t0) = 1/2, p(c0,t1) = 1/4, p(c1,t1) = 1/4; p(c) = (3/4, 1/4), p(t) = (1/2, 1/2)
    mi = 0.5 * math.log(0.5 / (0.75 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5)) \
        + 0.25 * math.log(0.25 / (0.25 * 0.5))
    h_true = math.log(2)
    h_pred = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert nmi(y_true, y_pred) == pytest.approx(100 * mi / ((h_true + h_pred) / 2))


def test_nmi_ari_equal_sklearn_in_percent():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.7, (y_true + 1) % 4, rng.integers(0, 5, 200))
    assert nmi(y_true, y_pred) == pytest.approx(
        100 * normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))
    assert ari(y_true, y_pred) == pytest.approx(100 * adjusted_rand_score(y_true, y_pred))
    perm = {0: 3, 1: 0, 2: 1, 3: 2}
    relabelled = [perm[int(t)] for t in y_true]
    assert nmi(y_true, relabelled) == pytest.approx(100.0)
    assert ari(y_true, relabelled) == pytest.approx(100.0)


# ---------------------------------------------------------------- ECE

# 15 bins of width 1/15: 0.3 -> bin 4 (0.267, 0.333], 0.5 -> bin 7 (0.467, 0.533],
# 0.9 -> bin 13 (0.867, 0.933]
CONF = [0.9, 0.9, 0.5, 0.5, 0.3]
CORRECT = [1, 0, 1, 1, 0]


def test_ece_by_hand():
    # bin 13: n=2, acc 1/2, conf 0.9 -> gap 0.4
    # bin  7: n=2, acc 1,   conf 0.5 -> gap 0.5
    # bin  4: n=1, acc 0,   conf 0.3 -> gap 0.3
    # ECE = (2*0.4 + 2*0.5 + 1*0.3) / 5 = 2.1 / 5 = 0.42 -> 42 %
    assert expected_calibration_error(CONF, CORRECT) == pytest.approx(42.0)


def test_reliability_table_counts_and_empty_bins():
    table = reliability_table(CONF, CORRECT)
    assert len(table) == 15
    assert list(table.columns) == ["bin_lower", "bin_upper", "count", "accuracy", "confidence"]
    expected_counts = np.zeros(15, dtype=int)
    expected_counts[[4, 7, 13]] = [1, 2, 2]
    np.testing.assert_array_equal(table["count"], expected_counts)
    assert table.loc[13, "accuracy"] == pytest.approx(50.0)
    assert table.loc[13, "confidence"] == pytest.approx(90.0)
    assert table.loc[7, "accuracy"] == pytest.approx(100.0)
    assert table.loc[4, "accuracy"] == pytest.approx(0.0)
    empty = table["count"] == 0
    assert table.loc[empty, ["accuracy", "confidence"]].isna().all().all()
    assert table["bin_lower"].iloc[0] == 0.0 and table["bin_upper"].iloc[-1] == 1.0
    assert ece_from_table(table) == pytest.approx(42.0)
    # mean confidence = (0.9*2 + 0.5*2 + 0.3) / 5 = 3.1 / 5 = 62 %
    assert mean_confidence_from_table(table) == pytest.approx(62.0)


def test_bin_edges_go_to_the_lower_bin():
    # 4 bins, edges 0, .25, .5, .75, 1 (exact in binary); bins are (lo, hi]
    # 0.0 -> bin 0 (special case), 0.25 -> bin 0, 0.5 -> bin 1, 1.0 -> bin 3
    table = reliability_table([0.0, 0.25, 0.5, 1.0], [1, 1, 1, 1], n_bins=4)
    np.testing.assert_array_equal(table["count"], [2, 1, 0, 1])
    # the same with the default 15 bins, on the table's own edge values
    edge = reliability_table([0.5], [1])["bin_upper"].to_numpy()[6]  # = 7/15
    table = reliability_table([edge, np.nextafter(edge, 1.0), 1.0], [1, 1, 1])
    assert table["count"].iloc[6] == 1
    assert table["count"].iloc[7] == 1
    assert table["count"].iloc[14] == 1


def test_ece_rejects_non_probabilities():
    with pytest.raises(InputError, match="confidence"):
        expected_calibration_error([1.5], [1])
    with pytest.raises(InputError, match="n_bins"):
        expected_calibration_error([0.5], [1], n_bins=0)
    # float32 softmax noise just above 1 is clipped, not rejected
    assert expected_calibration_error([1 + 1e-7], [1]) == pytest.approx(0.0)


# ---------------------------------------------------------------- evaluation


def _proba(clusters: list[int], confs: list[float], n_clusters: int = 3) -> np.ndarray:
    """Rows with ``conf`` on the given cluster and the rest spread evenly."""
    p = np.empty((len(clusters), n_clusters))
    for i, (k, c) in enumerate(zip(clusters, confs)):
        p[i] = (1 - c) / (n_clusters - 1)
        p[i, k] = c
    return p


def test_soft_evaluation_uses_the_acc_mapping_for_ece():
    y_true = [0, 0, 1, 1, 2, 2]
    argmax = [1, 1, 2, 2, 0, 1]          # clusters permuted; the last sample is wrong
    confs = [0.9, 0.9, 0.7, 0.7, 0.7, 0.9]
    # contingency: c1 = {t0: 2, t2: 1}, c2 = {t1: 2}, c0 = {t2: 1} -> mapping 1->0, 2->1, 0->2
    # mapped correct = [1, 1, 1, 1, 1, 0] -> ACC = 5/6
    # bin 13 (conf 0.9): samples 0, 1, 5, acc 2/3 -> gap |2/3 - 0.9| = 0.2333, n = 3
    # bin 10 (conf 0.7): samples 2, 3, 4, acc 1   -> gap 0.3, n = 3
    # ECE = (3 * 0.2333 + 3 * 0.3) / 6 = 1.6 / 6 = 26.67 %
    # (unmapped correctness [0,0,0,0,0,1] would give (3*0.5667 + 3*0.7)/6 = 63.33 %)
    res = evaluate_soft_clustering(y_true, _proba(argmax, confs))
    assert set(res) == {"acc", "nmi", "ari", "ece", "mean_confidence"}
    assert res["acc"] == pytest.approx(500 / 6)
    assert res["acc"] == pytest.approx(clustering_accuracy(y_true, argmax))
    assert res["ece"] == pytest.approx(160 / 6)
    assert res["mean_confidence"] == pytest.approx(80.0)  # (3*0.9 + 3*0.7) / 6
    assert res["nmi"] == pytest.approx(nmi(y_true, argmax))
    assert res["ari"] == pytest.approx(ari(y_true, argmax))


def test_soft_evaluation_checks_shapes():
    with pytest.raises(InputError, match="proba"):
        evaluate_soft_clustering([0, 1], np.ones((3, 2)) / 2)
    with pytest.raises(InputError, match="NaN"):
        evaluate_soft_clustering([0, 1], np.full((2, 2), np.nan))


def test_hard_evaluation():
    res = evaluate_hard_clustering([0, 0, 1, 1], [1, 1, 0, 0])
    assert res == pytest.approx({"acc": 100.0, "nmi": 100.0, "ari": 100.0})


# ---------------------------------------------------------------- aggregation


def test_mean_std_population():
    # acc: mean (80 + 90) / 2 = 85, population std sqrt(((-5)^2 + 5^2) / 2) = 5
    # ece: mean 15, std 5
    res = mean_std([{"acc": 80.0, "ece": 10.0}, {"acc": 90.0, "ece": 20.0}])
    assert set(res) == {"acc", "ece"}
    assert res["acc"] == pytest.approx({"mean": 85.0, "std": 5.0})
    assert res["ece"] == pytest.approx({"mean": 15.0, "std": 5.0})
    assert mean_std([{"acc": 70.0}]) == {"acc": {"mean": 70.0, "std": 0.0}}
    with pytest.raises(InputError):
        mean_std([{"acc": 1.0}, {"nmi": 1.0}])
    with pytest.raises(InputError):
        mean_std([])

"""medmm.metrics against hand-computed values and against scikit-learn."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from medmm import metrics as M


def test_binary_counts_and_rates_by_hand():
    y_true = [1, 1, 1, 0, 0, 0, 0, 1]
    y_pred = [1, 0, 1, 1, 0, 0, 0, 0]
    m = M.binary(y_true, y_pred)
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 2, 3)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 4)
    assert m.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert m.fpr == pytest.approx(1 / 4)
    assert m.to_dict()["n"] == 8


def test_empty_class_is_nan_not_zero_or_one():
    m = M.binary([0, 0, 0], [0, 0, 0])
    assert math.isnan(m.precision) and math.isnan(m.recall)
    assert m.fpr == 0.0
    assert m.to_dict()["precision"] is None


def test_binary_agrees_with_sklearn_on_random_data():
    rng = np.random.default_rng(3)
    t, p = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    m = M.binary(t, p)
    assert m.precision == pytest.approx(skm.precision_score(t, p))
    assert m.recall == pytest.approx(skm.recall_score(t, p))
    assert m.f1 == pytest.approx(skm.f1_score(t, p))


def test_binary_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="equally long"):
        M.binary([1, 0], [1])


def test_auroc_by_hand_and_single_class():
    # positives score 0.9, 0.4; negatives 0.5, 0.1 -> pairs (pos > neg): 0.9>0.5, 0.9>0.1, 0.4>0.1 = 3 of 4
    assert M.auroc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    assert math.isnan(M.auroc([1, 1], [0.2, 0.3]))


def test_confusion_matrix_keeps_invalid_predictions():
    labels, counts = M.confusion_matrix(["A", "A", "B", "B"], ["A", None, "A", "B"], labels=["A", "B"])
    assert labels == ["A", "B", None]
    assert counts.tolist() == [[1, 0, 1], [1, 1, 0]]


def test_calibration_by_hand():
    # bin [0.8, 0.9]: probs 0.85, 0.85 with 1 positive of 2 -> |0.85 - 0.5| * 2/4
    # bin [0.1, 0.2]: probs 0.15, 0.15 with 0 positives -> |0.15 - 0| * 2/4
    cal = M.calibration([1, 0, 0, 0], [0.85, 0.85, 0.15, 0.15])
    assert cal.ece == pytest.approx(0.35 * 0.5 + 0.15 * 0.5)
    assert cal.brier == pytest.approx(((0.15) ** 2 + 0.85 ** 2 + 2 * 0.15 ** 2) / 4)
    assert sum(b["n"] for b in cal.bins) == 4


def test_threshold_for_precision_picks_the_lowest_threshold_that_holds():
    y = [1, 1, 0, 1, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.1]
    # >=0.8: P=1.0; >=0.7: 2/3; >=0.6: 3/4; >=0.1: 3/5
    assert M.threshold_for_precision(y, s, 0.75) == 0.6
    assert M.threshold_for_precision(y, s, 0.9) == 0.8
    assert M.threshold_for_precision([0, 0], [0.3, 0.2], 0.5) is None


def test_bootstrap_interval_contains_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 2, 40).astype(float)
    large = rng.integers(0, 2, 4000).astype(float)
    a, b = M.mean_ci(small, n_boot=300), M.mean_ci(large, n_boot=300)
    assert a.lo <= a.value <= a.hi and b.lo <= b.value <= b.hi
    assert (b.hi - b.lo) < (a.hi - a.lo) / 3
    assert M.mean_ci(small, n_boot=300, seed=1).to_dict() == M.mean_ci(small, n_boot=300, seed=1).to_dict()


def test_grouped_bootstrap_is_wider_when_items_of_a_group_agree():
    # 20 groups of 10 identical items: resampling items pretends 200 independent samples
    values = np.repeat(np.arange(20) % 2, 10).astype(float)
    groups = np.repeat(np.arange(20), 10)
    by_item = M.mean_ci(values, n_boot=400)
    by_group = M.mean_ci(values, groups=groups, n_boot=400)
    assert (by_group.hi - by_group.lo) > 2 * (by_item.hi - by_item.lo)


def test_paired_bootstrap_detects_a_real_difference_only():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 300).astype(float)
    better = np.where(rng.random(300) < 0.3, 1.0, a)
    res = M.paired_bootstrap(a, better, n_boot=500)
    assert res["diff"].value == pytest.approx(float(better.mean() - a.mean()))
    assert res["diff"].lo > 0 and res["p_value"] < 0.05
    same = M.paired_bootstrap(a, a.copy(), n_boot=200)
    assert same["diff"].value == 0 and same["p_value"] == 1.0


def test_registry_knows_direction_and_aggregation():
    assert M.get_metric("precision").higher_is_better
    assert not M.get_metric("fpr").higher_is_better
    assert M.get_metric("ece").aggregation == "corpus"
    assert M.get_metric("recall").fn([1, 1, 0], [1, 0, 0]) == pytest.approx(0.5)
    with pytest.raises(KeyError, match="unknown metric"):
        M.get_metric("nope")
    with pytest.raises(ValueError, match="already registered"):
        M.register(M.Metric("f1", lambda: 0.0, True, "corpus"))


def test_threshold_for_precision_equals_a_brute_force_search():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 50))
        y, s = rng.integers(0, 2, n), np.round(rng.random(n), 1)  # rounded: many tied scores
        for target in (0.5, 0.8, 1.0):
            ok = [thr for thr in set(s.tolist()) if M.binary(y, s >= thr).precision >= target]
            assert M.threshold_for_precision(y, s, target) == (min(ok) if ok else None)


def test_one_empty_denominator_convention():
    import math

    from medmm.metrics import BinaryMetrics, precision_recall_f1, ratio

    assert ratio(1, 4) == 0.25 and math.isnan(ratio(0, 0)) and math.isnan(ratio(3, 0))
    p, r, f = precision_recall_f1(2, 5, 4)
    assert (p, r) == (0.4, 0.5) and f == pytest.approx(2 * p * r / (p + r))
    p, r, f = precision_recall_f1(0, 0, 3)  # nothing predicted: precision undefined, recall 0, F1 0
    assert math.isnan(p) and r == 0.0 and f == 0.0
    assert all(math.isnan(v) for v in precision_recall_f1(0, 0, 0))
    b = BinaryMetrics(tp=0, fp=0, fn=0, tn=5)  # the same convention in the binary metrics
    assert math.isnan(b.precision) and math.isnan(b.recall) and b.fpr == 0.0

"""Hungarian matching against brute force, hit@k and the precision/recall names."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medmm.errors import InputError
from medmm.regions import Box, hit_at_k, iou, match, match_metrics


@st.composite
def box_lists(draw, max_n: int = 5) -> list[Box]:
    out = []
    for _ in range(draw(st.integers(0, max_n))):
        x1, y1 = draw(st.integers(0, 30)), draw(st.integers(0, 30))
        out.append(Box(x1, y1, x1 + draw(st.integers(1, 15)), y1 + draw(st.integers(1, 15)), slice=0))
    return out


def _best_total(preds: list[Box], truths: list[Box]) -> float:
    """Brute force: the largest total IoU over every one-to-one assignment."""
    n = min(len(preds), len(truths))
    best = 0.0
    for ps in itertools.permutations(range(len(preds)), n):
        for ts in itertools.combinations(range(len(truths)), n):
            best = max(best, sum(iou(preds[p], truths[t]) for p, t in zip(ps, ts)))
    return best


@settings(max_examples=150, deadline=None)
@given(box_lists(), box_lists())
def test_hungarian_assignment_is_optimal_and_one_to_one(preds, truths):
    r = match(preds, truths, threshold=0.0)
    assert len({m.pred for m in r.matches}) == len(r.matches) == len({m.truth for m in r.matches})
    assert sum(m.iou for m in r.matches) == pytest.approx(_best_total(preds, truths))
    for m in r.matches:
        assert m.iou == pytest.approx(iou(preds[m.pred], truths[m.truth])) and m.iou > 0
    strict = match(preds, truths, threshold=0.5)
    assert all(m.iou >= 0.5 for m in strict.matches)
    assert strict.tp + strict.fp == len(preds) and strict.tp + strict.fn == len(truths)


def test_precision_and_recall_are_not_swapped():
    truths = [Box(0, 0, 10, 10, slice=0), Box(20, 20, 30, 30, slice=0)]
    preds = [Box(0, 0, 10, 10, slice=0), Box(50, 50, 60, 60, slice=0), Box(70, 70, 80, 80, slice=0),
             Box(1, 1, 10, 10, slice=0)]  # the 4th overlaps truth 0 too, but truth 0 is taken
    m = match_metrics(preds, truths)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 3, 1)
    assert m["precision"] == pytest.approx(1 / 4) and m["recall"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 * 0.25 * 0.5 / 0.75)
    assert match_metrics([], truths)["recall"] == 0.0 and match_metrics(preds, [])["precision"] == 0.0


def test_empty_denominators_follow_medmm_metrics():
    """medmm.metrics' one convention: a ratio over nothing is nan (null in JSON), never a silent 0 or 1."""
    import math

    from medmm.metrics import precision_recall_f1

    truths = [Box(0, 0, 10, 10, slice=0)]
    none = match_metrics([], [])
    assert math.isnan(none["precision"]) and math.isnan(none["recall"]) and math.isnan(none["f1"])
    missed = match_metrics([], truths)  # nothing predicted: precision has no denominator, recall is 0
    assert math.isnan(missed["precision"]) and missed["recall"] == 0.0 and missed["f1"] == 0.0
    spurious = match_metrics(truths, [])  # nothing to find: recall has no denominator
    assert spurious["precision"] == 0.0 and math.isnan(spurious["recall"]) and spurious["f1"] == 0.0
    for preds, t in (([], []), ([], truths), (truths, []), (truths, truths)):
        r = match(preds, t)
        got, want = (r.precision, r.recall, r.f1), precision_recall_f1(r.tp, r.n_pred, r.n_truth)
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want))


def test_hungarian_beats_greedy():
    """Greedy (best IoU first) takes p0-t0 and leaves p1 with nothing; the optimum matches both."""
    t0, t1 = Box(0, 0, 10, 10, slice=0), Box(10, 0, 20, 10, slice=0)
    p0, p1 = Box(3, 0, 12, 10, slice=0), Box(0, 0, 5, 10, slice=0)
    assert iou(p0, t0) == pytest.approx(70 / 120) and iou(p1, t0) == 0.5
    assert iou(p0, t1) == pytest.approx(20 / 170) and iou(p1, t1) == 0.0
    r = match([p0, p1], [t0, t1], threshold=0.1)
    assert {(m.pred, m.truth) for m in r.matches} == {(0, 1), (1, 0)}


def test_hit_at_k_ranks_by_score():
    truth = Box(10, 10, 20, 20, slice=0)
    preds = [Box(0, 0, 5, 5, slice=0, score=0.9), Box(10, 10, 20, 20, slice=0, score=0.1),
             Box(40, 40, 45, 45, slice=0, score=0.5)]
    assert not hit_at_k(preds, truth, k=1)
    assert not hit_at_k(preds, [truth], k=2)
    assert hit_at_k(preds, [truth], k=3)
    assert hit_at_k([Box(11, 11, 20, 20, slice=0)], truth, k=1)  # no score: given order
    assert not hit_at_k([Box(11, 11, 20, 20, slice=0)], truth, k=1, threshold=0.9)
    with pytest.raises(InputError, match="k must be"):
        hit_at_k(preds, truth, k=0)
    with pytest.raises(InputError, match="threshold"):
        match(preds, [truth], threshold=1.5)

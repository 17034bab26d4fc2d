"""Matching predicted boxes to true boxes: Hungarian assignment on ``1 - IoU``, and hit@k.

Precision is ``matched / predicted`` and recall ``matched / true`` (the MedRegA reference
evaluator swaps the two names; medmm does not). They come from :func:`medmm.metrics.precision_recall_f1`,
so an empty denominator follows medmm's one convention: ``nan`` (null in JSON), never a silent 0 or 1 —
precision with nothing predicted, recall with nothing to find, F1 with neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medmm.errors import InputError
from medmm.metrics import precision_recall_f1
from medmm.regions.box import Box, iou


@dataclass(frozen=True)
class Match:
    """Prediction ``pred`` (index into the predictions) assigned to truth ``truth`` with ``iou``."""

    pred: int
    truth: int
    iou: float


@dataclass(frozen=True)
class MatchResult:
    matches: tuple[Match, ...]
    n_pred: int
    n_truth: int

    @property
    def tp(self) -> int:
        return len(self.matches)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_truth - self.tp

    @property
    def precision(self) -> float:
        """Matched predictions / predictions (``nan`` when nothing was predicted)."""
        return precision_recall_f1(self.tp, self.n_pred, self.n_truth)[0]

    @property
    def recall(self) -> float:
        """Matched truths / truths (``nan`` when there was nothing to find)."""
        return precision_recall_f1(self.tp, self.n_pred, self.n_truth)[1]

    @property
    def f1(self) -> float:
        """``2 matched / (predicted + true)`` (= the harmonic mean of precision and recall; ``nan`` when both are empty)."""
        return precision_recall_f1(self.tp, self.n_pred, self.n_truth)[2]


def iou_matrix(preds: Sequence[Box], truths: Sequence[Box]) -> np.ndarray:
    """``[len(preds), len(truths)]`` IoUs (boxes must share a frame)."""
    out = np.zeros((len(preds), len(truths)), dtype=np.float64)
    for i, p in enumerate(preds):
        for j, t in enumerate(truths):
            out[i, j] = iou(p, t)
    return out


def match(preds: Sequence[Box], truths: Sequence[Box], threshold: float = 0.5) -> MatchResult:
    """One-to-one assignment maximising total IoU (scipy ``linear_sum_assignment`` on ``1 - IoU``);
    pairs below ``threshold`` IoU are not matches."""
    from scipy.optimize import linear_sum_assignment

    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"IoU threshold must be in [0, 1], got {threshold}")
    if not preds or not truths:
        return MatchResult((), len(preds), len(truths))
    m = iou_matrix(preds, truths)
    rows, cols = linear_sum_assignment(1.0 - m)
    kept = tuple(Match(int(r), int(c), float(m[r, c])) for r, c in zip(rows, cols)
                 if m[r, c] >= threshold and m[r, c] > 0)
    return MatchResult(kept, len(preds), len(truths))


def match_metrics(preds: Sequence[Box], truths: Sequence[Box], threshold: float = 0.5) -> dict[str, float]:
    """``{"precision", "recall", "f1", "tp", "fp", "fn"}`` of :func:`match`."""
    r = match(preds, truths, threshold)
    return {"precision": r.precision, "recall": r.recall, "f1": r.f1, "tp": r.tp, "fp": r.fp, "fn": r.fn}


def hit_at_k(preds: Sequence[Box], truths: Sequence[Box] | Box, k: int = 1, threshold: float = 0.5) -> bool:
    """True when one of the ``k`` highest-scored predictions (given order where scores are missing
    or tied) overlaps some true box with IoU ≥ ``threshold``."""
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    truths = [truths] if isinstance(truths, Box) else list(truths)
    order = sorted(range(len(preds)), key=lambda i: -(preds[i].score if preds[i].score is not None else -np.inf))
    for i in order[:k]:
        if any(iou(preds[i], t) >= threshold and iou(preds[i], t) > 0 for t in truths):
            return True
    return False

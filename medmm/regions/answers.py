"""What a model's answer to a region task is, and how one answer is scored: the parsers and scorers the region
tasks declare in the task registry (:mod:`medmm.tasks`, registered by :mod:`medmm.regions.tasks`).

* **Text→Region**: the codec decodes the answer (malformed → no box); the boxes under the asked label (else
  any box: a box under another label still counts as the answer) are brought from the model-input frame
  back to **acquisition pixels** of the sample's plane, where the truth lives. Scored by the IoU of the
  *first* box with the true box it overlaps most (MedRegA's single-box rule) and by Hungarian matching of
  all boxes at IoU ≥ 0.5 (:func:`medmm.regions.match.match`).
* **Region→Text**: the answer text; scored by token-set recall (correct when ≥ 0.75, MedRegA's rule) and
  token-set F1 against the label (or phrase).
* **Grounded report**: every ``ref`` and its boxes, per object, in acquisition pixels; scored by matching
  each object's predicted boxes to its true boxes (counts summed by the evaluation).

Per-sample scores are averaged later, so they define their own empty case (documented in
:mod:`medmm.metrics`): a token F1 against an empty target is 0, a missing box has IoU 0.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

from medmm.regions.box import Box, iou
from medmm.regions.codecs import BoxCodec
from medmm.regions.frames import ACQUISITION, Model
from medmm.regions.match import match

if TYPE_CHECKING:
    from medmm.regions.tasks import Sample

CORRECT_RECALL = 0.75  # MedRegA: a Region→Text answer is correct when it recalls >= 75 % of the target's tokens
MATCH_IOU = 0.5


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def token_scores(answer: str, target: str) -> tuple[float, float]:
    """(token-set recall, token-set F1) of an answer against the target text (0, 0 for an empty target)."""
    a, t = set(_tokens(answer)), set(_tokens(target))
    if not t:
        return 0.0, 0.0
    common = len(a & t)
    recall = common / len(t)
    precision = common / len(a) if a else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return recall, f1


def best_iou(box: Box | None, truths: Sequence[Box]) -> float:
    """The IoU of ``box`` with the true box it overlaps most (0 for no box)."""
    return max((iou(box, t) for t in truths), default=0.0) if box is not None else 0.0


def _to_acquisition(boxes: Sequence[Any], like: Box, transform: Any) -> list[Box]:
    frame = Model(transform, ACQUISITION)
    out = []
    for x1, y1, x2, y2 in boxes:
        acq = Box(x1, y1, x2, y2, frame=frame, image=like.image, slice=like.slice).from_model()
        if not acq.is_empty:
            out.append(acq)
    return out


def predicted_boxes(text: str, sample: "Sample", codec: BoxCodec, transform: Any) -> list[Box]:
    """Text→Region's parser: the answer's boxes for the asked label, in acquisition pixels of the sample's plane."""
    dec = codec.decode(text, transform.size)
    label = sample.objects[0].phrase or sample.objects[0].label
    boxes = dec.for_label(label) or dec.boxes  # a box under another label still counts as the answer
    return _to_acquisition(boxes, sample.objects[0].boxes[0], transform)


def answer_text(text: str, sample: "Sample", codec: BoxCodec, transform: Any) -> str:
    """Region→Text's parser: the answer as said (its tokens are compared)."""
    return text.strip()


def report_boxes(text: str, sample: "Sample", codec: BoxCodec, transform: Any) -> dict[str, list[Box]]:
    """Grounded report's parser: per object of the sample (by label), the boxes the answer gave it."""
    dec = codec.decode(text, transform.size)
    return {o.label: _to_acquisition(dec.for_label(o.label), o.boxes[0], transform) for o in sample.objects}


def score_text_to_region(sample: "Sample", boxes: Sequence[Box]) -> dict[str, Any]:
    """``first_iou`` (first box vs its best truth), ``parsed`` (any box), and the matching counts."""
    truths = list(sample.objects[0].boxes)
    m = match(list(boxes), truths, MATCH_IOU)
    return {"first_iou": best_iou(boxes[0] if boxes else None, truths), "parsed": bool(boxes),
            "tp": m.tp, "n_pred": m.n_pred, "n_true": m.n_truth}


def score_region_to_text(sample: "Sample", answer: str) -> dict[str, Any]:
    """``recall`` and ``f1`` of the answer's tokens against the target; ``correct`` when recall ≥ 0.75."""
    recall, f1 = token_scores(answer, sample.target)
    return {"recall": recall, "f1": f1, "correct": recall >= CORRECT_RECALL}


def score_grounded_report(sample: "Sample", boxes: dict[str, list[Box]]) -> dict[str, Any]:
    """Matching counts summed over the sample's objects (each object's boxes against its own truth)."""
    tp = n_pred = n_true = 0
    for o in sample.objects:
        m = match(list(boxes.get(o.label, ())), list(o.boxes), MATCH_IOU)
        tp, n_pred, n_true = tp + m.tp, n_pred + m.n_pred, n_true + m.n_truth
    return {"tp": tp, "n_pred": n_pred, "n_true": n_true, "parsed": n_pred > 0}

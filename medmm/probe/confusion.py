"""MediConfusion-style confusion pairs: the ``dataset.json`` reader, image resolution, scoring.

``dataset.json`` is a dict keyed by pair id ("10001"...). Each pair holds two images that look
alike to a medical CLIP model but differ visually (``im_1``/``im_2``: ROCO paths;
``im_1_local``/``im_2_local``: numbers of the released image files ``<n>.jpg``), one question,
two options and the right letter per image (``im_1_correct`` / ``im_2_correct``, always
opposite), with 1-2 ``category_*`` lists of the 9 categories.

**Scoring** follows MediConfusion's ``utils/answering.py``:

* set accuracy = pairs with both images right / pairs (random 25 %);
* individual accuracy = right images / image slots (random 50 %);
* confusion = pairs where the same valid letter was chosen for both images / pairs with both
  answers valid (random 50 %);
* invalid rate = invalid answers / image slots;
* confusion is 0, not undefined, when no pair has two valid answers (as the reference reports it);
* per category, counted the reference's way: a pair adds to *each* entry of
  ``category_1 + category_2`` (a category listed on both sides counts twice) for set accuracy,
  confusion and valid pairs; an image adds to each entry of its own list for individual
  accuracy and invalid rate; denominators are those occurrence counts.

Pairs whose images are missing are reported by id and left out; the metrics' denominators are
the pairs that were run (the reference divides by all 176, which only matters when some are
missing).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from medmm.errors import InputError
from medmm.metrics import ratio as _ratio  # the one empty-denominator convention (nan)
from medmm.probe._io import write_json

CATEGORIES = ("Cerebral", "Vascular", "Head and Neck", "Spinal", "Musculoskeletal", "Cardiac", "Gastrointestinal",
              "Pulmonary", "Nuclear Medicine")
REQUIRED = ("question", "option_A", "option_B", "im_1_correct", "im_2_correct", "category_1", "category_2")
LETTERS = "AB"


@dataclass(frozen=True)
class ConfusionPair:
    """One pair. ``image_1``/``image_2`` are paths relative to an images root (or absolute)."""

    pair_id: str
    question: str
    option_a: str
    option_b: str
    correct_1: str
    correct_2: str
    image_1: str
    image_2: str
    category_1: tuple[str, ...] = ()
    category_2: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # every other field of the record, kept for writing

    @property
    def options(self) -> tuple[str, str]:
        return (self.option_a, self.option_b)

    def correct(self, slot: int) -> str:
        return self.correct_1 if slot == 1 else self.correct_2

    def image(self, slot: int) -> str:
        return self.image_1 if slot == 1 else self.image_2

    def categories(self, slot: int) -> tuple[str, ...]:
        return self.category_1 if slot == 1 else self.category_2

    def to_record(self) -> dict[str, Any]:
        rec = dict(self.extra)
        rec.update({"question": self.question, "option_A": self.option_a, "option_B": self.option_b,
                    "im_1_correct": self.correct_1, "im_2_correct": self.correct_2,
                    "category_1": list(self.category_1), "category_2": list(self.category_2)})
        rec.setdefault("im_1", self.image_1)
        rec.setdefault("im_2", self.image_2)
        return rec


def _image_field(rec: Mapping[str, Any], slot: int, layout: str) -> str:
    local = rec.get(f"im_{slot}_local")
    if layout == "local" or (layout == "auto" and local is not None):
        if local is None:
            raise InputError(f"im_{slot}_local is missing; use --layout roco for ROCO paths")
        return f"{local}.jpg" if not str(local).lower().endswith((".jpg", ".png", ".jpeg")) else str(local)
    path = rec.get(f"im_{slot}")
    if path is None:
        raise InputError(f"im_{slot} is missing")
    return str(path)


def read_dataset(path: str | os.PathLike[str], layout: str = "auto") -> list[ConfusionPair]:
    """Read a MediConfusion ``dataset.json`` (or one written by ``medmm probe build confusion``).

    ``layout`` picks where images are: ``local`` = ``<im_k_local>.jpg`` (the released image
    folder), ``roco`` = the ROCO path in ``im_k``, ``auto`` = local when the record has it.
    """
    p = os.fspath(path)
    if layout not in ("auto", "local", "roco"):
        raise InputError(f"layout {layout!r}: use auto, local or roco")
    if not os.path.isfile(p):
        raise InputError(f"{p}: no such file; give MediConfusion's data/dataset.json")
    try:
        with open(p, encoding="utf-8") as fh:
            raw = json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{p}: expected a JSON object keyed by pair id (MediConfusion's dataset.json)")
    pairs = []
    for pid, rec in raw.items():
        if not isinstance(rec, dict):
            raise InputError(f"{p}: pair {pid} is not an object")
        missing = [f for f in REQUIRED if f not in rec]
        if missing:
            raise InputError(f"{p}: pair {pid} lacks {', '.join(missing)}")
        for slot in (1, 2):
            if rec[f"im_{slot}_correct"] not in LETTERS:
                raise InputError(f"{p}: pair {pid} has im_{slot}_correct={rec[f'im_{slot}_correct']!r}; use 'A' or 'B'")
        try:
            images = (_image_field(rec, 1, layout), _image_field(rec, 2, layout))
        except InputError as exc:
            raise InputError(f"{p}: pair {pid}: {exc}") from None
        extra = {k: v for k, v in rec.items() if k not in REQUIRED}
        pairs.append(ConfusionPair(str(pid), rec["question"], rec["option_A"], rec["option_B"], rec["im_1_correct"],
                                   rec["im_2_correct"], images[0], images[1], tuple(rec["category_1"]),
                                   tuple(rec["category_2"]), extra))
    return pairs


def write_dataset(pairs: Iterable[ConfusionPair], path: str | os.PathLike[str]) -> None:
    write_json(path, {pair.pair_id: pair.to_record() for pair in pairs})


@dataclass(frozen=True)
class Resolved:
    """Pairs whose two images exist under the root, and the ids of those that do not (with the missing paths)."""

    complete: list[ConfusionPair]
    missing: dict[str, list[str]]

    def message(self, limit: int = 10) -> str:
        if not self.missing:
            return f"all {len(self.complete)} pairs have both images"
        ids = sorted(self.missing)
        shown = ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
        return (f"{len(ids)} pair(s) have missing images and are left out: {shown}; "
                f"running on {len(self.complete)} complete pair(s)")


def resolve_images(pairs: Sequence[ConfusionPair], root: str | os.PathLike[str] | None) -> Resolved:
    """Point the pairs' images at ``root`` and split complete pairs from those with missing files."""
    base = os.fspath(root) if root is not None else ""
    if base and not os.path.isdir(base):
        raise InputError(f"{base}: the images folder does not exist; give the folder holding the images "
                         "(e.g. MediConfusion's data/images)")
    complete, missing = [], {}
    for pair in pairs:
        paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in (pair.image_1, pair.image_2)]
        gone = [p for p in paths if not os.path.isfile(p)]
        if gone:
            missing[pair.pair_id] = gone
        else:
            complete.append(ConfusionPair(pair.pair_id, pair.question, pair.option_a, pair.option_b, pair.correct_1,
                                          pair.correct_2, paths[0], paths[1], pair.category_1, pair.category_2,
                                          pair.extra))
    return Resolved(complete, missing)


# ------------------------------------------------------------------ scoring

@dataclass(frozen=True)
class PairOutcome:
    """One pair's answers (``None`` = invalid) and what they mean."""

    pair_id: str
    answer_1: str | None
    answer_2: str | None
    correct_1: bool
    correct_2: bool
    categories: tuple[str, ...]  # category_1 + category_2, as the reference counts pairs
    category_1: tuple[str, ...]
    category_2: tuple[str, ...]

    @property
    def both_right(self) -> bool:
        return self.correct_1 and self.correct_2

    @property
    def both_valid(self) -> bool:
        return self.answer_1 is not None and self.answer_2 is not None

    @property
    def confused(self) -> bool:
        return self.both_valid and self.answer_1 == self.answer_2

    @property
    def n_invalid(self) -> int:
        return (self.answer_1 is None) + (self.answer_2 is None)


def outcomes(pairs: Sequence[ConfusionPair], answers: Mapping[tuple[str, int], str | None]) -> list[PairOutcome]:
    """Pair outcomes from answers keyed ``(pair_id, slot)``; an absent answer is invalid."""
    out = []
    for p in pairs:
        a1, a2 = answers.get((p.pair_id, 1)), answers.get((p.pair_id, 2))
        for slot, a in ((1, a1), (2, a2)):
            if a is not None and a not in LETTERS:
                raise InputError(f"pair {p.pair_id} image {slot}: answer {a!r} is not A, B or null")
        out.append(PairOutcome(p.pair_id, a1, a2, a1 == p.correct_1, a2 == p.correct_2,
                               p.category_1 + p.category_2, p.category_1, p.category_2))
    return out


def _confusion(confused: float, valid: float) -> float:
    """Confused / valid pairs; 0 when no pair has two valid answers (the reference counts confused pairs, and
    a model whose answers are all invalid has confused none). The other metrics keep medmm's empty-denominator
    convention (nan, written as null)."""
    return confused / valid if valid else 0.0


def _category_order(names: set[str]) -> list[str]:
    known = [c for c in CATEGORIES if c in names]
    return known + sorted(names - set(known))


def confusion_metrics(results: Sequence[PairOutcome], per_category: bool = True) -> dict[str, Any]:
    """Set / individual accuracy, confusion and invalid rate (fractions) overall and per category."""
    n = len(results)
    valid_pairs = [r for r in results if r.both_valid]
    out: dict[str, Any] = {
        "set_accuracy": _ratio(sum(r.both_right for r in results), n),
        "individual_accuracy": _ratio(sum(r.correct_1 + r.correct_2 for r in results), 2 * n),
        "confusion": _confusion(sum(r.confused for r in valid_pairs), len(valid_pairs)),
        "invalid_rate": _ratio(sum(r.n_invalid for r in results), 2 * n),
        "n_pairs": n, "n_images": 2 * n, "n_valid_pairs": len(valid_pairs),
    }
    if not per_category:
        return out
    cats: dict[str, dict[str, float]] = {}
    for c in _category_order({c for r in results for c in r.categories}):
        occ = sum(r.categories.count(c) for r in results)
        img_occ = sum(r.category_1.count(c) + r.category_2.count(c) for r in results)
        valid_occ = sum(r.categories.count(c) for r in valid_pairs)
        cats[c] = {
            "set_accuracy": _ratio(sum(r.categories.count(c) for r in results if r.both_right), occ),
            "individual_accuracy": _ratio(sum(r.category_1.count(c) * r.correct_1 + r.category_2.count(c) * r.correct_2
                                              for r in results), img_occ),
            "confusion": _confusion(sum(r.categories.count(c) for r in valid_pairs if r.confused), valid_occ),
            "invalid_rate": _ratio(sum(r.category_1.count(c) * (r.answer_1 is None) + r.category_2.count(c) * (r.answer_2 is None)
                                       for r in results), img_occ),
            "n": occ,
        }
    out["per_category"] = cats
    return out


RANDOM_BASELINE = {"set_accuracy": 0.25, "individual_accuracy": 0.5, "confusion": 0.5, "invalid_rate": 0.0}


def raw_result_letter(answer: Mapping[str, Any] | None, margin: float = 3) -> str | None:
    """The letter a MediConfusion raw result chose for one image: ``{"A": score, "B": score, ...}`` (10/0 from its
    option parser, or 1-10 judge scores in gpt4 mode); the best letter when it leads the other by at least
    ``margin`` (the reference's ``tr = 3``), else invalid (None)."""
    if not isinstance(answer, Mapping):
        return None
    scores = {la: float(answer.get(la) or 0) for la in LETTERS}
    best = max(LETTERS, key=lambda la: scores[la])
    others = [scores[la] for la in LETTERS if la != best]
    return best if scores[best] - max(others) >= margin else None


def read_raw_results(records: Mapping[str, Any], source: str = "results") -> dict[tuple[str, int], str | None]:
    """Predictions from MediConfusion's own raw results file (``Results/<model>/<model>_<mode>.json``):
    ``{pair_id: {"answer": {"im1": {"A", "B", "full_answer"}, "im2": {...}}, "score": {...}}}``. The answers
    are re-scored here; the file's own ``score`` entries are not trusted."""
    out: dict[tuple[str, int], str | None] = {}
    for pid, rec in records.items():
        answer = rec.get("answer") if isinstance(rec, Mapping) else None
        if not isinstance(answer, Mapping) or not ({"im1", "im2"} & set(answer)):
            raise InputError(f"{source}: pair {pid} has no answer.im1/answer.im2; a MediConfusion raw results file "
                             'maps pair ids to {"answer": {"im1": {"A": .., "B": ..}, "im2": {..}}}')
        for slot in (1, 2):
            out[(str(pid), slot)] = raw_result_letter(answer.get(f"im{slot}"))
    return out


def read_predictions(path: str | os.PathLike[str]) -> dict[tuple[str, int], str | None]:
    """PREDS.jsonl lines ``{"pair_id": "10001", "image": 1|2, "answer": "A"|"B"|null}``, or MediConfusion's raw
    results file (one JSON object keyed by pair id: :func:`read_raw_results`)."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise InputError(f"{p}: no such predictions file")
    with open(p, encoding="utf-8") as fh:
        head = fh.read(1 << 16).lstrip()
    if head.startswith("{") and not p.endswith(".jsonl"):
        try:
            with open(p, encoding="utf-8") as fh:
                whole = json.load(fh)
        except json.JSONDecodeError:
            whole = None  # JSON lines after all
        if isinstance(whole, dict) and "pair_id" not in whole:
            return read_raw_results(whole, p)
    out: dict[tuple[str, int], str | None] = {}
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}: line {n} is not JSON ({exc.msg})") from None
            if not isinstance(rec, dict) or "pair_id" not in rec or rec.get("image") not in (1, 2, "1", "2"):
                raise InputError(f'{p}: line {n}: expected {{"pair_id": "10001", "image": 1|2, "answer": "A"|"B"|null}}')
            ans = rec.get("answer")
            if ans is not None and ans not in LETTERS:
                raise InputError(f"{p}: line {n}: answer {ans!r} must be \"A\", \"B\" or null")
            key = (str(rec["pair_id"]), int(rec["image"]))
            if key in out:
                raise InputError(f"{p}: line {n}: pair {key[0]} image {key[1]} is predicted twice")
            out[key] = ans
    return out

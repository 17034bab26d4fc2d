"""ProbMed-style negation pairs: question/response records, exact scoring, random baselines.

Records (ProbMed's JSON format)::

    question: {"id", "image", "image_type", "qa_type", "question", "answer"}
    response: {"id", "qa_type", "image_type", "question", "gt_ans", "response"}

``qa_type`` pairs a true question with an adversarial one whose attribute is hallucinated:
``modality_gt``/``modality_hallu``, ``body_part_gt``/``body_part_hallu``,
``entity_gt_k``/``entity_hallu_k`` (condition), ``grounding_gt_k``/``grounding_hallu_k``
(position); ``abnormality`` is single; ``entity_hallu`` without an index is the lone made-up
finding asked about a normal image. medmm writes extra data of its own (image views, boxes)
under a ``"medmm"`` key that ProbMed's tools ignore.

**Scoring** follows ProbMed's ``calculate_score.py`` rule for rule, per image type
(``image_type``) and then over types:

* modality / organ: an image counts when both questions of its pair were asked, and is right
  when both are right; weight = the images that count;
* abnormality: plain accuracy over questions; weight = the questions;
* condition / position: an image is right when *every* complete pair on it is fully right
  (a pair missing its partner is left out; a lone ``entity_hallu`` is the image's whole
  condition unit); accuracy over images that have a unit, weight = *all* images of the type
  (the reference's ``num``, kept so weighted figures match its tables);
* category over types: accuracy weighted by those weights; **overall**: categories weighted
  by their summed weights (the reference's ``overall_scores_aggr_question``).

Where the reference divides by zero (a type with no scorable image for a category) medmm
leaves that type out of the category. Records are grouped by ``(image_type, id)`` rather than
by runs of consecutive ids; the two agree on ProbMed's files, which keep an image's questions
together.

**medmm's default aggregation differs from the reference in two places, on purpose** (the
``probmed-compat`` parser reproduces the reference's numbers instead, see
:func:`probmed_reference`):

* *without adversarial pairs*, overall: medmm averages the same five categories as the main
  overall (abnormality, which has no adversarial question, counts the same on both sides), so
  ``overall - without_adversarial.overall`` measures the adversarial questions alone; the
  reference averages four categories (abnormality left out), so its "acc. diff" also moves with
  the abnormality score.
* an incomplete modality / organ pair (1 or 3 answers) is left out for *every* image; the
  reference keeps it for the last image of each image type only (an artefact of how it closes
  its loop), scoring all its answers for the pair and its first answer alone without adversarial.

The **random baseline** runs the same aggregation with each question right with probability
1/2: a pair is right with 1/4, an image with k condition pairs with 1/4^k. It comes from the
pairs actually present, so a user's collection gets its own baseline.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence

from medmm.errors import InputError
from medmm.probe._io import write_json
from medmm.probe.parse import INVALID, yes_no_answer, yes_no_correct

CATEGORIES = ("modality", "organ", "abnormality", "condition", "position")
PAIRED = ("modality", "organ", "condition", "position")
_PREFIX = {"modality": "modality", "body_part": "organ", "entity": "condition", "grounding": "position"}
QA_TYPE = re.compile(r"^(?:(modality|body_part)_(gt|hallu)|(entity|grounding)_(gt|hallu)_(\d+)|(abnormality)|(entity_hallu))$")
QUESTION_FIELDS = ("id", "image", "image_type", "qa_type", "question", "answer")
RESPONSE_FIELDS = ("id", "qa_type", "image_type", "question", "gt_ans", "response")


@dataclass(frozen=True)
class QAType:
    """A parsed ``qa_type``: its category, whether it is the true (gt) side, and its pair index."""

    category: str
    side: str  # "gt" | "hallu" | "single" | "lone"
    index: int | None = None

    @classmethod
    def parse(cls, qa_type: str) -> "QAType":
        return _parse_qa_type(qa_type)


@lru_cache(maxsize=4096)
def _parse_qa_type(qa_type: str) -> QAType:
    """A ``qa_type`` parsed once (a ProbMed file repeats a few dozen strings 57,000 times)."""
    m = QA_TYPE.match(qa_type)
    if not m:
        raise InputError(f"unknown ProbMed qa_type {qa_type!r}: expected modality_gt|modality_hallu, body_part_gt|"
                         "body_part_hallu, entity_gt_K|entity_hallu_K, grounding_gt_K|grounding_hallu_K, "
                         "abnormality or entity_hallu")
    if m.group(1):
        return QAType(_PREFIX[m.group(1)], m.group(2))
    if m.group(3):
        return QAType(_PREFIX[m.group(3)], m.group(4), int(m.group(5)))
    if m.group(6):
        return QAType("abnormality", "single")
    return QAType("condition", "lone")


@dataclass(frozen=True)
class NegationQuestion:
    """One ProbMed question. ``extra`` carries medmm's own data (views, boxes, hints) under ``"medmm"``."""

    id: Any
    image: str | None
    image_type: str
    qa_type: str
    question: str
    answer: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> QAType:
        return QAType.parse(self.qa_type)

    def to_record(self) -> dict[str, Any]:
        rec = {"id": self.id, "image": self.image, "image_type": self.image_type, "qa_type": self.qa_type,
               "question": self.question, "answer": self.answer}
        if self.extra:
            rec["medmm"] = dict(self.extra)
        return rec


@dataclass(frozen=True)
class NegationResponse:
    """One answered question (ProbMed's response record)."""

    id: Any
    qa_type: str
    image_type: str
    question: str
    gt_ans: str
    response: str | None

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "qa_type": self.qa_type, "image_type": self.image_type, "question": self.question,
                "gt_ans": self.gt_ans, "response": self.response}


def _load_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A JSON array or JSON lines (``.jsonl``)."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise InputError(f"{p}: no such file; give a ProbMed question or response file (JSON array or JSONL)")
    with open(p, encoding="utf-8") as fh:
        text = fh.read()
    try:
        if p.endswith(".jsonl"):
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{p}: expected a JSON array of objects (ProbMed format)")
    return records


def _check_fields(records: Sequence[Mapping[str, Any]], fields: Sequence[str], path: str, what: str) -> None:
    for i, r in enumerate(records):
        missing = [f for f in fields if f not in r]
        if missing:
            raise InputError(f"{path}: record {i} of the {what} file lacks {', '.join(missing)}; "
                             f"a ProbMed {what} record has {', '.join(fields)}")
        QAType.parse(str(r["qa_type"]))
        ans = r["answer" if what == "question" else "gt_ans"]
        if ans not in ("yes", "no"):
            raise InputError(f"{path}: record {i} has answer {ans!r}; ProbMed answers are 'yes' or 'no'")


def read_questions(path: str | os.PathLike[str]) -> list[NegationQuestion]:
    """Read a ProbMed question file (``test.json``) or one written by ``medmm probe build negation``."""
    records = _load_records(path)
    _check_fields(records, QUESTION_FIELDS, os.fspath(path), "question")
    return [NegationQuestion(r["id"], r["image"], r["image_type"], r["qa_type"], r["question"], r["answer"],
                             r.get("medmm") or {}) for r in records]


def read_responses(path: str | os.PathLike[str]) -> list[NegationResponse]:
    """Read a ProbMed response file (the format its ``calculate_score.py`` reads)."""
    records = _load_records(path)
    _check_fields(records, RESPONSE_FIELDS, os.fspath(path), "response")
    return [NegationResponse(r["id"], r["qa_type"], r["image_type"], r["question"], r["gt_ans"], r["response"])
            for r in records]


def write_questions(questions: Iterable[NegationQuestion], path: str | os.PathLike[str]) -> None:
    write_json(path, [q.to_record() for q in questions])


def write_responses(responses: Iterable[NegationResponse], path: str | os.PathLike[str]) -> None:
    write_json(path, [r.to_record() for r in responses])


# ------------------------------------------------------------------ per-image units

@dataclass(frozen=True)
class ImageUnits:
    """What one image contributes to each category: a value in [0, 1] (1 right, 0 wrong, or a
    probability for the random baseline) or None when the image has no unit for it."""

    image_type: str
    id: Any
    modality: float | None
    organ: float | None
    abnormality: tuple[float, ...]
    condition: float | None
    position: float | None
    modality_gt: float | None = None  # the true question alone ("accuracy without the adversarial pair")
    organ_gt: float | None = None
    condition_gt: float | None = None
    position_gt: float | None = None


def _pairs(entries: list[tuple[QAType, float]], category: str) -> list[tuple[float, float]]:
    gts: dict[int | None, float] = {}
    hallus: dict[int | None, float] = {}
    for k, v in entries:
        if k.category != category:
            continue
        if k.side == "gt":
            gts[k.index] = v
        elif k.side == "hallu":
            hallus[k.index] = v
    return [(gts[i], hallus[i]) for i in gts if i in hallus]


def image_units(image_type: str, image_id: Any, entries: list[tuple[QAType, float]]) -> ImageUnits:
    """Fold one image's question values into its category units (rules in the module docstring)."""
    def single_pair(category: str) -> tuple[float | None, float | None]:
        n = sum(1 for k, _ in entries if k.category == category)
        pairs = _pairs(entries, category)
        if n != 2 or len(pairs) != 1:
            return None, None
        gt, hallu = pairs[0]
        return gt * hallu, gt

    def all_pairs(category: str) -> tuple[float | None, float | None]:
        pairs = _pairs(entries, category)
        if not pairs:
            return None, None
        return math.prod(g * h for g, h in pairs), math.prod(g for g, _ in pairs)

    modality, modality_gt = single_pair("modality")
    organ, organ_gt = single_pair("organ")
    lone = [v for k, v in entries if k.side == "lone"]
    condition: float | None
    condition_gt: float | None
    if lone:
        condition, condition_gt = lone[-1], lone[-1]
    else:
        condition, condition_gt = all_pairs("condition")
    position, position_gt = all_pairs("position")
    abn = tuple(v for k, v in entries if k.category == "abnormality")
    return ImageUnits(image_type, image_id, modality, organ, abn, condition, position,
                      modality_gt, organ_gt, condition_gt, position_gt)


def group_by_image(records: Sequence[Any], value: Callable[[Any], float]) -> list[tuple[str, Any, list[tuple[QAType, float]]]]:
    """``(image_type, id, [(qa type, value(record)), ...])`` per image, in order of appearance."""
    groups: "OrderedDict[tuple[str, str, Any], tuple[str, Any, list[tuple[QAType, float]]]]" = OrderedDict()
    for r in records:
        key = (r.image_type, type(r.id).__name__, r.id if isinstance(r.id, (int, str)) else json.dumps(r.id))
        groups.setdefault(key, (r.image_type, r.id, []))[2].append((QAType.parse(r.qa_type), float(value(r))))
    return list(groups.values())


def units_from(records: Sequence[Any], value: Callable[[Any], float]) -> list[ImageUnits]:
    """Fold each image's values (``value(record)``) into :class:`ImageUnits`."""
    return [image_units(t, i, entries) for t, i, entries in group_by_image(records, value)]


# ------------------------------------------------------------------ aggregation

@dataclass(frozen=True)
class CategoryScore:
    acc: float  # fraction 0-1 (nan when no unit)
    num: float  # the reference's weight


def _type_scores(units: Sequence[ImageUnits], attr_suffix: str = "") -> dict[str, CategoryScore]:
    """One image type's category scores (its ``get_score_float``)."""
    out: dict[str, CategoryScore] = {}
    for cat in ("modality", "organ"):
        vals = [getattr(u, cat + attr_suffix) for u in units if getattr(u, cat + attr_suffix) is not None]
        out[cat] = CategoryScore(sum(vals) / len(vals) if vals else math.nan, len(vals))
    abn = [v for u in units for v in u.abnormality]
    out["abnormality"] = CategoryScore(sum(abn) / len(abn) if abn else math.nan, len(abn))
    for cat in ("condition", "position"):
        vals = [getattr(u, cat + attr_suffix) for u in units if getattr(u, cat + attr_suffix) is not None]
        out[cat] = CategoryScore(sum(vals) / len(vals) if vals else math.nan, len(units) if vals else 0)
    return out


def aggregate(units: Sequence[ImageUnits], gt_only: bool = False) -> dict[str, Any]:
    """Category and overall accuracy (fractions) over image types, weighted as the reference.

    Returns ``{"modality", "organ", "abnormality", "condition", "position", "overall"}`` plus
    ``"per_image_type"`` and ``"weights"``. ``gt_only`` scores the true question of each pair
    alone (ProbMed's "accuracy without adversarial pairs"; abnormality unchanged).
    """
    by_type: "OrderedDict[str, list[ImageUnits]]" = OrderedDict()
    for u in units:
        by_type.setdefault(u.image_type, []).append(u)
    per_type = {t: _type_scores(us, "_gt" if gt_only else "") for t, us in by_type.items()}
    result: dict[str, Any] = {}
    weights: dict[str, float] = {}
    for cat in CATEGORIES:
        num = sum(s[cat].num for s in per_type.values() if not math.isnan(s[cat].acc))
        tot = sum(s[cat].acc * s[cat].num for s in per_type.values() if not math.isnan(s[cat].acc))
        result[cat] = tot / num if num else math.nan
        weights[cat] = num
    num = sum(weights[c] for c in CATEGORIES if not math.isnan(result[c]))
    result["overall"] = (sum(result[c] * weights[c] for c in CATEGORIES if not math.isnan(result[c])) / num
                         if num else math.nan)
    result["weights"] = weights
    result["per_image_type"] = {t: {c: s[c].acc for c in CATEGORIES} | {"n_images": len(by_type[t])}
                                | {"weights": {c: s[c].num for c in CATEGORIES if not math.isnan(s[c].acc)}}
                                for t, s in per_type.items()}
    return result


def random_units(records: Sequence[Any]) -> list[ImageUnits]:
    """Units where each question is right with probability 1/2 (the random baseline)."""
    return units_from(records, lambda r: 0.5)


# ------------------------------------------------------------------ scoring a response file

@dataclass(frozen=True)
class NegationScore:
    """ProbMed scores (fractions 0-1) with the random baseline from the same pairs, plus
    per-question and per-pair accuracy, invalid answers and the per-image units (for intervals)."""

    scores: dict[str, float]
    random_baseline: dict[str, float]
    gt_only: dict[str, float]
    per_question: dict[str, dict[str, float]]
    per_pair: dict[str, dict[str, float]]
    per_image_type: dict[str, dict[str, float]]
    invalid_rate: float
    n_questions: int
    n_images: int
    parser: str
    units: tuple[ImageUnits, ...] = ()
    reference: dict[str, Any] | None = None
    weights: dict[str, float] = field(default_factory=dict)  # per category: the summed weights of the overall  # probmed-compat: calculate_score.py's own tables (percent)

    def to_dict(self) -> dict[str, Any]:
        r = _round
        extra = {"reference": self.reference} if self.reference is not None else {}
        return {**{k: r(v) for k, v in self.scores.items()}, **extra,
                "random_baseline": {k: r(v) for k, v in self.random_baseline.items()},
                "without_adversarial": {k: r(v) for k, v in self.gt_only.items()},
                "per_question": {k: {kk: r(vv) for kk, vv in v.items()} for k, v in self.per_question.items()},
                "per_pair": {k: {kk: r(vv) for kk, vv in v.items()} for k, v in self.per_pair.items()},
                "per_image_type": {k: {kk: r(vv) for kk, vv in v.items()} for k, v in self.per_image_type.items()},
                "weights": self.weights,
                "invalid_rate": r(self.invalid_rate), "n_questions": self.n_questions, "n_images": self.n_images,
                "parser": self.parser}


def _round(v: Any, digits: int = 6) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, digits)
    return v


def _question_family(qa_type: str) -> str:
    k = QAType.parse(qa_type)
    if k.side == "lone":
        return "condition_lone_hallu"
    return f"{k.category}_{k.side}" if k.side != "single" else k.category


def score_negation(responses: Sequence[NegationResponse], parser: str = "robust") -> NegationScore:
    """Score answered ProbMed questions (rules in the module docstring)."""
    if not responses:
        raise InputError("no responses to score: the response file is empty")
    correct = [yes_no_correct(r.response, r.gt_ans, parser) for r in responses]
    index = {id(r): i for i, r in enumerate(responses)}
    groups = group_by_image(responses, lambda r: correct[index[id(r)]])
    units = [image_units(t, i, entries) for t, i, entries in groups]
    main = aggregate(units)
    base = aggregate(random_units(responses))
    gt_only = aggregate(units, gt_only=True)
    per_q: dict[str, list[int]] = {}
    for r, c in zip(responses, correct):
        per_q.setdefault(_question_family(r.qa_type), []).append(c)
    per_pair: dict[str, dict[str, float]] = {}
    for cat in PAIRED:
        pairs = [p for _, _, entries in groups for p in _pairs(entries, cat)]
        if pairs:
            per_pair[cat] = {"pair_accuracy": sum(g * h for g, h in pairs) / len(pairs), "n_pairs": len(pairs)}
    invalid = sum(yes_no_answer(r.response, parser) == INVALID for r in responses)
    scores = {k: main[k] for k in (*CATEGORIES, "overall")}
    without = {k: gt_only[k] for k in (*CATEGORIES, "overall")}
    reference = None
    if parser == "probmed-compat":  # the reference's aggregation too, so every number matches its tables
        reference = probmed_reference(responses, correct)
        scores, without = reference_fractions(reference)
    return NegationScore(
        scores=scores,
        random_baseline={k: base[k] for k in (*CATEGORIES, "overall")},
        gt_only=without, reference=reference, weights=main["weights"],
        per_question={k: {"accuracy": sum(v) / len(v), "n": len(v)} for k, v in sorted(per_q.items())},
        per_pair=per_pair, per_image_type=main["per_image_type"],
        invalid_rate=invalid / len(responses), n_questions=len(responses), n_images=len(units),
        parser=parser, units=tuple(units))


# ------------------------------------------------------------------ the reference's aggregation

# calculate_score.py's category names, in the order it fills its per-type dict
REFERENCE_CATEGORIES = ("abnormality", "modality", "body_part", "entity", "grounding")
_TO_MEDMM = {"abnormality": "abnormality", "modality": "modality", "body_part": "organ", "entity": "condition",
             "grounding": "position"}
_Unit = list  # one image's answers for a category as the reference keeps them (numbers and [gt, hallu] pairs)


def _reference_images(records: Sequence[Any], correct: Sequence[int]) -> dict[str, list[list[Any]]]:
    """One image type's per-image lists, built the way the reference walks its records.

    Images are runs of consecutive equal ids. On an id change the finished image's modality and
    organ answers are kept only when there are exactly two; the *last* image of the type is
    closed without that check (so a lone or triple answer list is scored). A condition pair is
    ``[gt, hallu]`` when the hallucinated question follows its true one with the same index
    (otherwise the hallucinated one is skipped); a lone ``entity_hallu`` replaces the image's
    condition list with ``[answer]``. Everything that is not modality, organ, abnormality or
    condition is a position question.
    """
    out: dict[str, list[Any]] = {"modality": [], "body_part": [], "entity": [], "grounding": [], "abnormality": []}
    if not records:
        return out
    cur = records[0].id
    mod: _Unit = []
    body: _Unit = []
    ent: _Unit = []
    grd: _Unit = []
    open_pair: dict[str, tuple[str, list[int]] | None] = {"entity": None, "grounding": None}

    def close(last: bool) -> None:
        out["modality"].append(mod if last or len(mod) == 2 else [])
        out["body_part"].append(body if last or len(body) == 2 else [])
        out["entity"].append(ent)
        out["grounding"].append(grd)

    for r, c in zip(records, correct):
        if r.id != cur:
            close(last=False)
            cur, mod, body, ent, grd = r.id, [], [], [], []
            open_pair = {"entity": None, "grounding": None}
        qa = r.qa_type
        if "modality" in qa:
            mod.append(c)
        elif "body_part" in qa:
            body.append(c)
        elif qa == "abnormality":
            out["abnormality"].append(c)
        elif qa == "entity_hallu":
            ent = [c]
        else:
            cat, units = ("entity", ent) if "entity" in qa else ("grounding", grd)
            index = qa.split("_")[-1]
            if "gt" in qa:
                open_pair[cat] = (index, [c])
                continue
            held = open_pair[cat]
            if held is None or held[0] != index:  # its true question was not answered just before: skipped
                continue
            held[1].append(c)
            if len(held[1]) != 2:
                raise InputError(f"image {r.id!r} ({r.image_type}): {qa} answered twice after its true question; "
                                 "ProbMed's calculate_score.py stops on this file (assertion), so there is no "
                                 "reference number to reproduce")
            units.append(held[1])
    close(last=True)
    return out


def _is_one(v: Any) -> bool:
    return not isinstance(v, list) and v == 1


def _groups(unit: list[Any]) -> list[list[Any]]:
    """The reference's view of a condition/position unit: a list of pairs, or one flat list."""
    return unit if isinstance(unit[0], list) else [unit]


def _pct(num: int, den: int, what: str, image_type: str) -> float:
    if den == 0:
        raise InputError(f"image type {image_type!r} has no scorable {what} answer; ProbMed's calculate_score.py "
                         "divides by zero on this file, so there is no reference number to reproduce "
                         "(medmm's default parser leaves the type out of that category instead)")
    return num / den * 100


def _reference_type_scores(image_type: str, lists: dict[str, list[Any]]) -> dict[str, dict[str, float]]:
    """One image type's table (the reference's ``get_score_float``), in percent."""
    abn = lists["abnormality"]
    out: dict[str, dict[str, float]] = {"abnormality": {"acc": _pct(sum(abn), len(abn), "abnormality", image_type),
                                                        "num": len(abn)}}
    for cat in ("modality", "body_part"):
        kept = [u for u in lists[cat] if u]
        out[cat] = {"acc": _pct(sum(all(_is_one(v) for v in u) for u in kept), len(kept), cat, image_type),
                    "acc w. hallu": _pct(sum(_is_one(u[0]) for u in kept), len(kept), cat, image_type),
                    "num": len(kept)}
    for cat in ("entity", "grounding"):
        kept = [u for u in lists[cat] if u]
        out[cat] = {"acc": _pct(sum(all(all(_is_one(v) for v in g) for g in _groups(u)) for u in kept), len(kept),
                                cat, image_type),
                    "acc w. hallu": _pct(sum(all(_is_one(g[0]) for g in _groups(u)) for u in kept), len(kept), cat,
                                         image_type),
                    "num": len(lists[cat])}  # every image of the type, as the reference weighs it
    return out


def probmed_reference(responses: Sequence[NegationResponse], correct: Sequence[int] | None = None) -> dict[str, Any]:
    """Every number ProbMed's ``calculate_score.py`` computes for one response file, in its units (percent).

    ``correct`` is the reference judgement of each response (:func:`~medmm.probe.parse.probmed_compat_correct`
    by default). Returns ``{"per_image_type": {type: {category: {"acc", "acc w. hallu", "num"}}},
    "per_category": {category: {...}} (its ``all_scores_aggr_question``), "overall": {"acc", "num",
    "acc w.o. adv pair", "num w.o. adv pair"}}`` with the reference's category names. The overall
    without adversarial pairs averages four categories (abnormality has no "acc w. hallu"). The
    reference's final print shows "acc w.o. adv pair" in all three places of its line (a typo in
    its format string); the values here are the ones it computes.
    """
    if correct is None:
        correct = [yes_no_correct(r.response, r.gt_ans, "probmed-compat") for r in responses]
    by_type: "OrderedDict[str, list[int]]" = OrderedDict()
    for i, r in enumerate(responses):
        by_type.setdefault(r.image_type, []).append(i)
    per_type = {t: _reference_type_scores(t, _reference_images([responses[i] for i in idx], [correct[i] for i in idx]))
                for t, idx in by_type.items()}
    per_cat: dict[str, dict[str, float]] = {}
    for cat in REFERENCE_CATEGORIES:
        agg = {"acc": 0.0, "num": 0.0}
        if cat != "abnormality":
            agg["acc w. hallu"] = 0.0
        for table in per_type.values():
            m = table[cat]
            agg["acc"] += m["acc"] * m["num"]
            agg["num"] += m["num"]
            if "acc w. hallu" in m:
                agg["acc w. hallu"] += m["acc w. hallu"] * m["num"]
        if agg["num"] > 0:
            agg["acc"] /= agg["num"]
            if "acc w. hallu" in agg:
                agg["acc w. hallu"] /= agg["num"]
        per_cat[cat] = agg
    overall = {"acc": 0.0, "num": 0.0, "acc w.o. adv pair": 0.0, "num w.o. adv pair": 0.0}
    for m in per_cat.values():
        overall["acc"] += m["acc"] * m["num"]
        overall["num"] += m["num"]
        if "acc w. hallu" in m:
            overall["acc w.o. adv pair"] += m["acc w. hallu"] * m["num"]
            overall["num w.o. adv pair"] += m["num"]
    if overall["num"] > 0:
        overall["acc"] /= overall["num"]
    if overall["num w.o. adv pair"] > 0:
        overall["acc w.o. adv pair"] /= overall["num w.o. adv pair"]
    return {"per_image_type": per_type, "per_category": per_cat, "overall": overall}


def reference_fractions(reference: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """medmm's headline keys (fractions) from :func:`probmed_reference`: the scores, and without adversarial pairs
    (abnormality is not part of the reference's without-adversarial figures: nan there)."""
    cats = reference["per_category"]
    scores = {_TO_MEDMM[c]: cats[c]["acc"] / 100 for c in REFERENCE_CATEGORIES}
    scores["overall"] = reference["overall"]["acc"] / 100
    without = {_TO_MEDMM[c]: (cats[c]["acc w. hallu"] / 100 if "acc w. hallu" in cats[c] else math.nan)
               for c in REFERENCE_CATEGORIES}
    without["overall"] = reference["overall"]["acc w.o. adv pair"] / 100
    return {k: scores[k] for k in (*CATEGORIES, "overall")}, {k: without[k] for k in (*CATEGORIES, "overall")}

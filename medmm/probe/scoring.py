"""From answered samples to scores: answers per mode, metrics per variant, and the controls.

One :class:`VariantScore` per variant (``image``, ``none``, ``blank``, ``noise``, ``text``, ``crop``,
``draw``) holds the per-group units (an image's :class:`~medmm.probe.negation.ImageUnits`, a
pair's :class:`~medmm.probe.confusion.PairOutcome`) so that a metric can be recomputed on any
resample of groups: that is how the report's paired bootstrap works (the same resampled images
for the two sides of every difference).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from medmm.metrics import METRICS, Metric, get_metric, register
from medmm.probe.confusion import RANDOM_BASELINE, ConfusionPair, PairOutcome, confusion_metrics, outcomes
from medmm.probe.negation import CATEGORIES, ImageUnits, NegationResponse, aggregate, score_negation
from medmm.probe.parse import letter_answer, yes_no_answer
from medmm.probe.samples import BLIND, image_key

NEGATION_METRICS = (*CATEGORIES, "overall")
CONFUSION_METRICS = ("set_accuracy", "individual_accuracy", "confusion", "invalid_rate")
_DESCRIPTIONS = {
    "modality": "ProbMed: images whose modality pair (true + hallucinated) is fully right",
    "organ": "ProbMed: images whose body-part pair is fully right",
    "abnormality": "ProbMed: accuracy of the single abnormality question",
    "condition": "ProbMed: images with every condition pair fully right",
    "position": "ProbMed: images with every position pair fully right",
    "overall": "ProbMed: categories weighted as the reference",
    "set_accuracy": "MediConfusion: pairs with both images right",
    "individual_accuracy": "MediConfusion: images right",
    "confusion": "MediConfusion: same valid option for both images / pairs with both answers valid",
    "invalid_rate": "MediConfusion: answers with no option",
}


def _register_metrics() -> None:
    """The probe metrics in medmm.metrics' registry (name ``probe.<bench>.<metric>``), with their direction."""
    for name in NEGATION_METRICS:
        key = f"probe.negation.{name}"
        if key not in METRICS:
            register(Metric(key, lambda units, n=name: aggregate(units)[n], True, "corpus", _DESCRIPTIONS[name]))
    for name in CONFUSION_METRICS:
        key = f"probe.confusion.{name}"
        if key not in METRICS:
            register(Metric(key, lambda outs, n=name: confusion_metrics(outs, per_category=False)[n],
                            name not in ("confusion", "invalid_rate"), "corpus", _DESCRIPTIONS[name]))


_register_metrics()


def higher_is_better(bench: str, name: str) -> bool:
    return get_metric(f"probe.{bench}.{name}").higher_is_better
_JUDGE = re.compile(r"\b([AB])\s*[:=]\s*(\d+(?:\.\d+)?)")


def judge_scores(text: str | None) -> dict[str, float]:
    """``{"A": a, "B": b}`` from a judge's ``A: <score>\\nB: <score>`` answer (missing letters absent)."""
    out: dict[str, float] = {}
    for letter, value in _JUDGE.findall(text or ""):
        out.setdefault(letter, float(value))
    return out


def _best(options: Sequence[str], scores: Sequence[float | None], tie_first: bool) -> str:
    vals = [(-math.inf if s is None else float(s)) for s in scores]
    a, b = vals[0], vals[1]
    if tie_first:
        return options[0] if a >= b else options[1]
    return options[0] if a > b else options[1]


def response_of(record: Mapping[str, Any], mode: str, prefix_reduction: str = "mean", judge_margin: float = 3) -> str | None:
    """The answer a record stands for: free text (mc), ``Yes``/``No`` or a letter (scored modes), or None."""
    value = record.get("value")
    if not value:
        return None
    if mode == "mc":
        return value.get("text")
    if mode == "judge":
        s = judge_scores(value.get("judge"))
        if "A" not in s or "B" not in s:
            return None
        return "A" if s["A"] >= s["B"] + judge_margin else "B" if s["B"] >= s["A"] + judge_margin else None
    lps, ntok = value["logprobs"], value["n_tokens"]
    if record["bench"] == "negation":
        return "Yes" if _best(("yes", "no"), lps, True) == "yes" else "No"
    if mode == "greedy":  # argmax of the A/B logits; a tie goes to A (torch argmax)
        return _best(("A", "B"), lps, True)
    scores = [None if lp is None else (lp / max(n, 1) if prefix_reduction == "mean" else lp) for lp, n in zip(lps, ntok)]
    return _best(("A", "B"), scores, False)  # the reference: "A" if score_A > score_B else "B"


def parsed_answer(record: Mapping[str, Any], mode: str, parser: str, **kw: Any) -> str | None:
    """yes/no/invalid (negation) or A/B/None (confusion) under ``parser``."""
    resp = response_of(record, mode, **kw)
    if record["bench"] == "negation":
        return yes_no_answer(resp, parser if parser != "mediconfusion-compat" else "robust")
    if mode == "mc":
        return letter_answer(resp, parser if parser != "probmed-compat" else "robust")
    return resp


@dataclass
class VariantScore:
    """Scores of one variant, recomputable on any multiset of groups."""

    bench: str
    variant: str
    point: dict[str, Any]
    units: dict[str, ImageUnits | PairOutcome] = field(default_factory=dict)  # group -> its unit

    def metric(self, groups: Sequence[str]) -> dict[str, float]:
        chosen = [self.units[g] for g in groups if g in self.units]
        if self.bench == "negation":
            agg = aggregate([u for u in chosen if isinstance(u, ImageUnits)])
            return {m: agg[m] for m in NEGATION_METRICS}
        m = confusion_metrics([u for u in chosen if isinstance(u, PairOutcome)], per_category=False)
        return {k: m[k] for k in CONFUSION_METRICS}


def negation_variant(records: Sequence[Mapping[str, Any]], variant: str, mode: str, parser: str) -> VariantScore | None:
    rows = [r for r in records if r["variant"] == variant]
    if not rows:
        return None
    responses = [NegationResponse(r["meta"]["id"], r["meta"]["qa_type"], r["meta"]["image_type"], r["meta"]["question"],
                                  r["meta"]["gt_ans"], response_of(r, mode)) for r in rows]
    score = score_negation(responses, parser)
    units: dict[str, ImageUnits | PairOutcome] = {image_key(u.image_type, u.id): u for u in score.units}
    return VariantScore("negation", variant, score.to_dict(), units)


def pairs_of(records: Sequence[Mapping[str, Any]]) -> list[ConfusionPair]:
    """The confusion pairs a run's records cover (truth and categories from the records)."""
    by_pair: dict[str, dict[int, Mapping[str, Any]]] = {}
    for r in records:
        by_pair.setdefault(r["meta"]["pair_id"], {})[r["meta"]["image"]] = r["meta"]
    out = []
    for pid, slots in by_pair.items():
        m1, m2 = slots.get(1), slots.get(2)
        if m1 is None or m2 is None:
            continue
        out.append(ConfusionPair(pid, m1["question"], m1["options"][0], m1["options"][1], m1["truth"], m2["truth"],
                                 "", "", tuple(m1.get("categories", ())), tuple(m2.get("categories", ()))))
    return out


def confusion_variant(records: Sequence[Mapping[str, Any]], variant: str, mode: str, parser: str,
                      pairs: Sequence[ConfusionPair], **kw: Any) -> VariantScore | None:
    rows = [r for r in records if r["variant"] == variant]
    if not rows:
        return None
    answers = {(r["meta"]["pair_id"], r["meta"]["image"]): parsed_answer(r, mode, parser, **kw) for r in rows}
    outs = outcomes(pairs, answers)
    point = confusion_metrics(outs)
    point["random_baseline"] = dict(RANDOM_BASELINE)
    return VariantScore("confusion", variant, point, {o.pair_id: o for o in outs})


def variant_scores(records: Sequence[Mapping[str, Any]], bench: str, mode: str, parser: str,
                   **kw: Any) -> dict[str, VariantScore]:
    from medmm.probe.tasks import get_task

    variants = list(dict.fromkeys(r["variant"] for r in records))
    out: dict[str, VariantScore] = {}
    task = get_task(bench)  # the task's scorer
    for v in variants:
        vs = task.score_variant(records, v, mode, parser, **kw)
        if vs is not None:
            out[v] = vs
    return out


def text_preference(records: Sequence[Mapping[str, Any]], mode: str, parser: str, **kw: Any) -> dict[str, Any] | None:
    """Words-or-Vision text preference: on units whose image answer differs from the hint, the share
    of answers with the hint that follow the hint: TPR = text / (text + image)."""
    image = {r["unit"]: parsed_answer(r, mode, parser, **kw) for r in records if r["variant"] == "image"}
    hinted = [r for r in records if r["variant"] == "text"]
    if not hinted:
        return None
    text = img = other = 0
    for r in hinted:
        hint = r["meta"]["hint"]
        a_img = image.get(r["unit"])
        if a_img in (None, "invalid") or a_img == hint:
            continue
        a_txt = parsed_answer(r, mode, parser, **kw)
        if a_txt == hint:
            text += 1
        elif a_txt == a_img:
            img += 1
        else:
            other += 1
    return {"text_preference_ratio": text / (text + img) if text + img else math.nan, "follows_text": text,
            "follows_image": img, "neither": other, "n_hinted": len(hinted)}


def region_check(records: Sequence[Mapping[str, Any]], mode: str, parser: str) -> dict[str, Any] | None:
    """Position accuracy on the questions that have a region: as shown, cropped, and drawn."""
    units = {r["unit"] for r in records if r["variant"] in ("crop", "draw")}
    if not units:
        return None
    subset = [r for r in records if r["unit"] in units and r["variant"] in ("image", "crop", "draw")]
    out = {}
    for v in ("image", "crop", "draw"):
        vs = negation_variant(subset, v, mode, parser)
        if vs is not None:
            out[v] = {"position": vs.point["position"], "n_pairs": vs.point["per_pair"].get("position", {}).get("n_pairs", 0)}
    return out


def region_variant_scores(records: Sequence[Mapping[str, Any]], mode: str, parser: str) -> dict[str, VariantScore]:
    """Variant scores restricted to the region-check questions (for paired intervals)."""
    units = {r["unit"] for r in records if r["variant"] in ("crop", "draw")}
    subset = [r for r in records if r["unit"] in units]
    return {v: s for v in ("image", "crop", "draw") if (s := negation_variant(subset, v, mode, parser)) is not None}


def summary(records: Sequence[Mapping[str, Any]], bench: str, mode: str, parser: str, **kw: Any) -> dict[str, Any]:
    """metrics.json: the main scores at the top level, then per variant and the controls."""
    scores = variant_scores(records, bench, mode, parser, **kw)
    main = scores["image"].point if "image" in scores else {}
    keys = NEGATION_METRICS if bench == "negation" else CONFUSION_METRICS
    out: dict[str, Any] = dict(main)
    gains = {}
    if "image" in scores:
        groups = list(scores["image"].units)
        ref = scores["image"].metric(groups)
        for v in BLIND:
            if v in scores:
                other = scores[v].metric(groups)
                gains[v] = {k: _diff(ref.get(k), other.get(k)) for k in keys}
    out["variants"] = {v: s.point for v, s in scores.items() if v != "image"}
    controls: dict[str, Any] = {}
    if gains:
        controls["multimodal_gain"] = gains
    if "none" in scores and "llm" in scores:  # MMStar: ML = max(0, S without the image - S of the LLM alone)
        groups = sorted(set(scores["none"].units) & set(scores["llm"].units))
        wv, t = scores["none"].metric(groups), scores["llm"].metric(groups)
        leak: dict[str, float | None] = {}
        for k in keys:
            d = _diff(wv.get(k), t.get(k))
            leak[k] = None if d is None else round(max(0.0, d), 6)
        controls["multimodal_leakage"] = leak
    tp = text_preference(records, mode, parser, **kw)
    if tp:
        controls["text_preference"] = tp
    if bench == "negation":
        rc = region_check(records, mode, parser)
        if rc:
            controls["region_check"] = rc
    out["controls"] = controls
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return None
    return round(a - b, 6)

"""medmm.reports: radiology report error checking.

``check(report, header=None, checker="rules"|"vlm"|"ensemble", model=None, images=None)``
returns a :class:`CheckResult` (``has_error``, ``score``, ``flags``); it never raises on bad
input — problems are listed in ``result.notes``. The taxonomy lives in
:mod:`medmm.reports.taxonomy`.
"""

from __future__ import annotations

from typing import Any, Sequence

from medmm.reports.checker import DEFAULT_THRESHOLD, CheckResult, Flag, Header, check_rules, clean_text, combine
from medmm.reports.taxonomy import ERROR_TYPES, TYPE_IDS, complex_class

__all__ = ["CheckResult", "ERROR_TYPES", "Flag", "Header", "TYPE_IDS", "check", "complex_class"]
CHECKERS = ("rules", "vlm", "ensemble")


def check(report: Any, header: Any = None, checker: str = "rules", model: Any = None,
          images: Sequence[Any] | None = None, threshold: float = DEFAULT_THRESHOLD, config: Any = None) -> CheckResult:
    """Check one report. ``model`` is a loaded :class:`medmm.models.VLM` or a spec string (vlm/ensemble)."""
    from medmm.errors import InputError

    if checker not in CHECKERS:
        raise InputError(f"checker {checker!r}: use one of {', '.join(CHECKERS)}")
    rules = check_rules(report, header, threshold)
    if checker == "rules":
        return rules
    if model is None:
        raise InputError(f"checker {checker!r} needs a model (--model SPEC)")
    from medmm.reports.vlm_checker import VLMCheckerConfig, judge

    if isinstance(model, str):
        from medmm.models import load

        model = load(model)
    cfg = config or VLMCheckerConfig.load()
    notes = list(rules.notes)
    text = clean_text(report, [])
    if not text.strip():
        return CheckResult(False, 0.0, [], checker, notes)
    try:
        j = judge(model, [text], [images] if images else None, cfg)[0]
    except Exception as exc:  # a model failure is reported, the rule result still stands
        notes.append(f"VLM checker failed ({type(exc).__name__}: {exc}); rules only")
        return CheckResult(rules.has_error, rules.score, rules.flags, checker, notes)
    vlm_flags = []
    if j.probability >= 0.5 and j.type:
        from medmm.reports.sections import split_sections

        secs = split_sections(text)
        target = next((s for s in secs if s.name == "impression"), None) or (secs[-1] if secs else None)
        start, end = (target.start, target.end) if target else (0, len(text))
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        vlm_flags.append(Flag(j.type, start, end, text[start:end],
                              f"the VLM judges the report erroneous (p={j.probability:.2f}, margin {j.margin:+.2f}) "
                              f"and names the type {j.type}", round(j.probability, 3), "image", "vlm"))
    if checker == "vlm":
        return CheckResult(j.probability >= threshold, j.probability, vlm_flags, "vlm", notes)
    score = combine_scores(rules.score, j.probability, cfg.ensemble_weight)
    flags = sorted(rules.flags + vlm_flags, key=lambda f: (f.start, f.type))
    return CheckResult(score >= threshold, score, flags, "ensemble", notes)


def combine_scores(rule_score: float, vlm_probability: float, weight: float = 0.5) -> float:
    """The ensemble rule (noisy-OR with a down-weighted VLM vote)."""
    return combine([rule_score, weight * vlm_probability])

"""Checker orchestration: build a checker once (:func:`build_checker`), check many reports."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from medmm.reports.checker import RulesChecker, RulesConfig, check_rules, clean_text, combine, default_checker
from medmm.reports.flags import CheckResult, Flag

CHECKERS = ("rules", "vlm", "ensemble")


class Checker(Protocol):
    kind: str

    def check(self, report: Any, header: Any = None, images: Sequence[Any] | None = None) -> CheckResult: ...


def combine_scores(rule_score: float, vlm_probability: float, weight: float = 0.5) -> float:
    """The ensemble rule (noisy-OR with a down-weighted VLM vote)."""
    return combine([rule_score, weight * vlm_probability])


class VLMChecker:
    """The VLM (``kind="vlm"``) or rules+VLM (``kind="ensemble"``) checker around one loaded model."""

    def __init__(self, kind: str, model: Any, config: Any = None, rules: RulesChecker | None = None,
                 threshold: float | None = None) -> None:
        from medmm.reports.vlm_checker import VLMCheckerConfig

        if isinstance(model, str):
            from medmm.models import load

            model = load(model)
        self.kind, self.model = kind, model
        self.config = config or VLMCheckerConfig.load()
        self.rules = rules or default_checker(None)
        self.threshold = self.rules.threshold if threshold is None else threshold

    def _vlm_flag(self, text: str, j: Any) -> list[Flag]:
        from medmm.reports.sections import split_sections

        if j.probability < 0.5 or not j.type:
            return []
        secs = split_sections(text)
        target = next((s for s in secs if s.name == "impression"), None) or (secs[-1] if secs else None)
        start, end = (target.start, target.end) if target else (0, len(text))
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        return [Flag(j.type, start, end, text[start:end],
                     f"the VLM judges the report erroneous (p={j.probability:.2f}, margin {j.margin:+.2f}) and names "
                     f"the type {j.type}", round(j.probability, 3), "image", "vlm")]

    def check(self, report: Any, header: Any = None, images: Sequence[Any] | None = None) -> CheckResult:
        from medmm.reports.vlm_checker import judge

        rules = self.rules.check(report, header)
        notes = list(rules.notes)
        text = clean_text(report, [])
        if not text.strip():
            return CheckResult(False, 0.0, [], self.kind, notes)
        try:
            j = judge(self.model, [text], [images] if images else None, self.config)[0]
        except Exception as exc:  # a model failure is reported in the result; the rule result still stands
            notes.append(f"VLM checker failed ({type(exc).__name__}: {exc}); rules only")
            return CheckResult(rules.has_error, rules.score, rules.flags, self.kind, notes)
        vlm_flags = self._vlm_flag(text, j)
        if self.kind == "vlm":
            return CheckResult(j.probability >= self.threshold - 1e-9, j.probability, vlm_flags, "vlm", notes)
        score = combine_scores(rules.score, j.probability, self.config.ensemble_weight)
        flags = sorted(rules.flags + vlm_flags, key=lambda f: (f.start, f.type))
        return CheckResult(score >= self.threshold, score, flags, "ensemble", notes)


class _RulesAdapter:
    """A rule checker with the common ``check(report, header, images)`` signature."""

    def __init__(self, rules: RulesChecker) -> None:
        self.kind, self.rules = "rules", rules
        self.threshold = rules.threshold

    def check(self, report: Any, header: Any = None, images: Sequence[Any] | None = None) -> CheckResult:
        return self.rules.check(report, header)


def build_checker(kind: str = "rules", model: Any = None, config: Any = None,
                  rules_config: RulesConfig | None = None, threshold: float | None = None) -> Checker:
    """A checker built once: ``rules``, or ``vlm``/``ensemble`` around ``model`` (a loaded VLM or a spec string).

    ``config`` is the VLM checker's config (:class:`medmm.reports.vlm_checker.VLMCheckerConfig`);
    ``rules_config`` the rule checker's (:class:`RulesConfig`).
    """
    from medmm.errors import InputError

    if kind not in CHECKERS:
        raise InputError(f"checker {kind!r}: use one of {', '.join(CHECKERS)}")
    rc = rules_config or RulesConfig(threshold=threshold)
    rules = default_checker(rc)
    if kind == "rules":
        return _RulesAdapter(rules)
    if model is None:
        raise InputError(f"checker {kind!r} needs a model (--model SPEC)")
    return VLMChecker(kind, model, config, rules, threshold)


def check(report: Any, header: Any = None, checker: str = "rules", model: Any = None,
          images: Sequence[Any] | None = None, threshold: float | None = None, config: Any = None) -> CheckResult:
    """Check one report (thin form: prefer :func:`build_checker` when checking many with a model)."""
    return build_checker(checker, model=model, config=config, threshold=threshold).check(report, header, images)

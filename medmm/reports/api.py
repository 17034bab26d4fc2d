"""Checker orchestration: build a checker once (:func:`build_checker`), check many reports."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from medmm.reports.checker import RulesChecker, RulesConfig, combine, default_checker
from medmm.reports.flags import CheckResult

CHECKERS = ("rules", "vlm", "ensemble")


class Checker(Protocol):
    kind: str

    def check(self, report: Any, header: Any = None, images: Sequence[Any] | None = None) -> CheckResult: ...


def combine_scores(rule_score: float, vlm_probability: float, weight: float = 0.5) -> float:
    """The ensemble rule (noisy-OR with a down-weighted VLM vote)."""
    return combine([rule_score, weight * vlm_probability])


from medmm.reports.vlm_run import VLMChecker  # noqa: E402  (the VLM / ensemble checker lives in its own module)


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

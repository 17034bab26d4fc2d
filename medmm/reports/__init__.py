"""medmm.reports: radiology report error checking.

Build a checker once and use it for many reports (loading a model or the plausibility model is
the slow part)::

    checker = build_checker("rules")                      # or "vlm" / "ensemble" with model=...
    result = checker.check(report_text, header)           # header: medmm.imaging.HeaderFacts or None

``check(report, header=None, checker="rules", model=None, ...)`` is the thin one-call form (it
reuses one shared rule checker). A :class:`CheckResult` has ``has_error``, ``score``, ``flags``
(each with a calibrated confidence) and ``notes``; checking never raises on bad input — problems
(and a rule that failed) are listed in ``result.notes``. The taxonomy is in
:mod:`medmm.reports.taxonomy`; the vocabulary shared with the error injector in
:mod:`medmm.reports.lexicon`.

Names are imported on first use, so that ``medmm.reports.inject`` (the error injector) can be
imported without loading the checker.
"""

from __future__ import annotations

from medmm._lazy import lazy_exports

_EXPORTS = {
    "CHECKERS": "medmm.reports.api", "Checker": "medmm.reports.api", "VLMChecker": "medmm.reports.api",
    "build_checker": "medmm.reports.api", "check": "medmm.reports.api", "combine_scores": "medmm.reports.api",
    "RulesChecker": "medmm.reports.checker", "RulesConfig": "medmm.reports.checker",
    "check_rules": "medmm.reports.checker", "CheckResult": "medmm.reports.flags", "Flag": "medmm.reports.flags",
    "ERROR_TYPES": "medmm.reports.taxonomy", "TYPE_IDS": "medmm.reports.taxonomy",
    "complex_class": "medmm.reports.taxonomy",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

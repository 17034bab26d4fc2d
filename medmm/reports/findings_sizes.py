"""What the findings rules (``rules_findings.py``, ``rules_findings_interval.py``) share: their part of the language
pack, a measurement with up to three dimensions, and a cheap once-per-report test for whether a report can hold a
measurement at all (most radiograph reports cannot, and every size-reading rule asks it first)."""

from __future__ import annotations

import re
from typing import Any, Callable

from medmm.reports.analysis import UNIT_ALTERNATION, Analysis, _for_lower_case, plain_ascii, unit_mm
from medmm.reports.language_pack import language_pack

__all__ = ["EXAMPLE", "EXAMPLE_WITH_IMPRESSION", "MAX_DENIALS", "PACK", "SIZE", "has_size", "lower_search",
           "plain_ascii", "report_has_size", "size_mm"]

PACK: dict[str, Any] = language_pack()["findings_rules"]  # the words of the findings rules (language-en.yaml)
EXAMPLE = "FINDINGS: {}"  # the registry examples' report
EXAMPLE_WITH_IMPRESSION = "FINDINGS: {}\n\nIMPRESSION: {}"  # the same, with an impression (every rule module's _F)
MAX_DENIALS = 20  # denials a rule compares per report: a report states a handful; more is garbage input (bounded pairing)

# a measurement: up to three dimensions and a unit (the pack's size units); its largest dimension is what is compared.
# A unit may follow each number ("2.5 cm x 1.9 cm" is one measurement, not two); the last unit is read for all.
# The one size reader of the rules (rules_single.size_plausibility reads it too)
_UNIT_EACH = r"(?:\s*(?:" + UNIT_ALTERNATION + r")\b)?"
SIZE = re.compile(r"\b(\d+(?:\.\d+)?)" + _UNIT_EACH + r"(?:\s*(?:x|by)\s*(\d+(?:\.\d+)?)" + _UNIT_EACH
                  + r")?(?:\s*(?:x|by)\s*(\d+(?:\.\d+)?))?\s*(?:-\s*)?(" + UNIT_ALTERNATION + r")\b", re.I)
_DIGIT_UNIT = re.compile(r"\d\s*(?:mm|cm|milli|centi)")


def size_mm(m: re.Match) -> float:
    """The largest dimension of a :data:`SIZE` match, in millimetres."""
    return max(float(g) for g in m.groups()[:3] if g) * unit_mm(m.group(4))


def has_size(low: str) -> bool:
    """Can the lower-cased text hold a measurement (a digit before a unit)? Substring tests, then one regex."""
    return ("mm" in low or "cm" in low or "milli" in low or "centi" in low) and _DIGIT_UNIT.search(low) is not None


def report_has_size(a: Analysis) -> bool:
    """:func:`has_size` of the report, decided once per analysis (several rules ask)."""
    hit = a.cache.get("findings_rules_size")
    if hit is None:
        hit = a.cache["findings_rules_size"] = has_size(a.lower_text())
    return hit


def lower_search(pattern: re.Pattern[str]) -> Callable[[str], re.Match[str] | None]:
    """``pattern.search`` (``pattern`` compiled with re.I) the way :func:`medmm.reports.analysis.read_sentence` runs
    its patterns: on an ASCII text without the separators \\x1c-\\x1f, the text lower-cased and searched with the
    ASCII, case-sensitive pattern of ``analysis._for_lower_case`` (twice as fast, the same spans: lower-casing ASCII
    keeps every offset); else as written. The match is on the lower-cased text: read its words from the text
    through its span."""
    low = _for_lower_case(pattern)

    def search(text: str) -> re.Match[str] | None:
        if plain_ascii(text):
            return low.search(text.lower())
        return pattern.search(text)
    return search


"""Session 7 CT/MR reader rules (helper H7C): what a reader of one CT or MR report sees without an impression to
compare with, each with look-alikes that must stay quiet."""

from __future__ import annotations

import pytest

from medmm.reports.checker import RulesChecker, RulesConfig

F = "COMPARISON: {}\n\nFINDINGS: {}\n\nIMPRESSION: {}"


@pytest.fixture(scope="module")
def checker():
    return RulesChecker(RulesConfig(threshold=0.0))


def _rules(checker, findings: str, impression: str = "No acute disease.", comparison: str = "XXXX") -> list[str]:
    return [f.rule for f in checker.check(F.format(comparison, findings, impression)).flags]


def test_a_nodular_opacity_is_sized_as_a_nodule_not_as_a_generic_opacity(checker):
    # the generic nouns (opacity, density, lesion: up to 20 cm) shadowed "nodular" (blind set 2's 8 -> 6 regression)
    assert "size_plausibility" in _rules(checker, "Small nodules. The dominant nodular opacity measures 13 cm.")
    assert "size_plausibility" in _rules(checker, "A 45 mm nodular density in the left lower lobe.")
    assert "size_plausibility" not in _rules(checker, "Small nodules. The dominant nodular opacity measures 1.3 cm.")
    assert "size_plausibility" not in _rules(checker, "A 13 cm opacity in the left lower lobe.")

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


@pytest.mark.parametrize("text", ["The residual AP diameter of the central canal measures 9cm.",
                                  "The disc osteophyte complex measures approximately 5cm in its AP dimension.",
                                  "Broad-based disc protrusion measuring 12 cm."])
def test_a_spinal_canal_or_disc_measurement_a_unit_wrong(checker, text):
    assert "size_plausibility" in _rules(checker, text)


@pytest.mark.parametrize("text", ["The residual AP diameter of the central canal measures 9mm.",
                                  "The disc osteophyte complex measures approximately 5mm in its AP dimension.",
                                  "Broad-based disc protrusion measuring 12 mm.",
                                  "Soft tissue mass along the spinal canal measures 6 cm."])
def test_spinal_measurements_that_fit(checker, text):
    assert "size_plausibility" not in _rules(checker, text)


def test_a_liver_segment_past_the_eighth(checker):
    assert "nonexistent_level" in _rules(checker, "Unchanged segment 9A hepatic cyst.")
    assert "nonexistent_level" in _rules(checker, "Hypodensity in hepatic segment 11.")
    for text in ("Unchanged segment 4A hepatic cyst.", "Hypodensity in hepatic segment 7.",
                 "Segment 12 of the thoracic aorta."):
        assert "nonexistent_level" not in _rules(checker, text)

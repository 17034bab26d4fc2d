"""Single-mention phrasings another author uses (issue 21, session 7): each rule change fires on medmm's own text
holding the error and stays quiet on the same text without it."""

from __future__ import annotations

import pytest

from medmm.reports.checker import RulesChecker, RulesConfig

_CHECKER = RulesChecker(RulesConfig())


def _rules(text: str) -> set[str]:
    res = _CHECKER.check(text)
    return {f.rule for f in res.flags} if res.has_error else set()


def _on(text: str, words: str) -> list[str]:
    """The rules whose flag (or related span) lies on ``words`` of ``text``."""
    res = _CHECKER.check(text)
    s = text.index(words)
    e = s + len(words)
    return [f.rule for f in res.flags if res.has_error and any(a < e and s < b for a, b in f.spans())]


NONE = "COMPARISON: None.\n\nFINDINGS: {}\n\nIMPRESSION: {}"


@pytest.mark.parametrize("claim,plain", [
    ("The lungs are now clear without pleural effusion.", "The lungs are clear without pleural effusion."),
    ("Patchy left basilar opacity, now more confluent.", "Patchy left basilar opacity."),
    ("Kyphosis of the thoracic spine, which continues to progress.", "Kyphosis of the thoracic spine."),
    ("Degenerative change of the spine, not significantly changed.", "Degenerative change of the spine."),
    ("Interval median sternotomy with intact wires.", "Median sternotomy with intact wires."),
    ("Interval placement of a left chest tube.", "A left chest tube is in place."),
    ("A small right pleural effusion has developed.", "A small right pleural effusion."),
    ("The right pleural effusion is no longer seen.", "No right pleural effusion is seen."),
    ("There is still a small right pleural effusion.", "There is a small right pleural effusion."),
    ("Right basilar opacity persists.", "Right basilar opacity."),
    ("Continued right basilar opacity.", "Right basilar opacity."),
    ("Mild cardiomegaly, similar to before.", "Mild cardiomegaly."),
    ("The right pleural effusion is slightly larger.", "The right pleural effusion is small."),
    ("The right chest tube has been removed.", "There is no chest tube."),
])
def test_interval_claims_under_comparison_none(claim, plain):
    text = NONE.format(claim + " Heart size normal.", "No acute disease.")
    assert "interval_no_prior" in _on(text, claim)
    assert not {"interval_no_prior", "interval_no_prior_weak"} & _rules(NONE.format(plain + " Heart size normal.",
                                                                                   "No acute disease."))


def test_comparisons_of_sides_and_recommendations_are_no_interval_claim():
    for said in ("The right pleural effusion is larger than the left.", "Continued follow-up is recommended.",
                 "Both effusions are small, the right larger."):
        assert not {"interval_no_prior", "interval_no_prior_weak"} & _rules(
            NONE.format(said + " Heart size normal.", "No acute disease.")), said


def test_interval_claims_with_a_prior_are_no_error():
    text = ("COMPARISON: 3/4/2021.\n\nFINDINGS: The lungs are now clear. Kyphosis, which continues to progress. "
            "Interval placement of a left chest tube.\n\nIMPRESSION: Improved aeration.")
    assert not {"interval_no_prior", "interval_no_prior_weak"} & _rules(text)


@pytest.mark.parametrize("slip,right", [
    ("Hard size is normal.", "Heart size is normal."),
    ("Mild scaring at the left base.", "Mild scarring at the left base."),
    ("Two classified granulomas in the right upper lobe.", "Two calcified granulomas in the right upper lobe."),
    ("There are low long volumes.", "There are low lung volumes."),
    ("No pneumothorax or infusion.", "No pneumothorax or effusion."),
    ("Blunting of the right costophrenic angel.", "Blunting of the right costophrenic angle."),
    ("The soft issues are unremarkable.", "The soft tissues are unremarkable."),
    ("Mile cardiomegaly.", "Mild cardiomegaly."),
    ("Scarring in the lift upper lobe.", "Scarring in the left upper lobe."),
    ("Degenerative change of the thoracic spin.", "Degenerative change of the thoracic spine."),
    ("Hurt size is normal.", "Heart size is normal."),
    ("No pneumothorax or confusion.", "No pneumothorax or effusion."),
])
def test_real_word_slips_of_organ_words(slip, right):
    text = "FINDINGS: {} Lungs are clear.\n\nIMPRESSION: No acute disease."
    assert _on(text.format(slip), slip)
    assert _rules(text.format(right)) == set()


def test_an_infusion_port_is_no_slip():
    text = "FINDINGS: Right chest wall infusion port with catheter tip in the SVC. Lungs are clear.\n\nIMPRESSION: No acute disease."
    assert "homophone" not in _rules(text)


def test_a_device_called_new_in_the_findings_and_stable_in_the_impression():
    text = ("COMPARISON: 3/4/2021.\n\nFINDINGS: Two new left-sided chest tubes. Right lung clear.\n\n"
            "IMPRESSION: Stable left-sided chest tubes.")
    assert "interval_sections" in _on(text, "Stable left-sided chest tubes")
    assert "interval_sections" in _on(text, "Two new left-sided chest tubes")  # the related span
    same = text.replace("Two new left-sided", "Two left-sided")
    assert "interval_sections" not in _rules(same)


def test_a_right_sided_picc_against_a_left_picc():
    text = ("FINDINGS: There is a right-sided PICC with tip at the cavoatrial junction. Lungs are clear.\n\n"
            "IMPRESSION: Left PICC tip at the cavoatrial junction.")
    assert "laterality_anatomy" in _rules(text)
    assert "laterality_anatomy" not in _rules(text.replace("right-sided", "left-sided"))


def test_a_size_read_through_measuring_against_its_head_noun():
    text = ("FINDINGS: A rounded nodular opacity in the left upper lung measuring approximately {} is noted. "
            "Heart size normal.\n\nIMPRESSION: Nodular opacity.")
    assert "size_plausibility" in _on(text.format("9 cm"), "9 cm")
    assert _rules(text.format("9 mm")) == set()


def test_an_enlarged_heart_graded_against_the_impression():
    text = ("FINDINGS: The heart is again {} enlarged. Lungs are clear.\n\n"
            "IMPRESSION: Mild stable cardiomegaly.")
    assert "severity_sections" in _on(text.format("markedly"), "The heart is again markedly enlarged")
    assert "severity_sections" not in _rules(text.format("mildly"))


def test_a_focal_opacity_under_an_impression_of_nothing_acute():
    text = "FINDINGS: There is a focal opacity. Heart size normal.\n\nIMPRESSION: No acute cardiopulmonary disease."
    assert "normal_impression" in _on(text, "focal opacity")
    assert _rules(text.replace("There is a focal opacity", "There is no focal opacity")) == set()


@pytest.mark.parametrize("findings,impression", [
    ("Right IJ catheter with tip in the SVC.", "Left IJ catheter in good position."),
    ("Postsurgical change of a right mastectomy.", "Status post left mastectomy."),
])
def test_a_sided_device_or_surgery_named_with_the_other_side(findings, impression):
    text = f"FINDINGS: {findings} Lungs are clear.\n\nIMPRESSION: {impression}"
    assert "laterality_anatomy" in _rules(text)
    same = impression.replace("Left", "Right").replace("left", "right")
    assert "laterality_anatomy" not in _rules(f"FINDINGS: {findings} Lungs are clear.\n\nIMPRESSION: {same}")

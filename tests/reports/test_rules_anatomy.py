"""Session 5 single-mention rules (helper H5S): a right-only fissure named left, a side through a costophrenic angle,
the other side's lobe in the next sentence, a phrase repeated without a period, "stable since <date>" under
COMPARISON "None", a generic density too large to be one (each with look-alikes that must stay quiet)."""

from __future__ import annotations

import pytest

from medmm.reports.checker import RulesChecker, RulesConfig

F = "COMPARISON: {}\n\nFINDINGS: {}\n\nIMPRESSION: {}"


@pytest.fixture(scope="module")
def checker():
    return RulesChecker(RulesConfig(threshold=0.0))


def _rules(checker, findings: str, impression: str = "No acute disease.", comparison: str = "XXXX") -> list[str]:
    return [f.rule for f in checker.check(F.format(comparison, findings, impression)).flags]


@pytest.mark.parametrize("text", ["Mild thickening of the left horizontal fissure.",
                                  "Opacity abutting the left minor fissure.",
                                  "Fluid in the left-sided minor fissure."])
def test_a_right_only_fissure_named_left(checker, text):
    assert "nonexistent_fissure" in _rules(checker, text)


@pytest.mark.parametrize("text", ["Mild thickening of the right horizontal fissure.",
                                  "Fluid in the minor fissure.", "Left major fissure thickening."])
def test_fissures_that_exist_stay_quiet(checker, text):
    assert "nonexistent_fissure" not in _rules(checker, text)


@pytest.mark.parametrize("text", [
    "There is blunting of the left costophrenic angle, which may reflect pleural thickening at the right lung "
    "base.",
    "Right costophrenic sulcus blunting may reflect a small left effusion versus scarring.",
    "Slight blunting of the left costophrenic recess, perhaps right lower lobe atelectasis or scarring.",
    "Possible small right-sided effusion versus pleural thickening at the left costophrenic angle."])
def test_a_costophrenic_angle_and_the_other_side_in_one_finding(checker, text):
    assert "side_angle" in _rules(checker, text)


@pytest.mark.parametrize("text", [
    "Blunting of the left costophrenic angle and right lower lobe atelectasis.",
    "Interstitial prominence at the left costophrenic angle greater than right.",
    "Blunting of the left costophrenic angle, with right basilar atelectasis.",
    "Densities in the left base, opacity in the right base with obscured right costophrenic angle.",
    "Bilateral effusions, left costophrenic angle blunting more than the right lung base.",
    "Metallic fragments over the right neck base and in the left costophrenic angle."])
def test_two_findings_on_two_sides_stay_quiet(checker, text):
    assert "side_angle" not in _rules(checker, text)


@pytest.mark.parametrize("text", [
    "Streaky opacities are seen at the right base. These are probably within the lingula.",
    "Faint airspace density at the medial right base. This may represent left lower lobe pneumonia.",
    "Linear opacity at the left lung base. This may represent right lower lobe atelectasis.",
    "Patchy opacity in the lingula. This obscures the right heart border."])
def test_the_next_sentence_places_the_finding_on_the_other_side(checker, text):
    assert "side_next_sentence" in _rules(checker, text)


@pytest.mark.parametrize("text", [
    "Streaky opacities are seen at the left base. These are probably within the lingula.",
    "Opacity in the right base. Left lower lobe atelectasis.",  # no anaphor: another finding
    "Opacity in the right base. This may be atelectasis; left lower lobe opacity is also seen in the left base.",
    "Opacities in both bases. These are in the left lower lobe and right middle lobe.",
    "Right base opacity. This may represent right middle lobe or right lower lobe pneumonia.",
    "Right lower lobe pneumonia. It is also seen in the left lung.",  # another place of it
    "Patchy opacity in the lingula. This obscures the left heart border."])
def test_the_same_side_or_another_finding_stays_quiet(checker, text):
    assert "side_next_sentence" not in _rules(checker, text)


def test_a_phrase_repeated_without_a_period(checker):
    rules = _rules(checker, "No pneumothorax or focal consolidation no pneumothorax or focal consolidation.")
    assert "phrase_repetition" in rules
    flag = next(f for f in checker.check(F.format(
        "XXXX", "Mild degenerative changes without acute bony abnormality without acute bony abnormality.",
        "Normal.")).flags if f.rule == "phrase_repetition")
    assert flag.text == "without acute bony abnormality" and len(flag.related) == 1


@pytest.mark.parametrize("text", ["No pneumothorax or focal consolidation. No pneumothorax.",
                                  "XXXX XXXX XXXX XXXX XXXX XXXX XXXX.",
                                  "Nodules in the right upper lobe, in the right upper lobe apex and the left lung.",
                                  "At the level of the carina and at the level of the hilum."])
def test_lists_and_tokens_are_no_phrase_repetition(checker, text):
    assert "phrase_repetition" not in _rules(checker, text)


def test_stable_since_a_date_claims_the_prior_that_comparison_denies(checker):
    assert "interval_no_prior_weak" in _rules(checker, "Degenerative changes in the spine, stable since XXXX.",
                                              comparison="None.")
    assert "interval_no_prior" in _rules(checker, "Granuloma, unchanged since 3/4/2019.", comparison="None.")
    # a prior the sentence names with its modality still brings its own comparison
    assert not {"interval_no_prior", "interval_no_prior_weak"} & set(_rules(
        checker, "Nodule, unchanged since a chest CT of XXXX.", comparison="None."))


def test_a_generic_density_too_large_and_sizes_with_a_unit_after_each_number(checker):
    assert "size_plausibility" in _rules(checker, "Poorly defined 25 cm x 1.7 cm irregular density in the right lower lung.")
    assert "size_plausibility" in _rules(checker, "Calcific density measuring approximately 25 cm over the right lung.")
    assert "size_plausibility" not in _rules(checker, "Poorly defined 2.5 cm x 1.7 cm irregular density in the right lung.")
    # the size is the lesion's, not the kidney's named before it
    assert "size_plausibility" not in _rules(checker, "In the left kidney a 3.9 cm cystic lesion.")


@pytest.mark.parametrize("text,flag", [
    ("An accessory left azygos fissure is noted.", "nonexistent_fissure"),
    ("Old deformities of the right posterior 6th and 17th ribs.", "nonexistent_level"),
    ("Expansile lesion of the right posterior 19th rib.", "nonexistent_level"),
    ("Compression deformity of T16.", "nonexistent_level"),
    ("Fracture of rib 14 on the right.", "nonexistent_level")])
def test_anatomy_that_does_not_exist(checker, text, flag):
    assert flag in _rules(checker, text)


@pytest.mark.parametrize("text", ["An azygos fissure is noted.", "Right azygos lobe.",
                                  "Old deformities of the right posterior 6th and 7th ribs.", "Compression deformity of T12.",
                                  "Degenerative change at L5-S1 and T11-T12.", "Fracture of rib 4 on the right."])
def test_anatomy_that_exists_stays_quiet(checker, text):
    rules = _rules(checker, text)
    assert "nonexistent_fissure" not in rules and "nonexistent_level" not in rules


@pytest.mark.parametrize("text", ["The lungs are not clear.", "Mediastinal contours appear abnormal.",
                                  "The cardiomediastinal silhouette is not within normal limits for size."])
def test_a_negated_normal_statement_under_a_normal_impression(checker, text):
    assert "negated_normal" in _rules(checker, text, "No acute cardiopulmonary disease.")


@pytest.mark.parametrize("text,impression", [
    ("The lungs are clear.", "No acute cardiopulmonary disease."),
    ("The lungs are not clear.", "Bibasilar opacities in the lungs, atelectasis versus pneumonia."),
    ("The lungs are not clear, with chronic interstitial changes.", "No acute cardiopulmonary disease."),
    ("The mediastinum appears abnormal due to rotation.", "No acute cardiopulmonary disease."),
    ("The heart is not enlarged.", "No acute cardiopulmonary disease.")])
def test_an_expected_or_explained_statement_stays_quiet(checker, text, impression):
    assert "negated_normal" not in _rules(checker, text, impression)


@pytest.mark.parametrize("text", ["Degenerative changes of the spine, as before.",
                                  "Progression of degenerative changes of the spine."])
def test_as_before_and_progression_claim_a_prior(checker, text):
    assert "interval_no_prior" in _rules(checker, text, comparison="None.")


def test_the_number_pre_test_agrees_with_its_pattern():
    """nonexistent_level's pre-test on ASCII text (the digits classed in bytes) says "no number" exactly when the
    pattern it stands for finds none: every digit alone and in pairs, amid other characters, and some text."""
    import itertools
    import re

    from medmm.reports import rules_anatomy as ra

    pattern = re.compile(ra._TWO_DIGITS.pattern, re.ASCII)
    pieces = [str(d) for d in range(10)] + [" ", "a", ".", "-"]
    texts = ["".join(p) for n in (1, 2, 3) for p in itertools.product(pieces, repeat=n)]
    texts += ["No acute disease.", "Healed 9th rib fracture.", "T1 and L5.", "1. Clear. 2. Normal.", "12 mm", ""]
    for text in texts:
        assert ra._no_number(text) == (pattern.search(text) is None), text
    assert not ra._no_number("T1\u00e9 12")  # other text: the pattern as written

"""The false-alarm families found on real radiologist reports (issue 11), each as reports written here.

Every clean report below must raise no flag; each family ends with the same report carrying a real error of
that kind, which must still be flagged (so that a family is not "fixed" by switching its rule off).
"""

from __future__ import annotations

import pytest

from medmm.reports import check


def _types(text: str, header: dict | None = None) -> list[str]:
    return [f.type for f in check(text, header=header).flags]


# 1. radiology vocabulary is not misspelt English
@pytest.mark.parametrize("sentence", [
    "There is no lytic or blastic osseous lesion.",
    "Mild nodularity at the left lung base is again seen.",
    "Streaky opacity projects over the lingula.",
    "Eventration of the right hemidiaphragm.",
    "Prosthetic mitral valve in place.",
    "Multifocal bullous emphysema in both upper lobes.",
    "Periosteal reaction is not seen.",
    "A postoperative seroma is present in the left axilla.",
    "The patient has an asthenic habitus.",
    "The calcified granuloma is redemonstrated.",
    "The bones are diffusely osteopenic.",
    "Latissimus dorsi flap reconstruction on the right.",
])
def test_radiology_vocabulary_is_not_flagged(sentence):
    assert _types(f"FINDINGS: {sentence}\n\nIMPRESSION: No acute disease.") == []


def test_a_real_misspelling_is_still_flagged():
    assert _types("FINDINGS: There is no lytic or blastic ossoeus lesion.\n\nIMPRESSION: Normal.") == ["transcription"]


# 2. "no acute abnormality" is not "normal": chronic and incidental findings may stand beside it
@pytest.mark.parametrize("findings", [
    "A 4 mm calcified granuloma in the left upper lobe.",
    "Healed fractures of the right fifth and sixth ribs.",
    "A 7 mm right lower lobe nodule, unchanged for six years, most likely benign.",
    "Old compression deformity of T11.",
])
def test_chronic_findings_under_a_no_acute_impression(findings):
    report = f"COMPARISON: Chest radiographs 2019.\n\nFINDINGS: Heart size normal. {findings}\n\n" \
             "IMPRESSION: No acute cardiopulmonary process."
    assert _types(report) == []


def test_an_acute_finding_under_a_no_acute_impression_is_flagged():
    report = "FINDINGS: Heart size normal. Moderate right pneumothorax.\n\nIMPRESSION: No acute cardiopulmonary process."
    assert _types(report) == ["negation"]


# 3. statements about other organs, qualified denials and recommendations do not contradict
@pytest.mark.parametrize("report", [
    "FINDINGS: The thyroid shows no nodules. A calcified nodule is seen in the right lung apex.\n\nIMPRESSION: Stable.",
    "FINDINGS: Small left pleural effusion. No pericardial effusion.\n\nIMPRESSION: Small left pleural effusion.",
    "FINDINGS: The adrenal glands are without discrete nodule. Two small lung nodules in the left lower lobe.\n\n"
    "IMPRESSION: Two small left lower lobe nodules.",
    "FINDINGS: Patchy 1 cm opacity at the right base. No focal consolidation to suggest pneumonia.\n\n"
    "IMPRESSION: Small right basilar opacity, likely atelectasis.",
    "FINDINGS: No displaced rib fracture. If rib fracture remains a clinical concern, a dedicated rib series "
    "can be obtained.\n\nIMPRESSION: No acute findings.",
    "FINDINGS: Old healed left clavicle fracture.\n\nIMPRESSION: No acute fracture.",
])
def test_other_organs_qualified_denials_and_recommendations(report):
    assert _types(report) == []


def test_a_plain_denial_of_a_reported_finding_is_flagged():
    assert _types("FINDINGS: Small left pleural effusion.\n\nIMPRESSION: No pleural effusion.") == ["contradiction"]


# 4. descriptive "increased"/"decreased", and a prior named in the sentence, are not interval claims
@pytest.mark.parametrize("sentence", [
    "The lungs are hyperinflated with increased retrosternal clear space.",
    "Increased lucency of both upper lobes, in keeping with emphysema.",
    "Increased density at the right base compared to the left.",
    "Decreased lung volumes with crowding of the bronchovascular markings.",
    "The nodule is unchanged from the CT of 4/17/2022.",
])
def test_descriptive_interval_words(sentence):
    assert _types(f"COMPARISON: None.\n\nFINDINGS: {sentence}\n\nIMPRESSION: No acute disease.") == []


def test_interval_language_without_any_prior_is_flagged():
    assert _types("COMPARISON: None.\n\nFINDINGS: The right effusion has increased in size.\n\nIMPRESSION: Effusion.") \
        == ["interval"]


# 5. both sides involved; paraphrased impressions; modality words in recommendations
@pytest.mark.parametrize("report", [
    "FINDINGS: Patchy opacities at both lung bases, more on the right than the left.\n\n"
    "IMPRESSION: Bibasilar opacities, right greater than left.",
    "FINDINGS: Small bilateral pleural effusions.\n\nIMPRESSION: Small right and left pleural effusions.",
    "FINDINGS: Streaky left basilar airspace opacity.\n\nIMPRESSION: Left base opacity may represent atelectasis.",
])
def test_both_sides_and_paraphrases(report):
    assert _types(report) == []


def test_modality_named_in_a_recommendation_is_not_this_study():
    report = "EXAM: PA and lateral chest.\n\nFINDINGS: A 9 mm nodule in the right upper lobe.\n\n" \
             "IMPRESSION: 9 mm right upper lobe nodule. Chest CT may be of further benefit."
    assert _types(report, {"modality": "DX", "body_part": "CHEST"}) == []
    assert _types("TECHNIQUE: CT of the chest.\n\nFINDINGS: Clear lungs.", {"modality": "DX"}) == ["metadata"]


def test_a_one_sided_finding_that_changes_side_is_flagged():
    report = "FINDINGS: Streaky left basilar airspace opacity.\n\nIMPRESSION: Right base opacity may represent atelectasis."
    assert _types(report) == ["laterality"]


# structured CT/MR (issue 21): organ sub-headings repeat "Unremarkable." and "No focal lesion is identified." by
# design; CT/MR vocabulary is not misspelt English
def test_sentences_repeated_under_different_organ_headings_are_no_repetition():
    ct = {"modality": "CT", "body_part": "CHEST"}
    text = ("FINDINGS:\nLIVER: No focal lesion is identified.\nSPLEEN: No focal lesion is identified.\n"
            "KIDNEYS: No hydronephrosis.\nADRENALS: Unremarkable.\nBOWEL: Unremarkable.\nBONES: Unremarkable.")
    assert _types(text, ct) == []
    stutter = text.replace("SPLEEN: No focal lesion is identified.",
                           "SPLEEN: No focal lesion is identified. No focal lesion is identified.")
    assert _types(stutter, ct) == ["transcription"]  # the same sentence twice under one heading still is


@pytest.mark.parametrize("sentence", ["A sclerotic focus in T7 is likely an enostosis.",
                                      "Lobulation of the liver contour.", "No labral tear."])
def test_ct_mr_vocabulary_is_not_misspelt(sentence):
    assert _types(f"FINDINGS: {sentence}\n\nIMPRESSION: No acute abnormality.") == []

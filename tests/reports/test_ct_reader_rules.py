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
    assert "nonexistent_level" in _rules(checker, "Hypodensity in segment 11 of the liver.")
    for text in ("Unchanged segment 4A hepatic cyst.", "Hypodensity in hepatic segment 7.",
                 "Segment 12 of the thoracic aorta."):
        assert "nonexistent_level" not in _rules(checker, text)


T = "EXAM:\n{}\nCLINICAL:\n{}\nFINDINGS:\n{}\nIMPRESSION:\n{}"


def _all(checker, text: str) -> list[str]:
    return [f.rule for f in checker.check(text).flags]


@pytest.mark.parametrize("title,clinical,findings", [
    ("MRI OF THE LEFT KNEE WITHOUT CONTRAST", "Right knee pain.", "Normal menisci."),
    ("MRI RIGHT ANKLE", "Pain.", "Soft tissue swelling over the left ankle."),
    ("MRI-UP EXT JOINT LEFT SHOULDER", "Right shoulder pain.", "Normal rotator cuff.")])
def test_a_side_against_the_study_title(checker, title, clinical, findings):
    text = T.format(title, clinical, findings, "No tear.")
    flags = [f for f in checker.check(text).flags if f.rule == "title_side"]
    assert flags and flags[0].related, flags  # the title's side is shown with it
    assert text[flags[0].related[0].start:flags[0].related[0].end].lower() in ("left", "right")


@pytest.mark.parametrize("title,clinical,findings", [
    ("MRI OF THE LEFT KNEE WITHOUT CONTRAST", "Left knee pain.", "Normal menisci."),
    ("MRI LEFT KNEE", "Left knee pain. Status post right knee arthroplasty.", "Normal menisci."),
    ("MRI LEFT KNEE", "Left knee pain.", "Compared with the right knee MRI of 2004, no change."),
    ("MRI LEFT FOOT", "Right ankle pain.", "Normal tendons."),  # another part
    ("MRI OF THE BRAIN", "Right arm weakness.", "No infarct.")])  # no side in the title
def test_other_side_mentions_that_are_no_slip(checker, title, clinical, findings):
    assert "title_side" not in _all(checker, T.format(title, clinical, findings, "No tear."))


def test_a_title_side_needs_the_title_at_the_start(checker):
    assert "title_side" not in _all(checker, "FINDINGS: MRI left knee in 2004. Right knee pain.\n\nIMPRESSION: Normal.")


@pytest.mark.parametrize("text", [
    "C4-5: There is probable radicular impingement upon the exiting right C7 nerve root.",
    "C6-7: Disc osteophyte complex with impingement upon the exiting left C4 nerve root.",
    "At L5-S1 the disc bulge abuts the exiting left L2 nerve root."])
def test_a_nerve_root_far_from_its_level(checker, text):
    assert "root_level" in _rules(checker, text)


@pytest.mark.parametrize("text", [
    "C4-5: There is probable radicular impingement upon the exiting right C5 nerve root.",
    "C7-T1: Foraminal narrowing abutting the exiting C8 nerve root.",
    "L4-5: Disc protrusion contacting the traversing L5 nerve roots and the exiting L4 root.",
    "L5-S1: Disc bulge abutting the descending S1 nerve root.",
    "Right C7 nerve root impingement.",  # no level named
    "Aortic root is normal. C4-5: Mild disc bulge."])
def test_nerve_roots_at_their_level(checker, text):
    assert "root_level" not in _rules(checker, text)


def test_a_root_under_a_level_sub_heading(checker):
    text = ("FINDINGS:\nC4-5: There is disc desiccation. There is probable impingement upon the exiting right C7 nerve "
            "root.\nC5-6: Normal.\n\nIMPRESSION: Degenerative disc disease.")
    assert "root_level" in _all(checker, text)
    assert "root_level" not in _all(checker, text.replace("right C7", "right C5"))


def test_resolution_is_a_change_down_that_sizes_can_contradict(checker):
    text = ("Near complete resolution of the fluid collection along the right chest wall, residual collection "
            "measuring 2.1 x 1.4 cm, previously {}.")
    assert "interval_direction" in _rules(checker, text.format("1.5 x 1.2 cm"))
    assert "interval_direction" not in _rules(checker, text.format("15.5 x 5.2 cm"))


@pytest.mark.parametrize("text", ["Large right lower lobe pulmonary nodule 3 mm (7:204).",
                                  "Large left upper lobe pulmonary\nnodule 4 mm."])
def test_a_grade_against_the_size_that_follows_its_noun(checker, text):
    assert "severity_measured" in _rules(checker, text)


@pytest.mark.parametrize("text", ["Large hiatal hernia, right lower lobe nodule 3 mm.",
                                  "Small right lower lobe nodule 3 mm.", "Large right lower lobe mass 6 cm.",
                                  "Large hiatal hernia and right lower lobe nodule 3 mm."])
def test_a_grade_of_another_finding_or_one_that_fits(checker, text):
    assert "severity_measured" not in _rules(checker, text)


@pytest.mark.parametrize("text", ["Cavitary lesion in the superior segment of the left upper\nlobe.",
                                  "Consolidation in the lateral segment of the right upper lobe.",
                                  "Nodule in the right upper lobe superior segment.",
                                  "Nodule in the apicoposterior segment of the right lower lobe."])
def test_a_segment_its_lobe_does_not_have(checker, text):
    assert "segment_lobe" in _rules(checker, text)


@pytest.mark.parametrize("text", ["Cavitary lesion in the superior segment of the left lower\nlobe.",
                                  "Consolidation in the lateral segment of the right middle lobe.",
                                  "Nodule in the right lower lobe superior segment.",
                                  "Nodule in the apicoposterior segment of the left upper lobe.",
                                  "Atelectasis in the posterior segment of the right lower lobe.",  # posterior basal
                                  "Nodule in the inferior lingular segment of the left upper lobe.",
                                  "Subsegmental atelectasis in the right lower lobe."])
def test_segments_of_their_lobe(checker, text):
    assert "segment_lobe" not in _rules(checker, text)


def test_a_new_finding_a_later_sentence_names_and_calls_unchanged(checker):
    text = ("There are multiple new bilateral thin-walled cysts. Incidentally noted azygos fissure. No focal "
            "consolidation. These cysts appear grossly unchanged when compared to 2013.")
    flags = [f for f in checker.check("FINDINGS: " + text).flags if f.rule == "interval_new_unchanged"]
    assert flags and flags[0].related  # both sentences shown
    assert "interval_new_unchanged" not in _rules(checker, text.replace("new bilateral", "bilateral"))
    # another finding of the same noun between them: "These cysts" may be those
    assert "interval_new_unchanged" not in _rules(checker, text.replace(
        "Incidentally noted azygos fissure.", "Renal cysts are also seen."))
    # another noun
    assert "interval_new_unchanged" not in _rules(checker, text.replace("These cysts", "These nodules"))


def test_a_new_item_in_a_list_introduced_as_stable(checker):
    text = ("Stable pulmonary nodules as follows: Left lower lobe pulmonary nodule 8 mm (7:234). New left upper lobe "
            "pulmonary nodule 3 mm (7:203). Right lower lobe pulmonary nodule 3 mm (7:204).")
    flags = [f for f in checker.check("FINDINGS: " + text).flags if f.rule == "interval_new_unchanged"]
    assert flags and flags[0].related
    assert "interval_new_unchanged" not in _rules(checker, text.replace("New left", "Left"))
    # a new finding of another kind after the list
    assert "interval_new_unchanged" not in _rules(checker, text.replace(
        "New left upper lobe pulmonary nodule 3 mm (7:203).", "New consolidation in the left upper lobe."))


@pytest.mark.parametrize("text", [
    "On the diffusion sequence, there is no significant dark signal to indicate acute infarction.",
    "Hypointense focus on DWI in the left corona radiata consistent with acute infarct."])
def test_a_signal_word_against_its_sequence(checker, text):
    assert "signal_sequence" in _rules(checker, text)


@pytest.mark.parametrize("text", [
    "On the diffusion sequence, there is no significant bright signal to indicate acute infarction.",
    "Restricted diffusion with low signal on the ADC map, consistent with acute infarct.",
    "Hyperintense focus on DWI with corresponding low ADC values, consistent with acute infarct.",
    "Low signal on T1 in the left frontal lobe, no acute infarct."])
def test_signal_words_that_fit_their_sequence(checker, text):
    assert "signal_sequence" not in _rules(checker, text)

"""The non-word rule's medical vocabulary (issue 21 item 5): word lists named by the language pack
(``non_word.word_lists``, by default Debian's hunspell-en-med), and prefixes split off at a hyphen."""

from __future__ import annotations

from pathlib import Path

import pytest

from medmm.reports import build_checker
from medmm.reports.language import known_words, medical_words, read_word_list
from medmm.reports.rules_text import _combining_form

MED_DIC = Path("/usr/share/hunspell/en_med_glut.dic")


def test_a_hunspell_dic_is_read_as_lower_case_words_without_affix_flags(tmp_path):
    dic = tmp_path / "x.dic"
    dic.write_text("4\nlongus\nPeroneal/MS\nrigor mortis\nC3-4\n", encoding="utf-8")
    assert read_word_list(str(dic)) == {"longus", "peroneal"}


def test_a_prefix_split_off_at_a_hyphen_is_a_combining_form():
    known = frozenset({"tenosynovitis", "nephrolithiasis", "tent"})
    assert _combining_form("teno", known) and _combining_form("nephro", known)
    assert not _combining_form("tenn", known) and not _combining_form("ten", frozenset({"tent"}))


def test_a_split_prefix_is_no_non_word_but_a_typo_before_a_hyphen_is():
    checker = build_checker("rules")
    clean = "FINDINGS: The nephro-/ureterolithiasis is unchanged. Teno-osseous junction is intact.\n\nIMPRESSION: Stable."
    assert not [f for f in checker.check(clean).flags if f.rule == "non_word"]
    typo = "FINDINGS: Small left pleural effusoin-like density.\n\nIMPRESSION: Effusion."
    assert [f for f in checker.check(typo).flags if f.rule == "non_word"]


@pytest.mark.skipif(not MED_DIC.is_file(), reason=f"{MED_DIC} absent (apt-get install hunspell-en-med)")
def test_with_the_medical_dictionary_anatomy_is_known_and_typos_are_still_flagged():
    assert {"longus", "brevis", "clivus", "navicularis", "vastus"} <= medical_words() <= known_words()
    checker = build_checker("rules")
    clean = ("FINDINGS: The peroneus longus and brevis tendons are intact. The clivus is normal. Normal vastus "
             "medialis.\n\nIMPRESSION: Normal.")
    assert not [f for f in checker.check(clean).flags if f.rule == "non_word"]
    typo = "FINDINGS: Small left pleural effusoin.\n\nIMPRESSION: Effusion."
    assert [f for f in checker.check(typo).flags if f.rule == "non_word"]


def test_spelling_variants_are_one_word_not_a_confusion():
    from medmm.reports.rules_text import _relatives

    assert _relatives("disk", "disc") and _relatives("oedema", "edema") and _relatives("centre", "center")
    assert not _relatives("infusion", "effusion") and not _relatives("cute", "acute")


@pytest.mark.skipif(not MED_DIC.is_file(), reason=f"{MED_DIC} absent (apt-get install hunspell-en-med)")
def test_a_medical_word_the_model_has_not_seen_needs_more_than_a_common_left_neighbour():
    checker = build_checker("rules")

    def real_word(text: str) -> list[str]:
        return [text[f.start:f.end] for f in checker.check(text).flags if f.rule == "real_word"]

    # "right" is followed by "internal" in the model, but "internal hernia" / "internal capsule" are not in it
    assert real_word("FINDINGS: Small right inguinal hernia. Normal right external capsule.\n\nIMPRESSION: Hernia.") == []
    # "pleural" predicts "effusion": the medical word "infusion" there is still a dictation error
    assert real_word("FINDINGS: Small left pleural infusion.\n\nIMPRESSION: Effusion.") == ["infusion"]


def test_us_ct_mr_headings_hold_the_findings():
    from medmm.reports.sections import split_sections

    text = ("EXAM: CT abdomen and pelvis.\nTECHNIQUE: Axial images.\nCT ABDOMEN: The liver is normal.\n"
            "CT PELVIS: No free fluid.\nIMPRESSION: Normal.")
    assert [(s.name, s.label) for s in split_sections(text)] == [
        ("technique", None), ("technique", None), ("findings", "ct abdomen"), ("findings", "ct pelvis"),
        ("impression", None)]
    for head in ("DISCUSSION", "INTERPRETATION", "TECHNIQUE AND FINDINGS"):
        names = [s.name for s in split_sections(f"EXAM: MRI knee.\n{head}: Small joint effusion.\nIMPRESSION: Effusion.")]
        assert names == ["technique", "findings", "impression"], (head, names)


def test_a_denial_at_one_head_and_neck_site_does_not_contradict_a_finding_at_another():
    checker = build_checker("rules")
    text = ("FINDINGS: Prominent adenoidal tissue, without a mass of the nasopharynx. There is an irregular mass of "
            "the epiglottis.\n\nIMPRESSION: Epiglottic mass.")
    assert not [f for f in checker.check(text).flags if f.rule == "polarity_within"]
    same = ("FINDINGS: There is no mass of the epiglottis. There is an irregular mass of the epiglottis."
            "\n\nIMPRESSION: Epiglottic mass.")
    assert [f for f in checker.check(same).flags if f.rule == "polarity_within"]


def test_a_severity_word_grades_the_term_it_stands_by_not_one_before_another_noun():
    from medmm.reports.analysis import read_sentence

    def sev(sentence: str) -> dict[str, str | None]:
        return {r.text.lower(): r.severity for r in read_sentence(sentence)}

    assert sev("New bilateral pleural effusions and extensive consolidation in the right lung.")["pleural effusions"] is None
    assert sev("Small bilateral pleural effusions and extensive consolidation.")["pleural effusions"] == "small"
    assert sev("The pleural effusion is small.")["pleural effusion"] == "small"
    checker = build_checker("rules")
    text = ("FINDINGS: Bilateral pleural effusions have developed, small on the right and moderate on the left.\n\n"
            "IMPRESSION: New bilateral pleural effusions and extensive worsening consolidation in the right lung.")
    assert not [f for f in checker.check(text).flags if f.rule == "severity_sections"]


def test_a_coverage_line_and_a_recommended_study_say_nothing_of_this_study():
    checker = build_checker("rules")
    chest_ct = {"modality": "CT", "body_part": "CHEST"}
    text = ("TECHNIQUE: Axial images were acquired from the brain stem through the upper abdomen.\n\nFINDINGS: "
            "A 2 cm adrenal nodule. An adrenal MRI is required to characterize it.\n\nIMPRESSION: "
            "Adrenal nodule.")
    rules = {f.rule for f in checker.check(text, chest_ct).flags}
    assert not rules & {"header_body_part", "header_modality"}, rules
    wrong = "TECHNIQUE: Axial images of the brain.\n\nFINDINGS: MRI of the chest shows no mass.\n\nIMPRESSION: Normal."
    rules = {f.rule for f in checker.check(wrong, chest_ct).flags}
    assert {"header_body_part", "header_modality"} <= rules, rules


def test_spine_levels_are_sub_headings_of_the_section_they_stand_in():
    from medmm.reports.sections import split_sections

    text = ("FINDINGS:\nNormal cord.\nC2-3: CSF remains present surrounding the cord.\nC3-4: CSF remains present "
            "surrounding the cord.\nIMPRESSION:\nL4-L5: Small protrusion.")
    assert [(s.name, s.label) for s in split_sections(text)] == [
        ("findings", None), ("findings", "c2-3"), ("findings", "c3-4"), ("impression", None), ("impression", "l4-l5")]
    checker = build_checker("rules")
    assert not [f for f in checker.check(text).flags if f.rule.startswith("repetition")]
    after_comparison = "COMPARISON: None.\nL3-4: Mild disc bulge.\nIMPRESSION: Bulge."
    assert [s.name for s in split_sections(after_comparison)] == ["comparison", "findings", "impression"]

"""Dictation slips the authors of real CT/MR and radiograph reports leave behind (issue 21): a short word or two words
said twice ("the the", "to the to the"), in the findings, impression and technique. Made-up sentences only; the real
ones are counted by test_ct_mr_dev.py (``test_errors_already_in_the_real_reports_are_found``)."""

from __future__ import annotations

import pytest

from medmm.reports import build_checker


@pytest.fixture(scope="module")
def checker():
    return build_checker("rules")


def _repeated(checker, text: str, header: dict | None = None) -> list[str]:
    return [f.text for f in checker.check(text, header).flags if f.rule == "word_repetition"]


CT = {"modality": "CT", "body_part": "CHEST"}


@pytest.mark.parametrize("text, wrong", [
    ("FINDINGS: There is is a small right pleural effusion.\n\nIMPRESSION: Small effusion.", "is is"),
    ("FINDINGS: The The heart size is normal. No effusion.\n\nIMPRESSION: Normal.", "The The"),
    ("FINDINGS: Mild effacement of the the sulci.\n\nIMPRESSION: Mild edema.", "the the"),
    ("FINDINGS: The stent extends to the to the carina.\n\nIMPRESSION: Stent in place.", "to the to the"),
    ("FINDINGS: A chest tube chest tube is in place.\n\nIMPRESSION: No pneumothorax.", "chest tube chest tube"),
])
def test_short_and_two_word_stutters_are_flagged_on_the_repeated_words(checker, text, wrong):
    assert _repeated(checker, text, CT) == [wrong]


def test_a_stutter_in_the_technique_is_flagged(checker):
    text = ("TECHNIQUE: Contrast was given prior to the to the scan.\n\nFINDINGS: The lungs are clear.\n\n"
            "IMPRESSION: Normal.")
    assert _repeated(checker, text, CT) == ["to the to the"]


@pytest.mark.parametrize("text", [
    "FINDINGS: The patient had had a lobectomy. The lungs are clear.\n\nIMPRESSION: Normal.",
    "FINDINGS: It is likely that that nodule is benign.\n\nIMPRESSION: Benign nodule.",
    "FINDINGS: Narrowing consistent with moya moya disease.\n\nIMPRESSION: Moyamoya.",
    "FINDINGS: A dual-port Port-A-Cath is in place. The lungs are clear.\n\nIMPRESSION: Normal.",
    "FINDINGS: Nodule of 1 1/2 cm. Compared to 4 4 mm before.\n\nIMPRESSION: Nodule.",
    "FINDINGS: The no no-fly zone. Suctioned well as well as the airway.\n\nIMPRESSION: Normal.",
    "FINDINGS: XXXX XXXX XXXX XXXX. The lungs are clear.\n\nIMPRESSION: Normal.",
    "FINDINGS: No pneumothorax, no effusion, no edema.\n\nIMPRESSION: Normal.",
])
def test_legitimate_doubles_are_not_flagged(checker, text):
    assert _repeated(checker, text, CT) == []


def test_a_stutter_in_the_indication_is_left_alone(checker):
    text = "INDICATION: Cough cough.\n\nFINDINGS: The lungs are clear.\n\nIMPRESSION: Normal."
    assert _repeated(checker, text, CT) == []


def _medical_list_installed() -> bool:
    from medmm.reports.language import medical_words

    return bool(medical_words())


needs_medical_list = pytest.mark.skipif(not _medical_list_installed(), reason="no medical word list installed (the "
                                        "language pack's non_word.word_lists; `apt-get install hunspell-en-med`)")


@needs_medical_list
@pytest.mark.parametrize("wrong, fix", [("contraleteral", "contralateral"), ("oropharynax", "oropharynx"),
                                        ("penumonitis", "pneumonitis")])
def test_misspelled_medical_terms_are_corrected_from_the_medical_list(checker, wrong, fix):
    text = f"FINDINGS: Findings in the {wrong} region are stable.\n\nIMPRESSION: Stable."
    flags = [f for f in checker.check(text, CT).flags if f.rule == "non_word"]
    assert [f.text for f in flags] == [wrong] and f'"{fix}"' in flags[0].explanation


@needs_medical_list
@pytest.mark.parametrize("text", [
    "FINDINGS: Partial tear of the epicondylo-olecranon ligament.\n\nIMPRESSION: Partial tear.",
    "FINDINGS: Effusion of the radiocapitellum joint.\n\nIMPRESSION: Effusion.",
    "FINDINGS: Adenopathy, possibly a lymphoproliferative disorder.\n\nIMPRESSION: Adenopathy.",
])
def test_other_forms_and_combining_forms_of_medical_words_are_no_misspellings(checker, text):
    assert [f.text for f in checker.check(text, CT).flags if f.rule == "non_word"] == []


@pytest.mark.parametrize("wrong, fix", [("thepleural", "the pleural"), ("effusionand", "effusion and"),
                                        ("leftkidney", "left kidney")])
def test_two_words_run_together_are_flagged_with_the_space_restored(checker, wrong, fix):
    text = f"FINDINGS: A mass abuts {wrong} surface.\n\nIMPRESSION: Mass."
    flags = [f for f in checker.check(text, CT).flags if f.rule == "non_word"]
    assert [f.text for f in flags] == [wrong] and f'"{fix}"' in flags[0].explanation


@pytest.mark.parametrize("text", [
    "FINDINGS: Thickening of the tendo calcaneus and the flexor hallucis. No mass.\n\nIMPRESSION: Tendinosis.",
    "FINDINGS: No effusion. Dr. Woodson was informed.\n\nIMPRESSION: Normal.",
])
def test_latin_endings_and_names_are_not_read_as_run_together_words(checker, text):
    assert [f.text for f in checker.check(text, CT).flags if f.rule == "non_word"] == []

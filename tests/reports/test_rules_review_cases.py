"""Cases a review of the session-5 rules found wrong, each with its look-alike (made-up text)."""

import pytest

from medmm.reports import build_checker

CT = {"modality": "CT", "body_part": "CHEST"}


@pytest.fixture(scope="module")
def checker():
    return build_checker("rules")


def _rules(checker, text, header=CT):
    return [f.rule for f in checker.check(text, header).flags]


def test_the_descending_aorta_has_its_own_calibre_limit(checker):
    # "descending aorta" was read as two vessels (it and "aorta"), so the rule said nothing
    assert "caliber_measured" in _rules(checker, "FINDINGS: Normal caliber descending aorta measuring 3.8 cm.")
    assert "caliber_measured" not in _rules(checker, "FINDINGS: Normal caliber descending aorta measuring 2.4 cm.")


def test_every_no_new_of_the_pack_passes_the_pre_test(checker):
    # the pre-test listed five spellings of "no new"; the pack's pattern also has "without other new"
    assert "interval_denied" in _rules(checker, "FINDINGS: New 3 mm right upper lobe nodule. Without other new "
                                                "nodules.")
    assert "interval_denied" not in _rules(checker, "FINDINGS: New 3 mm right upper lobe nodule. Without other "
                                                    "nodules.")


def test_a_structure_of_the_impression_is_a_word_not_a_substring(checker):
    # "pulmonary" was found inside "cardiopulmonary", so the impression seemed to speak of it
    text = "FINDINGS: Pulmonary vascularity is abnormal.\n\nIMPRESSION: No acute {}disease."
    assert "negated_normal" in _rules(checker, text.format("cardiopulmonary "), None)
    assert "negated_normal" not in _rules(checker, text.format("pulmonary "), None)


def test_a_sentence_taken_up_by_the_next_stays_under_its_organ_heading(checker):
    across = "LUNGS: New 3 mm nodule in the right upper lobe.\nTHYROID: This is unchanged."
    within = "LUNGS: New 3 mm nodule in the right upper lobe. This is unchanged."
    assert "interval_new_unchanged" not in _rules(checker, across)
    assert "interval_new_unchanged" in _rules(checker, within)

"""Real-word dictation errors that sound like the term rather than look like it (rules_text: Metaphone keys from
jellyfish), and everyday words the model never saw before a word that nearly always follows the term."""

from __future__ import annotations

import pytest

from medmm.reports import build_checker
from medmm.reports.language import packaged_lm
from medmm.reports.rules_text import _close_targets, _sound_alikes


def _real_word(text: str) -> list[str]:
    checker = build_checker("rules")
    return [text[f.start:f.end] for f in checker.check(text).flags if f.rule == "real_word"]


@pytest.mark.parametrize("word,term", [("floral", "pleural"), ("salute", "silhouette"), ("erotic", "aortic")])
def test_a_sound_alike_far_in_spelling_is_a_candidate(word, term):
    assert term in _sound_alikes(word, packaged_lm())
    assert term in _close_targets(word, packaged_lm())


def test_short_keys_and_unlike_spellings_are_no_sound_alikes():
    lm = packaged_lm()
    assert _sound_alikes("hat", lm) == set()  # a key of two letters says too little
    assert not {"effusion", "silhouette", "pleural"} & _sound_alikes("window", lm)


@pytest.mark.parametrize("text,word", [
    ("FINDINGS: No floral effusion or pneumothorax.\n\nIMPRESSION: Normal chest.", "floral"),
    ("FINDINGS: The cardiomediastinal salute is normal.\n\nIMPRESSION: Normal chest.", "salute"),
    ("FINDINGS: Lungs are clear.\n\nIMPRESSION: Negative for cute cardiopulmonary disease.", "cute"),
])
def test_sound_alike_and_everyday_word_slips_are_flagged(text, word):
    assert _real_word(text) == [word]


@pytest.mark.parametrize("text", [
    "FINDINGS: No pleural effusion or pneumothorax.\n\nIMPRESSION: Normal chest.",
    "FINDINGS: The cardiomediastinal silhouette is normal.\n\nIMPRESSION: Normal chest.",
    "FINDINGS: Lungs are clear.\n\nIMPRESSION: Negative for acute cardiopulmonary disease.",
    "FINDINGS: Increased height loss of the T12 compression deformity.\n\nIMPRESSION: Fracture.",
    "FINDINGS: Mild basal atelectasis at the right base.\n\nIMPRESSION: Atelectasis.",
])
def test_the_right_words_are_not_flagged(text):
    assert _real_word(text) == []

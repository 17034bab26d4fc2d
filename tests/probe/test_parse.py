"""Answer parsers: robust rules and the reference rules reproduced exactly."""

from __future__ import annotations

import pytest

from medmm.errors import InputError
from medmm.probe.parse import (letter_answer, mediconfusion_compat_letter, parse_letter, parse_yes_no,
                               probmed_compat_correct, yes_no_answer, yes_no_correct)


@pytest.mark.parametrize("text,expected", [
    ("Yes", "yes"), ("yes.", "yes"), ("**Yes**, there is a mass", "yes"), ("YES!", "yes"), ("No:", "no"),
    ("no, it is an MRI", "no"), ("There is no evidence of it.", "no"), ("Normal", "invalid"),
    ("Nodule present", "invalid"), ("Yesterday's image", "invalid"), ("", "invalid"), (None, "invalid"),
    ("yes or no", "invalid"), ("Yes/No", "invalid"), ("I cannot tell", "invalid"),
    ("Answer: no. Yes, the lesion ...", "no"),
])
def test_robust_yes_no(text, expected):
    assert parse_yes_no(text) == expected


@pytest.mark.parametrize("response,truth,expected", [
    ("Yes", "yes", 1), ("yes", "yes", 1), ("yes.", "yes", 1), ("  YES. ", "yes", 1),
    ("yes, there is", "yes", 0),          # lower-case and not exactly yes/yes.: the reference misses it
    ("Normal", "no", 1),                  # "No" is a substring of "Normal"
    ("No", "no", 1), ("no", "no", 1), ("no, it is not", "no", 0), ("Not sure", "no", 1),
    ("Yes. No.", "yes", 1), ("Yes. No.", "no", 1),  # both substrings: right for either truth
    ("", "yes", 0), (None, "no", 0),
])
def test_probmed_compat_rule(response, truth, expected):
    assert probmed_compat_correct(response, truth) == expected
    assert yes_no_correct(response, truth, "probmed-compat") == expected


def test_compat_answer_and_unknown_parser():
    assert yes_no_answer("Yes. No.", "probmed-compat") == "invalid"
    assert yes_no_answer("Normal", "probmed-compat") == "no"
    assert yes_no_answer("yes, there is", "robust") == "yes"
    with pytest.raises(InputError, match="unknown yes/no parser"):
        yes_no_correct("yes", "yes", "lenient")
    with pytest.raises(InputError, match="'yes' or 'no'"):
        probmed_compat_correct("yes", "maybe")


@pytest.mark.parametrize("text,expected", [
    ("A", "A"), ("b", "B"), ("(B)", "B"), ('A")', "A"), ("**B**.", "B"), ("Option A", "A"), ("Answer: B", "B"),
    ("A: Terminating into the ophthalmic artery", "A"), ("The answer is B.", "B"),
    ("A mass is seen, so B", "B"),         # the article A is not a choice
    ("A or B", None), ("A/B", None), ("I am not sure", None), ("", None), (None, None), ("C", None),
])
def test_robust_letter(text, expected):
    assert parse_letter(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("A", "A"), ('A")', "A"), ('("B")', "B"), ('("B").', "B"), ('("A":', "A"), (".B:", "B"), ("B.", "B"),
    ("The answer is A\nbecause", "A"),
    ("(A)", None),                         # not one of the reference spellings
    ("A, because", None), ("A B", None), ("b", None), ("**B**", None), (None, None), ("", None),
])
def test_mediconfusion_compat_letter(text, expected):
    assert mediconfusion_compat_letter(text) == expected
    assert letter_answer(text, "mediconfusion-compat") == expected

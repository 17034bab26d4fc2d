"""The rewritten alternations of ``medmm.reports.analysis`` find what the plain ones find.

``_words_alternation`` writes its alternation grouped by first letter (``language_pack.by_first_letter``, after
``literal_led`` has made every alternative open with a letter), and the lower-case clause-cut and terminator patterns
open with a literal character (``language_pack.charset_led``), and so does the lower-case negation-trigger pattern.
These are speed changes only: here each rewritten pattern is compared with the plain alternation it replaces, match
by match (span and named groups), on generated texts that put the vocabulary's words at the start and the end of the
text, inside other words, after punctuation, digits and underscores, and in upper case; and on the pack's own
vocabularies.
"""

from __future__ import annotations

import copy
import random
import re

import pytest

from medmm.reports import analysis as an
from medmm.reports import language_pack as lp
from medmm.reports.language_pack import alternation, first_char_lookahead

_FILLERS = ["", " ", "x", "_", "1", "-", ".", ", ", "; ", ": ", "(", " and ", " but ", " with ", "\n", "lateral ",
            "un", "s", " no ", " is ", " not seen", " effect"]


def _texts(words: list[str], seed: int, n: int = 300) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(_FILLERS)]
        for _ in range(rng.randint(1, 6)):
            w = rng.choice(words)
            parts += [w.upper() if rng.random() < 0.2 else w, rng.choice(_FILLERS)]
        out.append("".join(parts))
    return out


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[tuple[int, int], dict[str, str | None]]]:
    return [(m.span(), m.groupdict()) for m in pattern.finditer(text)]


def _plain_words(patterns: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    body = alternation(patterns)
    return re.compile(r"\b" + first_char_lookahead(body) + r"(?:" + body + r")\b", re.I)


_SAMPLE_WORDS = ["pleural effusion", "effusion", "effusions", "mass", "masses", "lateral mass", "mass effect",
                 "hemopneumothorax", "pneumothorax", "pneumothoraces", "enlarged heart", "enlargement of the heart",
                 "nodule", "no", "not", "without", "ET tube", "ETT", "picc line", "icd"]


@pytest.mark.parametrize("patterns", [
    ["(?:pleural\\s+)?effusions?", "(?<!lateral\\s)mass(?:es)?(?!\\s+effect)", "(?:hemo|hydro)?pneumothora(?:x|ces)",
     "(?:enlarged|enlargement\\s+of(?:\\s+the)?)\\s+heart", "nodules?", "ET\\s+tube", "ETT", "PICC(?:\\s+line)?",
     "(?:ICD|AICD|defibrillator)"],
    ["no", "not", "no\\s+evidence\\s+of", "without", "negative\\s+for"],
])
def test_letter_grouped_alternation_finds_the_same_matches(patterns):
    grouped, plain = an._words_alternation(patterns), _plain_words(patterns)
    assert grouped.pattern != plain.pattern  # the rewrite applied
    for text in _texts(_SAMPLE_WORDS, seed=len(patterns)):
        assert _spans(grouped, text) == _spans(plain, text), text
        low = text.lower()
        assert _spans(an._for_lower_case(grouped), low) == _spans(an._for_lower_case(plain), low), text


def test_an_alternative_that_cannot_open_with_a_letter_leaves_the_alternation_as_it_is():
    patterns = ["effusions?", "\\w+ly\\s+enlarged", "[0-9]+\\s*mm"]
    assert lp.by_first_letter(patterns) == alternation(patterns)
    assert lp.literal_led("(?:a|b)+c") == ["(?:a|b)+c"]  # a repeated group is not unrolled
    assert lp.literal_led("(?:pleural\\s+)?effusion") == ["pleural\\s+effusion", "effusion"]
    assert lp.literal_led("(?<!lateral\\s)mass") == ["m(?<!lateral\\sm)ass"]


@pytest.mark.parametrize("name", ["_TERM", "_PRE", "_PSEUDO", "_UNCERTAIN", "_UNCERTAIN_POST", "INTERVAL", "_CHRONIC",
                                  "_INTERVAL_WORD", "_SITE"])
def test_the_packs_word_patterns_match_as_their_plain_alternation(name):
    sources = {"_TERM": [p for _, (_, ps) in an.LEXICON.items() for p in ps], "_PRE": an.PRE_NEG,
               "_PSEUDO": an.PSEUDO, "_UNCERTAIN": an.UNCERTAIN, "_UNCERTAIN_POST": an.UNCERTAIN_POST,
               "INTERVAL": an._READ["interval_cues"],
               "_CHRONIC": sorted(an.lx.CHRONIC_WORDS, key=len, reverse=True),
               "_INTERVAL_WORD": sorted(an.lx.INTERVAL_DIRECTION, key=len, reverse=True),
               "_SITE": sorted(an.lx.SITE_WORDS, key=len, reverse=True)}[name]
    grouped, plain = getattr(an, name), _plain_words(list(sources))
    words = [re.sub(r"\\s\+?|\\s\*", " ", re.sub(r"\(\?[:<!=]+[^()]*\)|[()?|\\]|s\?", "", p)) for p in sources]
    words = [w for w in words if w.strip()] + _SAMPLE_WORDS
    for text in _texts(words, seed=7, n=200):
        assert _spans(grouped, text) == _spans(plain, text), text
        low = text.lower()
        assert _spans(an._for_lower_case(grouped), low) == _spans(an._for_lower_case(plain), low), text


@pytest.mark.parametrize("field", ["clause", "terminator", "pre"])
def test_the_charset_led_sentence_patterns_match_as_before(field):
    led, plain = getattr(an._LOWER_CASE, field), an._for_lower_case(getattr(an._ANY_CASE, field))
    assert led.pattern != plain.pattern  # the rewrite applied
    words = ["but", "however", "and a", "and no", "with", ", no", ", the", "though", "although", "which", "apart from",
             "whereas", "except", "otherwise", "effusion", "butter", "handle", "withdrawn", "rebut", "nowhere",
             "no evidence of", "not", "without", "negative for", "free of", "ruled out", "resolution of", "none"]
    for text in _texts(words, seed=11, n=400):
        low = text.lower()
        assert _spans(led, low) == _spans(plain, low), text


def test_charset_led_rewrites_word_boundaries_and_classes():
    assert lp.charset_led("\\bbut\\b|[;:]") == "b(?<=\\bb)ut\\b|;|:"
    assert lp.charset_led("\\w+ly|but") is None  # an alternative that opens with a class of letters
    assert lp.charset_led("(?=x)y") is None


def test_the_side_or_severity_pattern_matches_as_its_plain_alternation():
    plain_body = (r"(?:(?P<side>" + an._SIDE_ALTERNATION + r")" + an._READ["side_suffix"] + r"|(?P<sev>"
                  + an._SEV_WORDS + r"))")
    plain = re.compile(r"\b" + first_char_lookahead(plain_body) + plain_body + r"\b", re.I)
    assert an._SIDE_OR_SEVERITY.pattern != plain.pattern  # the rewrite applied
    words = [w for ws in an.SIDE_WORDS.values() for w in ws] + an._SEV_WORDS.split("|") + ["left-sided", "right sided",
                                                                                         "bilaterally", "mildly"]
    for text in _texts(words, seed=5, n=400):
        assert _spans(an._SIDE_OR_SEVERITY, text) == _spans(plain, text), text
        low = text.lower()
        assert _spans(an._LOWER_CASE.side_or_severity, low) == _spans(an._for_lower_case(plain), low), text


_MARKED_SCANS = {"c": "clause", "p": "pre", "s": "side_or_severity", "z": "size", "u": "uncertain", "b": "both_sides",
                 "n": "post", "l": "lobe", "i": "interval_word", "h": "past"}  # the last three: _READERS_LOWER


def test_a_scan_left_out_by_the_tokens_marks_finds_nothing():
    """read_sentence skips a scan when no token of the sentence holds one of its keys (``_ScanKeys``): on generated
    sentences of the pack's words glued to punctuation, digits and other words, every scan that finds something is
    marked, and the marks are the same when the tokens are met a second time (from the table)."""
    assert set(_MARKED_SCANS) == set(an._ALL_SCANS)
    words = ([w for ws in an.SIDE_WORDS.values() for w in ws] + an._SEV_WORDS.split("|") + list(an._READ["clause_cuts"])
             + ["no", "not", "free of", "without", "may", "cannot be excluded", "possibly", "vs.", "left greater than right",
                "3 cm", "4.5 mm", "2 x 3 centimeters", "1.2cm", "millimeter", "effusion", "nodule", ",", ";"]
             + list(an.POST_NEG) + ["is not seen", "no longer visible", "has resolved", "absent", ": none"]
             + ["right upper lobe", "lingula", "lingular", "apical", "bibasilar", "lung base", "mid zone"]
             + list(an.lx.INTERVAL_DIRECTION) + list(an._READ["past"]) + ["history of", "prior"])
    keys = copy.copy(an._SCAN_KEYS)
    keys.tokens = {}  # a table of its own: every token met for the first time here
    seen = 0
    for text in _texts(words, seed=13, n=600):
        low = text.lower()
        marks = keys.marks(low)
        assert keys.marks(low) == marks  # the second time from the table
        for mark, field in _MARKED_SCANS.items():
            pattern = getattr(an._LOWER_CASE if mark in "cpszubn" else an._READERS_LOWER, field)
            if pattern.search(low) or (mark == "l" and an._READERS_LOWER.zone.search(low)):
                seen += 1
                assert mark in marks, (field, text)
    assert seen > 600  # the scans found something in many of the texts
    assert an._ScanKeys({"x": None, "y": ("free of",)}).marks("nothing here") == "x"  # no keys: always marked
    assert an._ScanKeys({"y": ("free of",)}).marks("it is free") == "y"  # a key with white space: its longest part
    assert an._ScanKeys({"y": ("free of", " ")}).marks("nothing here") == "y"  # a key of white space only: always

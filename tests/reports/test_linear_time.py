"""Linear time on adversarial input: every pattern bounded, a 100,000-character report checked in under a second.

Times are CPU time of this process (``time.process_time``): the test machine is shared, and wall time would
measure the neighbours. The bound for a 100,000-character report is 1 s; the property tests allow 1 s for up to
20,000 characters of random or repeated-token text (a quadratic pattern takes minutes on such text: "Dr. " * 25000
took 24 s before the bounds).
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medmm.reports.checker import MAX_FLAGS_PER_RULE, MAX_REPORT_CHARS, RulesChecker

ADVERSARIAL = {
    "abbreviations": "Dr. " * 25000,
    "colons": ":" * 100000,
    "measurements": "5 mm " * 20000,
    "one long sentence": "No effusion " * 8400,
    "term after term": "effusion " * 11000,
    "conflicting sections": "FINDINGS: left effusion. IMPRESSION: right effusion. " * 1900,
    "header-like": "Ab: " * 25000,
    "sides": "left effusion. " * 6600,
    "letters": "a" * 100000,
    # the single-mention rules: sides and lobes, grades, zones, "or" lists, change openers in one long sentence
    "side and lobe": "left base right lower lobe " * 4000,
    "grades": "trace moderate small large " * 4000,
    "zones": "apical lower lobe basilar upper lobe " * 3000,
    "or lists": "focal consolidation, effusion or pneumothorax, " * 2200,
    "openers": "COMPARISON: None. FINDINGS: Increased large effusion. " * 1900,
}


@pytest.fixture(scope="module")
def checker() -> RulesChecker:
    c = RulesChecker()
    c.check("FINDINGS: No effusion.\n\nIMPRESSION: Normal chest.")  # vocabularies loaded
    return c


def _cpu(checker: RulesChecker, text: str) -> tuple[float, object]:
    t0 = time.process_time()
    res = checker.check(text)
    return time.process_time() - t0, res


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_a_100k_character_report_is_checked_in_under_a_second(checker, name):
    text = ADVERSARIAL[name][:100_000]
    assert 95_000 <= len(text) <= MAX_REPORT_CHARS  # checked whole, not cut at the size limit
    seconds, res = _cpu(checker, text)
    assert seconds < 1.0, f"{name}: {seconds:.2f} s CPU"
    by_rule: dict[str, int] = {}
    for f in res.flags:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    assert max(by_rule.values(), default=0) <= MAX_FLAGS_PER_RULE  # a reviewer gets the first few, and a note
    if any(n == MAX_FLAGS_PER_RULE for n in by_rule.values()):
        assert any("flags; the first" in n for n in res.notes)


def test_longer_input_is_cut_at_the_documented_limit_with_a_note(checker):
    text = "FINDINGS: No effusion. " * (MAX_REPORT_CHARS // 20)
    res = checker.check(text)
    assert any(f"checked the first {MAX_REPORT_CHARS:,}" in n for n in res.notes)


WORDS = ["left", "right", "no", "effusion", "nodule", "5", "mm", "cm", "FINDINGS:", "IMPRESSION:", "COMPARISON:",
         "none.", "unchanged", "new", "Dr.", ".", ",", ":", "\n", "lobe", "upper", "mild", "large", "not", "seen",
         "pneumothorax", "XXXX", "than", "greater", "plural", "x"]
FAST = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FAST
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6), st.integers(1000, 4000))
def test_repeated_tokens_stay_linear(checker, tokens, times):
    text = (" ".join(tokens) + " ") * times
    text = text[:20_000]
    seconds, res = _cpu(checker, text)
    assert seconds < 1.0, f"{seconds:.2f} s CPU on {tokens!r} x {times}"
    for f in res.flags:  # spans stay inside the text and cut it where they say
        assert text[f.start:f.end] == f.text
        for r in f.related:
            assert text[r.start:r.end] == r.text


ALPHABET = "abcdeflmnorstxy .,:;\n\t0123456789-/()LRFIN"


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(5000, 20000), st.booleans())
def test_random_text_stays_linear(checker, seed, size, words):
    """Random characters, or random words of the report vocabulary (hypothesis draws the seed and the size: a large
    text drawn character by character would not shrink)."""
    rng = random.Random(seed)
    text = " ".join(rng.choices(WORDS, k=size // 5)) if words else "".join(rng.choices(ALPHABET, k=size))
    seconds, res = _cpu(checker, text)
    assert seconds < 1.0, f"{seconds:.2f} s CPU on {len(text)} characters (seed {seed})"
    assert 0.0 <= res.score <= 1.0

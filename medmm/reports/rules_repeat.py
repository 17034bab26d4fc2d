"""A phrase said twice in a row inside one sentence: ``phrase_repetition`` (a dictation slip, issue 21 item 4).

"No pneumothorax or focal consolidation no pneumothorax or focal consolidation." is a sentence repeated without its
period, so the sentence rule (``repetition``, ``rules_text.py``: a sentence equal to the one before it) does not see
it, and the word rule (``word_repetition``: one word twice) neither. Here a run of ``phrase_repetition.min_words``
words or more, at least ``phrase_repetition.min_content`` of them content words (four letters or more, not a
de-identification token), followed at once by the same run, is flagged on its second copy. The numbers are the
language pack's (``medmm/configs/reports/language-en.yaml``).

Cost: one pass over a sentence's words to see whether any pair of neighbouring words occurs twice (a repeated run
repeats its pairs); only then are the runs compared, at most ``phrase_repetition.max_words`` words long, so the work
per sentence is bounded by its length times that number.
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports.analysis import Analysis, per_sentence
from medmm.reports.findings_sizes import EXAMPLE_WITH_IMPRESSION as _F
from medmm.reports.flags import Flag
from medmm.reports.language_pack import language_pack
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY, Hit, sentence_flags

_PR = language_pack()["phrase_repetition"]
_MIN_WORDS = int(_PR["min_words"])
_MAX_WORDS = int(_PR["max_words"])
_MIN_CONTENT = int(_PR["min_content"])
_SKIP = frozenset(w.lower() for w in language_pack()["not_stutter"])  # de-identification tokens ("XXXX")
_WORD = re.compile(r"[A-Za-z]+")


@per_sentence
def _repeated_run(sentence: str) -> tuple[Hit, ...]:
    """The first run of words repeated at once in ``sentence``: its second copy."""
    # pre-test on the white-space tokens: a run of _MIN_WORDS >= 3 words repeated at once repeats a pair of neighbouring
    # tokens (only the second copy's last token may carry other punctuation); a pair repeated takes two tokens more
    # than the distinct ones (its two words twice, or one word three times in a row or four times)
    split = sentence.lower().split()
    n = len(split)
    if n < 2 * _MIN_WORDS or (_MIN_WORDS >= 3 and (n - len(set(split)) < 2  # fewer than two repeats: no pair twice
                                                   or len(set(zip(split, split[1:]))) == n - 1)):
        return ()
    toks = list(_WORD.finditer(sentence))
    words = [t.group(0).lower() for t in toks]
    n = len(words)
    if n < 2 * _MIN_WORDS:
        return ()
    pairs = list(zip(words, words[1:]))
    if len(set(pairs)) == len(pairs):
        return ()  # the common case: no two neighbouring words occur twice
    at: dict[tuple[str, str], list[int]] = {}
    for j, pair in enumerate(pairs):
        at.setdefault(pair, []).append(j)
    # a run of k words starting at i, repeated at once, starts with a pair that occurs again k words later
    # (each position looks at most _MAX_WORDS positions ahead: bounded on "word word word ..." too)
    starts = sorted((i, j - i) for ps in at.values() if len(ps) > 1 for x, i in enumerate(ps)
                    for j in ps[x + 1:x + 1 + _MAX_WORDS] if _MIN_WORDS <= j - i <= _MAX_WORDS)
    for i, k in starts:
        if words[i:i + k] != words[i + k:i + 2 * k]:
            continue
        if sum(len(w) >= 4 and w not in _SKIP for w in words[i:i + k]) < _MIN_CONTENT:
            continue
        # only white space between the copies (a comma or "and" between them is a list, not a slip)
        if sentence[toks[i + k - 1].end():toks[i + k].start()].strip():
            continue
        first, second = toks[i], toks[i + k]
        return (Hit(second.start(), toks[i + 2 * k - 1].end(),
                    f"\"{sentence[first.start():toks[i + k - 1].end()]}\" is said twice in a row (a sentence "
                    f"repeated without its period?)", ((first.start(), toks[i + k - 1].end()),)),)
    return ()


@declare(FlagSpec(id="phrase_repetition", type="transcription", family="transcription", reads=BODY,
                  explains="{phrase} is said twice in a row (a sentence repeated without its period?)",
                  example=_F.format("No pneumothorax or focal consolidation no pneumothorax or focal consolidation.",
                                    "Normal."),
                  clean=_F.format("No pneumothorax or focal consolidation. No pleural effusion.", "Normal.")))
def rule_phrase_repetition(a: Analysis, header: Any = None) -> list[Flag]:
    """A run of words said twice in a row inside one sentence."""
    return sentence_flags(a, "phrase_repetition", _repeated_run)


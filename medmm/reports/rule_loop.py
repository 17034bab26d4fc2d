"""The loop most single-statement rules share: read each body sentence, turn what a per-sentence reader found into
flags at the report's offsets.

A rule that judges one sentence at a time (a side and a lobe of the other side in one phrase, two grades on one
finding, "new" in a sentence that calls the finding old) is two parts: a reader of one sentence's text, which returns
:class:`Hit` s at offsets relative to the sentence (cached per sentence text with
:func:`medmm.reports.analysis.per_sentence`, since reports repeat their sentences), and :func:`sentence_flags`,
which runs it over the sentences of the sections the rule reads and makes the flags. The flag id is an argument
here, not a literal of the rule's code: the ids a rule raises are the ones it declares to the registry
(:func:`medmm.reports.registry.declare`), and ``tests/reports/test_registry.py`` checks every rule's output
against its declaration.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

from medmm.reports.analysis import Analysis
from medmm.reports.flags import Flag, make_flag

__all__ = ["BODY", "Hit", "sentence_flags"]

BODY = ("findings", "impression")  # the sections most rules read


class Hit(NamedTuple):
    """What a sentence reader found: ``sentence[start:end]`` is the flag's span, ``says`` its explanation,
    ``related`` the other statements of the conflict (offsets relative to the sentence too)."""

    start: int
    end: int
    says: str
    related: tuple[tuple[int, int], ...] = ()


def sentence_flags(a: Analysis, flag_id: str, read: Callable[[str], Sequence[Hit]],
                   sections: tuple[str, ...] = BODY) -> list[Flag]:
    """Flags of ``flag_id``: ``read(sentence text)`` for every sentence of ``sections``, its hits moved to the
    report's offsets, in text order."""
    flags: list[Flag] = []
    key = ("sentences of", sections)  # a dozen rules read the same sections' sentences: chosen once per analysis
    chosen = a.cache.get(key)
    if chosen is None:
        chosen = a.cache[key] = [s for s in a.sentences if s.section in sections]
    for sent in chosen:
        hits = read(sent.text)
        if not hits:
            continue
        off = sent.start
        for h in hits:
            flags.append(make_flag(flag_id, a.text, off + h.start, off + h.end, h.says,
                                   related=[(off + s, off + e) for s, e in h.related]))
    return flags

"""Which rules can flag a report at all, told from its words before any rule runs.

Most rules flag almost no report (on the IU dev reports, 54 of 2,864 raise any flag), and most of them begin with a
pre-test on the report's text: "left" and "right" both named, a lobectomy named, a size unit, a no-change cue. Each
such pre-test is a call, an attribute look-up or two and a handful of substring searches of the whole text — per
rule, per report. A rule's *gate* (declared with the rule: :func:`medmm.reports.registry.declare`) is that pre-test
as data: groups of strings, one of each must stand in the lower-cased text. :class:`RuleGates` tests the gates of
all rules at once:

* a string of letters stands in the lower-cased text exactly when it stands inside one of the text's runs of letters
  a-z (the words of :meth:`Analysis.word_list`), so each distinct word is decided once: which gate groups and word
  tests it satisfies (computed the first time a process meets it, like the vocabulary tables of the non-word and
  real-word rules: a process meets a few thousand distinct words);
* a gate string holding other characters (" or ", "x-ray") is reduced to its longest run of letters: a weaker
  condition, still a necessary one;
* the report's satisfied groups are the union over its distinct words (a C-level reduction over a set): one integer,
  and a rule runs when it holds all of its groups' bits.

Only ASCII text is gated: lower-casing other text can move or merge letters, so there every rule runs and decides
for itself. A gate that is wrong would silently drop flags, so the gates are tested: ``tests/reports/test_rule_gate.py``
runs every gated rule wherever its gate fails (declared examples, made-up texts, the real dev reports) and asserts
no flag there, and compares the gated checker with the checker that calls every rule.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from medmm.reports.analysis import Analysis
from medmm.reports.registry import Gate

__all__ = ["FACTS", "RuleGates"]

_LETTERS = re.compile(r"[a-z]+")
_MAX_WORDS = 200_000  # the word table's bound (adversarial input of endless distinct words: computed, not kept)


def _letter_key(key: str) -> str | None:
    """The longest run of letters a-z of a lower-cased gate string (None: it holds none, so it tells nothing)."""
    runs = _LETTERS.findall(key.lower())
    return max(runs, key=len) if runs else None


def _group_keys(group: Sequence[str]) -> list[str] | None:
    """The letter keys of one group of gate strings (:func:`_letter_key` of each), or None when the group tells
    nothing about the words: it is empty, or one of its strings holds no letter."""
    keys = [_letter_key(k) for k in group]
    return None if not keys or None in keys else keys  # type: ignore[return-value]


def _positive_finding(a: Analysis) -> bool:
    """A finding stated present (not denied, not a pseudo-negation) in the findings or the impression."""
    return any(m.positive for m in a.mentions_in("findings")) or any(m.positive for m in a.mentions_in("impression"))


def _positive_impression(a: Analysis) -> bool:
    """A finding stated present in the impression, and the findings name a finding (the impression-vs-findings
    comparisons need both)."""
    return bool(a.mentions_in("findings")) and any(m.positive for m in a.mentions_in("impression"))


# Facts of a report's finding mentions that rules may need (``registry.declare(needs=...)``): each is a necessary
# condition of any flag of the rules that name it, decided once per report (by the checker's rule loop).
FACTS = {"positive finding": _positive_finding, "positive impression": _positive_impression}


class _WordBits:
    """The words met so far: those that satisfy no gate group or word test (most), and the few that do, with their
    bits. A report's words minus the first kind (one set difference in C) are the words to look up or, met for the
    first time, to compute. Bounded: past :data:`_MAX_WORDS` words, new words are computed for the report at hand and
    not kept."""

    def __init__(self, keys: Sequence[tuple[str, int]], tests: Sequence[tuple[Callable[[str, Any], bool], int]],
                 lm: Any) -> None:
        self.keys = tuple(keys)
        self.tests = tuple(tests)
        self.lm = lm
        self.plain: set[str] = set()  # words met that satisfy nothing (most of them)
        self.hits: dict[str, int] = {}  # word -> its bits (non-zero)

    def word_bits(self, word: str) -> int:
        bits = 0
        for key, bit in self.keys:
            if key in word:
                bits |= bit
        for test, bit in self.tests:
            if test(word, self.lm):
                bits |= bit
        return bits

    def bits(self, words: set[str]) -> int:
        # one C-level set difference leaves the report's words that satisfy something and the words met for the first
        # time: a handful, looked up or computed here
        out = 0
        hits = self.hits
        for w in words - self.plain:
            b = hits.get(w)
            if b is None:
                b = self.word_bits(w)
                if len(self.plain) + len(hits) < _MAX_WORDS:
                    if b:
                        hits[w] = b
                    else:
                        self.plain.add(w)
            out |= b
        return out


class RuleGates:
    """The gates of a sequence of rules (one :class:`~medmm.reports.registry.Gate` per rule, in order): :meth:`bits`
    of a report, then :attr:`need` ``[i]`` says which bits rule ``i`` needs (0: none, it always runs) and
    :attr:`unless` ``[i]`` the bit whose presence lets it run without the fact it needs (0: none; None: the fact never
    skips it). ``lm``: the plausibility model the word tests are given."""

    def __init__(self, gates: Sequence[Gate], lm: Any = None) -> None:
        key_bits: dict[str, int] = {}
        tests: list[tuple[Callable[[str, Any], bool], int]] = []
        need: list[int] = []
        unless_bits: list[int | None] = []
        bit = 1
        for gate in gates:  # strings that let a rule run without its fact: one bit each rule that has them
            if gate.needs_unless is None:
                unless_bits.append(0)
                continue
            keys = _group_keys(gate.needs_unless)
            if keys is None:
                unless_bits.append(None)  # a string without letters: the words cannot tell, the fact never skips
                continue
            for k in keys:
                key_bits[k] = key_bits.get(k, 0) | bit
            unless_bits.append(bit)
            bit <<= 1
        self.unless: tuple[int | None, ...] = tuple(unless_bits)
        for gate in gates:
            mask = 0
            for group in gate.words:
                keys = _group_keys(group)
                if keys is None:
                    continue  # an empty group, or a string without letters: no condition on the words
                for k in keys:
                    key_bits[k] = key_bits.get(k, 0) | bit
                mask |= bit
                bit <<= 1
            if gate.word_test is not None:
                tests.append((gate.word_test, bit))
                mask |= bit
                bit <<= 1
            need.append(mask)
        self.need: tuple[int, ...] = tuple(need)
        self._words = _WordBits(sorted(key_bits.items()), tests, lm)
        self.active = bool(key_bits) or bool(tests)

    def bits(self, a: Analysis) -> int:
        """The gate groups the report satisfies (-1, all of them, for a text that is not ASCII)."""
        if not self.active or not a.text.isascii():
            return -1
        return self._words.bits(a.word_set())

"""Rules for an error stated once, read inside one phrase: two words of the same phrase that cannot both be right.

* ``side_phrase``: a lobe of one side in a phrase that names the other side for the same finding ("opacity at the
  left base, within the right lower lobe"; "right effusion with associated left lower lobe atelectasis");
* ``lobe_zone``: a lobe of one level in a phrase that names a zone of the other ("left apical opacity in the left
  lower lobe") — not the segment names ("apical segment of the lower lobe" is the superior segment);
* ``severity_clash``: two grades two or more steps apart on one finding ("trace moderate effusion", "mild massive
  cardiomegaly"), not a range ("small to moderate");
* ``severity_measure``: a low grade on a measurement too large for it ("tiny 3 cm mass", "small 8 cm effusion");
  the high grade on a small size is ``severity_size`` (``rules_mention.py``);

The words are data: the language pack's ``phrase`` (what breaks a phrase), ``zones``, ``zone_exceptions`` and
``grade_sizes`` (``medmm/configs/reports/language-en.yaml``; a site
extends them with ``MEDMM_REPORT_LANGUAGE``). Every pattern is bounded (a phrase is at most ``phrase.max_words``
words; a sentence at most ``sections.MAX_SENTENCE_CHARS`` characters).
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports import lexicon as lx
from medmm.reports.analysis import Analysis, _for_lower_case, per_sentence
from medmm.reports.findings_sizes import EXAMPLE_WITH_IMPRESSION as _F
from medmm.reports.findings_sizes import lower_search, plain_ascii, report_has_size
from medmm.reports.flags import Flag
from medmm.reports.language_pack import lacks, language_pack, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY, Hit, sentence_flags

_PACK = language_pack()


_CHARS = [b for b in _PACK["phrase"]["breaks"] if b.startswith("[")]
_WORDS = [b for b in _PACK["phrase"]["breaks"] if not b.startswith("[")]
_BREAK = re.compile(r"\b(?:" + longest_first(_WORDS) + r")\b" + ("|" + "|".join(_CHARS) if _CHARS else ""), re.I)
_MAX_WORDS = int(_PACK["phrase"]["max_words"])
_SIDE = re.compile(r"\b(" + longest_first(list(lx.SIDES)) + r")\b", re.I)  # the two sides (lexicon)
_SIDED_LOBE = re.compile(_PACK["phrase"]["sided_lobe"], re.I)
_SIDED_LOBE_KEYS = substring_keys([_PACK["phrase"]["sided_lobe"]])


# ", within the" goes on with the phrase it follows ("opacity at the left base, within the right lower lobe")
_APPOSITIVE = re.compile(r",\s*(?=(?:" + longest_first(_PACK["phrase"]["appositive"]) + r")\b)", re.I)


def _one_phrase(text: str) -> bool:
    """Is ``text`` (the words between two statements) the inside of one phrase: short and unbroken?"""
    if "," in text:
        text = _APPOSITIVE.sub(" ", text)
    return len(text.split()) <= _MAX_WORDS and not _BREAK.search(text)


@per_sentence
def _side_clash(sentence: str) -> tuple[Hit, ...]:
    """The first lobe whose phrase names the other side: the lobe's side word, the other side word related."""
    if sentence.isascii():  # both side words must stand in the sentence (the report's pre-test, for one sentence)
        low = sentence.lower()
        if sum(side in low for side in lx.SIDES) < 2:
            return ()
    sides = list(_SIDE.finditer(sentence))
    if len({m.group(1).lower() for m in sides}) < 2:
        return ()
    for lobe in _SIDED_LOBE.finditer(sentence):
        side_at = lobe.start(1) if lobe.group(1) else lobe.start(2)
        side = (lobe.group(1) or lobe.group(2)).lower()
        for other in sides:
            if other.start() == side_at or other.group(1).lower() == side:
                continue
            a, b = (other.end(), side_at) if other.start() < side_at else (lobe.end(), other.start())
            if _one_phrase(sentence[a:b]) and not _SIDE.search(sentence, a, b):
                return (Hit(side_at, side_at + len(side), f"the {side} lobe in a phrase about the "
                            f"{other.group(1).lower()} side: \"{sentence.strip()}\"", ((other.start(), other.end()),)),)
    return ()


@declare(FlagSpec(id="side_phrase", type="laterality", family="single", reads=BODY,
                  explains="the {side} {lobe} in a phrase about the {other side}: {phrase}",
                  example=_F.format("Faint patchy density at the left base which seems to lie in the right lower "
                                    "lobe.", "Possible pneumonia."),
                  clean=_F.format("Faint patchy density at the left base which seems to lie in the left lower "
                                  "lobe.", "Possible pneumonia.")),
         gate=(lx.SIDES if len(lx.SIDES) != 2 else lx.SIDES[:1], None if len(lx.SIDES) != 2 else lx.SIDES[1:], _SIDED_LOBE_KEYS))
def rule_side_phrase(a: Analysis, header: Any = None) -> list[Flag]:
    """A lobe of one side in a phrase that names the other side (one finding, two sides)."""
    low = a.lower_text()
    if sum(side in low for side in lx.SIDES) < 2 or lacks(low, _SIDED_LOBE_KEYS):
        return []  # both sides and a sided lobe must be named somewhere in the text
    return sentence_flags(a, "side_phrase", _side_clash)


_ZONES: dict[str, str] = {k.lower(): v for k, v in _PACK["zones"].items()}
_ZONE = re.compile(r"\b(" + longest_first(list(_ZONES)) + r")\b", re.I)
_ZONE_EXCEPTION = re.compile(r"\b(?:" + longest_first(_PACK["zone_exceptions"]) + r")\b", re.I)
_ZONE_LOWER = _for_lower_case(_ZONE)
_ZONE_KEYS = substring_keys(list(_ZONES))  # one is in every match of _ZONE (None: no pre-test)
_ZONE_WORDS = frozenset(_ZONES) if all(len(z) >= 4 and " " not in z for z in _ZONES) else frozenset()
_LEVEL_LOBE = re.compile(_PACK["phrase"]["level_lobe"], re.I)
_LEVEL_LOBE_KEYS = substring_keys([_PACK["phrase"]["level_lobe"]])
# words about sides ("both", "bilateral") do not break a phrase about levels ("bibasilar opacities in both upper lobes")
_SIDE_ONLY = set(_PACK["phrase"]["side_words"])
_BREAK_LEVEL = re.compile(r"\b(?:" + longest_first([w for w in _WORDS if w not in _SIDE_ONLY]) + r")\b"
                          + ("|" + "|".join(_CHARS) if _CHARS else ""), re.I)


@per_sentence
def _zone_clash(sentence: str) -> tuple[Hit, ...]:
    """The first lobe of one level whose phrase names a zone of the other: the lobe's level word, the zone related."""
    if sentence.isascii():  # a lobe of a level and a zone must stand in the sentence: substring tests first
        low = sentence.lower()
        if lacks(low, _LEVEL_LOBE_KEYS) or lacks(low, _ZONE_KEYS):
            return ()
    if _ZONE_EXCEPTION.search(sentence):
        return ()
    for lobe in _LEVEL_LOBE.finditer(sentence):
        for zone in _ZONE.finditer(sentence):
            if _ZONES[zone.group(1).lower()] == lobe.group(1).lower():
                continue
            a, b = sorted((zone.end(), lobe.start()))
            if zone.start() > lobe.start():
                a, b = lobe.end(), zone.start()
            between = sentence[a:b]
            if len(between.split()) <= _MAX_WORDS and not _BREAK_LEVEL.search(between):
                return (Hit(lobe.start(1), lobe.end(1), f"the {lobe.group(0).lower()} in a phrase that names the "
                            f"{zone.group(1).lower()}: \"{sentence.strip()}\"", ((zone.start(), zone.end()),)),)
    return ()


@declare(FlagSpec(id="lobe_zone", type="location", family="single", reads=BODY,
                  explains="the {lobe} in a phrase that names the {zone}: {phrase}",
                  example=_F.format("Left apical opacity in the left lower lobe.", "Pneumonia."),
                  clean=_F.format("Left apical opacity in the left upper lobe.", "Pneumonia.")),
         gate=(_LEVEL_LOBE_KEYS, _ZONE_WORDS or None))
def rule_lobe_zone(a: Analysis, header: Any = None) -> list[Flag]:
    """A lobe of one level (upper, lower) in a phrase that names a zone of the other (apex, base)."""
    low = a.lower_text()
    if lacks(low, _LEVEL_LOBE_KEYS):
        return []
    if a.text.isascii() and _ZONE_WORDS and _ZONE_WORDS.isdisjoint(a.lower_words()[1]):
        return []  # no zone word among the report's words (all zone words are 4+ letters)
    if not (_ZONE_LOWER if plain_ascii(a.text) else _ZONE).search(low):  # (lower-cased text: the same matches)
        return []
    return sentence_flags(a, "lobe_zone", _zone_clash)


_RANK = {w: r for w, r in lx.SEVERITY_RANK.items() if not w.endswith("ly")}  # adjectives (adverbs grade adjectives)
_FIRSTS = "".join(sorted({w[0].lower() for w in _RANK} | {w[0].upper() for w in _RANK}))
_GRADE = re.compile(r"\b(?=[" + re.escape(_FIRSTS) + r"])(" + longest_first(list(_RANK)) + r")\b"  # lookahead: speed
                    r"(?!" + _PACK["findings_rules"]["grade_in_name"] + ")", re.I)  # not "small bowel", "small vessel"
# the grade words a pre-test looks up in the report's set of words of four letters or more (shorter ones: no pre-test)
_RANK_KEYS = substring_keys(list(_RANK))  # one is in every match of _GRADE (None: no pre-test)
_RANK_WORDS = frozenset(_RANK) if all(len(w) >= 4 for w in _RANK) else frozenset()
# two grades two or more steps apart: one of the lower ranks and one of the higher (the rule's gate, two groups)
_LOW_GRADE_KEYS = substring_keys([w for w, r in _RANK.items() if r <= max(_RANK.values(), default=0) - 2]) or None
_HIGH_GRADE_KEYS = substring_keys([w for w, r in _RANK.items() if r >= min(_RANK.values(), default=0) + 2]) or None
_FINDING_NOUN = re.compile(r"\b(?:" + "|".join(p for _, pats in lx.FINDINGS.values() for p in pats) + r")\b", re.I)


@per_sentence
def _grade_clash(sentence: str) -> tuple[Hit, ...]:
    """The first two grades two or more steps apart on one finding: the second, the first related."""
    if sentence.isascii() and lacks(sentence.lower(), _RANK_KEYS):
        return ()  # no grade word (substring tests before the search)
    grades = list(_GRADE.finditer(sentence))
    for g1, g2 in zip(grades, grades[1:]):
        between = sentence[g1.end(): g2.start()]
        if len(between.split()) > 1 or _BREAK.search(between) or re.search(r"-|\bto\b|\bor\b", between, re.I) \
                or _FINDING_NOUN.search(between):
            continue
        r1, r2 = _RANK[g1.group(1).lower()], _RANK[g2.group(1).lower()]
        if abs(r1 - r2) >= 2:
            return (Hit(g2.start(), g2.end(), f"\"{g1.group(1)}\" and \"{g2.group(1)}\" on one finding: "
                        f"\"{sentence.strip()}\"", ((g1.start(), g1.end()),)),)
    return ()


@declare(FlagSpec(id="severity_clash", type="severity", family="single", reads=BODY,
                  explains="{grade} and {other grade} on one finding: {phrase}",
                  example=_F.format("Trace moderate left pleural effusion.", "Effusion."),
                  clean=_F.format("Small to moderate left pleural effusion.", "Effusion.")),
         gate=(_LOW_GRADE_KEYS, _HIGH_GRADE_KEYS))
def rule_severity_clash(a: Analysis, header: Any = None) -> list[Flag]:
    """Two grades at least two steps apart on one finding (one of them left over from an edit)."""
    if a.text.isascii() and _RANK_WORDS:  # two grade words two steps apart must both be words of the report (all are 4+ letters)
        ranks = [_RANK[w] for w in _RANK_WORDS.intersection(a.lower_words()[1])]
        if not ranks or max(ranks) - min(ranks) < 2:
            return []  # the common case, decided on the report's set of words
    elif len(_GRADE.findall(a.lower_text())) < 2:
        return []
    return sentence_flags(a, "severity_clash", _grade_clash)


_AT_LEAST: dict[str, float] = {k.lower(): float(v) for k, v in _PACK["grade_sizes"]["at_least"].items()}
# the grade, up to three words (not a conjunction: "small effusion and a 6 cm mass" is two findings), the size
_LOW_SIZE = re.compile(r"\b(" + longest_first(list(_AT_LEAST)) + r")(?!" + _PACK["findings_rules"]["grade_in_name"] + r")"
                       r"\s+(?:(?!and\b|or\b|with\b|but\b)[a-z]+\s+){0,3}?(\d+(?:\.\d+)?)\s*(mm|cm)\b", re.I)
_LOW_SIZE_SEARCH = lower_search(_LOW_SIZE)  # the same spans, on the lower-cased plain ASCII text
# "small right kidney 7.5 cm": a low grade of the organ's own size (the pack's findings_rules graded_organs)
_ORGAN_GRADED = re.compile(r"\s+(?:[a-z-]+\s+){0,2}?(?:" + _PACK["findings_rules"]["graded_organs"] + r")\b", re.I)


@per_sentence
def _low_grade_large_size(sentence: str) -> tuple[Hit, ...]:
    """Each low grade followed by a measurement at or over the grade's limit."""
    hits = []
    for m in _LOW_SIZE.finditer(sentence):
        mm = float(m.group(2)) * (10.0 if m.group(3).lower() == "cm" else 1.0)
        limit = _AT_LEAST[m.group(1).lower()]
        if mm >= limit and not _ORGAN_GRADED.match(sentence, m.end(1), m.start(2)):
            hits.append(Hit(m.start(), m.end(), f"\"{m.group(1)}\" but it measures {m.group(2)} {m.group(3)} (a "
                                                f"{m.group(1).lower()} one is under {limit:g} mm)"))
    return tuple(hits)


@declare(FlagSpec(id="severity_measure", type="severity", family="single", reads=BODY,
                  explains="{grade} but it measures {size} (a {grade} one is under {limit} mm)",
                  example=_F.format("Tiny 4 cm right upper lobe mass.", "Mass."),
                  clean=_F.format("Tiny 4 mm right upper lobe nodule.", "Nodule.")),
         gate=(("cm", "mm"),))
def rule_severity_measure(a: Analysis, header: Any = None) -> list[Flag]:
    """A low grade (tiny, trace, small) on a finding whose own measurement is too large for it."""
    low = a.lower_text()
    if "cm" not in low and "mm" not in low:
        return []
    # a match holds a digit before its unit: the cached size test (rules_findings asks it too) before the regex
    if not report_has_size(a) or not _LOW_SIZE_SEARCH(a.text):
        return []
    return sentence_flags(a, "severity_measure", _low_grade_large_size)

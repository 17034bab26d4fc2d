"""A side that anatomy, or the sentence next to it, says is wrong: errors stated once (issue 21 item 4).

* ``nonexistent_fissure``: a structure of one side named with the other side ("left horizontal fissure": the
  horizontal (minor) fissure is right-sided only);
* ``side_angle``: a sided costophrenic angle and a lung place of the other side in one sentence, read as the place of
  one finding ("blunting of the left costophrenic angle ... pleural thickening at the right lung base"; "right
  costophrenic sulcus ... a small left effusion"), with no word between them that makes two findings
  ("and right basilar atelectasis", "greater than", "bilateral");
* ``side_next_sentence``: a sentence about one side followed by one that goes on about the same finding ("This
  ...", "These ...") and places it on the other side, a lobe named in one of the two ("streaky opacities at the right base.
  These are probably within the lingula."; "Opacity in the lingula. This obscures the right heart border.");
  not when the next sentence says it is about another place ("also", "other", the pack's ``next_breaks``).

The words are data: the language pack's ``sided_anatomy`` (``medmm/configs/reports/language-en.yaml``; a site extends
it with ``MEDMM_REPORT_LANGUAGE``). Every pattern is bounded (a side word and a fixed phrase; the words between two
places are at most ``sided_anatomy.max_words`` and a sentence at most ``sections.MAX_SENTENCE_CHARS`` characters),
and each rule runs only when a substring pre-test on the whole report passes.
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports.analysis import Analysis, per_sentence
from medmm.reports.findings_sizes import EXAMPLE_WITH_IMPRESSION as _F
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import lacks, language_pack, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY, Hit, sentence_flags

_SA = language_pack()["sided_anatomy"]
_OTHER = {"left": "right", "right": "left"}


# ------------------------------------------------------------------ nonexistent_fissure
_ONE_SIDED = [(re.compile(r"\b(left|right)" + _SA["between"] + r"(?:" + o["pattern"] + r")\b", re.I), o["side"])
              for o in _SA["one_sided"]]
_ONE_SIDED_KEYS = substring_keys([o["pattern"] for o in _SA["one_sided"]])
MIRRORED = re.compile(_SA["mirrored"], re.I)  # situs inversus, heterotaxy: the sides of one-sided anatomy swap
_MIRRORED_KEYS = substring_keys([_SA["mirrored"]])


@declare(FlagSpec(id="nonexistent_fissure", type="laterality", family="single", reads=BODY,
                  explains="the {side} lung has no {structure}: it is on the {other side}",
                  example=_F.format("Thickening of the left horizontal fissure.", "No acute disease."),
                  clean=_F.format("Thickening of the right horizontal fissure.", "No acute disease.")),
         gate=(_ONE_SIDED_KEYS, ("left", "right")))
def rule_nonexistent_fissure(a: Analysis, header: Any = None) -> list[Flag]:
    """A structure of one side only (the language pack's ``sided_anatomy.one_sided``) named with the other side."""
    low = a.lower_text()
    if lacks(low, _ONE_SIDED_KEYS) or ("left" not in low and "right" not in low):
        return []
    if not lacks(low, _MIRRORED_KEYS) and MIRRORED.search(low):
        return []  # "situs inversus ... a left-sided minor fissure": the mirrored anatomy itself
    flags: list[Flag] = []
    for sent in a.sentences:
        if sent.section not in BODY:
            continue
        for pat, side in _ONE_SIDED:
            for m in pat.finditer(a.text, sent.start, sent.end):
                said = m.group(1).lower()
                if said != side:
                    flags.append(make_flag("nonexistent_fissure", a.text, m.start(), m.end(),
                                           f"the {said} lung has no {m.group(0)[m.end(1) - m.start():].strip()}: it "
                                           f"is on the {side}"))
    return flags


# ------------------------------------------------------------------ side_angle
_SIDE = re.compile(r"\b(left|right)\b", re.I)
_ANCHOR = re.compile(r"\b(left|right)" + _SA["between"] + r"(?:" + _SA["anchor"] + r")\b", re.I)
_ANCHOR_KEYS = substring_keys([_SA["anchor"]])
_PLACE = re.compile(r"\b(left|right)" + _SA["between"] + r"(?:" + longest_first(_SA["places"]) + r")\b", re.I)
_MAX_WORDS = int(_SA["max_words"])
_BREAKS = [b for b in _SA["breaks"] if not b.startswith("[")]
_BREAK = re.compile(r"\b(?:" + longest_first(_BREAKS) + r")\b"
                    + "".join("|" + b for b in _SA["breaks"] if b.startswith("[")), re.I)
_JOINS = [j for j in _SA["joins"] if not j.startswith("[")]
_JOIN_END = re.compile(r"(?:\b(?:" + longest_first(_JOINS) + r")\b" + "".join("|" + j for j in _SA["joins"] if j.startswith("["))
                       + r")\s*(?:(?:a|an|the|some|small|mild|minimal|trace|moderate|large|focal|patchy|subtle)\s+){0,2}$",
                       re.I)
_JOIN_START = re.compile(r"^\s*(?:\S+\s+){0,3}?(?:\b(?:" + longest_first(_JOINS) + r")\b"
                         + "".join("|" + j for j in _SA["joins"] if j.startswith("[")) + r")", re.I)


def _one_finding(between: str) -> bool:
    """Are the words between two sided places the inside of one finding's description (no second finding joined,
    no contrast, no other side)?"""
    if len(between.split()) > _MAX_WORDS or _BREAK.search(between) or _SIDE.search(between):
        return False
    return not _JOIN_END.search(between)


@per_sentence
def _angle_clash(sentence: str) -> tuple[Hit, ...]:
    """The first sided costophrenic angle whose sentence places the same finding on the other side."""
    for anchor in _ANCHOR.finditer(sentence):
        side = anchor.group(1).lower()
        for place in _PLACE.finditer(sentence):
            if place.group(1).lower() != _OTHER[side] or place.start() == anchor.start():
                continue
            a, b = (anchor.end(), place.start()) if place.start() > anchor.start() else (place.end(), anchor.start())
            between = sentence[a:b]
            # the anchor's own noun ("angle", "sulcus", "XXXX") may follow it: a join right after it starts a new finding
            if _one_finding(between) and not (place.start() > anchor.start() and _JOIN_START.match(between)
                                               and len(between.split()) <= 2):
                return (Hit(anchor.start(1), anchor.end(1), f"the {side} costophrenic angle and the "
                            f"{place.group(0).lower()} in one finding: \"{sentence.strip()}\"",
                            ((place.start(1), place.end(1)),)),)
    return ()


@declare(FlagSpec(id="side_angle", type="laterality", family="single", reads=BODY,
                  explains="the {side} costophrenic angle and the {other side place} in one finding: {sentence}",
                  example=_F.format("Blunting of the left costophrenic angle may reflect pleural thickening at the "
                                    "right lung base.", "Pleural thickening."),
                  clean=_F.format("Blunting of the left costophrenic angle and right lower lobe atelectasis.",
                                  "Atelectasis.")),
         gate=(_ANCHOR_KEYS, ("left",), ("right",)))
def rule_side_angle(a: Analysis, header: Any = None) -> list[Flag]:
    """A sided costophrenic angle and a lung place of the other side as the place of one finding."""
    low = a.lower_text()
    if lacks(low, _ANCHOR_KEYS) or "left" not in low or "right" not in low:
        return []
    return sentence_flags(a, "side_angle", _angle_clash)


# ------------------------------------------------------------------ side_next_sentence
_ANAPHOR = re.compile(_SA["anaphor"], re.I)
_SIDED_LOBE = re.compile(r"\b(left|right)\s+(?:upper|middle|lower)\s+lob(?:e|ar)\b", re.I)
_UNSIDED = [(re.compile(r"\b(?:" + u["pattern"] + r")\b", re.I), u["side"]) for u in _SA["unsided_lobes"]]
_BOTH = re.compile(r"\b(?:bilateral\w*|both|bibasilar|bibasal|biapical|bihilar)\b", re.I)
_NEXT_BREAK = re.compile(r"\b(?:" + longest_first(_SA["next_breaks"]) + r")\b", re.I)  # another finding, not this one


def _sides(sentence: str) -> tuple[dict[str, tuple[int, int]], bool]:
    """The sides ``sentence`` names (side words, and lobes of one side named without one: the lingula, the middle lobe),
    each with the span of its last naming, and whether it names a lobe."""
    found: dict[str, tuple[int, int]] = {}
    spots = [(m.group(1).lower(), m.start(), m.end()) for m in _SIDE.finditer(sentence)]
    for pat, side in _UNSIDED:
        spots += [(side, m.start(), m.end()) for m in pat.finditer(sentence)]
    for side, st, en in sorted(spots, key=lambda x: x[1]):
        found[side] = (st, en)
    return found, bool(_SIDED_LOBE.search(sentence)) or any(pat.search(sentence) for pat, _ in _UNSIDED)


@declare(FlagSpec(id="side_next_sentence", type="laterality", family="single", reads=BODY,
                  explains="{side} in this sentence, but the next one, about the same finding, places it on the "
                           "{other side}: {its words}",
                  example=_F.format("Streaky opacities are seen at the right base. These are probably within "
                                    "the lingula.", "Atelectasis."),
                  clean=_F.format("Streaky opacities are seen at the left base. These are probably within the "
                                  "lingula.", "Atelectasis.")),
         gate=(("lob", "lingul"), ("left", "right")))
def rule_side_next_sentence(a: Analysis, header: Any = None) -> list[Flag]:
    """A sentence about one side, and the next sentence (which goes on about its finding) on the other, a lobe named
    in one of them (the lingula and an unsided middle lobe name their side)."""
    low = a.lower_text()
    if "lob" not in low and "lingul" not in low:
        return []
    if "left" not in low and "right" not in low:
        return []
    flags: list[Flag] = []
    sents = a.sentences
    for first, nxt in zip(sents, sents[1:]):
        if nxt.section != first.section or nxt.label != first.label or first.section not in BODY \
                or not _ANAPHOR.match(nxt.text):
            continue
        if _BOTH.search(first.text) or _BOTH.search(nxt.text) or _NEXT_BREAK.search(nxt.text):
            continue
        one, lobe1 = _sides(first.text)
        two, lobe2 = _sides(nxt.text)
        if len(one) != 1 or len(two) != 1 or one.keys() == two.keys() or not (lobe1 or lobe2):
            continue
        (side, (s1, e1)), (other, (s2, e2)) = next(iter(one.items())), next(iter(two.items()))
        flags.append(make_flag("side_next_sentence", a.text, first.start + s1, first.start + e1,
                               f"\"{first.text[s1:e1]}\" here (the {side} side), but the next sentence places the "
                               f"finding on the {other}: \"{nxt.text[s2:e2]}\"",
                               related=[(nxt.start + s2, nxt.start + e2)]))
    return flags


# ------------------------------------------------------------------ nonexistent_level
_COUNTED = [(re.compile(c["pattern"]), int(c["most"]), str(c["says"])) for c in language_pack()["counted_anatomy"]]
# a number past the smallest limit has two digits, or is one digit above that limit: a report with neither has none
_LEAST = min((most for _, most, _ in _COUNTED), default=99)
# (led by a digit class, which the regex engine scans for fast; an alternation at the start would try each branch)
_TWO_DIGITS = re.compile(r"\d(?:\d" + (f"|(?<=[{_LEAST + 1}-9])" if _LEAST < 9 else "") + ")")
# On ASCII text a match of _TWO_DIGITS is a digit above _LEAST or two digits in a row: the bytes with each digit up to
# _LEAST made "0" and each above it "9" hold a match exactly when they hold b"9" or b"00"
_DIGIT_CLASSES = bytes(48 if 48 <= c <= 48 + _LEAST else 57 if 48 <= c <= 57 else c for c in range(256))


def _no_number(text: str) -> bool:
    r"""Whether ``text`` has no match of ``_TWO_DIGITS`` (the pre-test of :func:`rule_nonexistent_level`): on ASCII
    text two substring tests on its bytes with the digits classed (:data:`_DIGIT_CLASSES`: one C pass, no regex;
    1,522 of the 2,864 IU dev reports have no digit, 2,645 no match); other text is searched as written (a Unicode
    digit is a ``\d`` too)."""
    if text.isascii():
        classed = text.encode("ascii").translate(_DIGIT_CLASSES)
        return b"9" not in classed and b"00" not in classed
    return _TWO_DIGITS.search(text) is None


_BEFORE, _AFTER = 12, 80  # characters around a number where a pattern naming it starts and ends ("rib 14", "14th ... ribs")


@declare(FlagSpec(id="nonexistent_level", type="location", family="single", reads=BODY,
                  explains="there is no {number} {structure} (at most {most}): a digit wrong?",
                  example=_F.format("Healed fracture of the left posterior 19th rib.", "Old rib fracture."),
                  clean=_F.format("Healed fracture of the left posterior 9th rib.", "Old rib fracture.")))
def rule_nonexistent_level(a: Analysis, header: Any = None) -> list[Flag]:
    """A numbered structure past the last one a body has (the language pack's ``counted_anatomy``)."""
    if _no_number(a.text):  # most reports (2,645 of the 2,864 of IU dev): no such number in any section
        return []
    body = [sec for sec in a.sections if sec.name in BODY]
    flags: list[Flag] = []
    seen: set[int] = set()
    for d in (d for sec in body for d in _TWO_DIGITS.finditer(a.text, sec.start, sec.end)):
        if d.start() in seen:  # few per report: each pattern is tried in a window around the number only
            continue
        lo, hi = max(0, d.start() - _BEFORE), min(len(a.text), d.end() + _AFTER)
        for pat, most, says in _COUNTED:
            for m in pat.finditer(a.text, lo, hi):
                if m.start(1) <= d.start() < m.end(1) and int(m.group(1)) > most and m.start(1) not in seen:
                    seen.add(m.start(1))
                    flags.append(make_flag("nonexistent_level", a.text, m.start(1), m.end(1),
                                           f"there is no {says} number {m.group(1)} (at most {most}): a digit wrong?"))
    return flags

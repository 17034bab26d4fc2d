"""Rules for an error stated once: a sentence that contradicts itself, or the report's own summary of the comparison.

Nothing else in the report repeats the edited statement, so no section comparison can see it; what a reader sees
is that the statement does not fit the words around it:

* ``interval_clash``: a finding called "new" in the same sentence that calls it old, chronic, persistent or
  normal ("... again seen but new", "degenerative changes are new", "normal in size and contour, and new", "are new
  and similar", "New ... nodule, unchanged."); across two sentences it is ``interval_new_unchanged``'s;
* ``interval_global``: a finding called new, larger or smaller in a report whose impression (or findings) says
  that nothing changed since the prior ("No interval change."); the flag shows both sentences;
* a side and a lobe of the other side in one phrase: ``side_phrase`` (``rules_phrase.py``);
* ``severity_size``: a grade that its own measurement contradicts ("large 3 mm nodule");
* ``dropped_negation``: a sentence that states an acute abnormality without naming it ("Acute cardiopulmonary
  abnormality."): the normal statement with its "No" lost.

Every pattern is bounded (a sentence is at most ``sections.MAX_SENTENCE_CHARS`` characters).
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from medmm.reports.analysis import Analysis, per_sentence
from medmm.reports.findings_sizes import EXAMPLE_WITH_IMPRESSION as _F
from medmm.reports.findings_sizes import lower_search
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import first_characters, lacks, language_pack, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY, Hit, sentence_flags

_RP: dict[str, str] = language_pack()["rule_patterns"]  # the rules' phrases: data (language-en.yaml)

_BODY = BODY

# "new" said of the sentence's subject (a predicate), not "no new", "new onset", "new since the prior"
_NEW_PREDICATE = re.compile(_RP["new_predicate"], re.I)
# what _NEW_PREDICATE needs somewhere in the (lower-cased) text
_NEW_PREDICATE_ANYWHERE = re.compile(_RP["new_predicate_anywhere"])
_OLD = re.compile(_RP["old"], re.I)
_NO_NEW = re.compile(_RP["no_new"], re.I)
# substrings one of which every match holds (derived from the pack's patterns: a site's pattern brings its own)
_NEW_KEYS = substring_keys([_RP["new_predicate"]])
_NEW_ANYWHERE_KEYS = substring_keys([_RP["new_predicate_anywhere"]])
# the other one-sentence form: a statement that opens "New ..." and closes "..., unchanged." (the findings rules' data)
_FR = language_pack()["findings_rules"]
_OPENS_NEW = re.compile(_FR["opens_new"], re.I)
_CLOSES_OLD = re.compile(_FR["closes_old"], re.I)
_CLOSES_OLD_WORDS = ("unchanged", "stable", "similar")  # every _CLOSES_OLD match holds one (lower-cased)


@per_sentence
def _clash(sentence: str) -> tuple[Hit, ...]:
    """The whole sentence, when it calls its finding new and also old (chronic, persistent, normal); or the opening
    "New", when the sentence closes "..., unchanged." (the closing words related)."""
    low = sentence.lower() if sentence.isascii() else sentence
    if not lacks(low, _NEW_KEYS) and _NEW_PREDICATE.search(sentence) and not _NO_NEW.search(sentence):
        old = _OLD.search(sentence)
        if old:
            return (Hit(0, len(sentence), f"called \"new\" in the sentence that calls it \"{old.group(0)}\""),)
    if "new" not in low or not any(w in low for w in _CLOSES_OLD_WORDS) or (m := _OPENS_NEW.match(sentence)) is None:
        return ()
    closing = _CLOSES_OLD.search(sentence, m.end())
    if closing is None:
        return ()
    return (Hit(m.start(), m.end(), f"opens \"new\" and closes \"{closing.group(0).strip(' ,.;')}\"",
                ((closing.start(), closing.end()),)),)


@declare(FlagSpec(id="interval_clash", type="interval", family="interval", reads=BODY,
                  explains="called \"new\" in the sentence that calls it {old word}",
                  example=_F.format("Degenerative changes of the thoracic spine are new.", "No acute disease."),
                  clean=_F.format("Degenerative changes of the thoracic spine are unchanged.", "No acute disease.")),
         gate=(None if _NEW_ANYWHERE_KEYS is None else (*_NEW_ANYWHERE_KEYS, "new"),))
def rule_interval_clash(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding called new in the sentence that also calls it old, chronic, persistent or normal."""
    low = a.lower_text()
    if (lacks(low, _NEW_ANYWHERE_KEYS) or not _NEW_PREDICATE_ANYWHERE.search(low)) and (
            "new" not in low or not any(w in low for w in _CLOSES_OLD_WORDS)):
        return []  # the common case, decided on the whole text
    return sentence_flags(a, "interval_clash", _clash)


# the whole sentence says the study did not change (not "no change in the effusion", "stable appearance of a hernia")
_NO_CHANGE = re.compile(_RP["no_change"], re.I)
# every no-change statement holds one of these (lower-cased text); the sentence around each is then read whole
_NO_CHANGE_CUE = re.compile(_RP["no_change_cue"])


def _without_first_char_lookahead(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` without a leading ``(?=[chars])`` that every match already satisfies (each alternative starts with
    one of the chars, language_pack.first_characters): the same matches, and the regex engine then scans for the
    first characters itself (the lookahead hides them from it: twice as slow on the IU dev reports)."""
    m = re.match(r"\(\?=\[([a-z]+)\]\)", pattern.pattern)
    if m is None:
        return pattern
    rest = pattern.pattern[m.end():]
    first = first_characters(rest)
    if first is None or not first <= set(m.group(1)):
        return pattern
    return re.compile(rest, pattern.flags)


_NO_CHANGE_CUE_SCAN = _without_first_char_lookahead(_NO_CHANGE_CUE)
_CHANGE = re.compile(_RP["change"], re.I)
_NOT_A_CHANGE = re.compile(_RP["not_a_change"], re.I)
_NO_CHANGE_KEYS = substring_keys([_RP["no_change"]])
_NO_CHANGE_CUE_KEYS = substring_keys([_RP["no_change_cue"]])
_CHANGE_KEYS = substring_keys([_RP["change"]])  # one is in every match of _CHANGE: a flag's change word (None: no gate)


def _sentence_at(a: Analysis, at: int) -> int:
    """The index of the last sentence starting at or before offset ``at`` (-1: none): a bisection of the sentences'
    starts, listed once per analysis (two rules ask, a few times each; a ``key=`` bisection calls Python per step)."""
    starts = a.cache.get("sentence starts")
    if starts is None:
        starts = a.cache["sentence starts"] = [s.start for s in a.sentences]
    return bisect.bisect_right(starts, at) - 1


@per_sentence
def _says_no_change(sentence: str) -> bool:
    low = sentence.lower() if sentence.isascii() else sentence
    if lacks(low, _NO_CHANGE_KEYS):
        return False
    return _NO_CHANGE.match(sentence) is not None


@per_sentence
def _change_word(sentence: str) -> str | None:
    m = _CHANGE.search(sentence)
    if m is None or _NOT_A_CHANGE.search(sentence):
        return None
    return m.group(0)


@declare(FlagSpec(id="interval_global", type="interval", family="interval", reads=BODY,
                  explains="{word} but the report says nothing changed: {statement}",
                  example="COMPARISON: 3/2/2024.\n\n" + _F.format("New small left pleural effusion.",
                                                                  "No interval change."),
                  clean="COMPARISON: 3/2/2024.\n\n" + _F.format("Small left pleural effusion.", "No interval change.")),
         gate=(_NO_CHANGE_CUE_KEYS, _CHANGE_KEYS))
def rule_interval_global(a: Analysis, header: Any = None) -> list[Flag]:
    """A change stated for a finding while the report's summary says nothing changed since the prior."""
    low = a.lower_text()
    if lacks(low, _NO_CHANGE_CUE_KEYS):
        return []  # the common case: no sentence of the text can be a no-change statement
    statement = None
    for m in _NO_CHANGE_CUE_SCAN.finditer(low):  # only the sentences that hold a cue are read
        i = _sentence_at(a, m.start())
        sent = a.sentences[i] if i >= 0 else None
        if sent is not None and sent.section in _BODY and m.start() < sent.end and _says_no_change(sent.text):
            statement = sent
            break
    if statement is None:
        return []
    flags = []
    for sent in a.sentences:
        if sent.section not in _BODY or sent is statement:
            continue
        if statement.label and sent.label != statement.label:
            continue  # "LYMPH NODES: No interval change since the last CT." speaks of its organ sub-heading only
        word = _change_word(sent.text)
        if word:
            flags.append(make_flag("interval_global", a.text, sent.start, sent.end,
                                   f"\"{word}\" but the report says nothing changed: \"{statement.text}\"",
                                   related=[(statement.start, statement.end)]))
    return flags


_A_SIZE = re.compile(r"\d\s*[cm]m\b")
# high grades and the size (mm) at or under which their own measurement contradicts them: language pack data
_AT_MOST: dict[str, float] = {k.lower(): float(v) for k, v in language_pack()["grade_sizes"]["at_most"].items()}
_BIG_WORDS = longest_first(list(_AT_MOST))
# findings measured in millimetres by nature (the pack's findings_rules small_scale_findings: discs, spurs)
_SMALL_SCALE = re.compile(language_pack()["findings_rules"]["small_scale_findings"], re.I)
_SMALL_SCALE_MOST = float(language_pack()["findings_rules"]["small_scale_at_most"])
# a grade, up to three words, its size ("large 3 mm nodule"), or its size after it ("3 mm large"); the size its
# finding "measures" further on ("massive rounded opacity in the left apex measuring 1.4 cm") is
# rules_findings.severity_measured's
_BIG = re.compile(r"\b(" + _BIG_WORDS + r")\s+(?:(?!and\b|or\b|with\b|but\b)[a-z]+\s+){0,3}?(\d+(?:\.\d+)?)\s*(mm|cm)\b|"
                  r"\b(\d+(?:\.\d+)?)\s*(mm|cm)\s+(" + _BIG_WORDS + r")\b", re.I)
_BIG_SEARCH = lower_search(_BIG)  # the same spans, on the lower-cased plain ASCII text


@per_sentence
def _high_grade_small_size(sentence: str) -> tuple[Hit, ...]:
    """Each high grade next to a measurement at or under the grade's limit."""
    hits = []
    for m in _BIG.finditer(sentence):
        grade, value, unit = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(6), m.group(4), m.group(5))
        mm = float(value) * (10.0 if unit.lower() == "cm" else 1.0)
        most = _AT_MOST[grade.lower()]
        if mm <= most and _SMALL_SCALE.search(sentence, m.start(), min(len(sentence), m.end() + 40)):
            most = min(most, _SMALL_SCALE_MOST)  # "large 5 mm disc extrusion": a disc's scale
        if mm <= most:
            hits.append(Hit(m.start(), m.end(), f"\"{grade}\" but it measures {value} {unit}"))
    return tuple(hits)


@declare(FlagSpec(id="severity_size", type="severity", family="single", reads=BODY,
                  explains="{grade} but it measures {size}",
                  example=_F.format("A large 3 mm nodule in the right upper lobe.", "Nodule."),
                  clean=_F.format("A large 3 cm mass in the right upper lobe.", "Mass.")),
         gate=(("mm", "cm"),))
def rule_severity_size(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding called large (massive, extensive) whose own measurement is a few millimetres."""
    low = a.lower_text()
    if ("mm" not in low and "cm" not in low) or not _A_SIZE.search(low) or not _BIG_SEARCH(a.text):
        return []  # "recommend" holds "mm": a size and a grade next to it are tested on the whole text
    return sentence_flags(a, "severity_size", _high_grade_small_size)


# a whole sentence that states an unnamed acute abnormality: the normal statement with its "No" dropped
_ACUTE_UNNAMED = re.compile(_RP["acute_unnamed"], re.I)
_ACUTE_UNNAMED_KEYS = substring_keys([_RP["acute_unnamed"]])


_DN = language_pack()["dropped_negation"]


_ITEM = r"(?:(?:" + longest_first(_DN["list_modifiers"]) + r")\s+){0,3}(?:" + longest_first(_DN["list_nouns"]) + r")"
_DENIAL_LIST = re.compile(r"^\W*(?:\d+[.)]\s*)?(?:(?:" + longest_first(_DN["list_openers"]) + r")\s+)?" + _ITEM +
                          r"(?:\s*,\s*" + _ITEM + r")*\s*,?\s+or\s+" + _ITEM +
                          r"(?:\s+(?:(?:is|are)\s+)?(?:seen|identified|present|noted|demonstrated))?\s*[.;]?\s*$", re.I)
_LIST_BLOCKERS = re.compile(r"\b(?:" + longest_first(_DN["list_blockers"] + language_pack()["hedges"]["before"]) + r")\b", re.I)


@per_sentence
def _denial_without_no(sentence: str) -> bool:
    """A list of acute findings joined by "or", with no denial and no hedge: a denial that lost its "No"."""
    if " or " not in sentence or len(sentence) > 300:
        return False
    low = sentence.lower()
    if low.lstrip(" \t-*").startswith("no ") or " no " in low or " not " in low or "without" in low:
        return False  # the common case: a denial that kept its "No" (the blockers below would say so, slower)
    return _DENIAL_LIST.match(sentence) is not None and not _LIST_BLOCKERS.search(sentence)


@per_sentence
def _unnamed_acute(sentence: str) -> tuple[Hit, ...]:
    """The whole sentence, when it states an acute abnormality without naming one."""
    if sentence.isascii() and lacks(sentence.lower(), _ACUTE_UNNAMED_KEYS):
        return ()
    if _ACUTE_UNNAMED.match(sentence) is None:
        return ()
    return (Hit(0, len(sentence), f"\"{sentence}\" states an acute abnormality without naming one: a dropped \"No\"?"),)


@declare(FlagSpec(id="dropped_negation", type="negation", family="single", reads=BODY,
                  explains="{sentence} states an acute abnormality without naming one: a dropped \"No\"?",
                  example=_F.format("The lungs are clear.", "Acute cardiopulmonary abnormality."),
                  clean=_F.format("The lungs are clear.", "No acute cardiopulmonary abnormality.")))
def rule_dropped_negation(a: Analysis, header: Any = None) -> list[Flag]:
    """"Acute cardiopulmonary abnormality." as a sentence of its own: a report names what is abnormal, so this is
    the normal statement with "No" lost in dictation."""
    low = a.lower_text()
    flags = []
    at = low.find(" or ")
    seen = -1
    while at >= 0:  # a list of findings joined by "or" that denies nothing: only the sentences holding " or " are read
        i = _sentence_at(a, at)
        s = a.sentences[i] if i >= 0 else None
        if i > seen and s is not None and at < s.end and s.section in _BODY and _denial_without_no(s.text):
            flags.append(make_flag("dropped_negation", a.text, s.start, s.end,
                                   f"\"{s.text.strip()}\" lists findings joined by \"or\" but denies none: a dropped "
                                   "\"No\"?"))
        seen = max(seen, i)
        at = low.find(" or ", (s.end if s is not None and at < s.end else at + 4))
    if _ACUTE_UNNAMED_KEYS == ("acute",):  # the packaged English pattern: "No acute ..." is the common case
        n = low.count("acute")
        if not n or n == low.count("no acute") + low.count("without acute") + low.count("nonacute"):
            return flags  # decided by substring counts
    elif lacks(low, _ACUTE_UNNAMED_KEYS):  # a site's own pattern: its own pre-test
        return flags
    return flags + sentence_flags(a, "dropped_negation", _unnamed_acute)

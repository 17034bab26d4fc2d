"""Interval rules that read one statement of the findings against the rest: a change word, "new" or "unchanged"
that the report's own sizes, denials or priors contradict. Structured CT findings (organ sub-headings, priors named
inline, no impression) leave no impression to compare with; what a reader still sees is inside the findings.

* ``interval_direction``: a change word that the sentence's own sizes contradict ("increased from 1.6 cm to 0.9 cm",
  "increase in size, ... 8.5 cm, previously 9.7 cm", "stable 9 mm nodule, previously 4 mm"), also when the next
  sentences give the examples ("... have increased in size. For example a 10 mm nodule, previously 23 mm");
* ``interval_denied``: a finding called new (or grown) in findings that deny any new (or enlarging) finding of its
  kind ("New 3 mm right upper lobe nodule." ... "No new or enlarging nodules."); a qualified denial ("no new
  suspicious nodule") denies only findings said to be so; the flag shows both sentences;
* ``interval_new_unchanged``: a finding called new in one sentence and unchanged in the next, which takes it up
  ("There are two new nodules. These are unchanged from 11/8/2023."), or a later one of its sub-heading that names it
  ("There are multiple new bilateral cysts. ... These cysts appear unchanged compared to 2013.", none between naming
  it); one sentence saying both is ``interval_clash``'s.

The words are data: the language pack's ``findings_rules`` (``medmm/configs/reports/language-en.yaml``) and the
shared ``rule_patterns`` for interval claims. Each rule decides most reports on the report's set of words or a few
substrings before any per-sentence regex; every pattern is bounded.
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports.analysis import Analysis, per_sentence
from medmm.reports.findings_sizes import EXAMPLE, MAX_DENIALS, SIZE, has_size, report_has_size, size_mm
from medmm.reports.findings_sizes import PACK as _FR
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import lacks, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY

# ------------------------------------------------------------------ interval_direction
_UP = re.compile(r"\b(?:" + longest_first(_FR["change_up"]) + r")\b", re.I)
_DOWN = re.compile(r"\b(?:" + longest_first(_FR["change_down"]) + r")\b", re.I)
_UP_KEYS = substring_keys(_FR["change_up"])
_DOWN_KEYS = substring_keys(_FR["change_down"])
_DENIED = re.compile(_FR["change_denied"], re.I)
# every change word is one of these words, or holds one (looked up in the report's set of words: cheaper than
# substring scans; None: a site's phrase that is not a plain word, so no such pre-test)
_CHANGE_WORDS = frozenset(k for k in (_UP_KEYS or ()) + (_DOWN_KEYS or ()) if k.isalpha() and len(k) >= 4) \
    if _UP_KEYS and _DOWN_KEYS and all(k.isalpha() and len(k) >= 4 for k in _UP_KEYS + _DOWN_KEYS) else None
_PRIOR_WORDS = frozenset(("previously", "previous", "from", "compared"))
_NONE = re.compile(r"\b(?:" + longest_first(_FR["change_none"]) + r")\b", re.I)
_NONE_KEYS = substring_keys(_FR["change_none"])
_NONE_WORDS = frozenset(k for k in (_NONE_KEYS or ()) if k.isalpha() and len(k) >= 4) \
    if _NONE_KEYS and all(k.isalpha() and len(k) >= 4 for k in _NONE_KEYS) else None
_SAME_FRACTION = float(_FR["unchanged_within"]["fraction"])
_SAME_MM = float(_FR["unchanged_within"]["mm"])
_PRIOR = re.compile(_FR["prior_size"], re.I)
_CURRENT = re.compile(_FR["current_size"], re.I)
_FROM = re.compile(_FR["from_to"], re.I)  # read on the words before a size: it must end them
_TO = re.compile(r"\s*(?:\([^)]{0,20}\)\s*)?to\s+", re.I)  # matched up to the next size (no lookahead past it)
_EXAMPLE = re.compile(_FR["example_opener"], re.I)
_TOLERANCE = 0.1  # a change of less than this fraction of the prior size is a remeasurement, not a direction


@per_sentence
def _change(sentence: str) -> tuple[str, re.Match] | None:
    """The direction ("up"/"down", or "same": unchanged) a sentence states and its word; None when it states none,
    two, or denies a change it names."""
    low = sentence.lower() if sentence.isascii() else sentence
    found = []
    if not lacks(low, _UP_KEYS):
        found += [("up", m) for m in _UP.finditer(sentence) if not _DENIED.search(sentence, max(0, m.start() - 40),
                                                                                  m.start())]
    if not lacks(low, _DOWN_KEYS):
        found += [("down", m) for m in _DOWN.finditer(sentence) if not _DENIED.search(sentence, max(0, m.start() - 40),
                                                                                      m.start())]
    if not found and not lacks(low, _NONE_KEYS):
        none = _NONE.search(sentence)
        return ("same", none) if none else None
    if not found or len({d for d, _ in found}) > 1:
        return None
    return found[0]


@per_sentence
def _size_pairs(sentence: str) -> tuple[tuple[float, float, int, int], ...]:
    """(size now, prior size, start, end of the prior's words) of each measurement the sentence gives with its prior:
    "8.5 cm, previously 9.7 cm", "previously 5.2 cm, presently 3.4 cm", "from 1.6 cm to 0.9 cm"."""
    if not has_size(sentence.lower()):
        return ()
    sizes = list(SIZE.finditer(sentence))
    if len(sizes) < 2:
        return ()
    pairs = []
    used: set[int] = set()
    for i, s in enumerate(sizes):
        if i in used:
            continue
        between = sentence[sizes[i - 1].end() if i else 0: s.start()]
        cue = None
        for c in _PRIOR.finditer(between):
            cue = c
        if cue is not None and between[cue.end():].strip() == "":
            # s is a prior size; this study's size follows ("presently 3.4 cm") or came before it
            nxt = sizes[i + 1] if i + 1 < len(sizes) else None
            if nxt is not None and (cur := _CURRENT.match(sentence, s.end(), nxt.start())) and \
                    sentence[cur.end(): nxt.start()].strip() == "":
                pairs.append((size_mm(nxt), size_mm(s), s.start(), s.end()))
                used.add(i + 1)
            elif i and i - 1 not in used:
                pairs.append((size_mm(sizes[i - 1]), size_mm(s), s.start(), s.end()))
            used.add(i)
            continue
        frm = None
        for c in _FROM.finditer(between):
            frm = c
        nxt = sizes[i + 1] if i + 1 < len(sizes) else None
        if frm is not None and between[frm.end():].strip() == "" and nxt is not None and \
                (to := _TO.match(sentence, s.end(), nxt.start())) and \
                sentence[to.end(): nxt.start()].strip() == "":
            pairs.append((size_mm(nxt), size_mm(s), s.start(), s.end()))
            used.update((i, i + 1))
    return tuple(pairs)


def _contradicted(direction: str, pairs: tuple[tuple[float, float, int, int], ...]) -> tuple[float, float, int, int] | None:
    """The first pair that goes the other way (for "same": that changed by more than a remeasurement), unless one
    goes the stated way."""
    against = None
    for now, prior, s, e in pairs:
        if prior <= 0:
            continue
        r = now / prior
        if direction == "same":
            if abs(r - 1) <= _TOLERANCE:
                return None
            if against is None and abs(r - 1) > _SAME_FRACTION and abs(now - prior) > _SAME_MM:
                against = (now, prior, s, e)
            continue
        if (direction == "up" and r > 1 + _TOLERANCE) or (direction == "down" and r < 1 - _TOLERANCE):
            return None  # one size that went the stated way: the word is right about it
        if against is None and ((direction == "up" and r < 1 - _TOLERANCE) or
                                (direction == "down" and r > 1 + _TOLERANCE)):
            against = (now, prior, s, e)
    return against


def _fmt(mm: float) -> str:
    return f"{mm / 10:g} cm" if mm >= 10 else f"{mm:g} mm"


@declare(FlagSpec(id="interval_direction", type="interval", family="interval", reads=BODY,
                  explains="{change word} but the sentence's own sizes went the other way ({now} now, {prior} before)",
                  example=EXAMPLE.format("The right hilar node has increased from 1.6 cm to 0.9 cm."),
                  clean=EXAMPLE.format("The right hilar node has decreased from 1.6 cm to 0.9 cm.")),
         gate=(None if _CHANGE_WORDS is None or _NONE_WORDS is None else _CHANGE_WORDS | _NONE_WORDS, _PRIOR_WORDS, ("mm", "cm", "milli", "centi")))
def rule_interval_direction(a: Analysis, header: Any = None) -> list[Flag]:
    """A change word (increased / decreased) whose own sizes, in its sentence or in the example sentences that
    follow it, went the other way."""
    low, words = a.lower_words()
    if _CHANGE_WORDS is not None and _NONE_WORDS is not None and words.isdisjoint(_CHANGE_WORDS) and \
            words.isdisjoint(_NONE_WORDS):
        return []  # the common case, decided on the report's set of words
    if words.isdisjoint(_PRIOR_WORDS) or (lacks(low, _UP_KEYS) and lacks(low, _DOWN_KEYS) and lacks(low, _NONE_KEYS)) \
            or not report_has_size(a):
        return []
    flags = []
    sents = a.sentences
    for i, sent in enumerate(sents):
        if sent.section not in BODY:
            continue
        ch = _change(sent.text)
        if ch is None:
            continue
        direction, word = ch
        where = [(sent, _size_pairs(sent.text))]
        if not where[0][1]:  # the examples may follow: "... have decreased. For example a 10 mm nodule, previously 23 mm."
            where = []
            for j in range(i + 1, min(i + 3, len(sents))):
                nxt = sents[j]
                if nxt.section != sent.section or _change(nxt.text) is not None or (
                        j == i + 1 and not _EXAMPLE.match(nxt.text)):
                    break
                pairs = _size_pairs(nxt.text)
                if not pairs:
                    break
                where.append((nxt, pairs))
        all_pairs = tuple(p for _, ps in where for p in ps)
        bad = _contradicted(direction, all_pairs) if all_pairs else None
        if bad is None:
            continue
        now, prior, ps, pe = bad
        holder = next(s for s, ps_ in where if bad in ps_)
        how = "changed" if direction == "same" else "went the other way"
        flags.append(make_flag("interval_direction", a.text, sent.start + word.start(), sent.start + word.end(),
                               f"\"{word.group(0)}\" but the sizes {how} ({_fmt(now)} now, {_fmt(prior)} before)",
                               related=[(holder.start + ps, holder.start + pe)]))
    return flags


# ------------------------------------------------------------------ interval_denied
_KINDS = {k: re.compile(r"\b(?:" + v + r")\b", re.I) for k, v in _FR["denied_kinds"].items()}
_NO_NEW = re.compile(_FR["no_new"], re.I)
_NEW_CLAIM = re.compile(_FR["new_claim"], re.I)
_NEW_CLOSING = re.compile(_FR["new_closing"], re.I)
_DENIES_GROWTH = re.compile(_FR["denies_growth"], re.I)
_GROWTH = re.compile(_FR["growth_claim"], re.I)
_ANAPHOR = re.compile(_FR["anaphor"], re.I)
_ORGANS = re.compile(r"\b(?:" + longest_first(_FR["other_organs"]) + r")\b", re.I)
_NEGATED = re.compile(r"\b(?:no|not|without|nor|resolved|resolution)\b", re.I)
_QUALIFIERS = re.compile(r"\b(?:" + longest_first(_FR["denial_qualifiers"]) + r")\b", re.I)


def _kinds(text: str) -> set[str]:
    return {k for k, pat in _KINDS.items() if pat.search(text)}


def _organs(text: str) -> set[str]:
    return {m.group(0).lower() for m in _ORGANS.finditer(text)}


@per_sentence
def _denial(sentence: str) -> tuple[frozenset[str], bool, frozenset[str], frozenset[str]] | None:
    """(kinds denied new, also denies growth, organs named, qualifiers) of a "No new ... nodules" sentence, else
    None."""
    m = _NO_NEW.search(sentence)
    if m is None:
        return None
    kinds = _kinds(m.group(1))
    if not kinds:
        return None
    quals = frozenset(q.group(0).lower() for q in _QUALIFIERS.finditer(m.group(1)))
    return frozenset(kinds), bool(_DENIES_GROWTH.search(m.group(1))), frozenset(_organs(sentence)), quals


@per_sentence
def _claim(sentence: str) -> str | None:
    """"new" or "grown" when the sentence calls its finding new or grown (not a denial), else None."""
    if _NEGATED.search(sentence) or _NO_NEW.search(sentence):
        return None
    if _NEW_CLAIM.match(sentence) or _NEW_CLOSING.search(sentence):
        return "new"
    return "grown" if _GROWTH.search(sentence) else None


@declare(FlagSpec(id="interval_denied", type="interval", family="interval", reads=("findings",),
                  explains="a {kind} called {new/grown} but the findings say: {no new statement}",
                  example=EXAMPLE.format("New 3 mm right upper lobe nodule. No new or enlarging nodules."),
                  clean=EXAMPLE.format("New 3 mm right upper lobe nodule. No new suspicious nodules or consolidation.")),
         gate=(("new",),))
def rule_interval_denied(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding called new (or grown) in findings that deny any new (or enlarging) finding of its kind."""
    low = a.lower_text()
    if "new" not in low or not _NO_NEW.search(low):  # the pack's own "no new" pattern (a site may extend it)
        return []
    denials = [(s, d) for s in a.sentences if s.section == "findings" and (d := _denial(s.text)) is not None]
    if not denials:
        return []
    denials = denials[:MAX_DENIALS]  # a report states a handful; more is garbage input (bounded pairing)
    flags = []
    prev = None
    for sent in a.sentences:
        if sent.section != "findings":
            prev = None
            continue
        claim = _claim(sent.text)
        subject = sent.text
        if claim is not None and _ANAPHOR.match(sent.text) and prev is not None:
            subject = prev.text + " " + sent.text  # "These are all enlarged since ...": the previous sentence's finding
        kinds = _kinds(subject) if claim is not None else set()
        prev = sent
        if not kinds:
            continue
        organs = _organs(subject)
        for dsent, (dkinds, growth, dorgans, quals) in denials:
            if dsent is sent or (claim == "grown" and not growth):
                continue
            if quals and not all(re.search(r"\b" + re.escape(q) + r"\b", subject, re.I) for q in quals):
                continue  # "no new suspicious nodule" denies only a new nodule called suspicious
            if dsent.label and sent.label and dsent.label != sent.label:
                continue  # another organ's sub-heading
            common = kinds & dkinds
            if not common or not organs <= dorgans:
                continue
            kind = sorted(common)[0]
            flags.append(make_flag("interval_denied", a.text, sent.start, sent.end,
                                   f"a {kind} called {claim} but the findings say \"{dsent.text.strip()}\"",
                                   related=[(dsent.start, dsent.end)]))
            break
    return flags


_ANAPHOR_OLD = re.compile(_FR["anaphor_old"], re.I)
_ANAPHOR_NEW = re.compile(_FR["anaphor_new"], re.I)
_OPENS_OLD = re.compile(_FR["opens_old"], re.I)
_NAMED_OLD = re.compile(_FR["anaphor_named_old"], re.I)
_NAMED_REACH = int(_FR["named_old_reach"])
_OLD_LIST = re.compile(_FR["old_list_opener"], re.I)


def _noun_in(noun: str, text: str) -> bool:
    """Whether ``text`` names ``noun`` (singular or plural: "cysts" / "cyst")."""
    stem = noun[:-1] if noun.endswith("s") else noun
    return re.search(r"\b" + re.escape(stem) + r"s?\b", text, re.I) is not None


def _new_item(a: Analysis, i: int, noun: str) -> Flag | None:
    """Sentence ``i`` opens a list of old findings ("Stable pulmonary nodules as follows: ..."); an item of it in the
    next sentences of its sub-heading calls a finding of the listed noun new."""
    sents, s = a.sentences, a.sentences[i]
    for t in sents[i + 1: i + _NAMED_REACH]:
        if t.section != s.section or t.label != s.label:
            return None
        if _claim(t.text) == "new" and _noun_in(noun, t.text):
            return make_flag("interval_new_unchanged", a.text, t.start, t.end,
                             f"called new in a list introduced as \"{s.text[: 60].strip()}\"", related=[(s.start, s.end)])
    return None


def _named_later(a: Analysis, i: int) -> Flag | None:
    """Sentence ``i`` calls its finding new; a later one of its sub-heading ("These cysts ...") calls it old."""
    sents, s = a.sentences, a.sentences[i]
    for j in range(i + 2, min(i + 1 + _NAMED_REACH, len(sents))):  # the next sentence is _ANAPHOR_OLD's
        t = sents[j]
        if t.section != s.section or t.label != s.label:
            return None
        m = _NAMED_OLD.match(t.text)
        if m is not None and _noun_in(m.group(1), s.text):
            if any(_noun_in(m.group(1), u.text) for u in sents[i + 1: j]):
                return None  # a sentence between names the finding: the demonstrative may be about that one
            return make_flag("interval_new_unchanged", a.text, s.start, s.end,
                             f"called new, but a later sentence says \"{t.text.strip()}\"", related=[(t.start, t.end)])
    return None


def _across(a: Analysis) -> list[Flag]:
    """A sentence that calls its finding new followed by one that takes it up ("These", "It") and calls it unchanged,
    or the other way round: the flag lies on the sentence with "new", the other is related."""
    flags = []
    sents = a.sentences
    for i, (s, t) in enumerate(zip(sents, sents[1:])):
        if s.section not in BODY or t.section != s.section or t.label != s.label:
            continue  # not across an organ sub-heading ("LUNGS: New nodule." / "THYROID: This is unchanged.")
        if _claim(s.text) == "new":
            if _ANAPHOR_OLD.match(t.text):
                flags.append(make_flag("interval_new_unchanged", a.text, s.start, s.end,
                                       f"called new, but the next sentence says \"{t.text.strip()}\"",
                                       related=[(t.start, t.end)]))
            elif (later := _named_later(a, i)) is not None:
                flags.append(later)
        elif _OPENS_OLD.match(s.text):
            if _ANAPHOR_NEW.match(t.text):
                flags.append(make_flag("interval_new_unchanged", a.text, t.start, t.end,
                                       f"called new, but the sentence before says \"{s.text.strip()}\"",
                                       related=[(s.start, s.end)]))
            elif (opener := _OLD_LIST.match(s.text)) is not None and (item := _new_item(a, i, opener.group(1))):
                flags.append(item)
    return flags


@declare(FlagSpec(id="interval_new_unchanged", type="interval", family="interval", reads=BODY,
                  explains="the sentence (or the next one, or a later 'These <finding>', taking it up) calls the "
                           "finding {new} and {unchanged}",
                  example=EXAMPLE.format("There are two new nodules in the left upper lobe. These are unchanged."),
                  clean=EXAMPLE.format("There are two nodules in the left upper lobe. These are unchanged.")),
         gate=(("new",), ("unchanged", "stable", "similar", "redemonstrated", "changed", "again")))
def rule_interval_new_unchanged(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding called new and unchanged (stable, similar): at the start and the end of one sentence, or in two
    sentences the second of which takes it up with an anaphor."""
    low = a.lower_text()
    if "new" not in low or ("unchanged" not in low and "stable" not in low and "similar" not in low
                            and "redemonstrated" not in low and "changed" not in low and "again" not in low):
        return []
    return _across(a)  # one sentence that says both is interval_clash's (rules_mention.py)

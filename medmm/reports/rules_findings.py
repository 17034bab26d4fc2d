"""Rules that read one statement of the findings against the rest of the findings: what a reader of structured CT
findings (organ sub-headings, priors named inline, no impression) can still see when a side, a change word or a size
was dictated wrong, with no impression to contradict it.

* ``interval_direction``: a change word that the sentence's own sizes contradict ("decreased from 1.5 cm to 0.8 cm"
  is right; "increased from 1.5 cm to 0.8 cm", "increase in size, ... 8.5 cm, previously 9.7 cm" are not), also when
  the next sentences give the examples ("... have increased in size. For example a 10 mm nodule, previously 23 mm");
* ``interval_denied``: a finding called new (or grown) in findings that deny any new (or enlarging) finding of that
  kind ("New 3 mm right upper lobe nodule." ... "No new suspicious nodules."); the flag shows both sentences;
* ``interval_new_unchanged``: a sentence that opens by calling its finding new and closes by calling it unchanged;
* ``resected_lobe``: a finding placed in a lobe the findings say was removed ("Status post right upper lobectomy."
  ... "nodule in the right upper lobe");
* ``no_such_fissure``: a structure of one lung named on the other side ("left minor fissure");
* ``size_class``: a measurement larger than the size word that introduces it ("subcentimeter nodules, for example
  16 mm", "sub-5 mm nodules ... 9 mm");
* ``severity_measured``: a grade that the finding's own measurement later in the sentence contradicts ("large nodule
  along the fissure measuring 3 mm", "tiny nodules measuring up to 3 cm"); the grade next to its size is
  ``severity_size`` / ``severity_measure``.

The words are data: the language pack's ``findings_rules`` (``medmm/configs/reports/language-en.yaml``; grades and
their sizes: ``grade_sizes``). Each rule tests cheap substrings of the whole report before any per-sentence regex, and
every pattern is bounded (a sentence is at most ``sections.MAX_SENTENCE_CHARS`` characters; the one cross-sentence
rule reads each sentence once).
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports.analysis import UNIT_ALTERNATION, Analysis, per_sentence, unit_mm
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import lacks, language_pack, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY, Hit, sentence_flags

_PACK = language_pack()
_FR: dict[str, Any] = _PACK["findings_rules"]
_F = "FINDINGS: {}"
_I = re.I


def _alt(items: list[str]) -> str:
    return "|".join(sorted(items, key=len, reverse=True))


# a measurement: up to three dimensions and a unit (the pack's size units); its largest dimension is what is compared
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)(?:\s*(?:x|by)\s*(\d+(?:\.\d+)?))?(?:\s*(?:x|by)\s*(\d+(?:\.\d+)?))?\s*(?:-\s*)?("
                   + UNIT_ALTERNATION + r")\b", _I)


def _mm(m: re.Match) -> float:
    """The largest dimension of a :data:`_SIZE` match, in millimetres."""
    return max(float(g) for g in m.groups()[:3] if g) * unit_mm(m.group(4))


_DIGIT_UNIT = re.compile(r"\d\s*(?:mm|cm|milli|centi)")


def _has_size(low: str) -> bool:
    """Can the lower-cased text hold a measurement (a digit before a unit)? Substring tests, then one regex."""
    return ("mm" in low or "cm" in low or "milli" in low or "centi" in low) and _DIGIT_UNIT.search(low) is not None


def _report_has_size(a: Analysis) -> bool:
    """:func:`_has_size` of the report, decided once per analysis (four rules of this module ask)."""
    hit = a.cache.get("findings_rules_size")
    if hit is None:
        hit = a.cache["findings_rules_size"] = _has_size(a.lower_text())
    return hit


# ------------------------------------------------------------------ interval_direction
_UP = re.compile(r"\b(?:" + _alt(_FR["change_up"]) + r")\b", _I)
_DOWN = re.compile(r"\b(?:" + _alt(_FR["change_down"]) + r")\b", _I)
_UP_KEYS = substring_keys(_FR["change_up"])
_DOWN_KEYS = substring_keys(_FR["change_down"])
_DENIED = re.compile(_FR["change_denied"], _I)
# every change word is one of these words, or holds one (looked up in the report's set of words: cheaper than
# substring scans; None: a site's phrase that is not a plain word, so no such pre-test)
_CHANGE_WORDS = frozenset(k for k in (_UP_KEYS or ()) + (_DOWN_KEYS or ()) if k.isalpha() and len(k) >= 4) \
    if _UP_KEYS and _DOWN_KEYS and all(k.isalpha() and len(k) >= 4 for k in _UP_KEYS + _DOWN_KEYS) else None
_PRIOR_WORDS = frozenset(("previously", "previous", "from", "compared"))
_NONE = re.compile(r"\b(?:" + _alt(_FR["change_none"]) + r")\b", _I)
_NONE_KEYS = substring_keys(_FR["change_none"])
_NONE_WORDS = frozenset(k for k in (_NONE_KEYS or ()) if k.isalpha() and len(k) >= 4) \
    if _NONE_KEYS and all(k.isalpha() and len(k) >= 4 for k in _NONE_KEYS) else None
_SAME_FRACTION = float(_FR["unchanged_within"]["fraction"])
_SAME_MM = float(_FR["unchanged_within"]["mm"])
_PRIOR = re.compile(_FR["prior_size"], _I)
_CURRENT = re.compile(_FR["current_size"], _I)
_FROM = re.compile(_FR["from_to"], _I)  # read on the words before a size: it must end them
_TO = re.compile(r"\s*(?:\([^)]{0,20}\)\s*)?to\s+", _I)  # matched up to the next size (no lookahead past it)
_EXAMPLE = re.compile(_FR["example_opener"], _I)
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
    "8.5 cm, previously 9.7 cm", "previously 5.2 cm, presently 3.4 cm", "from 1.5 cm to 0.8 cm"."""
    if not _has_size(sentence.lower()):
        return ()
    sizes = list(_SIZE.finditer(sentence))
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
            if nxt is not None and _CURRENT.match(sentence, s.end(), nxt.start()) and \
                    sentence[_CURRENT.match(sentence, s.end(), nxt.start()).end(): nxt.start()].strip() == "":
                pairs.append((_mm(nxt), _mm(s), s.start(), s.end()))
                used.add(i + 1)
            elif i and i - 1 not in used:
                pairs.append((_mm(sizes[i - 1]), _mm(s), s.start(), s.end()))
            used.add(i)
            continue
        frm = None
        for c in _FROM.finditer(between):
            frm = c
        nxt = sizes[i + 1] if i + 1 < len(sizes) else None
        if frm is not None and between[frm.end():].strip() == "" and nxt is not None and \
                _TO.match(sentence, s.end(), nxt.start()) and \
                sentence[_TO.match(sentence, s.end(), nxt.start()).end(): nxt.start()].strip() == "":
            pairs.append((_mm(nxt), _mm(s), s.start(), s.end()))
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
                  example=_F.format("Subcarinal lymph node has increased from 1.5 cm to 0.8 cm."),
                  clean=_F.format("Subcarinal lymph node has decreased from 1.5 cm to 0.8 cm.")))
def rule_interval_direction(a: Analysis, header: Any = None) -> list[Flag]:
    """A change word (increased / decreased) whose own sizes, in its sentence or in the example sentences that
    follow it, went the other way."""
    low, words = a.lower_words()
    if _CHANGE_WORDS is not None and _NONE_WORDS is not None and words.isdisjoint(_CHANGE_WORDS) and \
            words.isdisjoint(_NONE_WORDS):
        return []  # the common case, decided on the report's set of words
    if words.isdisjoint(_PRIOR_WORDS) or (lacks(low, _UP_KEYS) and lacks(low, _DOWN_KEYS) and lacks(low, _NONE_KEYS)) \
            or not _report_has_size(a):
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
_KINDS = {k: re.compile(r"\b(?:" + v + r")\b", _I) for k, v in _FR["denied_kinds"].items()}
_NO_NEW = re.compile(_FR["no_new"], _I)
_NEW_CLAIM = re.compile(_FR["new_claim"], _I)
_DENIES_GROWTH = re.compile(_FR["denies_growth"], _I)
_GROWTH = re.compile(_FR["growth_claim"], _I)
_ANAPHOR = re.compile(_FR["anaphor"], _I)
_ORGANS = re.compile(r"\b(?:" + _alt(_FR["other_organs"]) + r")\b", _I)
_NEGATED = re.compile(r"\b(?:no|not|without|nor|resolved|resolution)\b", _I)
_QUALIFIERS = re.compile(r"\b(?:" + _alt(_FR["denial_qualifiers"]) + r")\b", _I)


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
    if _NEW_CLAIM.match(sentence):
        return "new"
    return "grown" if _GROWTH.search(sentence) else None


@declare(FlagSpec(id="interval_denied", type="interval", family="interval", reads=("findings",),
                  explains="a {kind} called {new/grown} but the findings say: {no new statement}",
                  example=_F.format("New 3 mm right upper lobe nodule. No new or enlarging nodules."),
                  clean=_F.format("New 3 mm right upper lobe nodule. No new suspicious nodules or consolidation.")))
def rule_interval_denied(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding called new (or grown) in findings that deny any new (or enlarging) finding of its kind."""
    low = a.lower_text()
    if "new" not in low or ("no new" not in low and "without new" not in low and "no other new" not in low
                            and "no additional new" not in low and "no definite new" not in low):
        return []
    denials = [(s, d) for s in a.sentences if s.section == "findings" and (d := _denial(s.text)) is not None]
    if not denials:
        return []
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
            if quals and not all(re.search(r"\b" + re.escape(q) + r"\b", subject, _I) for q in quals):
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


_OPENS_NEW = re.compile(_FR["opens_new"], _I)
_CLOSES_OLD = re.compile(_FR["closes_old"], _I)


@per_sentence
def _new_and_unchanged(sentence: str) -> tuple[Hit, ...]:
    m = _OPENS_NEW.match(sentence)
    if m is None:
        return ()
    old = _CLOSES_OLD.search(sentence, m.end())
    if old is None:
        return ()
    return (Hit(m.start(), m.end(), f"opens \"new\" and closes \"{old.group(0).strip(' ,.;')}\"",
                ((old.start(), old.end()),)),)


_ANAPHOR_OLD = re.compile(_FR["anaphor_old"], _I)
_ANAPHOR_NEW = re.compile(_FR["anaphor_new"], _I)
_OPENS_OLD = re.compile(_FR["opens_old"], _I)


def _across(a: Analysis) -> list[Flag]:
    """A sentence that calls its finding new followed by one that takes it up ("These", "It") and calls it unchanged,
    or the other way round: the flag lies on the sentence with "new", the other is related."""
    flags = []
    sents = a.sentences
    for s, t in zip(sents, sents[1:]):
        if s.section not in BODY or t.section != s.section:
            continue
        if _claim(s.text) == "new" and _ANAPHOR_OLD.match(t.text):
            flags.append(make_flag("interval_new_unchanged", a.text, s.start, s.end,
                                   f"called new, but the next sentence says \"{t.text.strip()}\"",
                                   related=[(t.start, t.end)]))
        elif _OPENS_OLD.match(s.text) and _ANAPHOR_NEW.match(t.text):
            flags.append(make_flag("interval_new_unchanged", a.text, t.start, t.end,
                                   f"called new, but the sentence before says \"{s.text.strip()}\"",
                                   related=[(s.start, s.end)]))
    return flags


@declare(FlagSpec(id="interval_new_unchanged", type="interval", family="interval", reads=BODY,
                  explains="the sentence (or the next one, taking it up) calls the finding {new} and {unchanged}",
                  example=_F.format("New low-density 2.0 cm subcutaneous nodule, unchanged."),
                  clean=_F.format("Unchanged low-density 2.0 cm subcutaneous nodule, unchanged.")))
def rule_interval_new_unchanged(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding called new and unchanged (stable, similar): at the start and the end of one sentence, or in two
    sentences the second of which takes it up with an anaphor."""
    low = a.lower_text()
    if "new" not in low or ("unchanged" not in low and "stable" not in low and "similar" not in low
                            and "redemonstrated" not in low and "changed" not in low and "again" not in low):
        return []
    return sentence_flags(a, "interval_new_unchanged", _new_and_unchanged) + _across(a)


# ------------------------------------------------------------------ interval_no_prior_stated
_RP = _PACK["rule_patterns"]
_NO_PRIOR_STATED = re.compile(_FR["no_prior_stated"], _I)
_INTERVAL_CLAIM = re.compile(_RP["interval_claim"], _I)
_PRIOR_IN_SENTENCE = re.compile(_RP["prior_in_sentence"], _I)
_NOT_A_CLAIM = re.compile(_RP["not_a_claim"], _I)
_WEAK = frozenset(w.lower() for w in _PACK["weak_interval_claims"])
_NO_PRIOR_CUE = re.compile(r"\bno\s+(?:prior|previous|old|comparison)\b")  # every no_prior_stated match holds one
_HYPOTHETICAL = ("recommend", "follow", "consider", " if ", "would", "needed", "could")


@declare(FlagSpec(id="interval_no_prior_stated", type="interval", family="interval", reads=("any",),
                  explains="interval language {word} but the report says there is no prior study ({statement})",
                  example="FINDINGS: There are no comparison studies. There is a new laceration of the scalp.",
                  clean="FINDINGS: There are no comparison studies. There is a laceration of the scalp."))
def rule_interval_no_prior_stated(a: Analysis, header: Any = None) -> list[Flag]:
    """Interval language in a report whose own sentence says there is no prior study (a report without a
    COMPARISON section; with one, ``interval_no_prior`` reads it)."""
    low = a.lower_text()
    if a.section("comparison") is not None:
        return []  # interval_no_prior reads the COMPARISON section
    if "no prior" not in low and "no previous" not in low and "no comparison" not in low and "no old" not in low \
            and ("no\n" not in low and "no  " not in low and "no\t" not in low or _NO_PRIOR_CUE.search(low) is None):
        return []  # substring tests decide almost every report; other white space after "no": the regex
    statement = next((s for s in a.sentences if _NO_PRIOR_STATED.match(s.text)), None)
    if statement is None:
        return []
    flags = []
    for sent in a.sentences:
        if sent is statement or sent.section not in BODY:
            continue
        m = _INTERVAL_CLAIM.search(sent.text)
        if m is None or m.group(0).strip().lower() in _WEAK or _PRIOR_IN_SENTENCE.search(sent.text) \
                or _NOT_A_CLAIM.search(sent.text) or any(c in sent.text.lower() for c in _HYPOTHETICAL):
            continue
        flags.append(make_flag("interval_no_prior_stated", a.text, sent.start + m.start(), sent.start + m.end(),
                               f"interval language \"{m.group(0).strip()}\" but the report says there is no prior "
                               f"study (\"{statement.text.strip()}\")", related=[(statement.start, statement.end)]))
    return flags


# ------------------------------------------------------------------ node_size_denied
_NODE_DENIAL = re.compile(_FR["node_denial"], _I)
_NODE_LIMITED = re.compile(_FR["node_denial_limited"], _I)
_NODE_SHORT_AXIS = float(_FR["node_short_axis_mm"])
_STATIONS = {g: re.compile(r"\b(?:" + _alt(p) + r")\b", _I) for g, p in _FR["node_stations"].items()}
_LONG_AXIS = re.compile(_FR["long_axis"], _I)
_NODE_WORD = re.compile(r"\b(?:lymph\s+)?nodes?\b", _I)


def _stations(text: str) -> set[str]:
    return {g for g, pat in _STATIONS.items() if pat.search(text)}


@declare(FlagSpec(id="node_size_denied", type="measurement", family="single", reads=BODY,
                  explains="a lymph node of {size} (short axis) but the findings say {denial}",
                  example=_F.format("No enlarged mediastinal or hilar lymph nodes. A 19 mm subcarinal node."),
                  clean=_F.format("No enlarged mediastinal or hilar lymph nodes. A 9 mm subcarinal node.")))
def rule_node_size_denied(a: Analysis, header: Any = None) -> list[Flag]:
    """A lymph node whose short axis no station's normal size reaches, in findings that deny enlarged nodes at its
    station."""
    words = a.lower_words()[1]
    if words.isdisjoint(("node", "nodes")) or words.isdisjoint(("enlarged", "significant")) \
            or not _report_has_size(a):
        return []  # a node's size and a denial by size need these words (the report's set of words)
    denials = []
    for sent in a.sentences:
        if sent.section not in BODY:
            continue
        m = _NODE_DENIAL.search(sent.text)
        if m is not None and not _NODE_LIMITED.search(m.group(1)):
            denials.append((sent, m, _stations(m.group(0))))
    if not denials:
        return []
    flags = []
    for sent in a.sentences:
        if sent.section not in BODY or not _NODE_WORD.search(sent.text) or _LONG_AXIS.search(sent.text):
            continue
        own = next((m for d, m, _ in denials if d is sent), None)
        for size in _SIZE.finditer(sent.text):
            if own is not None and own.start() <= size.start() < own.end():
                continue
            after = " ".join(sent.text[size.end(): size.end() + 60].split()[:4])
            if not _NODE_WORD.search(after):
                continue  # the size of a node: "19 mm subcarinal node"
            dims = [float(g) for g in size.groups()[:3] if g]
            short = min(dims) * unit_mm(size.group(4))
            if short < _NODE_SHORT_AXIS:
                continue
            where = _stations(sent.text[max(0, size.start() - 60): size.end() + 60])
            for dsent, dm, dstations in denials:
                if dstations and where and not (where & dstations):
                    continue  # the denial names other stations
                s = sent.start + size.start()
                flags.append(make_flag("node_size_denied", a.text, s, sent.start + size.end(),
                                       f"a lymph node of {size.group(0)} but the findings say "
                                       f"\"{dsent.text.strip()}\"", related=[(dsent.start, dsent.end)]))
                break
    return flags


# ------------------------------------------------------------------ resected_lobe
_LOBECTOMY = re.compile(_FR["lobectomy"], _I)
_PNEUMONECTOMY = re.compile(_FR["pneumonectomy"], _I)
_NOT_DONE = re.compile(_FR["not_done"], _I)
_SURGICAL = re.compile(r"\b(?:" + _alt(_FR["surgical_site"]) + r")\b", _I)
_LOBE = re.compile(r"\b(left|right)\s+(upper|middle|lower)\s+lob(?:e|ar)\b", _I)


def _removed(a: Analysis) -> dict[tuple[str, str], tuple[int, int]]:
    """(side, level) of each lobe the report says was removed -> the span that says so ("*" level: the whole lung)."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for pat, whole in ((_LOBECTOMY, False), (_PNEUMONECTOMY, True)):
        for m in pat.finditer(a.text):
            if _NOT_DONE.search(a.text, max(0, m.start() - 40), m.start()):
                continue
            key = (m.group(1).lower(), "*" if whole else m.group(2).lower())
            out.setdefault(key, m.span())
    return out


@declare(FlagSpec(id="resected_lobe", type="laterality", family="single", reads=BODY,
                  explains="a finding in the {lobe}, which the report says was removed ({resection})",
                  example=_F.format("Status post right upper lobectomy. 3 mm nodule in the right upper lobe."),
                  clean=_F.format("Status post right upper lobectomy. 3 mm nodule in the left upper lobe.")))
def rule_resected_lobe(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding placed in a lobe (or lung) that the report says was resected."""
    if a.lower_words()[1].isdisjoint(("lobectomy", "pneumonectomy")):
        return []  # both patterns name one of these words (looked up in the report's set of words)
    removed = _removed(a)
    if not removed:
        return []
    flags = []
    for sent in a.sentences:
        if sent.section not in BODY or _SURGICAL.search(sent.text):
            continue
        for m in _LOBE.finditer(sent.text):
            side, level = m.group(1).lower(), m.group(2).lower()
            span = removed.get((side, level)) or removed.get((side, "*"))
            if span is None:
                continue
            s = sent.start + m.start()
            flags.append(make_flag("resected_lobe", a.text, s, sent.start + m.end(),
                                   f"a finding in the {m.group(0).lower()}, which the report says was removed "
                                   f"(\"{a.text[span[0]:span[1]]}\")", related=[span]))
            break
    return flags


# ------------------------------------------------------------------ no_such_fissure
_ONE_SIDED = [(side, re.compile(r"\b(left|right)\s+(?:(?:lung|hemithorax)\s+)?(?:" + pat + r")\b", _I))
              for side, pat in _FR["one_sided"].items()]
_ONE_SIDED_KEYS = substring_keys(list(_FR["one_sided"].values()))


@declare(FlagSpec(id="no_such_fissure", type="laterality", family="single", reads=("any",),
                  explains="the {structure} is in the {side} lung only",
                  example=_F.format("Unchanged fissural nodularity in the left minor fissure."),
                  clean=_F.format("Unchanged fissural nodularity in the right minor fissure.")))
def rule_no_such_fissure(a: Analysis, header: Any = None) -> list[Flag]:
    """A structure only one lung has, named on the other side ("left minor fissure")."""
    low, words = a.lower_words()
    if ("fissure" not in words if _ONE_SIDED_KEYS == ("fissure", "horizontal") else lacks(low, _ONE_SIDED_KEYS)):
        return []  # the packaged structures are fissures: a word-set lookup; a site's own: substring tests
    flags = []
    for side, pat in _ONE_SIDED:
        for m in pat.finditer(a.text):
            if m.group(1).lower() != side:
                flags.append(make_flag("no_such_fissure", a.text, m.start(), m.end(),
                                       f"the {m.group(0)[len(m.group(1)):].strip().lower()} is in the {side} lung "
                                       "only: side wrong?"))
    return flags


# ------------------------------------------------------------------ size_class
_CLASSES = [(re.compile(r"\b(?:" + pat + r")\b", _I), float(bound)) for pat, bound in _FR["size_classes"].items()]
_CLASS_KEYS = substring_keys(list(_FR["size_classes"]))
_CLASS_BREAK = re.compile(_FR["size_class_breaks"], _I)


@per_sentence
def _over_class(sentence: str) -> tuple[Hit, ...]:
    for pat, bound in _CLASSES:
        m = pat.search(sentence)
        if m is None:
            continue
        for s in _SIZE.finditer(sentence, m.end()):
            if _CLASS_BREAK.search(sentence, m.end(), s.start()):
                break
            if _mm(s) > bound:
                return (Hit(s.start(), s.end(), f"{s.group(0)} under \"{m.group(0)}\" (at most {bound:g} mm)",
                            ((m.start(), m.end()),)),)
    return ()


@declare(FlagSpec(id="size_class", type="measurement", family="single", reads=BODY,
                  explains="{size} under {size word} (at most {bound} mm)",
                  example=_F.format("Unchanged subcentimeter nodules, for example 16 mm right lower lobe nodule."),
                  clean=_F.format("Unchanged subcentimeter nodules, for example 6 mm right lower lobe nodule.")))
def rule_size_class(a: Analysis, header: Any = None) -> list[Flag]:
    """A measurement larger than the size word ("subcentimeter", "sub-5 mm") its findings were introduced with."""
    if not _report_has_size(a) or lacks(a.lower_text(), _CLASS_KEYS):  # the size test (cached) decides most reports
        return []
    return sentence_flags(a, "size_class", _over_class)


# ------------------------------------------------------------------ severity_measured
_AT_LEAST = {k.lower(): float(v) for k, v in _FR["measured_grade_sizes"]["at_least"].items()}
_AT_MOST = {k.lower(): float(v) for k, v in _FR["measured_grade_sizes"]["at_most"].items()}
_GRADE = re.compile(r"\b(" + _alt(list(_AT_LEAST) + list(_AT_MOST)) + r")\b", _I)
_MEASURED_BY = re.compile(_FR["measured_by"], _I)


@per_sentence
def _grade_against_measure(sentence: str) -> tuple[Hit, ...]:
    grades = list(_GRADE.finditer(sentence))
    if not grades:
        return ()
    for by in _MEASURED_BY.finditer(sentence):
        size = _SIZE.match(sentence, by.end())
        if size is None:
            continue
        before = [g for g in grades if g.end() <= by.start()]
        if not before:
            continue
        g = before[-1]
        gap = sentence[g.end(): by.start()]
        if len(gap.split()) > 20 or ";" in gap or _SIZE.search(gap) or " and " in gap.lower():
            continue
        grade, mm = g.group(1).lower(), _mm(size)
        if (grade in _AT_LEAST and mm >= _AT_LEAST[grade]) or (grade in _AT_MOST and mm <= _AT_MOST[grade]):
            return (Hit(g.start(), g.end(), f"\"{g.group(1)}\" but it measures {size.group(0)}",
                        ((size.start(), size.end()),)),)
    return ()


@declare(FlagSpec(id="severity_measured", type="severity", family="single", reads=BODY,
                  explains="{grade} but it measures {size}",
                  example=_F.format("There is a large nodule along the left major fissure measuring 3 mm."),
                  clean=_F.format("There is a small nodule along the left major fissure measuring 3 mm.")))
def rule_severity_measured(a: Analysis, header: Any = None) -> list[Flag]:
    """A grade whose finding's own measurement, given later in the sentence ("measuring 3 mm"), contradicts it."""
    if not _report_has_size(a) or "measur" not in a.lower_text() or not _GRADE.search(a.text):
        return []
    return sentence_flags(a, "severity_measured", _grade_against_measure)



# ------------------------------------------------------------------ caliber_measured
# most specific vessel first ("descending aorta" before "aorta")
_VESSELS = sorted(((re.compile(r"\b(?:" + pat + r")\b", _I), float(hi), float(lo), pat)
                   for pat, (hi, lo) in _FR["calibers"].items()), key=lambda v: -len(v[3]))
_NORMAL_CALIBER = re.compile(_FR["normal_caliber"], _I)
_DILATED = re.compile(_FR["dilated_caliber"], _I)


@per_sentence
def _caliber_against_size(sentence: str) -> tuple[Hit, ...]:
    """The calibre word, when the one vessel and the one measurement of the sentence contradict it."""
    vessels = []
    for pat, hi, lo, _ in _VESSELS:
        m = pat.search(sentence)
        if m and not any(v[0].start() <= m.start() < v[0].end() for v in vessels):
            vessels.append((m, hi, lo))
    sizes = list(_SIZE.finditer(sentence))
    if len(vessels) != 1 or len(sizes) != 1:
        return ()  # which size is which vessel's is not clear
    (v, hi, lo), size = vessels[0], sizes[0]
    mm = _mm(size)
    normal, dilated = _NORMAL_CALIBER.search(sentence), _DILATED.search(sentence)
    if normal and not dilated and mm > hi:
        return (Hit(normal.start(), normal.end(), f"\"{normal.group(0)}\" but the {v.group(0).lower()} measures "
                    f"{size.group(0)} (dilated above {hi:g} mm)", ((size.start(), size.end()),)),)
    if dilated and not normal and mm < lo:
        return (Hit(dilated.start(), dilated.end(), f"\"{dilated.group(0)}\" but the {v.group(0).lower()} measures "
                    f"{size.group(0)} (under {lo:g} mm)", ((size.start(), size.end()),)),)
    return ()


@declare(FlagSpec(id="caliber_measured", type="severity", family="single", reads=BODY,
                  explains="{normal/dilated} but the {vessel} measures {size}",
                  example=_F.format("Normal caliber ascending aorta measuring 4.6 cm."),
                  clean=_F.format("Normal caliber ascending aorta measuring 3.2 cm.")))
def rule_caliber_measured(a: Analysis, header: Any = None) -> list[Flag]:
    """An aorta or pulmonary artery called normal in calibre with a dilated measurement, or dilated with a normal
    one, in one sentence."""
    if not _report_has_size(a):
        return []
    low = a.lower_text()
    if ("aort" not in low and "pulmonary" not in low) or (not _NORMAL_CALIBER.search(low) and not _DILATED.search(low)):
        return []
    return sentence_flags(a, "caliber_measured", _caliber_against_size)


# ------------------------------------------------------------------ normal_heading
_HEADING_NORMAL = re.compile(_FR["heading_normal"], _I)


@declare(FlagSpec(id="normal_heading", type="negation", family="within", reads=("findings",),
                  explains="{sentence} states a finding under a sub-heading whose statement is {Normal.}",
                  example="FINDINGS:\nLUNGS: No consolidation.\nPLEURA: Normal. Small right pleural effusion.",
                  clean="FINDINGS:\nLUNGS: No consolidation.\nPLEURA: Normal. No pleural effusion."))
def rule_normal_heading(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding stated under an organ sub-heading that the report calls normal in a sentence of its own
    ("PLEURA: Normal. Small right pleural effusion."): one of the two statements is wrong."""
    sents = a.sentences
    normal = [i for i, s in enumerate(sents) if s.label and s.section == "findings" and len(s.text) < 40
              and _HEADING_NORMAL.match(s.text)]
    if not normal:
        return []
    flags = []
    for i in normal:
        block = {i}
        for step in (-1, 1):  # the sentences under the same sub-heading, next to it
            j = i + step
            while 0 <= j < len(sents) and sents[j].label == sents[i].label and sents[j].section == sents[i].section:
                block.add(j)
                j += step
        for m in a.mentions:
            if m.sentence in block and m.sentence != i and m.positive and not m.uncertain and not m.hypothetical \
                    and not m.past:
                s, n = sents[m.sentence], sents[i]
                flags.append(make_flag("normal_heading", a.text, s.start, s.end,
                                       f"\"{s.text.strip()}\" states a finding under the sub-heading whose statement "
                                       f"is \"{n.text.strip()}\"", related=[(n.start, n.end)]))
                break
    return flags

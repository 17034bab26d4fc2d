"""Rules that compare what two statements of one report say about the same finding.

Between FINDINGS and IMPRESSION: side, lobe, presence, size, severity and interval change; a
finding the impression leaves out; an acute finding under a normal impression. Within FINDINGS:
the same finding stated present and absent. Each rule is one function; all of them skip what a
reader would not call a contradiction (see ``_contradicts``): a *qualified* denial ("no acute
fracture", "no focal opacity") against a finding without that quality, findings of other organs
("no thyroid nodule" vs a lung granuloma), recommendations and conditions ("if there is concern
for fracture, consider..."), hedged statements, chronic findings under "no acute ...".
"""

from __future__ import annotations

import re
from typing import Any, Callable

from medmm.reports import lexicon as lx
from medmm.reports.analysis import DEVICE_TYPES, SIDE_WORDS, Analysis, Mention, _for_lower_case, per_sentence
from medmm.reports.findings_sizes import lower_search, plain_ascii
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import lacks, language_pack, substring_keys
from medmm.reports.registry import FlagSpec, declare

_RP: dict[str, str] = language_pack()["rule_patterns"]  # the rules' phrases: data (language-en.yaml)

_CONFLICTING_INTERVALS = {frozenset(p) for p in (("new", "same"), ("new", "less"), ("new", "gone"), ("more", "less"),
                                                 ("gone", "same"), ("gone", "more"), ("same", "more"), ("same", "less"),
                                                 ("new", "still"), ("gone", "still"))}
_SR = language_pack()["section_rules"]  # the words of these rules: data (language-en.yaml)
_NATURE_HEDGES = tuple(w.lower() for w in _SR["nature_hedges"])
_RESOLVED = tuple(w.lower() for w in _SR["resolved_triggers"])
# an impression statement that the study shows nothing acute (matched per impression sentence)
_NO_ACUTE = re.compile(_RP["no_acute"], re.I)
_NORMAL = re.compile(_RP["normal"], re.I)
_NO_ACUTE_SEARCH = lower_search(_NO_ACUTE)
_NO_ACUTE_KEYS = substring_keys([_RP["no_acute"]])  # one is in every match (derived from the pack's pattern)
_SIDED_NOUN = re.compile(r"\b(left|right)(?:-sided)?\s+(?:[a-z]+\s+){0,2}?(" + "|".join(_SR["sided_nouns"]) + r")\b", re.I)
_SIDED_NOUN_SEARCH = lower_search(_SIDED_NOUN)
_SIDED_NOUN_LOWER = _for_lower_case(_SIDED_NOUN)
_SIDED_NOUN_KEYS = substring_keys(_SR["sided_nouns"])  # one is in every match of _SIDED_NOUN (None: no gate)


# every device mention holds one of these (derived from the lexicon's device patterns; None: no such pre-test)
_DEVICE_KEYS = substring_keys([p for k, (_, pats) in lx.FINDINGS.items() if k in DEVICE_TYPES for p in pats])


def _family(m: Mention) -> str:
    return lx.FINDING_FAMILIES.get(m.type, m.type)


def _side_ok(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b or "bilateral" in (a, b)


def _quote(a: Analysis, m: Mention) -> str:
    return f"\"{a.sentences[m.sentence].text}\""


def _span(a: Analysis, m: Mention) -> tuple[int, int]:
    s = a.sentences[m.sentence]
    return s.start, s.end


def _firm_positive(m: Mention) -> bool:
    return m.positive and not m.uncertain and not m.hypothetical


def _firm_negative(m: Mention) -> bool:
    """A plain denial (not hedged, not hypothetical, not "resolved": a resolving finding may leave a residue)."""
    return m.negated and not m.uncertain and not m.hypothetical and (m.trigger or "").lower() not in _RESOLVED


def _contradicts(neg: Mention, pos: Mention) -> bool:
    """Does the denial ``neg`` deny what ``pos`` reports (same finding, same organ, same side)?"""
    if neg.type != pos.type or not _side_ok(neg.side, pos.side):
        return False
    if neg.site and pos.site and neg.site != pos.site:
        return False
    if neg.organ and pos.organ and neg.organ != pos.organ:  # "BONES: no lytic lesion" vs "LIVER: two lesions"
        return False
    if neg.qualifier and not re.search(r"\b" + neg.qualifier + r"\b", pos.clause_text, re.I):
        return False  # "no acute/focal/large X" denies only an X said to be acute/focal/large
    if neg.lobe and pos.lobe and neg.lobe != pos.lobe:
        return False
    normal = _NORMAL_MENTION.get(pos.type)
    if normal is not None and normal.search(pos.clause_text):
        return False  # "lymph nodes unchanged, all subcentimeter" reports no adenopathy
    return True


_NORMAL_MENTION = {k: re.compile(v, re.I) for k, v in lx.NORMAL_MENTION.items()}


def _same_finding(p: Mention, others: list[Mention]) -> list[Mention]:
    """Positive mentions of the same finding on a compatible side: the same type if any, else the same family."""
    same = [o for o in others if o.positive and o.type == p.type and _side_ok(o.side, p.side)]
    return same or [o for o in others if o.positive and _family(o) == _family(p) and _side_ok(o.side, p.side)]


def _any_positive(a: Analysis, mentions: list[Mention]) -> bool:
    """Does the impression report any finding (computed once per analysis)?"""
    hit = a.cache.get("imp_positive")
    if hit is None:
        hit = a.cache["imp_positive"] = any(m.positive for m in mentions)
    return hit


def _sections(a: Analysis) -> tuple[list[Mention], list[Mention]]:
    pair = a.cache.get("sections")
    if pair is None:
        pair = a.cache["sections"] = (a.mentions_in("findings"), a.mentions_in("impression"))
    return pair


_PREDOMINANCE = re.compile(_RP["predominance"], re.I)
_PREDOMINANCE_KEYS = substring_keys([_RP["predominance"]])
# a mention's side is one of lx.SIDES only where a side word of that side names it: one of these is in the text then
_ONE_SIDE_KEYS = substring_keys([w for side in lx.SIDES for w in SIDE_WORDS.get(side, ())])


@declare(FlagSpec(id='laterality_sections', type='laterality', family='sections', reads=('findings', 'impression'), explains='the impression gives the {finding} on the {side}; the findings give it on the {other side}: {quote}', example='FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small right pleural effusion.', clean='FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small left pleural effusion.'),
         gate=(None if _PREDOMINANCE_KEYS is None or _ONE_SIDE_KEYS is None else _ONE_SIDE_KEYS + _PREDOMINANCE_KEYS,),
         needs="positive impression", needs_unless=_PREDOMINANCE_KEYS)
def rule_laterality(a: Analysis, header: Any = None) -> list[Flag]:
    """A one-sided finding whose side differs between the sections (and neither section names both)."""
    fnd, imp = _sections(a)
    if not fnd or not _any_positive(a, imp):
        return _predominance_swap(a)
    flags = []
    for p in imp:  # a hedge about the nature ("opacity, atelectasis versus scarring") still places it on a side
        if p.side not in lx.SIDES or not p.positive or (p.uncertain and (p.trigger or "").lower() not in _NATURE_HEDGES):
            continue
        # the same finding: the same type if the findings name it, else the same family; in the same zone
        kin = (lambda x: x.type == p.type) if any(o.positive and o.type == p.type for o in fnd) \
            else (lambda x: _family(x) == _family(p))
        def zone_ok(o: Mention, p: Mention = p) -> bool:
            return not p.zone or not o.zone or o.zone == p.zone

        def side_of(o: Mention) -> str | None:
            return o.side or o.sentence_side  # "In the left midlung zone, there is a nodule."

        # the cheap tests first (types, then the lazily read attributes of a mention)
        sided = [o for o in fnd if kin(o) and o.positive and side_of(o) and zone_ok(o)]
        if not sided or p.hypothetical or any(_family(o) == _family(p) and o.positive and zone_ok(o)
                                               and side_of(o) in (p.side, "bilateral") for o in fnd):
            continue  # no finding of the kind on that side, nor a paraphrase of it ("left basal opacity")
        if any(kin(x) and x.positive and x.side not in (p.side, None) for x in imp if x is not p):
            continue  # the impression itself names both sides
        quotes = " ".join(dict.fromkeys(_quote(a, o) for o in sided[:2]))
        s, e = _span(a, p)
        flags.append(make_flag("laterality_sections", a.text, s, e,
                               f"the impression gives the {p.text} on the {p.side}; the findings give it on the "
                               f"{side_of(sided[0])}: {quotes}",
                               related=[_span(a, o) for o in (sided + [o for o in fnd if o.positive and _family(o) ==
                                        _family(p) and side_of(o) not in (None, p.side, "bilateral") and zone_ok(o)])][:3]))
    return flags + _predominance_swap(a)




def _predominance_swap(a: Analysis) -> list[Flag]:
    """"right greater than left" in one section, "left greater than right" in the other, for the same finding."""
    said: dict[str, list[tuple[str, int]]] = {}
    if lacks(a.lower_text(), _PREDOMINANCE_KEYS):
        return []
    ascii_text = a.text.isascii()  # then a sentence without a key has no match: substring tests before the search
    for i, s in enumerate(a.sentences):
        if s.section in ("findings", "impression") and not (ascii_text and lacks(s.text.lower(), _PREDOMINANCE_KEYS)):
            for m in _PREDOMINANCE.finditer(s.text):
                if m.group(1).lower() != m.group(2).lower():
                    said.setdefault(s.section, []).append((m.group(1).lower(), i))
    flags = []
    for side, i in said.get("impression", []):
        kinds = {x.type for x in a.mentions if x.sentence == i}
        others = [(sd, j) for sd, j in said.get("findings", []) if kinds & {x.type for x in a.mentions if x.sentence == j}]
        if others and all(sd != side for sd, _ in others):
            sent = a.sentences[i]
            other = a.sentences[others[0][1]]
            flags.append(make_flag("laterality_sections", a.text, sent.start, sent.end,
                                   f"the impression says {side} greater than the other side; the findings say "
                                   f"{others[0][0]} greater: {_quote_sentence(a, others[0][1])}",
                                   related=[(other.start, other.end)]))
    return flags


def _quote_sentence(a: Analysis, i: int) -> str:
    return f"\"{a.sentences[i].text}\""


def _may_name_side(text: str) -> bool:
    """In ASCII text a side is a lower-case "left" or "right" (a cheap test before the regex)."""
    if not text.isascii():
        return True
    low = text.lower()
    return "left" in low or "right" in low


@per_sentence
def _names_sided_noun(section_text: str) -> bool:
    # a section's text is the report's text between its offsets, and a section starts after a colon or white space:
    # searching it alone finds what searching the report between those offsets finds
    return _SIDED_NOUN_SEARCH(section_text) is not None  # (lower-cased where it is plain ASCII: the same spans)


def _sided_nouns(a: Analysis, section: str) -> dict[str, dict[str, int]]:
    """noun -> side -> index of the first sentence that names it with that side."""
    out: dict[str, dict[str, int]] = {}
    if not any(_may_name_side(sec.text) and _names_sided_noun(sec.text) for sec in a.sections if sec.name == section):
        return out
    for i, s in enumerate(a.sentences):
        if s.section != section:
            continue
        for noun, side in _sided_nouns_of(s.text):
            out.setdefault(noun, {}).setdefault(side, i)
    return out


@per_sentence
def _sided_nouns_of(sentence: str) -> tuple[tuple[str, str], ...]:
    """(structure, side) of each sided structure one sentence names, in order (cached: reports repeat sentences)."""
    if not _may_name_side(sentence):
        return ()  # no "left" or "right" (a substring test): no match
    out = []
    # the words are lower-cased below: on plain ASCII the lower-cased sentence's matches give the same
    for m in _SIDED_NOUN_LOWER.finditer(sentence.lower()) if plain_ascii(sentence) else _SIDED_NOUN.finditer(sentence):
        noun = m.group(2).lower().replace("clavicular", "clavicle").replace("humeral", "humerus").rstrip("s")
        noun = {"axillary": "axilla", "hilar": "hilum"}.get(noun, noun)
        out.append((noun, m.group(1).lower()))
    return tuple(out)


@declare(FlagSpec(id='laterality_anatomy', type='laterality', family='sections', reads=('findings', 'impression'), explains='the impression names the {side} {structure}; the findings name only the {other side} one: {quote}', example='FINDINGS: Elevation of the left hemidiaphragm.\n\nIMPRESSION: Elevated right hemidiaphragm.', clean='FINDINGS: Elevation of the left hemidiaphragm.\n\nIMPRESSION: Elevated left hemidiaphragm.'),
         gate=(("left", "right"), _SIDED_NOUN_KEYS))
def rule_laterality_anatomy(a: Analysis, header: Any = None) -> list[Flag]:
    """A sided structure (hemidiaphragm, clavicle, PICC line, ...) named with one side in the impression and
    only with the other side in the findings."""
    fnd, imp = _sections(a)
    if a.text.isascii():  # an ASCII report without "left" or "right" names no side in any section (_may_name_side)
        low = a.lower_text()
        if "left" not in low and "right" not in low:
            return []
    i_nouns = _sided_nouns(a, "impression")
    f_nouns = _sided_nouns(a, "findings") if i_nouns else {}
    flags = []
    for noun, sides in i_nouns.items():
        if len(sides) != 1 or noun not in f_nouns or len(f_nouns[noun]) != 1:
            continue
        (side, idx), (f_side, f_idx) = next(iter(sides.items())), next(iter(f_nouns[noun].items()))
        if side != f_side:
            sent, other = a.sentences[idx], a.sentences[f_idx]
            flags.append(make_flag("laterality_anatomy", a.text, sent.start, sent.end,
                                   f"the impression names the {side} {noun}; the findings name only the {f_side} "
                                   f"one: \"{other.text}\"", related=[(other.start, other.end)]))
    return flags


def _zone_swap(a: Analysis, fnd: list[Mention], imp: list[Mention]) -> list[Flag]:
    """The same one-zone finding (apex vs base, upper vs lower) placed in different zones by the two sections."""
    flags = []
    for p in imp:
        if not p.positive:
            continue
        same = _same_finding(p, fnd)
        if not same or not p.zone or p.lobe or not _firm_positive(p):
            continue
        zones = {o.zone for o in same}
        if not same or None in zones or len(zones) != 1 or p.zone in zones \
                or any(x.zone not in (p.zone, None) for x in imp if x is not p and _family(x) == _family(p)):
            continue
        o = same[0]
        s, e = _span(a, p)
        flags.append(make_flag("lobe_sections", a.text, s, e,
                               f"the impression places the {p.text} in the {p.zone} zone; the findings in the {o.zone} "
                               f"zone: {_quote(a, o)}", related=[_span(a, o)]))
    return flags


@declare(FlagSpec(id='lobe_sections', type='location', family='sections', reads=('findings', 'impression'), explains='the impression places the {finding} in the {lobe or zone}; the findings in the {other}: {quote}', example='FINDINGS: Consolidation in the right lower lobe.\n\nIMPRESSION: Right upper lobe pneumonia.', clean='FINDINGS: Consolidation in the right lower lobe.\n\nIMPRESSION: Right lower lobe pneumonia.'),
         needs="positive impression")
def rule_lobe(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding placed in one lobe (or zone) by the impression and in another by the findings."""
    fnd, imp = _sections(a)
    if not fnd or not _any_positive(a, imp):
        return []
    flags = _zone_swap(a, fnd, imp)
    for p in imp:
        if not p.positive or not any(o.positive and _family(o) == _family(p) for o in fnd) or not p.lobe \
                or not _firm_positive(p):
            continue
        same = [o for o in fnd if _family(o) == _family(p) and o.positive and o.lobe]
        lobes = {o.lobe for o in same}
        if len(lobes) != 1 or p.lobe in lobes or any(x.lobe not in (p.lobe, None) for x in imp if x is not p):
            continue
        o = same[0]
        o_lobe, p_lobe = o.lobe or "", p.lobe or ""  # both named: `same` and the test above keep only mentions with a lobe
        if o_lobe.split()[-2:] == p_lobe.split()[-2:] or o_lobe == "lingula" and "upper" in p_lobe \
                or p_lobe == "lingula" and "upper" in o_lobe:
            continue  # the same lobe (one section names the side, the other not) or a side swap (laterality's case)
        s, e = _span(a, p)
        flags.append(make_flag("lobe_sections", a.text, s, e,
                               f"the impression places the {p.text} in the {p.lobe}; the findings in the {o.lobe}: "
                               f"{_quote(a, o)}", related=[_span(a, o)]))
    return flags


@declare(FlagSpec(id='polarity_impression', type='contradiction', family='sections', reads=('findings', 'impression'), explains='the impression denies {finding} ({trigger}) but the findings report it: {quote}', example='FINDINGS: Small right pleural effusion.\n\nIMPRESSION: No pleural effusion.', clean='FINDINGS: Small right pleural effusion.\n\nIMPRESSION: Small right pleural effusion.'),
         FlagSpec(id='polarity_findings', type='negation', family='sections', reads=('findings', 'impression'), explains='the findings deny {finding} ({trigger}) but the impression reports it: {quote}', example='FINDINGS: No pneumothorax. The heart is normal.\n\nIMPRESSION: Small right pneumothorax.', clean='FINDINGS: Small right pneumothorax. The heart is normal.\n\nIMPRESSION: Small right pneumothorax.'),
         needs="positive finding")
def rule_polarity(a: Analysis, header: Any = None) -> list[Flag]:
    """The impression denies what the findings report (contradiction), or the findings deny what the
    impression reports (negation)."""
    fnd, imp = _sections(a)
    flags = []
    for p in imp:
        if p.negated:
            hits = [o for o in fnd if o.type == p.type and o.positive and _firm_negative(p) and _firm_positive(o)
                    and _contradicts(p, o)]
            if hits:
                s, e = _span(a, p)
                flags.append(make_flag("polarity_impression", a.text, s, e,
                                       f"the impression denies {p.text} (\"{p.trigger}\") but the findings report it: "
                                       f"{_quote(a, hits[0])}", related=[_span(a, hits[0])]))
        elif p.positive:  # "previous tuberculosis pneumonia" is not reported as present (asked only when needed)
            denials = [o for o in fnd if o.type == p.type and o.negated and not p.past and _firm_negative(o)
                       and _firm_positive(p) and _contradicts(o, p)]
            if denials and not [o for o in fnd if o.positive and o.type == p.type and _side_ok(o.side, p.side)]:
                o = denials[0]
                s, e = _span(a, o)
                flags.append(make_flag("polarity_findings", a.text, s, e,
                                       f"the findings deny {o.text} (\"{o.trigger}\") but the impression reports it: "
                                       f"{_quote(a, p)}", related=[_span(a, p)]))
    return flags


@declare(FlagSpec(id='measurement_sections', type='measurement', family='sections', reads=('findings', 'impression'), explains='{finding} measures {a} mm in the impression but {b} mm in the findings (a mm/cm unit slip?): {quote}', example='FINDINGS: A 6 mm nodule in the right upper lobe.\n\nIMPRESSION: 9 mm right upper lobe nodule.', clean='FINDINGS: A 6 mm nodule in the right upper lobe.\n\nIMPRESSION: 6 mm right upper lobe nodule.'),
         needs="positive impression")
def rule_measurement(a: Analysis, header: Any = None) -> list[Flag]:
    """The same finding measured differently in the two sections (a mm/cm slip named as such)."""
    return _impression_conflicts(a, "measurement_sections", _measurement_conflict)


_Conflict = tuple[tuple[int, int], str, tuple[int, int]]  # (span, explanation, related span)


def _impression_conflicts(a: Analysis, flag_id: str,
                          judge: Callable[[Analysis, Mention, list[Mention]], _Conflict | None]) -> list[Flag]:
    """The loop the impression-vs-findings rules share: for each positive impression mention, ``judge`` says whether
    a findings mention of the same finding conflicts with it (and where the flag goes); the id is the caller's."""
    fnd, imp = _sections(a)
    if not fnd or not _any_positive(a, imp):
        return []
    flags = []
    for p in imp:
        if not p.positive:
            continue
        hit = judge(a, p, fnd)
        if hit is not None:
            (s, e), says, related = hit
            flags.append(make_flag(flag_id, a.text, s, e, says, related=[related]))
    return flags


def _measurement_conflict(a: Analysis, p: Mention, fnd: list[Mention]) -> _Conflict | None:
    p_mm = p.size_mm
    if not p_mm or not p.size_text:
        return None
    same = [(o, o_mm) for o in fnd if o.positive and (o_mm := o.size_mm) and _family(o) == _family(p)
            and _side_ok(o.side, p.side) and not (o.lobe and p.lobe and o.lobe != p.lobe)]
    if not same or any(abs(o_mm - p_mm) <= max(1.0, 0.15 * p_mm) for _, o_mm in same):
        return None
    o, o_mm = min(same, key=lambda x: abs(x[1] - p_mm))
    ratio = max(o_mm, p_mm) / max(min(o_mm, p_mm), 1e-6)
    unit = abs(ratio - 10) < 0.5
    return (p.size_text, f"{p.text} measures {p_mm:g} mm in the impression but {o_mm:g} mm in the "
            f"findings{' (a mm/cm unit slip?)' if unit else ''}: {_quote(a, o)}", o.size_text or _span(a, o))


@declare(FlagSpec(id='severity_sections', type='severity', family='sections', reads=('findings', 'impression'), explains='the impression calls the {finding} {grade}; the findings call it {other grade}: {quote}', example='FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Large left pleural effusion.', clean='FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small left pleural effusion.'),
         needs="positive impression")
def rule_severity(a: Analysis, header: Any = None) -> list[Flag]:
    """The same finding graded two or more steps apart (small vs large, mild vs severe)."""
    return _impression_conflicts(a, "severity_sections", _severity_conflict)


def _severity_conflict(a: Analysis, p: Mention, fnd: list[Mention]) -> _Conflict | None:
    if not p.severity:
        return None
    same = [o for o in fnd if o.positive and o.severity and _family(o) == _family(p) and _side_ok(o.side, p.side)]
    ranks = {lx.SEVERITY_RANK[o.severity] for o in same}  # type: ignore[index]
    pr = lx.SEVERITY_RANK[p.severity]
    if not ranks or min(abs(r - pr) for r in ranks) < 2:
        return None
    o = same[0]
    return (_span(a, p), f"the impression calls the {p.text} {p.severity}; the findings call it {o.severity}: "
            f"{_quote(a, o)}", _span(a, o))


# the interval words: a mention has an interval only when its clause holds one of them (analysis._attr_interval), so
# a report holds one wherever interval_sections flags (its gate)
_INTERVAL_KEYS = tuple(lx.INTERVAL_DIRECTION)


@declare(FlagSpec(id='interval_sections', type='interval', family='sections', reads=('findings', 'impression'), explains='the impression calls the {finding} "{word}"; the findings call it "{other word}": {quote}', example='COMPARISON: 3/2/2024.\n\nFINDINGS: New left pleural effusion.\n\nIMPRESSION: Left pleural effusion, unchanged.', clean='COMPARISON: 3/2/2024.\n\nFINDINGS: New left pleural effusion.\n\nIMPRESSION: New left pleural effusion.'),
         gate=(_INTERVAL_KEYS,), needs=None if _DEVICE_KEYS is None else "positive impression",
         needs_unless=_DEVICE_KEYS)  # the impression's mentions unless a device is named (the second part)
def rule_interval_sections(a: Analysis, header: Any = None) -> list[Flag]:
    """The same finding called new in one section and stable in the other (or larger vs smaller); also a device
    ("Two new left-sided chest tubes" in the findings, "Stable left-sided chest tubes" in the impression)."""
    flags = _impression_conflicts(a, "interval_sections", _interval_conflict)
    fnd, imp = _sections(a)
    if flags or len(a.mentions) < len(fnd) + len(imp) + 2 or lacks(a.lower_text(), _DEVICE_KEYS):
        return flags  # fewer than two mentions outside the non-device lists, or no device word: no device named twice
    devices = [m for m in a.mentions if m.type in DEVICE_TYPES and m.section in ("findings", "impression")]
    if len(devices) > 1:  # reports rarely name a device twice: most stop here
        fnd = [m for m in devices if m.section == "findings"]
        for p in devices:
            hit = _interval_conflict(a, p, fnd) if p.section == "impression" and p.positive and fnd else None
            if hit is not None:
                (s, e), says, related = hit
                flags.append(make_flag("interval_sections", a.text, s, e, says, related=[related]))
    return flags


def _interval_conflict(a: Analysis, p: Mention, fnd: list[Mention]) -> _Conflict | None:
    if not p.interval:
        return None
    same = [o for o in fnd if o.positive and o.interval and o.type == p.type and _side_ok(o.side, p.side)]
    if not same or any(frozenset((o.interval, p.interval)) not in _CONFLICTING_INTERVALS for o in same):
        return None
    o = same[0]
    return (_span(a, p), f"the impression calls the {p.text} \"{p.interval_word}\"; the findings call it "
            f"\"{o.interval_word}\": {_quote(a, o)}", _span(a, o))


@per_sentence
def _reads_normal(impression: str) -> bool:
    return _NORMAL.match(impression.strip()) is not None


_MASS_SUMMARIES = re.compile(_SR["mass_summaries"], re.I)
_SUMMARY_SITES = frozenset(_SR["mass_summary_sites"])
_SITE_NAMES: dict[str, re.Pattern[str]] = {}  # organ -> its site words (lexicon site_words), compiled on first use


def _mass_summarised(m: Mention, impression: str) -> bool:
    """Does the impression speak of this mass by its nature (metastatic disease, a tumour) or name its organ?"""
    if _MASS_SUMMARIES.search(impression):
        return True
    site = m.site
    if site is None or site not in _SUMMARY_SITES:
        return False
    pat = _SITE_NAMES.get(site)
    if pat is None:
        words = sorted((w for w, o in lx.SITE_WORDS.items() if o == site), key=len, reverse=True)
        pat = _SITE_NAMES[site] = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", re.I)
    return pat.search(impression) is not None


@declare(FlagSpec(id='unsummarised_finding', type='omission', family='sections', reads=('findings', 'impression'), explains='the findings report {finding} but the impression, which lists other findings, does not mention it', example='FINDINGS: Small right apical pneumothorax. Left lower lobe atelectasis.\n\nIMPRESSION: Left lower lobe atelectasis.', clean='FINDINGS: Small right apical pneumothorax. Left lower lobe atelectasis.\n\nIMPRESSION: Small right pneumothorax. Left lower lobe atelectasis.'),
         needs="positive impression")
def rule_unsummarised(a: Analysis, header: Any = None) -> list[Flag]:
    """A pneumothorax or mass in the findings that an impression listing other findings never mentions."""
    fnd, imp = _sections(a)
    imp_sec = a.section("impression")
    if imp_sec is None or not any(m.positive for m in imp) or _reads_normal(imp_sec.text):
        return []
    families = {_family(m) for m in imp}
    for m in fnd:
        if m.type in ("pneumothorax", "mass") and _firm_positive(m) and not m.chronic and _family(m) not in families:
            if m.type == "mass" and _mass_summarised(m, imp_sec.text):
                continue  # "Left adrenal mass ..." under "metastatic disease in the ... left adrenal gland"
            s, e = _span(a, m)
            return [make_flag("unsummarised_finding", a.text, s, e,
                              f"the findings report {m.text} but the impression, which lists other findings, does "
                              f"not mention it")]
    return []


@declare(FlagSpec(id='unsupported_impression', type='omission', family='sections', reads=('findings', 'impression'), explains='the impression reports {finding} but the findings never mention it', example='FINDINGS: Heart size is normal. Mild left basilar atelectasis.\n\nIMPRESSION: Small right pneumothorax. Left basilar atelectasis.', clean='FINDINGS: Heart size is normal. Mild left basilar atelectasis.\n\nIMPRESSION: Left basilar atelectasis.'),
         needs="positive impression")
def rule_unsupported_impression(a: Analysis, header: Any = None) -> list[Flag]:
    """A pneumothorax stated plainly in the impression that the findings (several sentences) never name (other
    acute findings are often the impression's reading of what the findings describe: blunting -> effusion)."""
    fnd, imp = _sections(a)
    if not fnd or not _any_positive(a, imp):
        return []
    if len(a.sentences_in("findings")) < 2:
        return []
    named = {_family(m) for m in fnd}
    for p in imp:
        if p.type == "pneumothorax" and _firm_positive(p) and _family(p) not in named:
            s, e = _span(a, p)
            return [make_flag("unsupported_impression", a.text, s, e,
                              f"the impression reports {p.text} but the findings never mention it")]
    return []


@per_sentence
def _says_nothing_acute(sentence: str) -> bool:
    if sentence.isascii() and lacks(sentence.lower(), _NO_ACUTE_KEYS):
        return False  # every match names one of the keys ("acute", "active", "normal", "negative"): no regex
    return _NO_ACUTE_SEARCH(sentence) is not None  # (lower-cased where it is plain ASCII: the same spans)


@declare(FlagSpec(id='normal_impression', type='negation', family='sections', reads=('findings', 'impression'), explains='the findings report {finding} but the impression reads {statement}', example='FINDINGS: Moderate right pleural effusion.\n\nIMPRESSION: No acute cardiopulmonary abnormality.', clean='FINDINGS: No pleural effusion.\n\nIMPRESSION: No acute cardiopulmonary abnormality.'),
         needs="positive finding")
def rule_normal_impression(a: Analysis, header: Any = None) -> list[Flag]:
    """An acute finding stated plainly in the findings, absent from an impression that says nothing acute is seen."""
    fnd, imp = _sections(a)
    statement = next((s for s in a.sentences_in("impression") if _says_nothing_acute(s.text)), None)
    if statement is None:
        return []
    in_impression = {_family(m) for m in imp if m.positive}
    for m in fnd:
        if m.type in lx.ACUTE_FINDINGS and _firm_positive(m) and not m.chronic and _family(m) not in in_impression \
                and lx.SEVERITY_RANK.get(m.severity or "small", 1) >= 1:
            s, e = _span(a, m)
            return [make_flag("normal_impression", a.text, s, e,
                              f"the findings report {m.text} but the impression reads \"{statement.text[:80]}\"",
                              related=[(statement.start, statement.end)])]
    return []


_DEMONSTRATIVE = re.compile(lx.DEMONSTRATIVE_BEFORE, re.I)


def _refers_back(a: Analysis, m: Mention) -> bool:
    """Is ``m`` a reference to a finding already described ("the first measurements of this mass were 12 cm")?"""
    return _DEMONSTRATIVE.search(a.text, max(0, m.start - 40), m.start) is not None


def _antecedent_agrees(a: Analysis, fnd: list[Mention], neg: Mention, pos: Mention) -> bool:
    """May ``pos`` be the finding ``neg`` denies? A reference back ("this mass") stands on the side of the finding it
    refers to (the last one of its type described on a side before it): "a mass in the right kidney ... this mass
    ... no masses in the left kidney" is no contradiction."""
    phrase = _DEMONSTRATIVE.search(a.text, max(0, pos.start - 40), pos.start)
    if phrase is None:
        return True
    # the referring phrase may name the finding by another type too ("this mass lesion"): the antecedent is the last
    # finding of one of its types described before it; one of another type than the denial's is no finding the
    # denial denies, as a direct statement of it would not be ("a laryngeal mass ... no lesions in the mainstem
    # bronchi ... the tube ends just below this mass lesion"; a MedPix CT tune case, paraphrased)
    lo = phrase.start()
    types = {pos.type} | {o.type for o in fnd if lo <= o.start < pos.start}
    earlier = [o for o in fnd if o.type in types and o.positive and o.start < lo and o is not pos]
    if earlier and earlier[-1].type != neg.type:
        return False
    sides = [o.side or o.sentence_side for o in fnd if o.type == pos.type and o.positive and o.start < pos.start
             and o is not pos and (o.side or o.sentence_side)]
    return not sides or _side_ok(neg.side or neg.sentence_side, sides[-1])


@declare(FlagSpec(id='polarity_within', type='negation', family='within', reads=('findings',), explains='{sentence} contradicts {other sentence} in the same section', example='FINDINGS: There is a small left pleural effusion. The lungs are clear. No left pleural effusion.\n\nIMPRESSION: Effusion.', clean='FINDINGS: There is a small left pleural effusion. The lungs are clear. No pneumothorax.\n\nIMPRESSION: Effusion.'),
         needs="positive finding")
def rule_within_findings(a: Analysis, header: Any = None) -> list[Flag]:
    """The same finding (same organ, same side) stated present and absent within the findings."""
    fnd, imp = _sections(a)
    flags = []
    for n in fnd:
        if not n.negated:
            continue
        pos = [p for p in fnd if p.type == n.type and p.sentence != n.sentence and p.side == n.side and p.positive
               and _firm_negative(n) and _firm_positive(p) and _contradicts(n, p) and p.site == n.site
               and _antecedent_agrees(a, fnd, n, p)]
        if pos:
            s, e = _span(a, n)
            flags.append(make_flag("polarity_within", a.text, s, e,
                                   f"{_quote(a, n)} contradicts {_quote(a, pos[0])} in the same section",
                                   related=[_span(a, pos[0])]))
    return flags


SECTION_RULES = (rule_laterality, rule_laterality_anatomy, rule_lobe, rule_polarity, rule_measurement, rule_severity,
                 rule_interval_sections, rule_unsummarised, rule_unsupported_impression, rule_normal_impression,
                 rule_within_findings)

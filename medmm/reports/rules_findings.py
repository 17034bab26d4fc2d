"""Rules that read one statement of the findings against the rest of the findings or against anatomy: what a reader
of structured CT findings (organ sub-headings, no impression) can still see when a side, a size or a denial was
dictated wrong.

* ``resected_lobe``: a finding placed in a lobe the findings say was removed ("Status post right upper lobectomy."
  ... "nodule in the right upper lobe");
* ``size_class``: a measurement larger than the size word that introduces it ("subcentimeter nodules, for example
  16 mm", "sub-5 mm nodules ... 9 mm");
* ``severity_measured``: a grade that the finding's own measurement later in the sentence contradicts ("large nodule
  along the fissure measuring 3 mm", "tiny nodules measuring up to 3 cm"); the grade next to its size is
  ``severity_size`` / ``severity_measure``;
* ``node_size_denied``: a lymph node whose short axis no station's normal size reaches (15 mm) in findings that deny
  enlarged nodes at its station;
* ``caliber_measured``: an aorta or pulmonary artery called normal in calibre with a dilated measurement, or dilated
  with a normal one;
* ``normal_heading``: a finding stated under an organ sub-heading whose own sentence is "Normal." ("PLEURA: Normal.
  Small right pleural effusion.").

The interval rules of the same kind are in ``rules_findings_interval.py``. The words are data: the language pack's
``findings_rules`` (``medmm/configs/reports/language-en.yaml``). Each rule decides most reports on the report's set of
words, a few substrings or the cached size test before any per-sentence regex; every pattern is bounded.
"""

from __future__ import annotations

import operator
import re
from typing import Any

from medmm.reports.analysis import Analysis, _for_lower_case, per_sentence, unit_mm
from medmm.reports.findings_sizes import EXAMPLE, MAX_DENIALS, SIZE, plain_ascii, report_has_size, size_mm
from medmm.reports.findings_sizes import PACK as _FR
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import lacks, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY, Hit, sentence_flags

# ------------------------------------------------------------------ node_size_denied
_NODE_DENIAL = re.compile(_FR["node_denial"], re.I)
_NODE_LIMITED = re.compile(_FR["node_denial_limited"], re.I)
_NODE_SHORT_AXIS = float(_FR["node_short_axis_mm"])
_STATIONS = {g: re.compile(r"\b(?:" + longest_first(p) + r")\b", re.I) for g, p in _FR["node_stations"].items()}
_LONG_AXIS = re.compile(_FR["long_axis"], re.I)
_NODE_WORD = re.compile(r"\b(?:lymph\s+)?nodes?\b", re.I)


def _stations(text: str) -> set[str]:
    return {g for g, pat in _STATIONS.items() if pat.search(text)}


@declare(FlagSpec(id="node_size_denied", type="measurement", family="single", reads=BODY,
                  explains="a lymph node of {size} (short axis) but the findings say {denial}",
                  example=EXAMPLE.format("No enlarged mediastinal or hilar lymph nodes. A 19 mm subcarinal node."),
                  clean=EXAMPLE.format("No enlarged mediastinal or hilar lymph nodes. A 9 mm subcarinal node.")),
         gate=(("node",), ("enlarged", "significant"), ("mm", "cm", "milli", "centi")))
def rule_node_size_denied(a: Analysis, header: Any = None) -> list[Flag]:
    """A lymph node whose short axis no station's normal size reaches, in findings that deny enlarged nodes at its
    station."""
    words = a.lower_words()[1]
    if words.isdisjoint(("node", "nodes")) or words.isdisjoint(("enlarged", "significant")) \
            or not report_has_size(a):
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
    denials = denials[:MAX_DENIALS]  # a report states one or two; more is garbage input (bounded pairing)
    flags = []
    for sent in a.sentences:
        if sent.section not in BODY or not _NODE_WORD.search(sent.text) or _LONG_AXIS.search(sent.text):
            continue
        own = next((m for d, m, _ in denials if d is sent), None)
        for size in SIZE.finditer(sent.text):
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
_LOBECTOMY = re.compile(_FR["lobectomy"], re.I)
_PNEUMONECTOMY = re.compile(_FR["pneumonectomy"], re.I)
_NOT_DONE = re.compile(_FR["not_done"], re.I)
_SURGICAL = re.compile(r"\b(?:" + longest_first(_FR["surgical_site"]) + r")\b", re.I)
_LOBE = re.compile(r"\b(left|right)\s+(upper|middle|lower)\s+lob(?:e|ar)\b", re.I)


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
                  example=EXAMPLE.format("Status post right upper lobectomy. 3 mm nodule in the right upper lobe."),
                  clean=EXAMPLE.format("Status post right upper lobectomy. 3 mm nodule in the left upper lobe.")),
         gate=(("lobectomy", "pneumonectomy"),))
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


# ------------------------------------------------------------------ size_class
_CLASSES = [(re.compile(r"\b(?:" + pat + r")\b", re.I), float(bound)) for pat, bound in _FR["size_classes"].items()]
_CLASS_KEYS = substring_keys(list(_FR["size_classes"]))
_CLASS_BREAK = re.compile(_FR["size_class_breaks"], re.I)


@per_sentence
def _over_class(sentence: str) -> tuple[Hit, ...]:
    for pat, bound in _CLASSES:
        m = pat.search(sentence)
        if m is None:
            continue
        for s in SIZE.finditer(sentence, m.end()):
            if _CLASS_BREAK.search(sentence, m.end(), s.start()):
                break
            if size_mm(s) > bound:
                return (Hit(s.start(), s.end(), f"{s.group(0)} under \"{m.group(0)}\" (at most {bound:g} mm)",
                            ((m.start(), m.end()),)),)
    return ()


@declare(FlagSpec(id="size_class", type="measurement", family="single", reads=BODY,
                  explains="{size} under {size word} (at most {bound} mm)",
                  example=EXAMPLE.format("Several subcentimeter lung nodules, including a 14 mm nodule in the left upper lobe."),
                  clean=EXAMPLE.format("Several subcentimeter lung nodules, including a 4 mm nodule in the left upper lobe.")),
         gate=(("mm", "cm", "milli", "centi"), _CLASS_KEYS))
def rule_size_class(a: Analysis, header: Any = None) -> list[Flag]:
    """A measurement larger than the size word ("subcentimeter", "sub-5 mm") its findings were introduced with."""
    if not report_has_size(a) or lacks(a.lower_text(), _CLASS_KEYS):  # the size test (cached) decides most reports
        return []
    return sentence_flags(a, "size_class", _over_class)


# ------------------------------------------------------------------ severity_measured
_AT_LEAST = {k.lower(): float(v) for k, v in _FR["measured_grade_sizes"]["at_least"].items()}
_AT_MOST = {k.lower(): float(v) for k, v in _FR["measured_grade_sizes"]["at_most"].items()}
_GRADE = re.compile(r"\b(" + longest_first(list(_AT_LEAST) + list(_AT_MOST)) + r")\b(?!" + _FR["grade_in_name"] + ")",
                    re.I)
# findings measured in millimetres by nature ("large disc extrusion measuring 6 mm"): a smaller bound for high grades
_SMALL_SCALE = re.compile(_FR["small_scale_findings"], re.I)
_SMALL_SCALE_MOST = float(_FR["small_scale_at_most"])
# a low grade of an organ's own size: the organ right after it, or the organ said to be so just before it
_ORGAN_AFTER = re.compile(r"\s+(?:[a-z-]+\s+){0,2}?(?:" + _FR["graded_organs"] + r")\b", re.I)
_ORGAN_BEFORE = re.compile(r"\b(?:" + _FR["graded_organs"] + r")\s+(?:is|are|appears?|remains?)\s+(?:\w+ly\s+)?$",
                           re.I)
_GRADE_KEYS = substring_keys(list(_AT_LEAST) + list(_AT_MOST))  # one is in every match of _GRADE (None: no pre-test)
# the grades as words, looked up in the report's set of words first (None: a site's grade that is not one word)
_GRADE_WORDS = frozenset(_AT_LEAST) | frozenset(_AT_MOST) \
    if all(w.isalpha() for w in list(_AT_LEAST) + list(_AT_MOST)) else None
_MEASURED_BY = re.compile(_FR["measured_by"], re.I)
# "Large right lower lobe pulmonary nodule 3 mm": the noun the size follows, read only close to its grade
_MEASURED_BY_NOUN = re.compile(_FR["measured_by_noun"], re.I)
_NOUN_GAP_WORDS = 6
_NOUN_KEYS = substring_keys([_FR["measured_by_noun"]])  # each match holds one of these (None: no pre-test)
# a word between the grade and "measuring" that hands the size to another finding ("large effusion with a nodule
# measuring 4 mm"): the pack's measured_gap_breaks
_GAP_BREAK = re.compile(r"\b(?:" + longest_first(_FR["measured_gap_breaks"]) + r")\b", re.I)


def _measures(sentence: str) -> list[tuple[re.Match[str], bool]]:
    """The words that hand a size to the finding before them: "measuring" (False) or the finding's noun (True)."""
    found = [(m, False) for m in _MEASURED_BY.finditer(sentence)] + [(m, True) for m in _MEASURED_BY_NOUN.finditer(sentence)]
    return sorted(found, key=lambda f: f[0].start())


@per_sentence
def _grade_against_measure(sentence: str) -> tuple[Hit, ...]:
    if sentence.isascii() and lacks(sentence.lower(), _GRADE_KEYS):
        return ()  # no grade word (substring tests before the search)
    grades = list(_GRADE.finditer(sentence))
    if not grades:
        return ()
    for by, noun in _measures(sentence):
        size = SIZE.match(sentence, by.end())
        if size is None:
            continue
        before = [g for g in grades if g.end() <= by.start()]
        if not before:
            continue
        g = before[-1]
        gap = sentence[g.end(): by.start()]
        if len(gap.split()) > (_NOUN_GAP_WORDS if noun else 20) or ";" in gap or SIZE.search(gap) \
                or _GAP_BREAK.search(gap) or (noun and "," in gap):
            continue
        grade, mm = g.group(1).lower(), size_mm(size)
        if grade in _AT_LEAST and (_ORGAN_AFTER.match(sentence, g.end())
                                   or _ORGAN_BEFORE.search(sentence, max(0, g.start() - 60), g.start())):
            continue  # "small right kidney measuring 7.5 cm": the organ's size
        most = _AT_MOST.get(grade)
        if most is not None and _SMALL_SCALE.search(sentence, g.start(), by.start()):
            most = min(most, _SMALL_SCALE_MOST)  # "large disc extrusion measuring 6 mm": a disc's scale
        if (grade in _AT_LEAST and mm >= _AT_LEAST[grade]) or (most is not None and mm <= most):
            return (Hit(g.start(), g.end(), f"\"{g.group(1)}\" but it measures {size.group(0)}",
                        ((size.start(), size.end()),)),)
    return ()


@declare(FlagSpec(id="severity_measured", type="severity", family="single", reads=BODY,
                  explains="{grade} but it measures {size}",
                  example=EXAMPLE.format("A large nodule is seen in the right middle lobe, measuring 3 mm."),
                  clean=EXAMPLE.format("A small nodule is seen in the right middle lobe, measuring 3 mm.")),
         gate=(("mm", "cm", "milli", "centi"), None if _NOUN_KEYS is None else ("measur",) + _NOUN_KEYS))
def rule_severity_measured(a: Analysis, header: Any = None) -> list[Flag]:
    """A grade whose finding's own measurement, given later in the sentence ("measuring 3 mm"), contradicts it."""
    if not report_has_size(a) or (_GRADE_WORDS is not None and a.lower_words()[1].isdisjoint(_GRADE_WORDS)) \
            or ("measur" not in a.lower_text() and lacks(a.lower_text(), _NOUN_KEYS)) or not _GRADE.search(a.text):
        return []
    return sentence_flags(a, "severity_measured", _grade_against_measure)



# ------------------------------------------------------------------ caliber_measured
# most specific vessel first ("descending aorta" before "aorta")
_VESSELS = sorted(((re.compile(r"\b(?:" + pat + r")\b", re.I), float(hi), float(lo), pat)
                   for pat, (hi, lo) in _FR["calibers"].items()), key=lambda v: -len(v[3]))
_VESSEL_KEYS = substring_keys(list(_FR["calibers"]))  # one is in every vessel's match (None: no pre-test)
_NORMAL_CALIBER = re.compile(_FR["normal_caliber"], re.I)
_DILATED = re.compile(_FR["dilated_caliber"], re.I)
_NORMAL_CALIBER_LOWER, _DILATED_LOWER = _for_lower_case(_NORMAL_CALIBER), _for_lower_case(_DILATED)


@per_sentence
def _caliber_against_size(sentence: str) -> tuple[Hit, ...]:
    """The calibre word, when the one vessel and the one measurement of the sentence contradict it."""
    if sentence.isascii() and lacks(sentence.lower(), _VESSEL_KEYS):
        return ()  # no vessel named (substring tests before the vessels' searches)
    found = [(m, hi, lo) for pat, hi, lo, _ in _VESSELS if (m := pat.search(sentence))]
    found.sort(key=lambda v: v[0].start() - v[0].end())  # the longest name first: "descending aorta" over "aorta"
    vessels: list[tuple[re.Match[str], float, float]] = []
    for cand in found:
        if not any(cand[0].start() < k[0].end() and k[0].start() < cand[0].end() for k in vessels):
            vessels.append(cand)
    sizes = list(SIZE.finditer(sentence))
    if len(vessels) != 1 or len(sizes) != 1:
        return ()  # which size is which vessel's is not clear
    (v, hi, lo), size = vessels[0], sizes[0]
    mm = size_mm(size)
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
                  example=EXAMPLE.format("Normal caliber ascending aorta measuring 4.6 cm."),
                  clean=EXAMPLE.format("Normal caliber ascending aorta measuring 3.2 cm.")),
         gate=(("mm", "cm", "milli", "centi"), ("aort", "pulmonary")))
def rule_caliber_measured(a: Analysis, header: Any = None) -> list[Flag]:
    """An aorta or pulmonary artery called normal in calibre with a dilated measurement, or dilated with a normal
    one, in one sentence."""
    if not report_has_size(a):
        return []
    low = a.lower_text()
    if "aort" not in low and "pulmonary" not in low:
        return []
    normal, dilated = (_NORMAL_CALIBER_LOWER, _DILATED_LOWER) if plain_ascii(a.text) else (_NORMAL_CALIBER, _DILATED)
    if not normal.search(low) and not dilated.search(low):  # (lower-cased text: the same matches)
        return []
    return sentence_flags(a, "caliber_measured", _caliber_against_size)


# ------------------------------------------------------------------ normal_heading
_HEADING_NORMAL = re.compile(_FR["heading_normal"], re.I)
_LABEL = operator.attrgetter("label")


@declare(FlagSpec(id="normal_heading", type="negation", family="within", reads=("findings",),
                  explains="{sentence} states a finding under a sub-heading whose statement is {Normal.}",
                  example="FINDINGS:\nLUNGS: No consolidation.\nPLEURA: Normal. Small right pleural effusion.",
                  clean="FINDINGS:\nLUNGS: No consolidation.\nPLEURA: Normal. No pleural effusion."))
def rule_normal_heading(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding stated under an organ sub-heading that the report calls normal in a sentence of its own
    ("PLEURA: Normal. Small right pleural effusion."): one of the two statements is wrong."""
    if not any(map(_LABEL, a.sections)):
        return []  # most reports: no organ sub-heading (a sentence's label is its section's: analysis.analyze)
    sents = a.sentences
    if not any(s.label and len(s.text) < 40 and _HEADING_NORMAL.match(s.text) for s in sents):
        return []
    # the runs of sentences under one sub-heading (one pass), each with its "Normal." sentence, if any
    block_of: dict[int, int] = {}
    normal_of: dict[int, int] = {}
    b = -1
    for i, s in enumerate(sents):
        if not i or s.label != sents[i - 1].label or s.section != sents[i - 1].section:
            b += 1
        block_of[i] = b
        if s.label and s.section == "findings" and b not in normal_of and len(s.text) < 40 \
                and _HEADING_NORMAL.match(s.text):
            normal_of[b] = i
    flags = []
    done: set[int] = set()
    for m in a.mentions:
        blk = block_of.get(m.sentence)
        if blk is None:
            continue
        n = normal_of.get(blk)
        if n is None or blk in done or m.sentence == n or not m.positive or m.uncertain or m.hypothetical or m.past:
            continue
        done.add(blk)
        s, ns = sents[m.sentence], sents[n]
        flags.append(make_flag("normal_heading", a.text, s.start, s.end,
                               f"\"{s.text.strip()}\" states a finding under the sub-heading whose statement is "
                               f"\"{ns.text.strip()}\"", related=[(ns.start, ns.end)]))
    return flags

"""Single-mention errors a reader can see: an injector written to measure them (seeded, with provenance).

An error *stated once* is not repeated in another section, so no findings-vs-impression comparison can see it.
Some are visible only in the image (a side swapped in the one sentence that names it). This injector makes only the
other kind: each edit changes one statement so that it disagrees with a *cue* the report itself holds, and the
cue's span is recorded with the edit, so a reader (and an evaluation) can check that the error is visible:

==================  ==================================================================  ===========================
family              edit                                                                cue (recorded, unchanged)
==================  ==================================================================  ===========================
interval_no_prior   an interval word ("new", "unchanged", "increased", "again seen"...)  COMPARISON: None / no prior
                    added to a positive finding sentence
interval_summary    a change word ("new", "increased", "worsening"...) added to a           a body sentence saying the
                    positive finding sentence                                            study did not change
lobe_side           a lobe that does not exist on the side named (right middle lobe ->     the side word
                    left; left lingula -> right; left upper/lower lobe -> left middle)
side_phrase         the side of a lobe flipped where the same phrase names the original    the other side word
                    side for the same finding ("opacity at the left base ... within the
                    left lower lobe")
lobe_zone           upper <-> lower lobe where the same phrase names the zone (apex,        the zone word
                    base, basilar, apical)
severity_measure    a grade that the finding's own measurement contradicts ("large 3 mm",  the measurement
                    "tiny 4 cm"), or the unit changed under a grade ("small 8 mm" ->
                    "small 8 cm")
severity_double     a second, clashing grade next to the grade of a finding ("trace" ->    the original grade
                    "trace moderate"): an edit left half-done in dictation
dropped_no          "No" dropped from a list of denied findings ("No focal consolidation,   the "or" of the list
                    effusion or pneumothorax." -> "Focal consolidation, effusion or
                    pneumothorax."): the list keeps the grammar of a denial
header_laterality   the one sided statement of a report flipped, with the header's         ImageLaterality (header)
                    ImageLaterality set to the original side (chest radiographs carry no
                    laterality: the header is made for the test)
==================  ==================================================================  ===========================

Independence: like :mod:`medmm.reports.inject`, this module reads only the public vocabulary
(:mod:`medmm.reports.lexicon`) and the sentence splitter (:mod:`medmm.reports.sections`) and never a checker module
(``tests/reports/test_independence.py``). Its patterns are its own. Every edit carries ``family``, ``cue_start`` /
``cue_end`` / ``cue`` (the words it now disagrees with), the original and edited sentence and the span of the edit.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from medmm.reports.sections import Sentence, split_sections, split_sentences

__all__ = ["SINGLE_FAMILIES", "SingleEdit", "inject_single", "single_mention_rows"]

_BODY = ("findings", "impression")


@dataclass
class SingleEdit:
    """One single-mention edit and its provenance (the keys of an ``errors`` entry of a check-eval row)."""

    family: str
    type: str  # taxonomy id
    original_sentence: str
    edited_sentence: str
    start: int  # span of the changed words in the edited report
    end: int
    cue: str  # the words of the report the edit now disagrees with
    cue_start: int  # their span in the edited report (-1: the cue is in the header)
    cue_end: int
    detail: str
    complex: str = "substitute"
    text_detectable: bool = True
    model: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ the injector's own patterns
_FINDING = re.compile(r"\b(?:effusions?|pneumothorax|opacit(?:y|ies)|opacification|consolidation|atelectasis|"
                      r"airspace\s+disease|infiltrates?|pneumonia|nodules?|mass(?:es)?|granulomas?|scarring|"
                      r"cardiomegaly|edema|fractures?|lesions?|densit(?:y|ies)|calcifications?|thickening|"
                      r"emphysema|hyperinflation|scoliosis|adenopathy|lymphadenopathy|collapse|fibrosis)\b", re.I)
_DENIAL = re.compile(r"\b(?:no|not|without|negative|free|clear|resolved|resolution|absence|normal|unremarkable|"
                     r"none)\b", re.I)
_UNSURE = re.compile(r"\b(?:may|might|possibl[ey]|probabl[ey]|likely|suspect\w*|question\w*|versus|vs|cannot|could|"
                     r"if|recommend\w*|consider\w*|concern\w*|suggest\w*|history|prior|previous|compar\w*)\b", re.I)
_HAS_INTERVAL = re.compile(r"\b(?:new(?:ly)?|unchanged|stable|persist\w*|again|redemonstrat\w*|increas\w*|"
                           r"decreas\w*|improv\w*|worse\w*|resolv\w*|interval|since|chang\w*|progress\w*|"
                           r"enlarg\w*|smaller|larger|previously|residual|continued|remains?)\b", re.I)
_NONE_COMPARISON = re.compile(r"^\W*(?:none|no\s+(?:prior|previous|comparison)|n/?a\b|not\s+available)", re.I)
_WHOLE_STUDY_SAME = re.compile(r"^\W*(?:\d+[.)]\s*)?(?:no\s+(?:significant\s+|interval\s+|radiographic\s+)*"
                               r"(?:interval\s+)?change|(?:stable|unchanged)(?:\s+(?:appearance\s+of\s+(?:the\s+)?)?"
                               r"(?:chest|exam(?:ination)?|study|radiographic\s+appearance|appearance|findings))?|"
                               r"(?:the\s+)?(?:chest|exam(?:ination)?|findings)\s+(?:is|are)\s+(?:stable|unchanged))"
                               r"(?:\s+(?:since|from|compared\s+(?:to|with))\s+[^.]{0,40})?\s*\.?\s*$", re.I)
_GRADES = {"trace": 0, "tiny": 0, "minimal": 0, "slight": 0, "small": 1, "mild": 1, "moderate": 2, "large": 3,
           "severe": 3, "extensive": 3, "marked": 3, "massive": 4}
_GRADE = re.compile(r"\b(" + "|".join(_GRADES) + r")\b", re.I)
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(mm|cm)\b", re.I)
_SIDE = re.compile(r"\b(left|right)\b", re.I)
_SIDED_LOBE = re.compile(r"\b(left|right)\s+(upper|middle|lower)\s+lobe\b", re.I)
_LINGULA = re.compile(r"\b(?:(left|the)\s+)?(lingula(?:r)?)\b", re.I)
_ZONE = re.compile(r"\b(apex|apices|apical|base|bases|basilar|basal|costophrenic)\b", re.I)
_ZONE_LEVEL = {"apex": "upper", "apices": "upper", "apical": "upper", "base": "lower", "bases": "lower",
               "basilar": "lower", "basal": "lower", "costophrenic": "lower"}
_LIST_BREAK = re.compile(r"\b(?:and|or|but|while|whereas|versus|than|bilateral\w*|both)\b|[,;:/.]", re.I)


def _case_like(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


class _Report:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sections = split_sections(text)
        self.sentences: list[Sentence] = split_sentences(text, self.sections)
        self.body = [s for s in self.sentences if s.section in _BODY]

    def section(self, name: str):  # noqa: ANN201
        return next((s for s in self.sections if s.name == name), None)

    def positive(self) -> list[Sentence]:
        """Firm body sentences that report a finding (no denial, hedge or prior named)."""
        return [s for s in self.body if _FINDING.search(s.text) and not _DENIAL.search(s.text)
                and not _UNSURE.search(s.text) and not _HAS_INTERVAL.search(s.text)]


def _edit(r: _Report, s: Sentence, a: int, b: int, new: str, family: str, kind: str, cue: tuple[int, int] | None,
          detail: str, complex_: str = "substitute") -> tuple[str, SingleEdit]:
    """Replace ``s.text[a:b]`` by ``new``; the cue span is given in the original report and moved if it lies after."""
    text = r.text[: s.start + a] + new + r.text[s.start + b:]
    shift = len(new) - (b - a)
    cs, ce = cue if cue else (-1, -1)
    if cs >= s.start + b:
        cs, ce = cs + shift, ce + shift
    edited = s.text[:a] + new + s.text[b:]
    cue_text = text[cs:ce] if cs >= 0 else ""
    return text, SingleEdit(family, kind, s.text, edited, s.start + a, s.start + a + len(new), cue_text, cs, ce,
                            detail, complex_, True, f"single:{family}")


def _pick(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))] if items else None


def _stripped_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# ------------------------------------------------------------------ families
_PREFIX_INTERVAL = ("New", "Stable", "Unchanged", "Increased", "Persistent", "Worsening", "Improving", "Decreased")
_SUFFIX_INTERVAL = (", unchanged", ", which is new", ", again seen", ", increased", ", slightly improved",
                    ", decreased", ", stable", ", worsened")
_CHANGE_PREFIX = ("New", "Increased", "Worsening", "Enlarging", "Decreased", "Improving")
_CHANGE_SUFFIX = (", which is new", ", increased", ", worsened", ", decreased", ", improved", ", newly seen")


def _add_interval(r: _Report, s: Sentence, rng: np.random.Generator, prefixes: tuple[str, ...],
                  suffixes: tuple[str, ...], family: str, cue: tuple[int, int], why: str):  # noqa: ANN202
    body = s.text.rstrip()
    grade = re.match(r"(?:there\s+(?:is|are)\s+)?(?:an?\s+)?", body, re.I)
    opens_with_noun_phrase = grade is not None and grade.end() == 0 and not re.match(
        r"(?:the|there|it|this|these|they|heart|lungs?)\b", body, re.I)
    if opens_with_noun_phrase and rng.random() < 0.5:
        word = str(_pick(rng, list(prefixes)))
        new = word + " " + body[:1].lower() + body[1:]
        return _edit(r, s, 0, len(body), new, family, "interval", cue, f"\"{word}\" added ({why})", "insert")
    word = str(_pick(rng, list(suffixes)))
    end = len(body) - 1 if body.endswith(".") else len(body)
    new = body[:end] + word
    return _edit(r, s, end, end, word, family, "interval", cue, f"\"{word.strip(', ')}\" added ({why})",
                 "insert") if new else None


def fam_interval_no_prior(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    comp = r.section("comparison")
    if comp is None or not _NONE_COMPARISON.match(comp.text):
        return None
    s = _pick(rng, r.positive())
    if s is None:
        return None
    return _add_interval(r, s, rng, _PREFIX_INTERVAL, _SUFFIX_INTERVAL, "interval_no_prior",
                         _stripped_span(r.text, comp.start, comp.end), "COMPARISON says there is no prior")


def fam_interval_summary(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    same = [s for s in r.body if _WHOLE_STUDY_SAME.match(s.text)]
    if not same:
        return None
    cands = [s for s in r.positive() if s not in same]
    s = _pick(rng, cands)
    if s is None:
        return None
    cue = same[0]
    return _add_interval(r, s, rng, _CHANGE_PREFIX, _CHANGE_SUFFIX, "interval_summary", (cue.start, cue.end),
                         "the report says nothing changed")


def fam_lobe_side(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    cands = []
    for s in r.body:
        for m in _SIDED_LOBE.finditer(s.text):
            side, lobe = m.group(1).lower(), m.group(2).lower()
            if side == "right" and lobe == "middle":
                cands.append((s, m.start(1), m.end(1), _case_like("left", m.group(1)), "right middle lobe -> left"))
            elif side == "left" and lobe in ("upper", "lower"):
                cands.append((s, m.start(2), m.end(2), "middle", f"left {lobe} lobe -> left middle lobe"))
        for m in _LINGULA.finditer(s.text):
            if (m.group(1) or "").lower() == "left":
                cands.append((s, m.start(1), m.end(1), _case_like("right", m.group(1)), "left lingula -> right"))
            elif m.group(1):  # "the lingula" -> "the right lingula"
                cands.append((s, m.end(1) + 1, m.end(1) + 1, "right ", "the lingula -> the right lingula"))
    pick = _pick(rng, cands)
    if pick is None:
        return None
    s, a, b, new, why = pick
    # the cue is the lobe name or side left standing next to the edit
    around = re.search(r"(?:left|right|middle|lingula\w*)", s.text[b: b + 20], re.I) if new in ("left", "Left", "middle") \
        else re.search(r"lingula\w*", s.text[a: a + 20], re.I)
    cue = None
    if around is not None:
        base = b if new in ("left", "Left", "middle") else a
        cue = (s.start + base + around.start(), s.start + base + around.end())
    return _edit(r, s, a, b, new, "lobe_side", "laterality", cue, why)


def fam_side_phrase(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    cands = []
    for s in r.body:
        sides = list(_SIDE.finditer(s.text))
        if len(sides) < 2 or len({m.group(1).lower() for m in sides}) != 1:
            continue
        for m in _SIDED_LOBE.finditer(s.text):
            if m.group(2).lower() == "middle":
                continue
            others = [o for o in sides if o.start() != m.start(1)]
            for o in others:
                a, b = sorted((o.end(), m.start(1)))
                if not _LIST_BREAK.search(s.text[a:b]) and len(s.text[a:b].split()) <= 10:
                    cands.append((s, m, o))
                    break
    pick = _pick(rng, cands)
    if pick is None:
        return None
    s, m, o = pick
    new = _case_like("left" if m.group(1).lower() == "right" else "right", m.group(1))
    return _edit(r, s, m.start(1), m.end(1), new, "side_phrase", "laterality", (s.start + o.start(), s.start + o.end()),
                 f"{m.group(0)} -> {new} (the phrase names the {o.group(1).lower()} side)")


def fam_lobe_zone(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    cands = []
    for s in r.body:
        for m in re.finditer(r"\b(upper|lower)\s+lobe\b", s.text, re.I):
            for z in _ZONE.finditer(s.text):
                a, b = sorted((z.end(), m.start()))
                if _ZONE_LEVEL[z.group(1).lower()] == m.group(1).lower() and not _LIST_BREAK.search(s.text[a:b]) \
                        and len(s.text[a:b].split()) <= 10:
                    cands.append((s, m, z))
                    break
    pick = _pick(rng, cands)
    if pick is None:
        return None
    s, m, z = pick
    new = _case_like("lower" if m.group(1).lower() == "upper" else "upper", m.group(1))
    return _edit(r, s, m.start(1), m.end(1), new, "lobe_zone", "location", (s.start + z.start(), s.start + z.end()),
                 f"{m.group(0)} -> {new} lobe (the phrase names the {z.group(1).lower()})")


def fam_severity_measure(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    cands = []
    for s in r.body:
        if not _FINDING.search(s.text) or _DENIAL.search(s.text[:20]):
            continue
        for m in _SIZE.finditer(s.text):
            if re.search(r"(?:\bx|\bby|\d)\s*$", s.text[: m.start()]) or re.match(r"\s*(?:x|by)\b", s.text[m.end():]):
                continue  # one dimension of several ("5.8 x 6.0 cm"): the grade is said of the whole
            mm = float(m.group(1)) * (10.0 if m.group(2).lower() == "cm" else 1.0)
            before = s.text[max(0, m.start() - 30): m.start()]
            g = list(_GRADE.finditer(before))
            if g:  # a grade already stands before the size: change the unit under it, or the grade
                gm = g[-1]
                ga, gb = m.start() - len(before) + gm.start(), m.start() - len(before) + gm.end()
                rank = _GRADES[gm.group(1).lower()]
                if rank <= 1 and m.group(2).lower() == "mm" and 3 <= float(m.group(1)) * 10 <= 300:
                    cands.append((s, m.start(2), m.end(2), "cm", (ga, gb), f"{m.group(0)} -> cm under \"{gm.group(1)}\""))
                elif rank >= 2 and m.group(2).lower() == "cm" and float(m.group(1)) <= 5:
                    cands.append((s, m.start(2), m.end(2), "mm", (ga, gb), f"{m.group(0)} -> mm under \"{gm.group(1)}\""))
                elif mm >= 30 and rank >= 2:
                    cands.append((s, ga, gb, _case_like("tiny", gm.group(1)), (m.start(), m.end()),
                                  f"{gm.group(1)} -> tiny for {m.group(0)}"))
                elif mm <= 6 and rank <= 1:
                    cands.append((s, ga, gb, _case_like("large", gm.group(1)), (m.start(), m.end()),
                                  f"{gm.group(1)} -> large for {m.group(0)}"))
            elif mm <= 6:
                cands.append((s, m.start(), m.start(), "large ", (m.start(), m.end()), f"\"large\" added to {m.group(0)}"))
            elif mm >= 30:
                cands.append((s, m.start(), m.start(), "tiny ", (m.start(), m.end()), f"\"tiny\" added to {m.group(0)}"))
    pick = _pick(rng, cands)
    if pick is None:
        return None
    s, a, b, new, (ca, cb), why = pick
    return _edit(r, s, a, b, new, "severity_measure", "severity", (s.start + ca, s.start + cb), why)


_CLASH = {0: ("moderate", "large"), 1: ("large", "massive"), 2: ("trace", "tiny"), 3: ("trace", "small"),
          4: ("small", "trace")}


def fam_severity_double(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    cands = []
    for s in r.body:
        if not _FINDING.search(s.text) or _DENIAL.search(s.text):
            continue
        for m in _GRADE.finditer(s.text):
            if re.match(r"\s*(?:to|-|or|and)\b", s.text[m.end(): m.end() + 5], re.I) or \
                    re.search(r"\b(?:to|-|or|and)\s*$", s.text[max(0, m.start() - 5): m.start()], re.I):
                continue  # a range ("mild to moderate")
            cands.append((s, m))
    pick = _pick(rng, cands)
    if pick is None:
        return None
    s, m = pick
    rank = _GRADES[m.group(1).lower()]
    word = str(_pick(rng, list(_CLASH[rank])))
    return _edit(r, s, m.end(), m.end(), " " + word, "severity_double", "severity", (s.start + m.start(), s.start + m.end()),
                 f"\"{word}\" added after \"{m.group(1)}\"", "insert")


_NEGATED_LIST = re.compile(r"^(\W*(?:there\s+(?:is|are)\s+)?)(no\s+)(?=[^.]*\bor\b)", re.I)


def fam_dropped_no(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    cands = [(s, m) for s in r.body for m in [_NEGATED_LIST.match(s.text)] if m is not None
             and len(_FINDING.findall(s.text)) >= 2 and not re.search(r"\b(?:not|without|nor)\b", s.text, re.I)]
    pick = _pick(rng, cands)
    if pick is None:
        return None
    s, m = pick
    lead = m.group(1)
    rest = s.text[m.end(2):]
    a = m.start(2) if lead.strip() else 0
    new = rest if lead.strip() else rest[:1].upper() + rest[1:]
    text, edit = _edit(r, s, a, len(s.text), new, "dropped_no", "negation", None,
                       f"\"{m.group(2).strip()}\" dropped from a list of denied findings (\"or\" left standing)")
    cue = re.compile(r"\bor\b").search(text, edit.start, edit.end)
    if cue is not None:
        edit.cue, edit.cue_start, edit.cue_end = cue.group(0), cue.start(), cue.end()
    return text, edit


def fam_header_laterality(r: _Report, rng: np.random.Generator):  # noqa: ANN201
    sided = [(s, m) for s in r.positive() for m in _SIDE.finditer(s.text)]
    all_sides = [m for s in r.body for m in _SIDE.finditer(s.text)]
    if len(sided) != 1 or len(all_sides) != 1:
        return None  # exactly one side named in the whole body: the header is the only other witness
    s, m = sided[0]
    new = _case_like("left" if m.group(1).lower() == "right" else "right", m.group(1))
    return _edit(r, s, m.start(), m.end(), new, "header_laterality", "laterality", None,
                 f"{m.group(1)} -> {new}; ImageLaterality {m.group(1)[0].upper()}")


FAMILY_FUNCTIONS: dict[str, Callable[[_Report, np.random.Generator], Any]] = {
    "interval_no_prior": fam_interval_no_prior, "interval_summary": fam_interval_summary,
    "lobe_side": fam_lobe_side, "side_phrase": fam_side_phrase, "lobe_zone": fam_lobe_zone,
    "severity_measure": fam_severity_measure, "severity_double": fam_severity_double, "dropped_no": fam_dropped_no,
    "header_laterality": fam_header_laterality,
}
SINGLE_FAMILIES = tuple(FAMILY_FUNCTIONS)


def inject_single(text: str, family: str, rng: np.random.Generator) -> tuple[str, SingleEdit, dict | None] | None:
    """One single-mention edit of ``family`` in ``text`` (or None when the report offers no place for it).

    Returns the edited report, the edit (with its cue) and the header to check it with (only
    ``header_laterality`` sets one: ImageLaterality of the original side)."""
    if family not in FAMILY_FUNCTIONS:
        raise ValueError(f"unknown single-mention family {family!r}; use one of {', '.join(SINGLE_FAMILIES)}")
    r = _Report(text)
    out = FAMILY_FUNCTIONS[family](r, rng)
    if out is None:
        return None
    edited, edit = out
    header = None
    if family == "header_laterality":
        header = {"laterality": "R" if r.text[edit.start: edit.start + 5].lower().startswith("right") else "L"}
    return edited, edit, header


def single_mention_rows(reports: list[dict], seed: int = 0, families: tuple[str, ...] = SINGLE_FAMILIES) -> list[dict]:
    """check-eval rows: for every report and family that offers a place, one edited copy (``has_error`` True,
    ``errors`` [the edit], ``family``, ``header``). Seeded per (seed, report id, family), so a row does not
    change when other reports or families are added."""
    import hashlib

    rows = []
    for rep in reports:
        for fam in families:
            key = hashlib.sha256(f"{seed}:{rep['id']}:{fam}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
            out = inject_single(rep["text"], fam, rng)
            if out is None:
                continue
            edited, edit, header = out
            rows.append({"id": rep["id"], "report": edited, "has_error": True, "family": fam, "header": header,
                         "errors": [edit.as_dict()]})
    return rows

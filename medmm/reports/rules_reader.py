"""What a reader of one CT or MR report sees against the report's own title or sub-heading (issue 21 items 4 and 5):
errors stated once in a report with no impression to compare with.

* ``title_side``: a body part named with the other side than the study title gives it ("MRI LEFT KNEE ...
  CLINICAL: Right knee pain."), unless the sentence says it speaks of the other side on purpose (a comparison,
  both sides, a past operation: the pack's ``title_breaks``); the flag shows the title's side too;
* ``root_level``: a spinal nerve root that is not at its disc level: more than ``root_slack`` places beyond the two
  vertebrae of the level its sentence names, or of the level sub-heading it stands under ("C4-5: ... impingement upon
  the exiting right C7 nerve root");
* ``segment_lobe``: a lung segment its lobe does not have ("superior segment of the left upper lobe": the superior
  segment is a lower lobe's; "lateral segment of the right upper lobe": the middle lobe's);
* ``signal_sequence``: an MR signal word against what the finding looks like on the sequence its sentence names
  ("no significant dark signal on the diffusion sequence to indicate acute infarction": an acute infarct is bright
  on diffusion; the ADC map, where it is dark, blocks it).

The words are data: the language pack's ``ct_mr_reader`` (``medmm/configs/reports/language-en.yaml``). Each rule
decides most reports on an anchored match at the report's start or one substring test; every pattern is bounded (a
fixed phrase, at most 40 characters between a title's modality and its side).
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports.analysis import Analysis
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import language_pack, longest_first
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY

_CR = language_pack()["ct_mr_reader"]
_OTHER = {"left": "right", "right": "left"}

# ------------------------------------------------------------------ title_side
_PARTS = longest_first(_CR["title_parts"])
_TITLE = re.compile(_CR["title"].replace("PART", _PARTS), re.I)
_TITLE_HEAD = 40  # the title's modality is among the report's first characters ("EXAMINATION: MRI ..."): looked
# for there, lower-cased, before the pattern runs (every title modality holds "mr" or "ct")
_SIDED_PART = re.compile(r"\b(left|right)\s+(" + _PARTS + r")\b", re.I)
_TITLE_BREAKS = re.compile(r"(?:\b|(?<=\W))(?:" + longest_first(_CR["title_breaks"]) + r")\b", re.I)


def _part(word: str) -> str:
    """One name for a part's singular and plural ("knees" -> "knee", "feet" -> "foot", "calves" -> "calf")."""
    w = word.lower()
    return {"feet": "foot", "calves": "calf", "testis": "testicle"}.get(w, w[:-1] if w.endswith("s") else w)


_TITLE_SPEC = FlagSpec(id="title_side", type="laterality", family="single", reads=("any",),
                  explains="the {side} {part}, but the study title names the {other side} {part}",
                  example="MRI LEFT KNEE WITHOUT CONTRAST\n\nINDICATION: Right knee pain.\n\nFINDINGS: Normal menisci.",
                  clean="MRI LEFT KNEE WITHOUT CONTRAST\n\nINDICATION: Left knee pain.\n\nFINDINGS: Normal menisci.")


def _title_side(a: Analysis, title: re.Match[str]) -> list[Flag]:
    """A body part named with the other side than the study title that opens the report."""
    side, part = title.group(1).lower(), _part(title.group(2))
    flags: list[Flag] = []
    for sent in a.sentences:
        if sent.section == "comparison" or sent.end <= title.end():
            continue
        for m in _SIDED_PART.finditer(a.text, max(sent.start, title.end()), sent.end):
            if m.group(1).lower() != _OTHER[side] or _part(m.group(2)) != part:
                continue
            if _TITLE_BREAKS.search(a.text, sent.start, sent.end):
                break
            flags.append(make_flag("title_side", a.text, m.start(), m.end(),
                                   f"the {m.group(0).lower()}, but the study title names the {side} {part}",
                                   related=[title.span(1)]))
            break
    return flags


# ------------------------------------------------------------------ root_level
_ROOT = re.compile(_CR["root"])  # case-sensitive: a level's letter is a capital
_DISC_LEVEL = re.compile(_CR["disc_level"], re.I)
_FIRST = {k.upper(): int(v) for k, v in _CR["first_index"].items()}
_SLACK = int(_CR["root_slack"])


def _place(letter: str, number: str) -> int:
    return _FIRST[letter.upper()] + int(number) - 1


def _levels(text: str) -> list[tuple[int, int, str]]:
    """The disc levels a text names: (upper vertebra's place, lower one's, the level as written)."""
    out = []
    for m in _DISC_LEVEL.finditer(text):
        upper = _place(m.group(1), m.group(2))
        lower = _place(m.group(3) or m.group(1), m.group(4))
        if 0 < lower - upper <= 2:  # "C4-5", "L5-S1"; not "T1-3" (a range of vertebrae)
            out.append((upper, lower, m.group(0)))
    return out


_ROOT_SPEC = FlagSpec(id="root_level", type="location", family="single", reads=BODY,
                  explains="the {root} nerve root at {level}, too far from that level: a digit wrong?",
                  example="FINDINGS: C4-5: Disc osteophyte complex with impingement upon the exiting right C7 nerve root.",
                  clean="FINDINGS: C4-5: Disc osteophyte complex with impingement upon the exiting right C5 nerve root.")


def _root_level(a: Analysis) -> list[Flag]:
    """A nerve root that is not at the disc level its sentence (or its level sub-heading) names."""
    flags: list[Flag] = []
    for sent in a.sentences:
        if sent.section not in BODY:
            continue
        roots = list(_ROOT.finditer(a.text, sent.start, sent.end))
        if not roots:
            continue
        levels = _levels(sent.text) or (_levels(sent.label) if sent.label else [])
        if not levels:
            continue
        for r in roots:
            place = _place(r.group(1), r.group(2))
            if any(up - _SLACK <= place <= low + _SLACK for up, low, _ in levels):
                continue
            level = levels[0][2]
            flags.append(make_flag("root_level", a.text, r.start(), r.end(),
                                   f"the {r.group(1)}{r.group(2)} nerve root at {level}, too far from that level: "
                                   "a digit wrong?"))
    return flags


# ------------------------------------------------------------------ segment_lobe
_LOBE_SEGMENTS = {tuple(k.lower().split()): [re.compile(r"(?:" + n + r")\Z", re.I) for n in v]
                  for k, v in _CR["lobe_segments"].items()}
_SEGMENT_NAMES = longest_first(sorted({n for v in _CR["lobe_segments"].values() for n in v}))
# read around each "segment" of the text (found by a substring search): the name before it and the lobe after it
# ("superior segment of the left lower lobe"), or the lobe and the name before it ("left lower lobe superior segment")
_NAME_BEFORE = re.compile(r"\b(" + _SEGMENT_NAMES + r")\s+\Z", re.I)
_LOBE_AFTER = re.compile(r"s?\s+of\s+the\s+(left|right)\s+(upper|middle|lower)\s+lobe\b", re.I)
_LOBE_NAME_BEFORE = re.compile(r"\b(left|right)\s+(upper|middle|lower)\s+lobe\s+(" + _SEGMENT_NAMES + r")\s+\Z",
                               re.I)
_BEFORE_CHARS = 60  # "left middle lobe anteromedial basal " and the like fit


_SEGMENT_SPEC = FlagSpec(id="segment_lobe", type="location", family="single", reads=BODY,
                  explains="the {lobe} has no {segment} segment: the lobe or the segment is wrong",
                  example="FINDINGS: Cavitary lesion in the superior segment of the left upper lobe.",
                  clean="FINDINGS: Cavitary lesion in the superior segment of the left lower lobe.")


def _segment_lobe(a: Analysis) -> list[Flag]:
    """A lung segment named with a lobe that does not have it."""
    flags: list[Flag] = []
    low, text = a.lower_text(), a.text
    for sec in a.sections:
        if sec.name not in BODY:
            continue
        p = low.find(" segment", sec.start, sec.end)
        while p != -1:
            p += 1  # the word "segment"
            lo = max(sec.start, p - _BEFORE_CHARS)
            after = _LOBE_AFTER.match(text, p + 7, sec.end)
            named = _NAME_BEFORE.search(text, lo, p) if after else None
            if named is not None and after is not None:
                name, side, level, span = named.group(1), after.group(1), after.group(2), (named.start(), after.end())
            else:
                both = _LOBE_NAME_BEFORE.search(text, lo, p)
                if both is None:
                    p = low.find(" segment", p, sec.end)
                    continue
                name, side, level, span = both.group(3), both.group(1), both.group(2), (both.start(), p + 7)
            names = _LOBE_SEGMENTS.get((side.lower(), level.lower()))
            words = " ".join(name.lower().split())
            if names is not None and not any(n.match(words) for n in names):
                # (a lobe the pack does not list, a left middle lobe, is nonexistent_lobe's)
                flags.append(make_flag("segment_lobe", text, span[0], span[1],
                                       f"the {side.lower()} {level.lower()} lobe has no {words} segment: the lobe or "
                                       "the segment is wrong"))
            p = low.find(" segment", p, sec.end)
    return flags


# ------------------------------------------------------------------ signal_sequence
_SIGNAL = {k: re.compile(v, re.I) for k, v in _CR["signal_words"].items()}
_OPPOSITE = {"bright": "dark", "dark": "bright"}
_EXPECT = [(re.compile(e["sequence"], re.I), re.compile(e["blockers"], re.I), re.compile(e["finding"], re.I),
            str(e["expect"])) for e in _CR["signal_expect"]]

_SIGNAL_CUES = frozenset(w.lower() for w in _CR["signal_cue_words"])  # every finding of signal_expect holds one

_SIGNAL_SPEC = FlagSpec(id="signal_sequence", type="finding", family="single", reads=BODY,
                        explains="{signal} on {sequence}, but {finding} is {expected} there",
                        example="FINDINGS: On the diffusion sequence, there is no dark signal to indicate acute "
                                "infarction.",
                        clean="FINDINGS: On the diffusion sequence, there is no bright signal to indicate acute "
                              "infarction.")


def _signal_sequence(a: Analysis) -> list[Flag]:
    """A signal word of the other polarity than the one the sentence's finding has on the sentence's sequence."""
    flags: list[Flag] = []
    for sent in a.sentences:
        if sent.section not in BODY:
            continue
        for seq_pat, block, finding_pat, expect in _EXPECT:
            seq = seq_pat.search(sent.text)
            if seq is None:
                continue
            finding = finding_pat.search(sent.text)
            if finding is None or block.search(sent.text):
                continue
            wrong = _SIGNAL[_OPPOSITE[expect]].search(sent.text)
            if wrong is None or _SIGNAL[expect].search(sent.text):
                continue  # no signal word of the other polarity, or both said (two sequences)
            flags.append(make_flag("signal_sequence", a.text, sent.start + wrong.start(), sent.start + wrong.end(),
                                   f"\"{wrong.group(0)}\" on {seq.group(0)}, but {finding.group(0)} is {expect} "
                                   "there"))
            break
    return flags


# ------------------------------------------------------------------ the four, as one rule
@declare(_TITLE_SPEC, _ROOT_SPEC, _SEGMENT_SPEC, _SIGNAL_SPEC)
def rule_reader(a: Analysis, header: Any = None) -> list[Flag]:
    """The four rules of this module, as one call per report (most reports are decided by a substring test on their
    first characters, no "mr" or "ct", and look-ups in their set of words: no "root", no "segment" beside "lobe", no
    word of an expected signal's finding)."""
    low, words = a.lower_words()  # the report's set of words (of four letters or more): look-ups, not scans
    head = low[:_TITLE_HEAD]
    title = _TITLE.match(a.text) if "mr" in head or "ct" in head else None
    flags = _title_side(a, title) if title is not None else []
    if "root" in words or "roots" in words:
        flags += _root_level(a)
    if ("segment" in words or "segments" in words) and "lobe" in words:  # not "subsegmental"
        flags += _segment_lobe(a)
    if not words.isdisjoint(_SIGNAL_CUES):
        flags += _signal_sequence(a)
    return flags

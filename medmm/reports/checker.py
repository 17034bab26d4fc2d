"""The rule checker (no model) and the common result types of every checker.

Each rule reads the :class:`~medmm.reports.analysis.Analysis` of a report (and, when given,
the DICOM header facts) and returns :class:`Flag` objects with a taxonomy type, a character
span, an explanation naming the evidence (the trigger, the other sentence, the header value)
and a confidence. The report score combines flag confidences by noisy-OR
(``1 - prod(1 - c)``); ``has_error`` is ``score >= threshold``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from medmm.reports.analysis import INTERVAL, SEVERITY_RANK, Analysis, Mention, analyze, prior_status
from medmm.reports.taxonomy import ERROR_TYPES

MAX_REPORT_CHARS = 200_000  # longer input is checked on its first 200,000 characters (noted)
HEADER_KEYS = ("modality", "body_part", "laterality", "view_position", "sex")
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Flag:
    type: str
    start: int
    end: int
    text: str
    explanation: str
    confidence: float
    evidence: str = "text"  # text | header | image
    rule: str = ""

    def __post_init__(self) -> None:
        if self.type not in ERROR_TYPES:
            raise ValueError(f"unknown flag type {self.type!r}")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("rule")
        return d


@dataclass
class CheckResult:
    has_error: bool
    score: float
    flags: list[Flag]
    checker: str = "rules"
    notes: list[str] = field(default_factory=list)  # input problems and how they were handled

    def as_dict(self) -> dict[str, Any]:
        return {"has_error": self.has_error, "score": round(self.score, 4), "flags": [f.as_dict() for f in self.flags]}


@dataclass(frozen=True)
class Header:
    """DICOM header facts a report can contradict."""

    modality: str | None = None
    body_part: str | None = None
    laterality: str | None = None  # image laterality: L, R (B, U: not checked)
    view_position: str | None = None
    sex: str | None = None

    @classmethod
    def from_dict(cls, data: Any, notes: list[str] | None = None) -> "Header | None":
        """Build from a dict (unknown keys are ignored with a note, missing keys are null)."""
        if data is None:
            return None
        if isinstance(data, Header):
            return data
        if hasattr(data, "as_dict") and hasattr(data, "patient_sex"):  # medmm.imaging HeaderFacts
            return cls(data.modality, data.body_part, data.laterality, data.view_position, data.patient_sex)
        if not isinstance(data, dict):
            if notes is not None:
                notes.append(f"header ignored: expected a JSON object, got {type(data).__name__}")
            return None
        unknown = sorted(set(data) - set(HEADER_KEYS))
        if unknown and notes is not None:
            notes.append(f"header keys ignored: {unknown} (known: {list(HEADER_KEYS)})")
        clean = {}
        for k in HEADER_KEYS:
            v = data.get(k)
            clean[k] = str(v).strip() if v not in (None, "") else None
        return cls(**clean)


def _flag(kind: str, a: Analysis, start: int, end: int, why: str, conf: float, evidence: str = "text",
          rule: str = "") -> Flag:
    return Flag(kind, start, end, a.text[start:end], why, round(conf, 3), evidence, rule)


def _sentence_span(a: Analysis, m: Mention) -> tuple[int, int]:
    s = a.sentences[m.sentence]
    return s.start, s.end


# ------------------------------------------------------------------ rules between sections
_NORMAL_IMPRESSION = re.compile(
    r"\b(?:no\s+acute\s+(?:\w+\s+){0,2}(?:abnormalit(?:y|ies)|process|disease|findings?|pathology)|normal\s+(?:study|exam|"
    r"examination|ct|mri|chest|radiograph|brain)|unremarkable\s+(?:study|exam|examination)|no\s+(?:significant|"
    r"radiographic)\s+abnormalit)", re.I)
_SIGNIFICANT = {"pneumothorax", "effusion", "consolidation", "mass", "fracture", "hemorrhage", "edema", "nodule", "cyst"}
_CRITICAL = {"pneumothorax", "effusion", "mass", "hemorrhage", "fracture", "consolidation"}


def _compatible_side(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b or "bilateral" in (a, b)


def rule_sections(a: Analysis, header: Header | None = None) -> list[Flag]:
    """Findings vs impression: laterality, polarity (negation/contradiction), size, severity."""
    flags: list[Flag] = []
    fnd = [m for m in a.in_section("findings") if not m.is_device]
    imp = [m for m in a.in_section("impression") if not m.is_device]
    if not fnd or not a.section("impression"):
        return flags
    by_type_f: dict[str, list[Mention]] = {}
    for m in fnd:
        by_type_f.setdefault(m.type, []).append(m)
    for p in imp:
        others = by_type_f.get(p.type, [])
        pos_f = [o for o in others if o.positive]
        neg_f = [o for o in others if o.negated and not o.uncertain]
        # laterality
        if p.positive and p.side in ("left", "right") and pos_f:
            sided = [o for o in pos_f if o.side in ("left", "right", "bilateral")]
            if sided and not any(o.side in (p.side, "bilateral") for o in sided):
                o = sided[0]
                s, e = _sentence_span(a, p)
                flags.append(_flag("laterality", a, s, e,
                                   f"impression says {p.side} {p.text}; findings say {o.side} "
                                   f"(\"{a.sentences[o.sentence].text}\")", 0.85, rule="laterality_sections"))
                continue
        # polarity
        if p.negated and not p.uncertain:
            hits = [o for o in pos_f if _compatible_side(o.side, p.side) and not o.uncertain]
            if hits:
                o = hits[0]
                s, e = _sentence_span(a, p)
                flags.append(_flag("contradiction", a, s, e,
                                   f"impression negates {p.text} (trigger \"{p.trigger}\") but findings report it: "
                                   f"\"{a.sentences[o.sentence].text}\"", 0.85, rule="polarity_sections"))
                continue
        if p.positive and not p.uncertain:
            hits = [o for o in neg_f if _compatible_side(o.side, p.side)
                    and not any(x.side == o.side and x is not o for x in pos_f if o.side)]
            if hits and not pos_f:
                o = hits[0]
                s, e = _sentence_span(a, o)
                flags.append(_flag("negation", a, s, e,
                                   f"findings negate {o.text} (trigger \"{o.trigger}\") but the impression reports it: "
                                   f"\"{a.sentences[p.sentence].text}\"", 0.85, rule="polarity_sections"))
                continue
        # measurement between sections
        if p.positive and p.size_mm and p.size_text:
            same = [o for o in pos_f if o.size_mm and _compatible_side(o.side, p.side)]
            if same and not any(abs(o.size_mm - p.size_mm) <= max(1.0, 0.15 * p.size_mm) for o in same):
                o = min(same, key=lambda x: abs(x.size_mm - p.size_mm))
                ratio = max(o.size_mm, p.size_mm) / max(min(o.size_mm, p.size_mm), 1e-6)
                unit = abs(ratio - 10) < 0.5
                target = p if (not unit or p.size_mm > o.size_mm) else o
                s, e = target.size_text  # type: ignore[misc]
                flags.append(_flag("measurement", a, s, e,
                                   f"{p.text} measures {p.size_mm:g} mm in the impression but {o.size_mm:g} mm in the "
                                   f"findings" + (" (a mm/cm unit mix-up)" if unit else ""), 0.9 if unit else 0.8,
                                   rule="measurement_sections"))
                continue
        # severity
        if p.positive and p.severity:
            same = [o for o in pos_f if o.severity and _compatible_side(o.side, p.side)]
            if same and not any(abs(SEVERITY_RANK[o.severity] - SEVERITY_RANK[p.severity]) < 1 for o in same):
                o = same[0]
                s, e = _sentence_span(a, p)
                flags.append(_flag("severity", a, s, e, f"impression calls the {p.text} {p.severity}; findings call it "
                                   f"{o.severity}", 0.75, rule="severity_sections"))
    # a significant finding stated in the findings that the impression never mentions
    imp_types = {m.type for m in imp}
    imp_sec = a.section("impression")
    if imp_sec is not None and imp and not _NORMAL_IMPRESSION.search(imp_sec.text):
        for m in fnd:
            if not (m.positive and not m.uncertain and m.type in _CRITICAL):
                continue
            if m.type in imp_types:
                # summarised, unless this is a second, other-sided finding of a type the impression gives one side for
                imp_sides = {x.side for x in imp if x.type == m.type and x.positive}
                summarised_side = any(_compatible_side(sd, m.side) for sd in imp_sides)
                other_side_in_findings = any(x.type == m.type and x.positive and x.side in imp_sides and x.side != m.side
                                             for x in fnd)
                if summarised_side or not other_side_in_findings:
                    continue
            if not any(x.type == m.type and x.negated and _compatible_side(x.side, m.side) for x in fnd
                       if x.sentence != m.sentence):
                s, e = _sentence_span(a, m)
                conf = 0.45 if m.severity in ("trace", "tiny", "minimal", "small", "mild") and m.type == "effusion" else 0.6
                what = f"{m.severity + ' ' if m.severity else ''}{m.side + ' ' if m.side else ''}{m.text}"
                flags.append(_flag("negation", a, s, e,
                                   f"findings report {what} but the impression, which lists other findings, does not "
                                   "mention it", conf, rule="unsummarised_finding"))
                break
    # a significant positive finding in the findings while the impression calls the study normal
    if imp_sec is not None and _NORMAL_IMPRESSION.search(imp_sec.text) and not any(m.positive for m in imp):
        for m in fnd:
            if m.positive and not m.uncertain and m.type in _SIGNIFICANT:
                s, e = _sentence_span(a, m)
                flags.append(_flag("negation", a, s, e,
                                   f"findings report {m.text} but the impression calls the study normal "
                                   f"(\"{imp_sec.text.strip()[:80]}\")", 0.8, rule="normal_impression"))
                break
    return flags


def rule_within_findings(a: Analysis, header: Header | None = None) -> list[Flag]:
    """The same finding stated present and absent (same side) within the findings."""
    flags: list[Flag] = []
    fnd = [m for m in a.in_section("findings") if not m.is_device]
    for n in fnd:
        if not n.negated or n.uncertain:
            continue
        pos = [p for p in fnd if p.type == n.type and p.positive and not p.uncertain and p.sentence != n.sentence
               and _compatible_side(p.side, n.side) and not (p.side and n.side and p.side != n.side)]
        if pos and (n.side is None or n.side == pos[0].side):
            s, e = _sentence_span(a, n)
            flags.append(_flag("negation", a, s, e, f"\"{a.sentences[n.sentence].text}\" contradicts "
                               f"\"{a.sentences[pos[0].sentence].text}\" in the same section", 0.7,
                               rule="polarity_findings"))
    return flags


def rule_plausibility(a: Analysis, header: Header | None = None) -> list[Flag]:
    """Sizes that cannot be right for the finding named (a 4 cm "nodule", a 25 cm cyst)."""
    flags = []
    for m in a.mentions:
        if not m.positive or not m.size_mm or not m.size_text:
            continue
        s, e = m.size_text
        if m.type == "nodule" and m.size_mm >= 30:
            why = f"a {m.size_mm:g} mm {m.text}: a nodule is < 3 cm by definition (larger is a mass); unit or value wrong?"
            flags.append(_flag("measurement", a, s, e, why, 0.8, rule="size_plausibility"))
        elif m.size_mm > 200:
            flags.append(_flag("measurement", a, s, e, f"{m.size_mm / 10:g} cm is implausible for a {m.text}", 0.85,
                               rule="size_plausibility"))
        elif m.severity in ("tiny", "trace", "minimal") and m.size_mm >= 30:
            flags.append(_flag("measurement", a, s, e, f"\"{m.severity}\" but {m.size_mm:g} mm", 0.7,
                               rule="size_plausibility"))
    return flags


def rule_interval(a: Analysis, header: Header | None = None) -> list[Flag]:
    """Interval language ("new", "unchanged", "since the prior") with no prior study."""
    if not INTERVAL.search(a.text):  # the common case: no interval language at all
        return []
    status = prior_status(a)
    if status == "prior":
        return []
    conf = 0.9 if status == "none" else 0.6
    flags = []
    for sent in a.sentences:
        if sent.section in ("comparison", "indication", "technique"):
            continue
        m = INTERVAL.search(sent.text)
        if m:
            why = ("interval language \"" + m.group(0) + "\" but " +
                   ("COMPARISON says there is no prior" if status == "none" else "no prior study is named"))
            flags.append(Flag("interval", sent.start, sent.end, sent.text, why, conf, "text", "interval_no_prior"))
    return flags


_HOMOPHONES = [
    (re.compile(r"\bplural\s+(?:effusions?|spaces?|fluid|thickening|based|surfaces?|catheter|drain)\b", re.I),
     "\"plural\" for \"pleural\""),
    (re.compile(r"\bwrite(?:-sided)?\s+(?!(?:a|an|the|up|down|this|that|it|to|back|in|out|of)\b)[a-z]+", re.I),
     "\"write\" for \"right\""),
    (re.compile(r"\bknow\s+(?:evidence|acute|focal|pneumothorax|effusion|consolidation|fracture|significant)\b", re.I),
     "\"know\" for \"no\""),
    (re.compile(r"\btheir\s+(?:is|are)\b", re.I), "\"their\" for \"there\""),
    (re.compile(r"\b(?:ilium|ileal)\s+(?:lobe|lung)\b", re.I), "a bone/bowel word in a lung context"),
    (re.compile(r"\bdiscreet\s+(?:nodule|mass|lesion|opacity)", re.I), "\"discreet\" for \"discrete\""),
    (re.compile(r"\bhart\b|\bheart\s+sighs?\b", re.I), "misheard \"heart size\""),
    (re.compile(r"\bloose\s+of\b", re.I), "\"loose\" for \"loss\""),
    (re.compile(r"\bcite\s+of\b|\bsight\s+of\s+(?:the\s+)?(?:fracture|injury|insertion)", re.I), "\"cite/sight\" for \"site\""),
]
_HOMOPHONE_CUES = (("plural",), ("write",), ("know",), ("their",), ("ilium", "ileal"), ("discreet",), ("hart", "sigh"),
                   ("loose",), ("cite", "sight"))
_WORD = re.compile(r"\b[a-z][a-z]{3,}\b")


@functools.lru_cache(maxsize=1)
def _speller() -> Any:
    """pyspellchecker's English word list (MIT) plus radiology words it lacks."""
    from spellchecker import SpellChecker

    spell = SpellChecker(distance=1)
    spell.word_frequency.load_words(radiology_words())
    return spell


@functools.lru_cache(maxsize=65536)
def _correction(word: str) -> str | None:
    """pyspellchecker's best correction at edit distance 1 (cached: the same unknown words recur)."""
    return _speller().correction(word)


@functools.lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """The accepted vocabulary as a plain set (membership tests are the hot path)."""
    return frozenset(_speller().word_frequency.dictionary)


@functools.lru_cache(maxsize=1)
def radiology_words() -> frozenset[str]:
    import os

    path = os.path.join(os.path.dirname(__file__), "radiology_words.txt")
    with open(path, encoding="utf-8") as fh:
        return frozenset(w.strip().lower() for w in fh if w.strip() and not w.startswith("#"))


def rule_transcription(a: Analysis, header: Header | None = None) -> list[Flag]:
    """Repeated sentences, homophones in context, and non-words near a known word."""
    flags = []
    seen: dict[tuple[str, str], int] = {}
    for i, sent in enumerate(a.sentences):
        words = sent.text.lower().rstrip(".;!? ").split()
        key = (sent.section, " ".join(words))
        if key in seen:
            # an immediate repeat is dictation stutter at any length; a distant one must be a real sentence
            # (short clauses such as "infection is favored" legitimately recur)
            if seen[key] == i - 1 or len(words) >= 5:
                flags.append(Flag("transcription", sent.start, sent.end, sent.text,
                                  "this sentence repeats an earlier one word for word", 0.9, "text", "repetition"))
        seen[key] = i
    low = a.text.lower()
    for (pattern, why), cue in zip(_HOMOPHONES, _HOMOPHONE_CUES):
        if not any(c in low for c in cue):  # cheap substring test before the regex
            continue
        for m in pattern.finditer(a.text):
            flags.append(Flag("transcription", m.start(), m.end(), m.group(0), f"likely homophone error: {why}", 0.85,
                              "text", "homophone"))
    known = _known_words()
    for sec in a.sections:
        if sec.name == "indication":
            continue
        unknown = {w for w in _WORD.findall(sec.text) if w not in known and not (w[-1] == "s" and w[:-1] in known)}
        if not unknown:  # the common case: one set difference, no per-word work
            continue
        for m in _WORD.finditer(sec.text):
            w = m.group(0)
            if w not in unknown:
                continue
            fix = _correction(w)
            if fix and fix != w:
                s = sec.start + m.start()
                flags.append(Flag("transcription", s, s + len(w), w, f"\"{w}\" is not a word; did you mean \"{fix}\"?",
                                  0.8, "text", "non_word"))
    return flags


# ------------------------------------------------------------------ header rules
_MODALITY_WORDS = {
    "CT": re.compile(r"\b(?:CT|CTA|computed\s+tomography)\b"),
    "MR": re.compile(r"\b(?:MRI|MR|MRA|magnetic\s+resonance)\b"),
    "XR": re.compile(r"\b(?:radiographs?|x-?rays?|chest\s+films?|(?:PA|AP)\s+and\s+lateral|frontal\s+and\s+lateral)\b", re.I),
    "US": re.compile(r"\b(?:ultrasound|sonograph(?:y|ic)?|sonogram)\b", re.I),
}
_MODALITY_GROUP = {"CT": "CT", "MR": "MR", "DX": "XR", "CR": "XR", "DR": "XR", "RG": "XR", "US": "US"}
_NOT_THIS_STUDY = re.compile(r"\b(?:prior|previous|compar\w*|recommend\w*|follow-?up|consider\w*|correlat\w*|outside|"
                             r"earlier|dated|if\s+clinically)\b", re.I)
_REGIONS = {
    "HEAD": re.compile(r"\b(?:brain|intracranial|cerebr\w+|cerebell\w+|(?:lateral|third|fourth)\s+ventricles?|"
                       r"midline\s+shift|skull|sella|"
                       r"white\s+matter|gray\s+matter)\b", re.I),
    "CHEST": re.compile(r"\b(?:lungs?|pleural|pneumothorax|mediastin\w*|pulmonary|cardiomediastinal|hila|hilar)\b", re.I),
}
_BODY_GROUP = {"HEAD": "HEAD", "BRAIN": "HEAD", "SKULL": "HEAD", "CHEST": "CHEST", "THORAX": "CHEST", "LUNG": "CHEST"}
_FEMALE = re.compile(r"\b(?:uterus|uterine|ovar(?:y|ies|ian)|endometri\w+|cervix|fallopian|vagina\w*)\b", re.I)
_MALE = re.compile(r"\b(?:prostat\w+|testes|testis|testicular|scrot\w+|seminal\s+vesicles?|penile)\b", re.I)
_VIEWS = {"PA": re.compile(r"\bPA\b(?!\s+and\s+AP)"), "AP": re.compile(r"\b(?:AP|anteroposterior|portable)\b"),
          "LATERAL": re.compile(r"\blateral\s+(?:view|radiograph|projection)s?\b|\band\s+lateral\b", re.I)}


def _this_study(sent_text: str, section: str) -> bool:
    return section not in ("comparison", "indication") and not _NOT_THIS_STUDY.search(sent_text)


def rule_header(a: Analysis, header: Header | None = None) -> list[Flag]:
    """The report against the DICOM header: modality, body part, sex, laterality, view."""
    if header is None:
        return []
    flags = []
    group = _MODALITY_GROUP.get((header.modality or "").upper())
    if group:
        for sent in a.sentences:
            if not _this_study(sent.text, sent.section):
                continue
            for name, pat in _MODALITY_WORDS.items():
                m = pat.search(sent.text)
                if m and name != group and not (name == "XR" and group in ("CT", "MR") and "lateral" in m.group(0).lower()):
                    s = sent.start + m.start()
                    flags.append(Flag("metadata", s, s + len(m.group(0)), m.group(0),
                                      f"the report describes a {name} study but the DICOM Modality is {header.modality}",
                                      0.9, "header", "header_modality"))
    body = _BODY_GROUP.get((header.body_part or "").upper())
    if body:
        for region, pat in _REGIONS.items():
            if region == body:
                continue
            for sent in a.sentences:
                if sent.section in ("indication", "comparison"):
                    continue
                m = pat.search(sent.text)
                if m:
                    s = sent.start + m.start()
                    flags.append(Flag("metadata", s, s + len(m.group(0)), m.group(0),
                                      f"\"{m.group(0)}\" belongs to the {region.lower()}, but BodyPartExamined is "
                                      f"{header.body_part}", 0.85, "header", "header_body_part"))
                    break
            else:
                continue
            break
    sex = (header.sex or "").upper()
    wrong = _FEMALE if sex == "M" else _MALE if sex == "F" else None
    if wrong is not None:
        m = wrong.search(a.text)
        if m:
            flags.append(Flag("metadata", m.start(), m.end(), m.group(0),
                              f"\"{m.group(0)}\" does not fit PatientSex {header.sex}", 0.9, "header", "header_sex"))
    lat = (header.laterality or "").upper()
    if lat in ("L", "R"):
        want = "left" if lat == "L" else "right"
        sided = [m for m in a.mentions if m.positive and m.side in ("left", "right")]
        if sided and all(m.side != want for m in sided):
            m = sided[0]
            flags.append(Flag("metadata", m.start, m.end, m.text,
                              f"the report describes the {m.side} side but ImageLaterality is {lat}", 0.8, "header",
                              "header_laterality"))
    view = (header.view_position or "").upper()
    if view in ("PA", "AP"):
        other = "AP" if view == "PA" else "PA"
        for sent in a.sentences:
            if sent.section in ("comparison", "indication") or _NOT_THIS_STUDY.search(sent.text):
                continue
            m = _VIEWS[other].search(sent.text)
            if m and not _VIEWS[view].search(sent.text):
                s = sent.start + m.start()
                flags.append(Flag("metadata", s, s + len(m.group(0)), m.group(0),
                                  f"the report describes an {other} view but ViewPosition is {view}", 0.8, "header",
                                  "header_view"))
                break
    return flags


RULES: tuple[Callable[[Analysis, Header | None], list[Flag]], ...] = (
    rule_sections, rule_within_findings, rule_plausibility, rule_interval, rule_transcription, rule_header)


# ------------------------------------------------------------------ input hygiene
_RTF = re.compile(r"\\[a-z]+-?\d* ?|[{}]")
_CONTROL = re.compile(r"[^\S\n\t ]|[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_TAG = re.compile(r"<[^>]{1,200}>")


def clean_text(report: Any, notes: list[str]) -> str:
    """Decode bytes, strip RTF/HTML remnants and control characters; never raises."""
    if report is None:
        notes.append("empty report: nothing to check")
        return ""
    if isinstance(report, (bytes, bytearray)):
        try:
            report = bytes(report).decode("utf-8")
        except UnicodeDecodeError:
            report = bytes(report).decode("cp1252", errors="replace")
            notes.append("report was not UTF-8; decoded as Windows-1252 (check accented characters)")
    if not isinstance(report, str):
        notes.append(f"report must be text, got {type(report).__name__}")
        return ""
    text = report
    if text.lstrip().startswith("{\\rtf"):
        text = _RTF.sub("", text).replace("\\par", "\n")
        notes.append("RTF markup removed")
    if _TAG.search(text) and re.search(r"</?(?:p|br|div|span|b|i|html|body|font)\b", text, re.I):
        import html

        text = html.unescape(_TAG.sub(lambda m: "\n" if re.match(r"</?(?:p|br|div)", m.group(0), re.I) else " ", text))
        notes.append("HTML markup removed")
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    if not text.isprintable():  # fast path: most reports have only printable text and newlines
        text = _CONTROL.sub(" ", text)
    if len(text) > MAX_REPORT_CHARS:
        notes.append(f"report is {len(text):,} characters; checked the first {MAX_REPORT_CHARS:,}")
        text = text[:MAX_REPORT_CHARS]
    if not text.strip():
        notes.append("empty report: nothing to check")
    return text


def combine(confidences: Iterable[float]) -> float:
    p = 1.0
    for c in confidences:
        p *= 1.0 - max(0.0, min(1.0, c))
    return 1.0 - p


def dedupe(flags: list[Flag]) -> list[Flag]:
    """One flag per (type, span); overlapping flags of one type keep the most confident."""
    out: list[Flag] = []
    for f in sorted(flags, key=lambda f: (-f.confidence, f.start)):
        if any(g.type == f.type and g.start < f.end and f.start < g.end for g in out):
            continue
        out.append(f)
    return sorted(out, key=lambda f: (f.start, f.type))


def check_rules(report: Any, header: Any = None, threshold: float = DEFAULT_THRESHOLD) -> CheckResult:
    """Run every rule; never raises on bad input (problems are in ``notes``)."""
    notes: list[str] = []
    text = clean_text(report, notes)
    hdr = Header.from_dict(header, notes)
    if not text.strip():
        return CheckResult(False, 0.0, [], "rules", notes)
    a = analyze(text)
    flags: list[Flag] = []
    for rule in RULES:
        try:
            flags.extend(rule(a, hdr))
        except Exception as exc:  # a rule bug must not lose the other rules' flags
            notes.append(f"rule {rule.__name__} failed: {type(exc).__name__}: {exc}")
    flags = dedupe(flags)
    score = combine(f.confidence for f in flags)
    return CheckResult(score >= threshold, score, flags, "rules", notes)

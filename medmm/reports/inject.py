"""Synthetic error injection with provenance (``medmm inject``), independent of the checker.

The injector edits one sentence (or the header) the way a dictation, template or reading error
would, and records the original and edited sentence, the span of the edit in the edited report,
the taxonomy type, its COMPLEX class (insert / remove / substitute, as in the seed paper), the
error model that made it, and whether text and header alone can reveal it (``text_detectable``,
judged here by the injector's own criterion: the edited fact is stated again elsewhere in the
report, the result is impossible on its face — a misspelt or misheard word, a left middle lobe,
a 4 cm nodule, interval language with no prior — or the header says otherwise).

Independence: this module reads the public vocabulary of :mod:`medmm.reports.lexicon` and the
public sentence splitter of :mod:`medmm.reports.sections`, and never imports the checker (its
rules, its negation reading, its word lists): ``tests/reports/test_independence.py`` fails if it
does. Its error models are its own: real-word dictation confusions, lobe/zone/side nouns,
interval and severity words, unit slips, negation phrasing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from medmm.reports import lexicon as lx
from medmm.reports.sections import Sentence, split_sections, split_sentences
from medmm.reports.taxonomy import TYPE_IDS, complex_class


@dataclass
class InjectedError:
    type: str
    complex: str
    original_sentence: str
    edited_sentence: str
    start: int  # span of the edited text in the edited report (for header edits: the contradicted mention)
    end: int
    detail: str = ""
    model: str = ""  # the error model that made it
    text_detectable: bool = True  # can the text (and header) alone reveal it?

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Edit = tuple[str, dict | None, InjectedError]
_BODY = ("findings", "impression")

# ------------------------------------------------------------------ the injector's own error models
# Real-word dictation confusions: a speech recogniser's (or a tired typist's) real word for the term.
DICTATION_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "granuloma": ("granola",), "granulomas": ("granolas",), "hilar": ("hilarious", "hillier"),
    "effusion": ("infusion", "diffusion"), "effusions": ("infusions",), "pleural": ("plural", "floral"),
    "spine": ("spleen",), "nodule": ("module",), "nodules": ("modules",), "calcified": ("classified",),
    "edema": ("enema",), "consolidation": ("consolation",), "lobe": ("load",), "lobes": ("loads",),
    "vascular": ("muscular",), "vascularity": ("muscularity",), "clavicle": ("chronicle",),
    "interstitial": ("intestinal",), "stable": ("table",), "scarring": ("scaring",), "aortic": ("erotic",),
    "fracture": ("fraction",), "fractures": ("fractions",), "pacemaker": ("peacemaker",), "opacities": ("capacities",),
    "degenerative": ("generative",), "lucency": ("lunacy",), "hilum": ("helium",), "acute": ("cute",),
    "ectatic": ("ecstatic",), "tortuous": ("torturous",), "calcification": ("classification",),
    "lymph": ("limb",), "nodes": ("notes",), "node": ("note",), "mediastinal": ("medicinal",), "airspace": ("airplane",),
    "cardiomegaly": ("cardiology",), "atelectasis": ("telekinesis",), "basilar": ("basil",), "bases": ("basis",),
    "apical": ("topical",), "silhouette": ("salute",), "sulci": ("sulky",), "osseous": ("oceans",),
}
_TYPO_WORD = re.compile(r"\b[a-z]{7,}\b")
_SEVERITY_FLIP = {"trace": "large", "tiny": "large", "minimal": "extensive", "small": "large", "mild": "severe",
                  "moderate": "trace", "large": "small", "severe": "mild", "extensive": "minimal", "marked": "minimal",
                  "massive": "small"}
_INTERVAL_FLIP = {"new": "stable", "newly": "previously", "unchanged": "new", "stable": "new", "increased": "decreased",
                  "decreased": "increased", "increasing": "decreasing", "decreasing": "increasing", "improved": "worsened",
                  "worsened": "improved", "improving": "worsening", "worsening": "improving", "resolved": "increased",
                  "persistent": "new", "enlarging": "resolving", "smaller": "larger", "larger": "smaller"}
_LOBE_SWAP = {"upper lobe": "lower lobe", "lower lobe": "upper lobe", "middle lobe": "lower lobe", "apex": "base",
              "base": "apex", "apical": "basilar", "basilar": "apical", "upper zone": "lower zone",
              "lower zone": "upper zone", "upper lung": "lower lung", "lower lung": "upper lung"}
_FINDING_SWAP = {"nodule": "mass", "mass": "nodule", "cyst": "mass", "consolidation": "atelectasis",
                 "atelectasis": "consolidation", "pneumothorax": "pleural effusion", "effusion": "pneumothorax",
                 "edema": "consolidation", "fracture": "lesion"}
_DEVICE_RENAME = {"endotracheal_tube": "nasogastric tube", "central_line": "chest tube", "pacemaker": "loop recorder",
                  "chest_tube": "central line", "nasogastric_tube": "endotracheal tube"}

_TERMS = {kind: re.compile(r"\b(?:" + "|".join(pats) + r")\b", re.I) for kind, (_, pats) in lx.FINDINGS.items()}
_LESIONS = [k for k in _TERMS if k not in lx.DEVICE_TYPES]
_ANY_TERM = re.compile(r"\b(?:" + "|".join(p for k in _LESIONS for p in lx.FINDINGS[k][1]) + r")\b", re.I)
_NEG_WORD = re.compile(r"\b(?:no|not|without|negative|free\s+of|resolved|absence)\b", re.I)
_HEDGE = re.compile(r"\b(?:may|might|possibl[ey]|probabl[ey]|likely|suspect\w*|question\w*|versus|cannot|could|if|"
                    r"recommend\w*|consider\w*|concern\w*|suggest\w*)\b", re.I)
_SIDE = re.compile(r"\b(left|right|Left|Right)\b")
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)(\s*)(mm|cm)\b")
_NO_PRIOR = re.compile(r"^\W*(?:" + "|".join(lx.NO_PRIOR_PHRASES) + r")\b", re.I)
_NORMAL_IMPRESSION = re.compile(r"\b(?:normal|no\s+acute|unremarkable|no\s+(?:active|significant)\s+(?:disease|"
                                r"abnormalit))", re.I)
_INTERVAL_WORDS = re.compile(r"\b(" + "|".join(sorted(_INTERVAL_FLIP, key=len, reverse=True)) + r")\b", re.I)
_SEVERITY_WORDS = re.compile(r"\b(" + "|".join(sorted(_SEVERITY_FLIP, key=len, reverse=True)) + r")\b", re.I)
_LOBE_WORDS = re.compile(r"\b(" + "|".join(sorted(_LOBE_SWAP, key=len, reverse=True)) + r")\b", re.I)
_DESCRIPTIVE = re.compile(r"\s+(?!in\s+size|since|from|compared|when|to\b)[a-z]+", re.I)  # "increased markings"
_OWN_PRIOR = re.compile(r"\b(?:from|since|on|than|to)\s+(?:the\s+)?(?:\d|XXXX|prior|previous|outside|last)|\bprior\b|"
                        r"\bprevious\b", re.I)  # a sentence that names its own comparison
_MODALITY_TEXT = re.compile(r"\b(CT|MRI|radiographs?|x-ray|xray|Xray)\b")
_MODALITY_SWAP = {"ct": ("MRI", "MR"), "mri": ("CT", "CT"), "radiograph": ("CT", "CT"), "radiographs": ("CT", "CT"),
                  "x-ray": ("CT", "CT"), "xray": ("CT", "CT")}


# ------------------------------------------------------------------ helpers
class _Report:
    """The report's body sentences (findings and impression) with offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sections = split_sections(text)
        self.sentences: list[Sentence] = split_sentences(text, self.sections)
        self.body = [i for i, s in enumerate(self.sentences) if s.section in _BODY]

    def section(self, name: str):  # noqa: ANN201
        return next((s for s in self.sections if s.name == name), None)

    def others(self, i: int) -> list[Sentence]:
        """Body sentences of the *other* body section (findings <-> impression)."""
        sec = self.sentences[i].section
        return [s for s in self.sentences if s.section in _BODY and s.section != sec]

    def term_of(self, sentence: str) -> tuple[str, re.Match] | None:
        for kind in _LESIONS:
            m = _TERMS[kind].search(sentence)
            if m:
                return kind, m
        return None


def _kind_in(kind: str, sentences: list[Sentence], positive: bool | None = None) -> list[Sentence]:
    out = []
    for s in sentences:
        if _TERMS[kind].search(s.text):
            neg = bool(_NEG_WORD.search(s.text))
            if positive is None or positive != neg:
                out.append(s)
    return out


def _sentence_edit(r: _Report, i: int, new: str, kind: str, model: str, detail: str, detectable: bool) -> Edit:
    s = r.sentences[i]
    text = r.text[: s.start] + new + r.text[s.end:]
    return text, None, InjectedError(kind, complex_class(kind), s.text, new, s.start, s.start + len(new), detail, model,
                                     detectable)


def _word_edit(r: _Report, i: int, m: re.Match, new_word: str, kind: str, model: str, detail: str,
               detectable: bool) -> Edit:
    s = r.sentences[i]
    new_sent = s.text[: m.start()] + new_word + s.text[m.end():]
    return _sentence_edit(r, i, new_sent, kind, model, detail, detectable)


def _case_like(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _pick(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))] if items else None


def _firm(s: Sentence) -> bool:
    return not _HEDGE.search(s.text)


# ------------------------------------------------------------------ operations (one per taxonomy type)
def op_laterality(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Swap left/right in one body sentence (a one-sided statement), or move a lobe to a side without it."""
    cands = [i for i in r.body if len(_SIDE.findall(r.sentences[i].text)) == 1 and _firm(r.sentences[i])
             and not re.search(r"\b(?:bilateral|both|bibasilar)\b", r.sentences[i].text, re.I)]
    i = _pick(rng, cands)
    if i is None:
        return None
    s = r.sentences[i]
    m = _SIDE.search(s.text)
    assert m is not None
    new = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}[m.group(1)]
    after = s.text[m.end(): m.end() + 40].lower()
    impossible = (new.lower() == "left" and after.lstrip().startswith("middle lobe")) or \
        (new.lower() == "right" and after.lstrip().startswith("lingula"))
    term = r.term_of(s.text)
    noun = re.match(r"\s*(?:-sided\s+)?([a-z]+(?:\s+[a-z]+)?)", after)
    restated = False
    if term:  # the other section states this finding on the original side only
        same = _kind_in(term[0], r.others(i), True)
        restated = any(re.search(r"\b" + m.group(1) + r"\b", o.text, re.I) for o in same) and \
            not any(re.search(r"\b" + new + r"\b", o.text, re.I) for o in same)
    elif noun:
        restated = any(re.search(r"\b" + m.group(1) + r"\s+" + re.escape(noun.group(1)), o.text, re.I) for o in r.others(i))
    return _word_edit(r, i, m, new, "laterality", "side swap", f"{m.group(1)} -> {new}", impossible or restated)


def op_location(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Move a finding to another lobe or zone (upper <-> lower lobe, apex <-> base)."""
    cands = [(i, m) for i in r.body for m in _LOBE_WORDS.finditer(r.sentences[i].text) if _firm(r.sentences[i])]
    pick = _pick(rng, cands)
    if pick is None:
        return None
    i, m = pick
    old = m.group(1)
    new = _case_like(_LOBE_SWAP[old.lower()], old)
    term = r.term_of(r.sentences[i].text)
    restated = term is not None and any(re.search(re.escape(old), o.text, re.I)
                                        for o in _kind_in(term[0], r.others(i), True))
    impossible = new.lower() == "middle lobe" and re.search(r"\bleft\s+$", r.sentences[i].text[: m.start()], re.I)
    return _word_edit(r, i, m, new, "location", "lobe/zone swap", f"{old} -> {new}", bool(restated or impossible))


def op_severity(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Grade a finding two or more steps away (small -> large, mild -> severe, minimal -> extensive)."""
    cands = [(i, m) for i in r.body for m in _SEVERITY_WORDS.finditer(r.sentences[i].text)
             if r.term_of(r.sentences[i].text)]
    pick = _pick(rng, cands)
    if pick is None:
        return None
    i, m = pick
    old = m.group(1)
    new = _case_like(_SEVERITY_FLIP[old.lower()], old)
    kind = r.term_of(r.sentences[i].text)[0]  # type: ignore[index]
    restated = any(_SEVERITY_WORDS.search(o.text) for o in _kind_in(kind, r.others(i), True))
    return _word_edit(r, i, m, new, "severity", "severity word", f"{old} -> {new}", restated)


def op_interval(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Flip an interval word (new <-> stable, increased <-> decreased), or remove the prior the report compares to."""
    comp = r.section("comparison")
    # interval words said of a finding ("new", "unchanged", "increased in size"), not descriptive ones
    # ("increased lung markings", "decreased lung volumes")
    flips = [(i, m) for i in r.body for m in _INTERVAL_WORDS.finditer(r.sentences[i].text)
             if not _DESCRIPTIVE.match(r.sentences[i].text, m.end())]
    unanchored = [i for i, m in flips if not _OWN_PRIOR.search(r.sentences[i].text)
                  and m.group(1).lower() not in ("increased", "decreased", "smaller", "larger")]
    if comp is not None and comp.text.strip() and not _NO_PRIOR.match(comp.text) and unanchored and rng.random() < 0.35:
        s0 = comp.start + (len(comp.text) - len(comp.text.lstrip()))
        e0 = comp.start + len(comp.text.rstrip())
        text = r.text[:s0] + "None." + r.text[e0:]
        return text, None, InjectedError("interval", complex_class("interval"), r.text[s0:e0], "None.", s0, s0 + 5,
                                         "comparison removed while interval language remains", "prior removed", True)
    if comp is not None and _NO_PRIOR.match(comp.text) and rng.random() < 0.5:
        i = _pick(rng, [i for i in r.body if r.term_of(r.sentences[i].text) and not _NEG_WORD.search(r.sentences[i].text)])
        if i is not None:
            s = r.sentences[i]
            body = s.text.rstrip(".")
            new = body + str(rng.choice([", unchanged.", ", new since the last study.", ", again seen.", ", slightly increased."]))
            return _sentence_edit(r, i, new, "interval", "interval with no prior", "interval language, COMPARISON none",
                                  True)
    pick = _pick(rng, flips)
    if pick is None:
        return None
    i, m = pick
    old = m.group(1)
    new = _case_like(_INTERVAL_FLIP[old.lower()], old)
    term = r.term_of(r.sentences[i].text)
    restated = term is not None and any(_INTERVAL_WORDS.search(o.text) for o in _kind_in(term[0], r.others(i), True))
    no_prior = comp is not None and bool(_NO_PRIOR.match(comp.text))
    return _word_edit(r, i, m, new, "interval", "interval word", f"{old} -> {new}", restated or no_prior)


def op_measurement(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """A unit slip (mm <-> cm) or a value changed by a factor of 2-3."""
    cands = [(i, m) for i in r.body for m in _SIZE.finditer(r.sentences[i].text)]
    pick = _pick(rng, cands)
    if pick is None:
        return None
    i, m = pick
    value, space, unit = m.groups()
    if rng.random() < 0.6:
        new = f"{value}{space}{'cm' if unit == 'mm' else 'mm'}"
        detail, model = f"unit {unit} -> {'cm' if unit == 'mm' else 'mm'}", "unit slip"
    else:
        v = float(value) * float(rng.choice([0.3, 2.5, 3.0, 4.0]))
        new = f"{v:.0f}{space}{unit}" if unit == "mm" else f"{v:.1f}{space}{unit}"
        detail, model = f"value {value} -> {new}", "value change"
    restated = any(re.search(r"\b" + re.escape(value) + r"\s*" + unit, o.text) for o in r.others(i))
    number = new.split()[0] if " " in new else re.sub(r"[^\d.].*$", "", new)  # "12mm" -> "12"
    mm = float(number) * (10 if new.endswith("cm") else 1)
    window = r.sentences[i].text[max(0, m.start() - 40): m.end() + 40]
    implausible = any(re.search(r"\b(?:" + pat + r")\b", window, re.I) and not lo <= mm <= hi
                      for pat, (lo, hi) in lx.STRUCTURE_SIZE_MM.items())
    return _word_edit(r, i, m, new, "measurement", model, detail, restated or implausible)


_DENIAL = re.compile(r"^(?:There\s+(?:is|are)\s+)?(?:no|No)\s+(?:evidence\s+of\s+)?(?:an?\s+)?(?P<what>[A-Za-z][\w\s-]{2,40}?)"
                     r"(?:\s+(?:is|are)\s+(?:seen|identified|present))?\.?$")


_ASSERTION_START = re.compile(r"(?:There\s+(?:is|are)\s+(?:an?\s+)?)?(?:(?:small|large|moderate|mild|minimal|trace|tiny|"
                              r"left|right|bilateral|focal|patchy|a|an)\s+)*(?:" +
                              "|".join(p for k in _LESIONS for p in lx.FINDINGS[k][1]) + r")\b", re.I)


def op_negation(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """A FINDINGS statement's polarity flipped: a denial made an assertion, or an assertion a denial."""
    fnd = [i for i in r.body if r.sentences[i].section == "findings"]
    denials = [(i, m) for i in fnd for m in [_DENIAL.match(r.sentences[i].text)]
               if m and _ANY_TERM.search(m.group("what")) and not re.search(r",|\bor\b|\bnor\b|\band\b", m.group("what"))]
    asserts = [i for i in fnd if r.term_of(r.sentences[i].text) and not _NEG_WORD.search(r.sentences[i].text)
               and _firm(r.sentences[i]) and _ASSERTION_START.match(r.sentences[i].text)]
    imp = r.section("impression")
    normal_imp = imp is not None and bool(_NORMAL_IMPRESSION.search(imp.text))
    if denials and (not asserts or rng.random() < 0.5):
        i, m = _pick(rng, denials)
        what = m.group("what").strip()
        new = str(rng.choice([f"There is {what}.", f"{what[0].upper()}{what[1:]} is present.", f"Small {what}."]))
        kind = r.term_of(what)[0]  # type: ignore[index]
        restated = bool(_kind_in(kind, r.others(i), False)) or (normal_imp and kind in lx.ACUTE_FINDINGS)
        return _sentence_edit(r, i, new, "negation", "denial removed", f"{what}: absent -> present", restated)
    i = _pick(rng, asserts)
    if i is None:
        return None
    s = r.sentences[i]
    kind, m = r.term_of(s.text)  # type: ignore[misc]
    there = re.match(r"There\s+(is|are)\s+(?:an?\s+)?", s.text)
    if there:
        new = f"There {there.group(1)} no {s.text[there.end():]}"
    else:
        body = _SEVERITY_WORDS.sub("", s.text, count=1).strip()
        new = "No " + body[0].lower() + body[1:]
    new = re.sub(r"\s{2,}", " ", new)
    restated = bool(_kind_in(kind, r.others(i), True))
    return _sentence_edit(r, i, new, "negation", "assertion denied", f"{m.group(0)}: present -> absent", restated)


def op_contradiction(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """The IMPRESSION denies a finding the FINDINGS report."""
    imp = r.section("impression")
    fnd = [i for i in r.body if r.sentences[i].section == "findings" and _firm(r.sentences[i])
           and not _NEG_WORD.search(r.sentences[i].text) and r.term_of(r.sentences[i].text)]
    i = _pick(rng, fnd)
    if imp is None or i is None:
        return None
    kind, m = r.term_of(r.sentences[i].text)  # type: ignore[misc]
    term = "pleural effusion" if kind == "effusion" else m.group(0).lower()
    denial = str(rng.choice([f"No {term}.", f"No evidence of {term}.", f"Negative for {term}."]))
    same = [j for j in r.body if r.sentences[j].section == "impression" and _TERMS[kind].search(r.sentences[j].text)]
    if same:
        return _sentence_edit(r, same[0], denial, "contradiction", "impression denial", f"impression denies {term}", True)
    at = imp.start + len(imp.text.rstrip())
    text = r.text[:at] + " " + denial + r.text[at:]
    return text, None, InjectedError("contradiction", complex_class("contradiction"), "", denial, at + 1,
                                     at + 1 + len(denial), f"impression denies {term}", "impression denial", True)


def op_transcription(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """A real-word dictation confusion, a typo (letters swapped, dropped or doubled) or a repeated sentence."""
    choice = rng.random()
    if choice < 0.5:
        cands = [(i, m) for i in r.body for m in re.finditer(r"\b[A-Za-z]+\b", r.sentences[i].text)
                 if m.group(0).lower() in DICTATION_CONFUSIONS]
        pick = _pick(rng, cands)
        if pick is not None:
            i, m = pick
            new = _case_like(str(rng.choice(DICTATION_CONFUSIONS[m.group(0).lower()])), m.group(0))
            return _word_edit(r, i, m, new, "transcription", "dictation confusion", f"{m.group(0)} -> {new}", True)
    if choice < 0.85:
        cands = [(i, m) for i in r.body for m in _TYPO_WORD.finditer(r.sentences[i].text)]
        pick = _pick(rng, cands)
        if pick is not None:
            i, m = pick
            w = m.group(0)
            k = int(rng.integers(1, len(w) - 2))
            op = rng.random()
            typo = w[:k] + w[k + 1] + w[k] + w[k + 2:] if op < 0.5 else (w[:k] + w[k + 1:] if op < 0.8 else w[:k] + w[k] + w[k:])
            if typo != w:
                return _word_edit(r, i, m, typo, "transcription", "typo", f"{w} -> {typo}", True)
    i = _pick(rng, [i for i in r.body if len(r.sentences[i].text.split()) >= 3])
    if i is None:
        return None
    s = r.sentences[i]
    text = r.text[: s.end] + " " + s.text + r.text[s.end:]
    return text, None, InjectedError("transcription", complex_class("transcription"), s.text, s.text + " " + s.text,
                                     s.end + 1, s.end + 1 + len(s.text), "repeated sentence", "repetition", True)


def op_finding(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Name a different finding in place of the true one (nodule -> mass, effusion -> pneumothorax)."""
    cands = [(i, k, m) for i in r.body for k in _FINDING_SWAP for m in _TERMS[k].finditer(r.sentences[i].text)]
    pick = _pick(rng, cands)
    if pick is None:
        return None
    i, kind, m = pick
    new = _case_like(_FINDING_SWAP[kind], m.group(0))
    s = r.sentences[i]  # visible when a firm statement now names what the other section never names
    new_kind = next((k for k in _LESIONS if _TERMS[k].search(new)), kind)
    restated = _firm(s) and not _NEG_WORD.search(s.text) and bool(_kind_in(kind, r.others(i), True)) \
        and not _kind_in(new_kind, r.others(i))
    edit = _word_edit(r, i, m, new, "finding", "finding swap", f"{m.group(0)} -> {new}", restated)
    return edit[0].replace("pleural pleural", "pleural"), edit[1], edit[2]


def op_insertion(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Add a finding to the FINDINGS that is not there (insert)."""
    fnd = r.section("findings")
    if fnd is None:
        return None
    options = [k for k in ("pneumothorax", "effusion", "nodule", "consolidation") if not _TERMS[k].search(r.text)]
    if not options:
        return None
    kind, side = str(rng.choice(options)), str(rng.choice(["left", "right"]))
    new = {"pneumothorax": f"Small {side} apical pneumothorax.", "effusion": f"Small {side} pleural effusion.",
           "nodule": f"A 7 mm nodule is noted in the {side} upper lobe.",
           "consolidation": f"Focal consolidation in the {side} lower lobe."}[kind]
    at = fnd.start + len(fnd.text.rstrip())
    text = r.text[:at] + " " + new + r.text[at:]
    imp = r.section("impression")
    detectable = imp is not None and bool(_NORMAL_IMPRESSION.search(imp.text)) and kind in lx.ACUTE_FINDINGS
    return text, None, InjectedError("insertion", "insert", "", new, at + 1, at + 1 + len(new), f"added {kind}",
                                     "finding inserted", detectable)


def op_omission(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Remove a FINDINGS sentence whose finding the IMPRESSION still reports (remove)."""
    fnd = [i for i in r.body if r.sentences[i].section == "findings" and r.term_of(r.sentences[i].text)
           and not _NEG_WORD.search(r.sentences[i].text)]
    cands = [i for i in fnd if _kind_in(r.term_of(r.sentences[i].text)[0], r.others(i), True)]  # type: ignore[index]
    i = _pick(rng, cands)
    if i is None:
        return None
    s = r.sentences[i]
    end = s.end
    while end < len(r.text) and r.text[end] == " ":
        end += 1
    text = r.text[: s.start] + r.text[end:]
    kind = r.term_of(s.text)[0]  # type: ignore[index]
    imp = next(o for o in _kind_in(kind, r.others(i), True))
    shift = end - s.start
    start = imp.start - shift if imp.start > s.start else imp.start
    return text, None, InjectedError("omission", "remove", s.text, "", start, start + len(imp.text),
                                     f"findings no longer mention {kind}", "sentence removed", False)


def op_device(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """Rename a device, or add one that is not there."""
    cands = [(i, k, m) for i in r.body for k in _DEVICE_RENAME for m in _TERMS[k].finditer(r.sentences[i].text)]
    pick = _pick(rng, cands)
    if pick is not None and rng.random() < 0.7:
        i, kind, m = pick
        new = _DEVICE_RENAME[kind]
        restated = bool(_kind_in(kind, r.others(i)))
        return _word_edit(r, i, m, new, "device", "device renamed", f"{m.group(0)} -> {new}", restated)
    fnd = r.section("findings")
    if fnd is None:
        return None
    at = fnd.start + len(fnd.text.rstrip())
    new = str(rng.choice(["Endotracheal tube tip 4 cm above the carina.", "Left chest wall pacemaker with two leads.",
                          "Right internal jugular central venous catheter, tip at the cavoatrial junction."]))
    text = r.text[:at] + " " + new + r.text[at:]
    return text, None, InjectedError("device", "insert", "", new, at + 1, at + 1 + len(new), "device added",
                                     "device inserted", False)


def op_metadata(r: _Report, header: dict | None, rng: np.random.Generator) -> Edit | None:
    """The report and its header disagree: a modality word changed in the text, or a header fact changed."""
    header = dict(header or {})
    mentions = [(i, m) for i, s in enumerate(r.sentences) if s.section in ("technique", "findings", "impression")
                and not any(c in s.text.lower() for c in lx.OTHER_STUDY_CUES) for m in _MODALITY_TEXT.finditer(s.text)]
    if mentions and (rng.random() < 0.5 or not header.get("modality")):
        i, m = _pick(rng, mentions)
        new = _MODALITY_SWAP[m.group(0).lower()][0]
        detectable = bool(header.get("modality"))
        return _word_edit(r, i, m, new, "metadata", "modality word", f"report modality {m.group(0)} -> {new}", detectable)
    if mentions:
        i, m = _pick(rng, mentions)
        s = r.sentences[i]
        new_header = dict(header, modality=_MODALITY_SWAP[m.group(0).lower()][1])
        # the header changed: the report sentence that now contradicts it is the error's span
        return r.text, new_header, InjectedError("metadata", complex_class("metadata"), s.text, s.text, s.start, s.end,
                                                 f"header modality -> {new_header['modality']}", "header modality", True)
    for pattern, sex in ((lx.FEMALE_ANATOMY, "M"), (lx.MALE_ANATOMY, "F")):
        hit = re.search(pattern, r.text, re.I)
        if hit and str(header.get("patient_sex") or header.get("sex") or "").upper() != sex:
            new_header = {k: v for k, v in header.items() if k != "sex"} | {"patient_sex": sex}
            return r.text, new_header, InjectedError("metadata", complex_class("metadata"), hit.group(0), hit.group(0),
                                                     hit.start(), hit.end(), f"header sex -> {sex}", "header sex", True)
    return None


OPERATIONS: dict[str, Callable[[_Report, dict | None, np.random.Generator], Edit | None]] = {
    "laterality": op_laterality, "negation": op_negation, "measurement": op_measurement, "severity": op_severity,
    "location": op_location, "finding": op_finding, "insertion": op_insertion, "omission": op_omission,
    "contradiction": op_contradiction, "device": op_device, "interval": op_interval, "transcription": op_transcription,
    "metadata": op_metadata,
}
if set(OPERATIONS) != set(TYPE_IDS):  # pragma: no cover - a new taxonomy id needs its operation
    raise RuntimeError(f"injector operations {sorted(OPERATIONS)} do not match the taxonomy {sorted(TYPE_IDS)}")


def inject_one(report: str, header: dict | None, rng: np.random.Generator, types: tuple[str, ...] = TYPE_IDS
               ) -> tuple[str, dict | None, InjectedError] | None:
    """Apply one applicable error (types tried in random order); None if none applies."""
    r = _Report(report)
    for idx in rng.permutation(len(types)):
        edit = OPERATIONS[types[int(idx)]](r, header, rng)
        if edit is not None:
            text, new_header, err = edit
            return text, (new_header if new_header is not None else header), err
    return None


def inject_dataset(rows: list[dict], rate: float = 0.5, types: tuple[str, ...] = TYPE_IDS, seed: int = 0) -> list[dict]:
    """Dataset rows: a share ``rate`` of reports get one injected error (with provenance)."""
    unknown = [t for t in types if t not in TYPE_IDS]
    if unknown:
        from medmm.errors import InputError

        raise InputError(f"unknown error type(s) {unknown}; known: {', '.join(TYPE_IDS)}")
    rng = np.random.default_rng(seed)
    out = []
    for row in rows:
        report, header = row["report"], row.get("header")
        rec = {"id": row["id"], "source": row.get("source"), "report": report, "header": header, "has_error": False,
               "errors": [], "original_report": report, "injector": "medmm"}
        for extra in ("images", "regions"):  # image references travel with the report (for audits and the app)
            if row.get(extra):
                rec[extra] = row[extra]
        if rng.random() < rate:
            edit = inject_one(report, header, rng, types)
            if edit is not None:
                text, new_header, err = edit
                rec.update(report=text, header=new_header, has_error=True, errors=[err.as_dict()])
        out.append(rec)
    return out

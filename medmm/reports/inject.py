"""Synthetic error injection with provenance (``medmm inject``).

Each operation edits one sentence (or the header) the way a dictation or template error
would, and records the original and edited sentence, the span of the edit in the edited
report, the taxonomy type and its COMPLEX class. Conventions (so that a text-only checker
can tell the kinds apart, as a reader would): ``negation`` edits a FINDINGS sentence
(present -> absent keeping the location, or absent -> present); ``contradiction`` edits the
IMPRESSION so that it denies a finding the FINDINGS report; ``laterality`` swaps left/right
in one sentence of a one-sided finding (bilateral and midline findings are left alone).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from medmm.reports.analysis import NO_PRIOR, Analysis, analyze, prior_status
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Edit = tuple[str, dict | None, InjectedError]


def _replace(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _sentence_edit(a: Analysis, idx: int, new: str, kind: str, detail: str = "") -> Edit:
    s = a.sentences[idx]
    text = _replace(a.text, s.start, s.end, new)
    return text, None, InjectedError(kind, complex_class(kind), s.text, new, s.start, s.start + len(new), detail)


def _lesion_mentions(a: Analysis, section: str | None = None, positive: bool | None = True) -> list:
    out = []
    for m in a.mentions:
        if m.is_device or (section and m.section != section):
            continue
        if positive is True and (not m.positive or m.uncertain):
            continue
        if positive is False and not m.negated:
            continue
        out.append(m)
    return out


def _pick(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))] if items else None


_SWAP_SIDE = re.compile(r"\b(left|right|Left|Right)\b")


def op_laterality(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    cands = [m for m in _lesion_mentions(a) if m.side in ("left", "right") and m.section in ("findings", "impression")]
    m = _pick(rng, cands)
    if m is None:
        return None
    sent = a.sentences[m.sentence].text
    swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}
    return _sentence_edit(a, m.sentence, _SWAP_SIDE.sub(lambda x: swap[x.group(1)], sent), "laterality",
                          f"{m.side} -> {swap[m.side]}")


_LOC = re.compile(r"\b(?:in|of|at)\s+the\s+((?:left|right)\s+)?([a-z]+(?:\s+[a-z]+){0,3}?)(?=[,.;]|\s+(?:with|measuring|which|and)\b|$)")


def _singular(word: str) -> str:
    w = word.lower()
    for plural, single in (("masses", "mass"), ("pneumothoraces", "pneumothorax"), ("opacities", "opacity")):
        if w.endswith(plural):
            return w[: -len(plural)] + single
    return w[:-1] if w.endswith("s") and not w.endswith("ss") else w


def _negative_of(a: Analysis, m) -> str:
    term = _singular(m.text)
    if m.type == "effusion":
        term = "pleural effusion"
    sent = a.sentences[m.sentence].text
    loc = _LOC.search(sent)
    if m.side in ("left", "right") and m.type in ("effusion", "pneumothorax"):
        return f"No {m.side} {term}."
    if loc:
        return f"There is no {term} in the {(loc.group(1) or '')}{loc.group(2)}."
    return f"No {term}."


def op_negation(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    pos = [m for m in _lesion_mentions(a, "findings") if m.type in ("nodule", "mass", "cyst", "effusion", "pneumothorax",
                                                                       "consolidation", "fracture", "hemorrhage", "edema")]
    neg = [m for m in _lesion_mentions(a, "findings", positive=False)
           if m.type in ("pneumothorax", "effusion", "consolidation", "fracture", "mass", "nodule", "hemorrhage", "edema")]
    if pos and (not neg or rng.random() < 0.6):
        m = _pick(rng, pos)
        return _sentence_edit(a, m.sentence, _negative_of(a, m), "negation", f"{m.text}: present -> absent")
    m = _pick(rng, neg)
    if m is None:
        return None
    sent = a.sentences[m.sentence].text
    if re.search(r"\b(?:or|nor|and)\b|,", sent):
        return None  # a negated list: flipping one item needs a rewrite we do not attempt
    sev = str(rng.choice(["Small", "Moderate", "Large"]))
    side = str(rng.choice(["left", "right"]))
    term = {"effusion": "pleural effusion", "consolidation": "consolidation", "fracture": "acute fracture",
            "pneumothorax": "pneumothorax", "mass": "mass", "nodule": "nodule", "hemorrhage": "hemorrhage",
            "edema": "edema"}[m.type]
    new = f"{sev} {side} {term}." if m.type in ("effusion", "pneumothorax") else f"There is {'an' if term[0] in 'aeiou' else 'a'} {term}."
    return _sentence_edit(a, m.sentence, new, "negation", f"{m.text}: absent -> present")


def op_contradiction(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    pos = _lesion_mentions(a, "findings")
    imp = a.section("impression")
    if not pos or imp is None:
        return None
    m = _pick(rng, pos)
    denial = _negative_of(a, m)
    same = [x for x in a.in_section("impression") if x.type == m.type and x.positive]
    if same:
        return _sentence_edit(a, same[0].sentence, denial, "contradiction", f"impression denies {m.text}")
    at = imp.end if not a.text[imp.start: imp.end].endswith("\n") else imp.end - 1
    while at > imp.start and a.text[at - 1].isspace():
        at -= 1
    new = " " + denial
    text = a.text[:at] + new + a.text[at:]
    return text, None, InjectedError("contradiction", complex_class("contradiction"), "", denial, at + 1, at + len(new),
                                     f"impression denies {m.text}")


_SIZE_EDIT = re.compile(r"\b(\d+(?:\.\d+)?)(\s*)(mm|cm)\b")


def op_measurement(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    cands = [m for m in _lesion_mentions(a) if m.size_text]
    m = _pick(rng, cands)
    if m is None:
        return None
    s, e = m.size_text
    mt = _SIZE_EDIT.match(a.text[s:e])
    if not mt:
        return None
    value, space, unit = mt.group(1), mt.group(2), mt.group(3)
    if rng.random() < 0.5:
        new_size = f"{value}{space}{'cm' if unit == 'mm' else 'mm'}"
        detail = f"unit {unit} -> {'cm' if unit == 'mm' else 'mm'}"
    else:
        v = float(value) * float(rng.choice([0.4, 0.5, 2.0, 2.5, 3.0]))
        new_size = f"{v:.0f}{space}{unit}" if unit == "mm" else f"{v:.1f}{space}{unit}"
        detail = f"value {value} -> {new_size}"
    sent = a.sentences[m.sentence]
    new_sent = sent.text[: s - sent.start] + new_size + sent.text[e - sent.start:]
    text = _replace(a.text, sent.start, sent.end, new_sent)
    err = InjectedError("measurement", complex_class("measurement"), sent.text, new_sent, s, s + len(new_size), detail)
    return text, None, err


_SEVERITIES = {"small": "large", "large": "small", "moderate": "small", "mild": "severe", "severe": "mild",
               "Small": "Large", "Large": "Small", "Moderate": "Small", "Mild": "Severe", "Severe": "Mild"}


def op_severity(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    cands = [m for m in _lesion_mentions(a) if m.severity in ("small", "moderate", "large", "mild", "severe")]
    m = _pick(rng, cands)
    if m is None:
        return None
    sent = a.sentences[m.sentence].text
    new = re.sub(r"\b(small|moderate|large|mild|severe|Small|Moderate|Large|Mild|Severe)\b",
                 lambda x: _SEVERITIES[x.group(1)], sent, count=1)
    return _sentence_edit(a, m.sentence, new, "severity", f"{m.severity} changed")


_INTERVAL_PHRASES = (", unchanged from the prior study", ", new since the prior examination", ", increased since the prior study",
                     ", stable compared with the prior study")
_BARE_INTERVAL = (", unchanged", ", new", ", increased in size", ", stable")


def op_interval(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    status = prior_status(a)
    if status == "prior":
        comp = a.section("comparison")
        if comp is None or NO_PRIOR.match(comp.text):
            return None
        # the comparison now says there is no prior, while the body keeps its interval language
        from medmm.reports.analysis import INTERVAL

        if not any(INTERVAL.search(s.text) for s in a.sentences if s.section in ("findings", "impression")):
            return None
        s0 = comp.start + (len(comp.text) - len(comp.text.lstrip()))
        e0 = comp.start + len(comp.text.rstrip())
        text = _replace(a.text, s0, e0, "None.")
        return text, None, InjectedError("interval", complex_class("interval"), a.text[s0:e0], "None.", s0, s0 + 5,
                                         "comparison removed while interval language remains")
    cands = [m for m in _lesion_mentions(a) if m.section in ("findings", "impression")]
    m = _pick(rng, cands)
    if m is None:
        return None
    sent = a.sentences[m.sentence].text
    body = sent.rstrip(".;")
    # with COMPARISON saying "none" any interval phrase contradicts it; with no COMPARISON section a phrase that
    # names a prior would itself be the only (unverifiable) statement about one, so a bare interval word is used
    phrase = str(rng.choice(_INTERVAL_PHRASES if status == "none" else _BARE_INTERVAL))
    return _sentence_edit(a, m.sentence, body + phrase + sent[len(body):] if sent[len(body):] else body + phrase + ".",
                          "interval", "interval language without a prior")


_HOMOPHONE_EDITS = ((re.compile(r"\bpleural\b"), "plural"), (re.compile(r"\bright\b"), "write"),
                    (re.compile(r"\bNo\b(?= (?:evidence|acute|focal))"), "Know"), (re.compile(r"\bThere is\b"), "Their is"))


def op_transcription(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    body = [i for i, s in enumerate(a.sentences) if s.section in ("findings", "impression")]
    if not body:
        return None
    choice = rng.random()
    if choice < 0.34:
        i = _pick(rng, [i for i in body if len(a.sentences[i].text.split()) >= 3])
        if i is None:
            return None
        s = a.sentences[i]
        text = a.text[: s.end] + " " + s.text + a.text[s.end:]
        start = s.end + 1
        return text, None, InjectedError("transcription", complex_class("transcription"), s.text, s.text + " " + s.text,
                                         start, start + len(s.text), "repeated sentence")
    if choice < 0.67:
        for j in rng.permutation(len(_HOMOPHONE_EDITS)):
            pattern, new = _HOMOPHONE_EDITS[int(j)]
            hits = [(i, m) for i in body for m in pattern.finditer(a.sentences[i].text)]
            if hits:
                i, m = hits[int(rng.integers(len(hits)))]
                s = a.sentences[i]
                new_sent = s.text[: m.start()] + new + s.text[m.end():]
                text = _replace(a.text, s.start, s.end, new_sent)
                start = s.start + m.start()
                return text, None, InjectedError("transcription", complex_class("transcription"), s.text, new_sent,
                                                 start, start + len(new), f"homophone {m.group(0)} -> {new}")
    from medmm.reports.checker import _speller

    spell = _speller()
    words = [(i, m) for i in body for m in re.finditer(r"\b[a-z]{6,}\b", a.sentences[i].text)]
    for _ in range(10):
        if not words:
            return None
        i, m = words[int(rng.integers(len(words)))]
        w = m.group(0)
        k = int(rng.integers(1, len(w) - 2))
        op = rng.random()
        typo = w[:k] + w[k + 1] + w[k] + w[k + 2:] if op < 0.5 else (w[:k] + w[k + 1:] if op < 0.8 else w[:k] + w[k] + w[k:])
        if typo != w and typo not in spell:
            s = a.sentences[i]
            new_sent = s.text[: m.start()] + typo + s.text[m.end():]
            text = _replace(a.text, s.start, s.end, new_sent)
            start = s.start + m.start()
            return text, None, InjectedError("transcription", complex_class("transcription"), s.text, new_sent, start,
                                             start + len(typo), f"typo {w} -> {typo}")
    return None


_MOD_WORDS = re.compile(r"\b(CT|MRI|radiographs?|x-ray)\b", re.I)
_MOD_SWAP = {"ct": ("MRI", "MR"), "mri": ("CT", "CT"), "radiograph": ("CT", "CT"), "radiographs": ("CT", "CT"),
             "x-ray": ("CT", "CT")}


def op_metadata(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    from medmm.reports.checker import _NOT_THIS_STUDY

    mentions = [(i, m) for i, s in enumerate(a.sentences) if s.section not in ("comparison", "indication")
                and not _NOT_THIS_STUDY.search(s.text) for m in _MOD_WORDS.finditer(s.text)]
    header = dict(header or {})
    if mentions:
        i, m = mentions[int(rng.integers(len(mentions)))]
        s = a.sentences[i]
        word = m.group(0)
        if rng.random() < 0.5 or not header.get("modality"):
            new_word = _MOD_SWAP[word.lower()][0]
            new_sent = s.text[: m.start()] + new_word + s.text[m.end():]
            text = _replace(a.text, s.start, s.end, new_sent)
            start = s.start + m.start()
            return text, None, InjectedError("metadata", complex_class("metadata"), s.text, new_sent, start,
                                             start + len(new_word), f"report modality {word} -> {new_word}")
        new_header = dict(header, modality=_MOD_SWAP[word.lower()][1])
        start = s.start + m.start()
        return a.text, new_header, InjectedError("metadata", complex_class("metadata"), s.text, s.text, start,
                                                 start + len(word), f"header modality -> {new_header['modality']}")
    sided = {m.side for m in a.mentions if m.positive and m.side in ("left", "right")}
    if len(sided) == 1 and rng.random() < 0.5:  # the image laterality now names the other side
        side = sided.pop()
        m = next(m for m in a.mentions if m.positive and m.side == side)
        new_header = dict(header, laterality="R" if side == "left" else "L")
        return a.text, new_header, InjectedError("metadata", complex_class("metadata"), a.sentences[m.sentence].text,
                                                 a.sentences[m.sentence].text, m.start, m.end,
                                                 f"header laterality -> {new_header['laterality']}")
    from medmm.reports.checker import _FEMALE, _MALE

    for pattern, sex in ((_FEMALE, "M"), (_MALE, "F")):
        hit = pattern.search(a.text)
        if hit and (header.get("sex") or "").upper() != sex:
            new_header = dict(header, sex=sex)
            return a.text, new_header, InjectedError("metadata", complex_class("metadata"), hit.group(0), hit.group(0),
                                                     hit.start(), hit.end(), f"header sex -> {sex}")
    body_part = (header.get("body_part") or "").upper()
    from medmm.reports.checker import _REGIONS

    if body_part in ("CHEST", "HEAD"):
        region = "CHEST" if body_part == "CHEST" else "HEAD"
        for s in a.sentences:
            if s.section in ("findings", "impression"):
                m = _REGIONS[region].search(s.text)
                if m:
                    new_header = dict(header, body_part="HEAD" if region == "CHEST" else "CHEST")
                    return a.text, new_header, InjectedError("metadata", complex_class("metadata"), s.text, s.text,
                                                             s.start + m.start(), s.start + m.end(),
                                                             f"header body part -> {new_header['body_part']}")
    return None


_FINDING_SWAP = {"nodule": "mass", "mass": "nodule", "cyst": "mass", "consolidation": "atelectasis",
                 "pneumothorax": "pleural effusion", "effusion": "pneumothorax"}


def op_finding(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    m = _pick(rng, [m for m in _lesion_mentions(a) if m.type in _FINDING_SWAP])
    if m is None:
        return None
    sent = a.sentences[m.sentence]
    rel = m.start - sent.start
    new = sent.text[:rel] + _FINDING_SWAP[m.type] + sent.text[rel + len(m.text):]
    new = new.replace("pleural pleural", "pleural")
    return _sentence_edit(a, m.sentence, new, "finding", f"{m.text} -> {_FINDING_SWAP[m.type]}")


def op_location(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    swaps = (("upper lobe", "lower lobe"), ("lower lobe", "upper lobe"), ("frontal", "occipital"),
             ("occipital", "frontal"), ("temporal", "parietal"), ("parietal", "temporal"), ("apex", "base"))
    for i in rng.permutation(len(a.sentences)):
        s = a.sentences[int(i)]
        if s.section not in ("findings", "impression"):
            continue
        for old, new in swaps:
            if old in s.text:
                return _sentence_edit(a, int(i), s.text.replace(old, new, 1), "location", f"{old} -> {new}")
    return None


def op_device(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    devices = [m for m in a.mentions if m.is_device and m.positive]
    fnd = a.section("findings")
    moves = ((r"above the carina", "in the right mainstem bronchus"), (r"in the superior vena cava", "in the right atrium"),
             (r"below the diaphragm", "in the distal esophagus"), (r"in expected position", "in the coronary sinus"),
             (r"in (?:good|satisfactory|standard) position", "in the right mainstem bronchus"))
    placed = [(m, pat, new) for m in devices for pat, new in moves if re.search(pat, a.sentences[m.sentence].text)]
    if placed and rng.random() < 0.5:  # move: the device's position changed
        m, pat, new_pos = placed[int(rng.integers(len(placed)))]
        sent = a.sentences[m.sentence].text
        return _sentence_edit(a, m.sentence, re.sub(pat, new_pos, sent, count=1), "device", f"{m.text} moved")
    if devices and rng.random() < 0.7:
        m = _pick(rng, devices)
        sent = a.sentences[m.sentence]
        rename = {"endotracheal_tube": "nasogastric tube", "central_line": "chest tube", "pacemaker": "loop recorder",
                  "chest_tube": "central line", "nasogastric_tube": "endotracheal tube"}.get(m.type, "catheter")
        rel = m.start - sent.start
        new = sent.text[:rel] + rename + sent.text[rel + len(m.text):]
        return _sentence_edit(a, m.sentence, new, "device", f"{m.text} -> {rename}")
    if fnd is None:
        return None
    at = fnd.start + len(fnd.text.rstrip())
    new = " " + str(rng.choice(["Endotracheal tube in place with the tip above the carina.",
                                "Left chest wall pacemaker with leads in expected position.",
                                "Right internal jugular central venous catheter with tip in the superior vena cava."]))
    text = a.text[:at] + new + a.text[at:]
    return text, None, InjectedError("device", "insert", "", new.strip(), at + 1, at + len(new), "device added")


def op_insertion(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    fnd = a.section("findings")
    if fnd is None:
        return None
    present = {m.type for m in a.mentions if m.positive}
    options = [t for t in ("pneumothorax", "effusion", "nodule", "consolidation") if t not in present]
    if not options:
        return None
    kind = str(rng.choice(options))
    side = str(rng.choice(["left", "right"]))
    new = {"pneumothorax": f"Small {side} pneumothorax.", "effusion": f"Small {side} pleural effusion.",
           "nodule": f"A 6 mm nodule in the {side} upper lobe.", "consolidation": f"Consolidation in the {side} lower lobe."}[kind]
    at = fnd.start + len(fnd.text.rstrip())
    text = a.text[:at] + " " + new + a.text[at:]
    return text, None, InjectedError("insertion", "insert", "", new, at + 1, at + 1 + len(new), f"added {kind}")


def op_omission(a: Analysis, header: dict | None, rng: np.random.Generator) -> Edit | None:
    pos = [m for m in _lesion_mentions(a, "findings")
           if any(x.type == m.type and x.positive for x in a.in_section("impression"))]
    m = _pick(rng, pos)
    if m is None:
        return None
    s = a.sentences[m.sentence]
    end = s.end
    while end < len(a.text) and a.text[end] == " ":
        end += 1
    text = a.text[: s.start] + a.text[end:]
    imp = next(x for x in a.in_section("impression") if x.type == m.type and x.positive)
    shift = end - s.start
    start = imp.start - shift if imp.start > s.start else imp.start
    return text, None, InjectedError("omission", "remove", s.text, "", start, start + len(imp.text),
                                     f"findings no longer mention {m.text}")


OPERATIONS: dict[str, Callable[[Analysis, dict | None, np.random.Generator], Edit | None]] = {
    "laterality": op_laterality, "negation": op_negation, "measurement": op_measurement, "severity": op_severity,
    "location": op_location, "finding": op_finding, "insertion": op_insertion, "omission": op_omission,
    "contradiction": op_contradiction, "device": op_device, "interval": op_interval, "transcription": op_transcription,
    "metadata": op_metadata,
}
assert set(OPERATIONS) == set(TYPE_IDS)


def inject_one(report: str, header: dict | None, rng: np.random.Generator, types: tuple[str, ...] = TYPE_IDS
               ) -> tuple[str, dict | None, InjectedError] | None:
    """Apply one applicable error (types tried in random order); None if none applies."""
    a = analyze(report)
    for idx in rng.permutation(len(types)):
        kind = types[int(idx)]
        edit = OPERATIONS[kind](a, header, rng)
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
               "errors": [], "original_report": report}
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

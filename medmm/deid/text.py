"""Scrubbing report text: names, dates, MRNs and accession numbers, phone numbers, addresses,
e-mail addresses and ages over 89 are replaced by a bracketed category (``[NAME]``, ``[DATE]`` …).

Rules, not a model: each category is a few patterns keyed on the cues a report gives (titles,
labels such as ``MRN:`` or ``Dictated by``, credentials after a name, street suffixes, month
names). A name with no cue at all ("Smith was informed") is not found; the measured recall and
precision on a synthetic PHI corpus (written by ``tests/deid/test_text.py``) are in SECURITY.md.
Clinical numbers (sizes, vertebral levels, series/image numbers, ages up to 89) are left alone.

:func:`scrub_text` returns the new text and the spans it replaced (offsets in the input), so
callers can show or audit what was removed without logging it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("NAME", "DATE", "ID", "PHONE", "ADDRESS", "EMAIL", "AGE")

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_LETTER = r"[^\W\d_]"
_NAME_WORD = rf"[A-Z\u00C0-\u00DE](?:{_LETTER}|['\u2019-]){{0,30}}{_LETTER}"  # bounded: linear on "Aa-" * 33334
_INITIAL = r"[A-Z]\."
_PARTICLE = r"(?:van|von|de|der|den|del|della|da|di|du|dos|das|la|le|ten|ter|al|bin|ibn)"  # "Dr. van der Berg"
_NAME = rf"{_NAME_WORD}(?:,?\s(?:{_INITIAL}\s?)?{_NAME_WORD}){{0,2}}"
_CREDENTIAL = r"(?:M\.?D\.?|D\.?O\.?|R\.?N\.?|N\.?P\.?|PA-C|Ph\.?D\.?|MBBS|FRCR)(?!\w)"
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
           r"Circle|Cir|Parkway|Pkwy|Highway|Hwy)")
_NAME_CUES = (  # a name follows these, with or without a colon
    r"(?:Patient|Pt)(?:'s)? Name|Referring (?:Physician|Provider|Doctor|MD)|Ordering (?:Physician|Provider|MD)|"
    r"(?:Electronically )?[Ss]igned(?: off)? by|Dictated by|Read by|Reported (?:by|to)|Reviewed by|Transcribed by|"
    r"Verified by|Interpreted by|Approved by|[Dd]iscussed with|[Cc]ommunicated (?:to|with)|"
    r"[Cc]alled to|[Nn]otified|[Ii]nformed|[Ss]poke with|[Cc]onveyed to|[Rr]eviewed with|d/w"
)
_ROLES = (  # a role between a cue and the name: "Reviewed by Fellow: Sarah Connor" (issue 20, D3)
    r"(?:Chief|Senior|Junior|Staff|Consultant|Supervising|Covering|On-call)\s+"  # "Chief Resident" (verifier)
    r"(?:Fellow|Resident|Attending(?: Physician| Radiologist)?|Radiologist|Technologist|Physician|Surgeon|Nurse)|"
    r"Fellow|Resident|Attending(?: Physician| Radiologist)?|Radiologist|Technologist|Tech|Sonographer|Nurse|"
    r"Physician|Provider|Surgeon|Physician Assistant|PA|NP|RN"
)
_NAME_LABELS = (  # short labels: a name follows only after a colon ("Pt: ...", not "Pt POD 6")
    r"Patient|Pt|Name|Attending(?: Physician)?|Radiologist|Resident|Fellow|Technologist|Tech|Sonographer|"
    r"Physician|Provider|PCP|cc|Ordering|Requesting|Referring"
)
# words that end a name span (a label's next capitalised word is often not a name)
_NOT_NAMES = {
    "The", "A", "An", "No", "Not", "None", "At", "On", "In", "Of", "By", "To", "And", "Or", "With", "For", "From",
    "Emergency", "Department", "ED", "ER", "ICU", "Clinic", "Team", "Service", "Radiology", "Surgery", "Oncology",
    "Findings", "Impression", "History", "Comparison", "Technique", "CT", "MRI", "MR", "US", "PET", "Chest", "Head",
    "Report", "Study", "Exam", "Examination", "Is", "Was", "Has", "Had", "Who", "Male", "Female", "Unknown",
    "Date", "Time", "Phone", "MRN", "ID", "Accession", "Age", "Sex", "DOB", "Address", "Name", "Patient",
    "Dr", "Mr", "Mrs", "Ms", "Miss", "Prof", "Doctor", "Fellow", "Resident", "Attending", "Radiologist",
    "Technologist", "Tech", "Sonographer", "Nurse", "Physician", "Provider", "Surgeon",
    "Chief", "Senior", "Junior", "Staff", "Consultant", "Supervising", "Covering",
    "MD", "M.D", "DO", "D.O", "RN", "NP", "PA", "PA-C", "PhD", "Ph.D", "RT", "MBBS", "FRCR",
}


_AFTER_PATIENT = {  # capitalised words that follow "Patient" without being a name
    "Position", "Positioning", "History", "Name", "Care", "Information", "Identification", "Preparation", "Prep",
    "Instructions", "Consent", "Age", "Sex", "Status", "Education", "Safety", "Motion", "Outcome", "Tolerated",
    "Was", "Is", "Has", "Had", "Denies", "Reports", "Presents", "Underwent", "States", "Complains", "Returns",
    "Declined", "Refused", "Arrived", "Left", "Right", "Supine", "Prone", "Transport", "Weight", "Height", "Dose",
    "Comfort", "Cooperation", "Unable", "Able", "Portal", "Room", "Class", "Type", "Record",
}


@dataclass(frozen=True)
class PhiSpan:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class ScrubResult:
    text: str
    spans: tuple[PhiSpan, ...]  # offsets in the input text, sorted, non-overlapping


_PATTERNS: list[tuple[str, re.Pattern[str], int]] = [  # (kind, pattern, group holding the PHI)
    ("EMAIL", re.compile(r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\b"), 0),  # bounded: "a." * 50000
    ("PHONE", re.compile(r"(?<![\w.])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}\b"
                         r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?", re.I), 0),
    ("PHONE", re.compile(r"(?<![\w.-])\d{3}[-.]\d{4}\b(?![-.]\d)"), 0),  # seven digits: "call 555-1234"
    ("PHONE", re.compile(r"\b(?i:phone|telephone|tel|call|cell|mobile|fax|pager|beeper)\.?\s*(?:at|on|:|#)?\s*"
                         r"(\d{3}\s\d{4})\b(?!\s?(?:mm|cm|ml|mg|HU|%))"), 1),  # "phone 555 1234" (verifier)
    # internal numbers after a cue: "pager 4-1234", "ext. 45678", "bleep #2231" (a bare number needs the cue)
    ("PHONE", re.compile(r"\b(?i:phone|telephone|tel|call|cell|mobile|fax|pager|beeper|bleep|ext|extension)\.?\s*"
                         r"(?:at|on|:|#|no\.?)?\s*#?\s*(\d{1,3}-\d{4}|\d{4,7})\b(?![-.]?\d)(?!\s?(?:mm|cm|ml|mg|HU|%))"), 1),
    ("ID", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), 0),  # SSN
    ("ID", re.compile(r"\b(?:MRN|MR\s?#|Medical Record(?: Number| No\.?| #)?|Accession(?: Number| No\.?| #)?|Acc(?:\.|\s?#)|"
                      r"Patient ID|Pt ID|Record(?: Number| No\.?| #)|Order(?: Number| No\.?| #)|Study ID|Exam ID|"
                      r"Encounter(?: Number| No\.?| #)?|Visit(?: Number| No\.?| #)|CSN|FIN|ID)\s*(?:[:#]|No\.?)?\s*"
                      r"([A-Z]{0,4}-?\d[A-Z0-9-]{2,30})", re.I), 1),
    ("ID", re.compile(r"\b(?=[A-Z]{0,4}\d{6,24}\b)[A-Z]{0,4}\d{6,24}\b(?!\s?(?:mm|cm|ml|mg|HU|%))"), 0),
    ("DATE", re.compile(r"\b\d{1,2}[/-]\d{1,2}[/-](?:\d{4}|\d{2})\b"), 0),
    ("DATE", re.compile(r"\b(?:19|20)\d{2}[/-]\d{1,2}[/-]\d{1,2}\b"), 0),
    ("DATE", re.compile(r"\b\d{1,2}\.\d{1,2}\.(?:19|20)\d{2}\b"), 0),  # 05.01.1950
    ("DATE", re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"), 0),  # DICOM DA
    ("DATE", re.compile(rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b"), 0),
    ("DATE", re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+(?:19|20)\d{{2}}\b"), 0),
    ("DATE", re.compile(rf"\b{_MONTH}\.?,?\s+(?:19|20)\d{{2}}\b"), 0),
    ("DATE", re.compile(rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?!\s*(?:mm|cm|%))"), 0),
    ("ADDRESS", re.compile(rf"\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-z]{{1,30}}\.?\s+){{1,3}}{_STREET}\b\.?"
                           r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[\w-]+)?"
                           r"(?:,\s*[A-Z][a-z]{1,30}(?:\s[A-Z][a-z]{1,30})?)?(?:,\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?"), 0),
    ("ADDRESS", re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d+\b", re.I), 0),
    ("ADDRESS", re.compile(r"\b[A-Z][a-z]{1,30}(?:\s[A-Z][a-z]{1,30})?,\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"), 0),
    ("NAME", re.compile(r"\b[A-Z][A-Za-z'-]{0,40}\^[A-Z][A-Za-z'-]{0,40}(?:\^[A-Za-z'-]{0,40}){0,3}"), 0),  # DICOM PN
    ("NAME", re.compile(rf"\b(?:Dr|Doctor|Mr|Mrs|Ms|Miss|Mx|Prof)\.?\s+((?:{_INITIAL}\s?)?(?:{_PARTICLE}\s){{0,2}}{_NAME})"), 1),
    ("NAME", re.compile(rf"\b({_NAME})\s*[(\[,;]\s*(?i:MRN|MR\s?#|DOB|D\.O\.B\.|Patient ID|Acc)\b"), 1),
    ("NAME", re.compile(rf"\b(?:(?i:{_NAME_CUES})\s*(?::|-|,)?|(?i:{_NAME_LABELS})\s*:)\s*"
                        rf"(?:(?:Dr|Doctor|Mr|Mrs|Ms|Miss|Mx|Prof)\.?\s+|(?i:{_ROLES})\.?\s*[:,-]?\s+)?"
                        rf"((?:{_INITIAL}\s?)?{_NAME})"), 1),
    # "Patient Jennifer Lopez-Garcia": two or three name words right after Patient/Pt, no colon
    ("NAME", re.compile(rf"\b(?:Patient|PATIENT|[Pp]t\.?|PT\.)\s+((?!(?:{'|'.join(sorted(_AFTER_PATIENT))})\b){_NAME_WORD}"
                        rf"\s(?!(?:{'|'.join(sorted(_AFTER_PATIENT))})\b){_NAME_WORD}(?:\s{_NAME_WORD})?)\b"), 1),
    # "PATIENT: smith, john" / "Name: SMITH, JOHN": a label, then "last, first" in one case
    ("NAME", re.compile(r"\b(?i:Patient(?:'s)? Name|Patient|Pt|Name)\s*:\s*"
                        rf"((?:(?i:{_PARTICLE})\s){{0,2}}[a-z][a-z'-]{{1,30}},\s*[a-z][a-z'-]{{1,30}}|"
                        rf"(?:(?i:{_PARTICLE})\s){{0,2}}[A-Z][A-Z'-]{{1,30}},\s*[A-Z][A-Z'-]{{1,30}})\b"), 1),
    ("NAME", re.compile(rf"\b((?:{_INITIAL}\s?)?{_NAME}),?\s+{_CREDENTIAL}"), 1),
]
_AGE = re.compile(r"\b(\d{2,3})(?:\s*-\s*|\s+)(?:years?|yrs?)(?:\s*-\s*|\s+)old\b|\b(\d{2,3})\s*(?:yo|y/o|y\.o\.|yrs?\b|years?\b)"
                  r"|\b(?:age|aged)\s*:?\s*(\d{2,3})(?:Y\b|\b)(?![MWD]\b)"  # "Age: 102Y" (DICOM AS)
                  r"|\b(\d{3})Y\b", re.I)


def _trim_name(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Cut a name span at the first word that is not a name; None when nothing is left."""
    words = list(re.finditer(r"[^\W\d_][\w'\u2019.-]*", text[start:end]))
    keep_end = start
    for w in words:
        if w.group().rstrip(".") in _NOT_NAMES:
            break
        keep_end = start + w.end()
    if keep_end == start:
        return None
    return start, keep_end


def find_phi(text: str) -> list[PhiSpan]:
    """Every PHI span the rules find, merged (overlaps joined; the earlier pattern's kind wins)."""
    found: list[PhiSpan] = []
    for kind, pattern, group in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if start < 0 or start == end:
                continue
            if kind == "NAME":
                trimmed = _trim_name(text, start, end)
                if trimmed is None:
                    continue
                start, end = trimmed
            found.append(PhiSpan(start, end, kind))
    for m in _AGE.finditer(text):
        g = next(i for i in (1, 2, 3, 4) if m.group(i))
        if int(m.group(g)) > 89:
            found.append(PhiSpan(m.start(g), m.end(g), "AGE"))
    found.sort(key=lambda s: (s.start, -(s.end - s.start)))
    merged: list[PhiSpan] = []
    for s in found:
        if merged and s.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = PhiSpan(last.start, max(last.end, s.end), last.kind)
        else:
            merged.append(s)
    return merged


def scrub_text(text: str) -> ScrubResult:
    """``text`` with every PHI span found replaced by ``[KIND]`` (``[AGE>89]`` for ages)."""
    spans = find_phi(text)
    out, pos = [], 0
    for s in spans:
        out.append(text[pos:s.start])
        out.append("[AGE>89]" if s.kind == "AGE" else f"[{s.kind}]")
        pos = s.end
    out.append(text[pos:])
    return ScrubResult("".join(out), tuple(spans))


def scrub_with_context(value: str, context: str) -> str:
    """Scrub ``value``, a fragment quoted from ``context`` (a flag's text or explanation, from its report):
    PHI found in the whole report is also replaced where the fragment repeats it without its cue
    (a flagged word that is a name, "Smith" in an explanation)."""
    out = scrub_text(value).text
    found = sorted({(context[s.start:s.end], s.kind) for s in find_phi(context)}, key=lambda p: -len(p[0]))
    for phi, kind in found:
        if len(phi.strip()) < 2:
            continue
        label = "[AGE>89]" if kind == "AGE" else f"[{kind}]"
        out = re.sub(rf"(?<!\w){re.escape(phi)}(?!\w)", label, out)
        for part in re.split(r"[\s,]+", phi) if kind == "NAME" else ():  # a first or last name on its own
            if len(part) > 2 and part[0].isupper():
                out = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", label, out)
    return out

"""Report-text scrubbing measured on a synthetic PHI corpus written here: report templates filled
with random names (made from syllables, so no list the scrubber could know), dates in many formats,
MRNs, accession numbers, phone numbers, addresses and ages, each PHI span recorded where it is
inserted. Recall = PHI spans entirely replaced; precision = replaced spans that overlap a PHI span.
Figures (``python -m tests.deid.test_text``) are reported in SECURITY.md.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from medmm.deid import scrub_text
from medmm.deid.text import find_phi

SYLLABLES = ["ka", "lo", "mir", "vos", "tan", "bel", "dru", "fen", "gar", "hol", "is", "jun", "kel", "mar", "nor",
             "pel", "quin", "ros", "sil", "tor", "ul", "ven", "wil", "yar", "zen", "ash", "brin", "cor", "dal", "ev"]
COMMON_FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "Wei", "Aisha",
                "Carlos", "Priya", "Olga", "Kwame", "Sean", "Mei"]
COMMON_LAST = ["Smith", "Johnson", "Williams", "Brown", "Garcia", "Nguyen", "O'Brien", "Kowalski", "Okafor",
               "Patel", "Müller", "Rossi", "Van Dyke", "Lee"]
STREETS = ["Main", "Oak", "Maple Grove", "Elm", "Cedar Hill", "Washington", "Lakeview"]
SUFFIXES = ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Lane", "Drive", "Court"]
CITIES = ["Springfield", "Riverton", "Lake Forest", "Greenville", "Fairview"]
STATES = ["MA", "IL", "CA", "NY", "TX"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

CLINICAL = [  # no PHI: numbers, levels, capitalised terms that must survive
    "FINDINGS: The 6 mm nodule in the right upper lobe is unchanged.",
    "No acute cardiopulmonary process.",
    "IMPRESSION: Stable 12 x 8 mm lesion in segment 7 of the liver.",
    "Heart size is normal. Cardiothoracic ratio 0.45.",
    "Mild degenerative changes at L4-L5 and L5-S1.",
    "Series 3 image 45 shows a 2.1 cm hypodensity.",
    "Follow-up CT in 3-6 months per Fleischner Society guidelines.",
    "TECHNIQUE: Axial images at 1.25 mm, 120 kVp, 250 mAs, 100 mL Omnipaque 350.",
    "Findings were discussed with the referring team.",
    "The Emergency Department was notified of the result.",
    "BI-RADS 2: benign. ACR density category B.",
    "Compared with the prior examination, the effusion has decreased.",
    "COMPARISON: None.",
    "Ejection fraction 55%. Hounsfield units 35 to 40 HU.",
]


class Doc:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str]] = []
        self.length = 0

    def add(self, text: str, kind: str | None = None) -> None:
        if kind:
            self.spans.append((self.length, self.length + len(text), kind))
        self.parts.append(text)
        self.length += len(text)

    def fill(self, template: str, values: dict[str, tuple[str, str | None]]) -> None:
        """``template`` with ``{slot}``s; each value is (text, PHI kind or None)."""
        import re

        pos = 0
        for m in re.finditer(r"\{(\w+)\}", template):
            self.add(template[pos:m.start()])
            text, kind = values[m.group(1)]
            self.add(text, kind)
            pos = m.end()
        self.add(template[pos:])

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _name_word(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(COMMON_LAST)
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _first(rng: random.Random) -> str:
    return rng.choice(COMMON_FIRST) if rng.random() < 0.3 else _name_word(rng)


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1995, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{y}-{m:02d}-{d:02d}",
                       f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1][:3]} {y}", f"{MONTHS[m - 1]} {y}",
                       f"{y}{m:02d}{d:02d}"])


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}", f"{a}-{b}-{c:04d} ext. 12"])


def _address(rng: random.Random) -> str:
    base = f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    if rng.random() < 0.6:
        base += f", {rng.choice(CITIES)}, {rng.choice(STATES)} {rng.randint(10000, 99999)}"
    return base


TEMPLATES = [
    "Patient: {pfirst} {plast}  MRN: {mrn}  DOB: {dob}\n",
    "Patient Name: {plast}, {pfirst}\nAccession Number: {acc}\n",
    "EXAM DATE: {date}\n",
    "CLINICAL HISTORY: {age}-year-old with cough.\n",
    "History: {age} yo male, fall.\n",
    "Comparison: CT chest dated {date}.\n",
    "Findings were discussed with Dr. {dlast} at {phone} on {date}.\n",
    "Electronically signed by: {dfirst} {dlast}, MD on {date}\n",
    "Dictated by {dfirst} {dlast}\n",
    "Referring Physician: {dlast}, {dfirst}\n",
    "Patient address: {address}\n",
    "Call the reading room at {phone} with questions.\n",
    "Acc #: {acc}\n",
    "Prior study {date} (accession {acc}) reviewed.\n",
    "{nfirst} {nlast} tolerated the procedure well.\n",  # no cue: a name the rules cannot know
    "Results communicated to Mrs. {plast} by telephone.\n",
    "Reviewed with {dfirst} {dlast}, PA-C.\n",
]


# Written after the rules, measured as is (recall 0.79), then two generic rule changes (SECURITY.md): no longer held out.
HELD_OUT = [
    "PATIENT: {uplast}, {upfirst}   DOB: {dob}\n",
    "Comparison is made to the exam of {date}.\n",
    "Case reviewed with Dr {dlast} (pager {phone}).\n",
    "The patient, a {age} year old woman, presents with dyspnea.\n",
    "Study performed at {address}.\n",
    "Accession: {acc}; Medical record no. {mrn}.\n",
    "Attending: {dfirst} {dlast}\n",
    "cc: {dfirst} {dlast}, M.D.\n",
    "Ms {plast} was informed of the results.\n",
    "Images obtained {date} at 14:32.\n",
    "Per Dr. {dlast}'s request, a lateral view was added.\n",
    "{plast}, {pfirst} (MRN {mrn})\n",
]


def make_corpus(n: int = 400, seed: int = 0, templates: list[str] | None = None) -> list[Doc]:
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        doc = Doc()
        age = rng.choice([rng.randint(20, 89), rng.randint(90, 104)])
        values = {
            "pfirst": (_first(rng), "NAME"), "plast": (_name_word(rng), "NAME"),
            "dfirst": (_first(rng), "NAME"), "dlast": (_name_word(rng), "NAME"),
            "nfirst": (_first(rng), "NAME_NO_CUE"), "nlast": (_name_word(rng), "NAME_NO_CUE"),
            "mrn": (str(rng.randint(10**6, 10**9)), "ID"),
            "acc": (rng.choice(["A", "ACC", "RAD", ""]) + str(rng.randint(10**5, 10**8)), "ID"),
            "dob": (_date(rng), "DATE"), "date": (_date(rng), "DATE"), "phone": (_phone(rng), "PHONE"),
            "address": (_address(rng), "ADDRESS"), "age": (str(age), "AGE" if age > 89 else None),
        }
        values["uplast"] = (values["plast"][0].upper(), "NAME")
        values["upfirst"] = (values["pfirst"][0].upper(), "NAME")
        for template in rng.sample(templates or TEMPLATES, 5):
            doc.fill(template, values)
            doc.add(rng.choice(CLINICAL) + "\n")
        docs.append(doc)
    return docs


def measure(docs: list[Doc]) -> dict:
    found_by_kind, total_by_kind = Counter(), Counter()
    tp_spans = fp_spans = 0
    for doc in docs:
        scrubbed = find_phi(doc.text)
        covered = [False] * doc.length
        for s in scrubbed:
            covered[s.start:s.end] = [True] * (s.end - s.start)
        for start, end, kind in doc.spans:
            total_by_kind[kind] += 1
            found_by_kind[kind] += all(covered[start:end])
        for s in scrubbed:
            if any(start < s.end and s.start < end for start, end, _ in doc.spans):
                tp_spans += 1
            else:
                fp_spans += 1
    recall = sum(found_by_kind.values()) / sum(total_by_kind.values())
    return {"recall": recall, "precision": tp_spans / max(tp_spans + fp_spans, 1), "n_phi": sum(total_by_kind.values()),
            "false_positives": fp_spans,
            "by_kind": {k: (found_by_kind[k], total_by_kind[k]) for k in sorted(total_by_kind)}}


def test_recall_and_precision_on_the_synthetic_phi_corpus():
    m = measure(make_corpus(400, seed=0))
    assert m["n_phi"] > 3000
    assert m["recall"] >= 0.90, m  # names with no cue at all are missed (SECURITY.md)
    assert m["precision"] >= 0.97, m
    for kind in ("NAME", "DATE", "ID", "PHONE", "ADDRESS", "AGE"):
        found, total = m["by_kind"][kind]
        assert found / total >= 0.97, (kind, m)


def test_clinical_text_survives_unchanged():
    text = "\n".join(CLINICAL) + "\nA 45-year-old woman. Age 89. 3 cm mass at T12. May 5 mm nodules grow?"
    assert scrub_text(text).text == text


def test_ages_over_89_only():
    out = scrub_text("A 92-year-old man. Previously 85 y/o. Age: 101. aged 90 years").text
    assert out == "A [AGE>89]-year-old man. Previously 85 y/o. Age: [AGE>89]. aged [AGE>89] years"


def test_spans_point_into_the_input():
    text = "Signed by Dr. Ada Quorn, MD on 03/04/2021. MRN: 12345678. Tel (617) 555-0100."
    result = scrub_text(text)
    assert [text[s.start:s.end] for s in result.spans] == ["Ada Quorn", "03/04/2021", "12345678", "(617) 555-0100"]
    assert result.text == "Signed by Dr. [NAME], MD on [DATE]. MRN: [ID]. Tel [PHONE]."


REAL = Path(os.environ.get("MEDMM_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "data" / "real_reports" / "iu_dev.jsonl"


def real_report_hits() -> tuple[int, list[tuple[str, bool]]]:
    """Spans found in real, already de-identified reports (IU: PHI replaced by XXXX): (reports, [(kind, at XXXX)])."""
    n, hits = 0, []
    for line in REAL.open(encoding="utf-8"):
        text = json.loads(line)["text"]
        n += 1
        hits += [(s.kind, "XXXX" in text[max(0, s.start - 12):s.end + 12]) for s in find_phi(text)]
    return n, hits


@pytest.mark.skipif(not REAL.exists(), reason="shared real reports (iu_dev.jsonl) not present")
def test_real_reports_scrubbed_only_where_phi_was():
    n, hits = real_report_hits()
    assert n > 2000
    assert sum(1 for _, at_placeholder in hits if not at_placeholder) <= n // 1000


def test_held_out_phrasings_are_measured():
    m = measure(make_corpus(400, seed=0, templates=HELD_OUT))
    assert m["n_phi"] > 2000
    assert m["recall"] >= 0.95 and m["precision"] >= 0.97, m  # 0.79 before two generic rule changes (SECURITY.md)


if __name__ == "__main__":  # figures for SECURITY.md
    for seed in (0, 1, 2):
        print(seed, measure(make_corpus(400, seed=seed)))
        print(seed, "held-out", measure(make_corpus(400, seed=seed, templates=HELD_OUT)))
    if REAL.exists():
        n, hits = real_report_hits()
        print(f"real reports: {n}, spans {len(hits)}, not at a XXXX placeholder {sum(not h for _, h in hits)}")

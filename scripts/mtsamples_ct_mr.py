"""Turn MTSamples (Kaggle "Medical Transcriptions", tboyle10/medicaltranscriptions, CC0) into a real CT/MR dev corpus.

Input: ``mtsamples.csv`` (the Kaggle export: an unnamed row-number column or ``note_id``, ``description``,
``medical_specialty``, ``sample_name``, ``transcription``, ``keywords``), or ``mtsamples.rda``, the same 4,999 rows
as shipped by the clinspacy R package (github.com/kdpsingh/clinspacy, ``data/mtsamples.rda``; reading it needs the
``rdata`` package: ``pip install rdata``).

Kept: the transcriptions listed under the Radiology specialty whose sample name (or description) names a CT or MR
study. MTSamples lists one sample under several specialties, so rows are de-duplicated by their normalised text
(the first row's ``note_id`` names the report). Dropped, each counted on stderr: neurology teaching cases written as
CC:/HX:/COURSE: narratives around an imaging result (not a radiology report), a clinician's note with a PLAN:
(written about a scan, not a report of it), CT-guided procedure notes, and rows whose text describes radiographs
("AP, lateral and swimmer's projections") under an MRI name.

The Kaggle export joined the original lines with commas; the line breaks are put back: ``",FINDINGS:,"`` becomes a
header line, and a comma right after a sentence end (``"... sulcus.,Noncontrast ..."``, ``"... cm.,2.  ..."``)
becomes a line break, and so does a comma glued to the next capitalised word (``"... on 8/3/05,Normal medial"``: a
comma the dictation wrote is followed by a space). Nothing else in the text is changed.

Output (one folder, kept OUTSIDE the repository): ``mtsamples_ct.jsonl`` and ``mtsamples_mr.jsonl``, one object a
line, ``{"id": "mts<note_id>", "source": "mtsamples", "text", "header": {"modality": "CT"|"MR", "body_part"},
"sample_name"}`` — the layout ``medmm check-eval --real`` and ``tests/reports/test_ct_mr_dev.py`` read. The
tune / held-out split is the one ``medmm.reports.evaluate.split_of`` makes from the id (``check-eval --split``).
See ``datasets/mtsamples-ct-mr.md``.

    python scripts/mtsamples_ct_mr.py mtsamples.rda /work/ctmr_dev/
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections import Counter

_CT = re.compile(r"\b(?:CT|CTA|CCTA|KUB|computed\s+tomography)\b", re.I)
_MR = re.compile(r"\b(?:MRI|MRA|MR|magnetic\s+resonance)\b", re.I)
# BodyPartExamined (DICOM defined terms) from the sample name / description / EXAM line; first match wins.
_REGIONS = (("KNEE", r"\bknee\b"), ("SHOULDER", r"\bshoulder\b"), ("ELBOW", r"\belbow\b"), ("WRIST", r"\bwrist\b"),
            ("ANKLE", r"\bankle\b"), ("FOOT", r"\bfoot\b"), ("BREAST", r"\bbreast\b"),
            ("HEART", r"\b(?:coronary|cardiac|CCTA)\b"),
            ("HEAD", r"\b(?:brain|head|skull|orbits?|sinus(?:es)?|cranial|facial|maxillofacial|pituitary)\b"),
            ("CSPINE", r"\b(?:c-?\s?spine|cervical\s+spine|cervical\s+cord)\b"), ("NECK", r"\bneck\b"),
            ("TSPINE", r"\b(?:t-?\s?spine|thoracic\s+spine)\b"),
            ("LSPINE", r"\b(?:l-?\s?spine|l-s\s+spine|lumbar)\b"), ("SPINE", r"\bspine\b"),
            ("CHEST", r"\b(?:chest|thorax|lungs?|pulmonary)\b"),
            ("ABDOMEN", r"\b(?:abdomen|pelvis|abdominal|liver|kidneys?|renal|KUB|stone\s+protocol)\b"))
_HEADER = re.compile(r"(?:^|,)\s*([A-Z][A-Z0-9 /&()'-]{0,58}[A-Z)]):\s*,\s*")  # ",FINDINGS:," -> its own line
_INLINE_HEADER = re.compile(r",\s*(?=[A-Z][A-Z0-9 /&()'-]{0,58}[A-Z)]:\s)")  # ",TECHNIQUE: text" -> new line
_SENTENCE_BREAK = re.compile(r"([.!?:;])\s*,\s*(?=[A-Z0-9(\"'])")  # "... sulcus.,Noncontrast" -> new line
_GLUED_BREAK = re.compile(r"(?<=\S),(?=[A-Z][a-z])")  # "... on 8/3/05,Normal medial ..." (a written comma has a space)
_VIGNETTE = re.compile(r"^\s*CC\s*:|\bHX\s*:|\bCOURSE\s*:")
_CLINIC_NOTE = re.compile(r"(?:^|,)\s*PLAN\s*:")  # a clinician's note about a scan ("I changed the shunt setting")
_PROCEDURE = re.compile(r"\bguided\b|\bbiopsy\b", re.I)
_RADIOGRAPH_TEXT = re.compile(r"\bprojections?\b|\bradiographs?\s+of\s+the\b", re.I)


def modality(name: str) -> str | None:
    ct, mr = bool(_CT.search(name)), bool(_MR.search(name))
    return "CT" if ct and not mr else "MR" if mr and not ct else None


def body_part(*texts: str) -> str | None:
    for text in texts:
        for part, pattern in _REGIONS:
            if re.search(pattern, text, re.I):
                return part
    return None


def restore_lines(text: str) -> str:
    """The Kaggle export joined lines with commas: headers and sentence-final commas become line breaks again."""
    text = _HEADER.sub(lambda m: f"\n{m.group(1).strip()}:\n", text.strip())
    text = _INLINE_HEADER.sub("\n", text)
    text = _SENTENCE_BREAK.sub(lambda m: m.group(1) + "\n", text)
    text = _GLUED_BREAK.sub("\n", text)
    lines = [re.sub(r"[ \t]{2,}", " ", ln).strip(" ,\t") for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln).strip()


def _exam_line(text: str) -> str:
    m = re.search(r"\bEXAM(?:INATION)?\s*:\s*,?\s*([^\n,]{0,120})", text)
    return m.group(1) if m else ""


def convert(rows: list[dict[str, str]], specialty: str | None = "Radiology",
            dropped: Counter | None = None) -> list[dict]:
    """The CT/MR reports of ``rows`` (see the module doc); what was dropped is counted by reason in ``dropped``."""
    out: list[dict] = []
    dropped = Counter() if dropped is None else dropped
    seen: set[str] = set()
    for n, row in enumerate(rows):
        name = (row.get("sample_name") or "").strip()
        desc = (row.get("description") or "").strip()
        raw = (row.get("transcription") or "").strip()
        if specialty and (row.get("medical_specialty") or "").strip() != specialty:
            continue
        mod = modality(name) or modality(f"{name} {desc}")
        if mod is None:
            continue
        key = " ".join(raw.split()).lower()
        if key in seen:
            dropped["duplicate text"] += 1
            continue
        seen.add(key)
        if len(raw) < 80:
            dropped["no text"] += 1
        elif _VIGNETTE.search(raw):
            dropped["teaching case (CC:/HX: narrative), not a report"] += 1
        elif _CLINIC_NOTE.search(raw):
            dropped["clinician's note (PLAN:), not a report"] += 1
        elif _PROCEDURE.search(name):
            dropped["CT-guided procedure note"] += 1
        elif _RADIOGRAPH_TEXT.search(raw) and not (_CT.search(raw) or _MR.search(raw)):
            dropped["text describes radiographs"] += 1
        else:
            text = restore_lines(raw)
            header = {"modality": mod}
            part = body_part(name, desc, _exam_line(text))
            if part:
                header["body_part"] = part
            rid = str(row.get("note_id") or row.get("") or n)
            out.append({"id": f"mts{rid}", "source": "mtsamples", "text": text, "header": header,
                        "sample_name": name})
    return out


def read_rows(path: str) -> list[dict[str, str]]:
    if path.lower().endswith((".rda", ".rdata")):
        try:
            import rdata  # type: ignore[import-not-found]  # only this converter needs it
        except ImportError:
            sys.exit(f"{path}: reading an R data file needs the 'rdata' package (pip install rdata), "
                     "or give the Kaggle mtsamples.csv instead")
        frames = rdata.conversion.convert(rdata.parser.parse_file(path))
        df = frames.get("mtsamples")
        if df is None:
            sys.exit(f"{path}: no 'mtsamples' data frame in it (found: {', '.join(frames)})")
        return [{str(k): ("" if v is None or v != v else str(v)) for k, v in rec.items()}
                for rec in df.to_dict(orient="records")]
    csv.field_size_limit(1 << 26)
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        return list(csv.DictReader(fh))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("source", help="mtsamples.csv (Kaggle export) or mtsamples.rda (clinspacy's data/)")
    ap.add_argument("out", help="folder for mtsamples_ct.jsonl and mtsamples_mr.jsonl (keep it outside the repository)")
    ap.add_argument("--any-specialty", action="store_true",
                    help="also take CT/MR-named rows of other specialties (operative notes, consults: not reports)")
    args = ap.parse_args(argv)
    rows = read_rows(args.source)
    dropped: Counter = Counter()
    out = convert(rows, None if args.any_specialty else "Radiology", dropped)
    os.makedirs(args.out, exist_ok=True)
    for mod in ("CT", "MR"):
        path = os.path.join(args.out, f"mtsamples_{mod.lower()}.jsonl")
        mine = [r for r in out if r["header"]["modality"] == mod]
        with open(path, "w", encoding="utf-8") as fh:
            for rec in mine:
                fh.write(json.dumps(rec) + "\n")
        parts = Counter(r["header"].get("body_part") or "?" for r in mine)
        print(f"wrote {path}: {len(mine)} {mod} reports ({', '.join(f'{k} {v}' for k, v in parts.most_common())})",
              file=sys.stderr)
    print(f"read {len(rows)} rows; dropped: {dict(dropped) or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Turn an MTSamples CSV (Kaggle "Medical Transcriptions", tboyle10/medicaltranscriptions) into a CT/MR dev corpus.

Keeps the transcriptions whose sample name or description names a CT or MR study (``CT``, ``CTA``, ``MRI``,
``MRA``, "computed tomography", "magnetic resonance"), restores the line breaks the Kaggle export turned into
commas (``",IMPRESSION:,"`` -> ``"\\nIMPRESSION:\\n"``), and writes one JSON object a line:
``{"id": "mts<row>", "source": "mtsamples", "text", "header": {"modality": "CT"|"MR", "body_part": ...}}`` —
the layout ``medmm check-eval --real`` and ``tests/reports/test_ct_mr_dev.py`` read. Keep the output outside the
repository (``../shared/data/ctmr_dev/mtsamples_ct_mr.jsonl``); see ``datasets/mtsamples-ct-mr.md``.

    python scripts/mtsamples_ct_mr.py mtsamples.csv ../shared/data/ctmr_dev/mtsamples_ct_mr.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys

_CT = re.compile(r"\b(?:CT|CTA|computed\s+tomography)\b", re.I)
_MR = re.compile(r"\b(?:MRI|MRA|MR|magnetic\s+resonance)\b", re.I)
_REGIONS = (("HEAD", r"\b(?:brain|head|skull|orbits?|sinus(?:es)?|cranial)\b"),
            ("CHEST", r"\b(?:chest|thorax|lungs?|pulmonary)\b"),
            ("ABDOMEN", r"\b(?:abdomen|pelvis|abdominal|liver|kidneys?|renal)\b"),
            ("SPINE", r"\b(?:spine|cervical|thoracic\s+spine|lumbar)\b"))
_HEADER = re.compile(r",\s*([A-Z][A-Z /&-]{1,40}):\s*,")  # ",FINDINGS:," -> a header on its own line


def modality(name: str) -> str | None:
    ct, mr = bool(_CT.search(name)), bool(_MR.search(name))
    return "CT" if ct and not mr else "MR" if mr and not ct else None


def body_part(name: str) -> str | None:
    for part, pattern in _REGIONS:
        if re.search(pattern, name, re.I):
            return part
    return None


def restore_lines(text: str) -> str:
    """The Kaggle export joined lines with commas; headers become lines of their own again."""
    text = _HEADER.sub(lambda m: f"\n{m.group(1).strip()}:\n", " " + text.strip())
    text = re.sub(r"(?m)^\s*,\s*", "", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def convert(rows: list[dict[str, str]]) -> list[dict]:
    out = []
    for n, row in enumerate(rows):
        name = f"{row.get('sample_name', '')} {row.get('description', '')}"
        mod = modality(row.get("sample_name", "")) or modality(name)
        text = row.get("transcription") or ""
        if mod is None or len(text) < 80:
            continue
        header = {"modality": mod}
        part = body_part(name)
        if part:
            header["body_part"] = part
        out.append({"id": f"mts{row.get('') or n}", "source": "mtsamples", "text": restore_lines(text),
                    "header": header, "sample_name": (row.get("sample_name") or "").strip(),
                    "specialty": (row.get("medical_specialty") or "").strip()})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="mtsamples.csv (columns description, medical_specialty, sample_name, transcription)")
    ap.add_argument("out", help="the JSONL to write (keep it outside the repository)")
    args = ap.parse_args(argv)
    csv.field_size_limit(1 << 26)
    with open(args.csv, newline="", encoding="utf-8", errors="replace") as fh:
        rows = list(csv.DictReader(fh))
    out = convert(rows)
    with open(args.out, "w", encoding="utf-8") as fh:
        for rec in out:
            fh.write(json.dumps(rec) + "\n")
    counts = {m: sum(r["header"]["modality"] == m for r in out) for m in ("CT", "MR")}
    print(f"wrote {args.out}: {len(out)} reports ({counts['CT']} CT, {counts['MR']} MR) of {len(rows)} rows",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

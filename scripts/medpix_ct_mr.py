"""Turn MedPix 2.0's case findings into a CT / MR teaching-file dev set for the report checker (kept outside the repo).

Source: ``github.com/CHILab1/MedPix-2.0`` (Siragusa et al., "MedPix 2.0", Data Science and Engineering 2025), commit
``d3bc431576ec8041114806ec3eb58d75adf45029``: ``MedPix-2-0/Case_topic.json`` (671 MedPix teaching cases: ``U_id``,
the case's CT images ``TAC`` and MR images ``MRI``, and ``Case`` with ``Findings`` among its fields) and
``MedPix-2-0/Descriptions.json`` (one object per image: ``U_id``, ``Type`` CT/MR, ``Location Category``).

What is kept: the ``Findings`` text of a case whose images are of **one** modality (CT only or MR only), written by
the case's contributor (a radiologist or radiology trainee at a teaching institution, reviewed by MedPix's editors).
These are teaching-file findings, not clinical reports: short, often one paragraph or bullets, no headings. A
findings text that names another modality ("PA chest radiograph demonstrates ...", "US: ...", an MR case's "CT
showed ...") is dropped and counted, so each kept text reads as findings of the one study its header names. The
text is kept as it stands; nothing is changed.

Output: ``<out>/medpix_ct.jsonl`` and ``<out>/medpix_mr.jsonl``, one object a line, ``{"id": "mpx<n>", "source": "medpix2", "text",
"header": {"modality": "CT"|"MR"[, "body_part"]}, "title"}``; ``body_part`` (DICOM BodyPartExamined) from the
``Location Category`` of the case's images when they all share one (Head HEAD, Thorax CHEST, Abdomen ABDOMEN,
Reproductive and Urinary System PELVIS; "Spine and Muscles" names no single part and is left out). The tune /
held-out split is ``medmm.reports.evaluate.split_of`` of the id. See ``datasets/medpix-ct-mr.md``.

    git -C MedPix-2.0 show d3bc431:MedPix-2-0/Case_topic.json > /tmp/Case_topic.json   # and Descriptions.json
    python scripts/medpix_ct_mr.py /tmp/Case_topic.json /tmp/Descriptions.json /work/ctmr_dev/
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter

_PARTS = {"Head": "HEAD", "Thorax": "CHEST", "Abdomen": "ABDOMEN", "Reproductive and Urinary System": "PELVIS"}
# another modality named in a findings text (the header names one study)
_OTHER = {
    "CT": re.compile(r"\b(?:MRI?|MRA|MRCP|magnetic\s+resonance|T[12][- ]?weighted|FLAIR|radiographs?|x-?rays?|"
                     r"plain\s+films?|films?|US|ultrasound|sonograph\w*|PET|scintigraph\w*|angiogra\w*|"
                     r"fluoroscop\w*|mammogra\w*|CXR|KUB|barium|esophagram|VCUG|IVP|PA(?:\s*/\s*|\s+and\s+)lat\w*)\b", re.I),
    "MR": re.compile(r"\b(?:CT|CTA|CAT\s+scan|computed\s+tomography|radiographs?|x-?rays?|plain\s+films?|films?|"
                     r"US|ultrasound|sonograph\w*|PET|scintigraph\w*|angiogra\w*|fluoroscop\w*|mammogra\w*|CXR|KUB|"
                     r"barium|myelogra\w*|PA(?:\s*/\s*|\s+and\s+)lat\w*)\b", re.I),
}
_CASE_SENSITIVE_US = re.compile(r"\bUS\b")  # "US" the modality, not "us"


def _names_other_modality(text: str, modality: str) -> bool:
    for m in _OTHER[modality].finditer(text):
        if m.group(0).lower() == "us" and not _CASE_SENSITIVE_US.fullmatch(m.group(0)):
            continue
        return True
    return False


def convert(cases: list[dict], images: list[dict], dropped: Counter | None = None) -> list[dict]:
    """Rows for MedPix 2.0 cases (see the module doc); what was dropped is counted by reason in ``dropped``."""
    dropped = Counter() if dropped is None else dropped
    parts: dict[str, set[str]] = {}
    for img in images:
        parts.setdefault(str(img.get("U_id")), set()).add(str(img.get("Location Category") or ""))
    out: list[dict] = []
    seen: set[str] = set()
    for case in cases:
        uid = str(case.get("U_id") or "")
        m = re.fullmatch(r"MPX(\d+)", uid)
        text = str(((case.get("Case") or {}).get("Findings")) or "").strip()
        ct, mr = bool(case.get("TAC")), bool(case.get("MRI"))
        if m is None:
            dropped["no MPX case id"] += 1
        elif ct == mr:
            dropped["CT and MR images (or none): findings mix studies"] += 1
        elif len(text) < 40 or text.upper() in {"N/A", "NONE"}:
            dropped["no findings text"] += 1
        elif _names_other_modality(text, "CT" if ct else "MR"):
            dropped["findings name another modality"] += 1
        elif " ".join(text.split()).lower() in seen:
            dropped["same findings as an earlier case"] += 1
        else:
            seen.add(" ".join(text.split()).lower())
            header = {"modality": "CT" if ct else "MR"}
            cats = parts.get(uid, set())
            if len(cats) == 1 and next(iter(cats)) in _PARTS:
                header["body_part"] = _PARTS[next(iter(cats))]
            out.append({"id": f"mpx{m.group(1)}", "source": "medpix2", "text": text, "header": header,
                        "title": str((case.get("Case") or {}).get("Title") or "")})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("cases", help="MedPix-2-0/Case_topic.json")
    ap.add_argument("descriptions", help="MedPix-2-0/Descriptions.json (the images' body-part categories)")
    ap.add_argument("out", help="folder for medpix_ct.jsonl and medpix_mr.jsonl (keep it outside the repository)")
    args = ap.parse_args(argv)
    with open(args.cases, encoding="utf-8") as fh:
        cases = json.load(fh)
    with open(args.descriptions, encoding="utf-8") as fh:
        images = json.load(fh)
    dropped: Counter = Counter()
    rows = convert(cases, images, dropped)
    os.makedirs(args.out, exist_ok=True)
    for mod in ("CT", "MR"):
        path = os.path.join(args.out, f"medpix_{mod.lower()}.jsonl")
        mine = [r for r in rows if r["header"]["modality"] == mod]
        with open(path, "w", encoding="utf-8") as fh:
            for row in mine:
                fh.write(json.dumps(row) + "\n")
        print(f"wrote {path}: {len(mine)} {mod} case findings", file=sys.stderr)
    print(f"read {len(cases)} cases; dropped: {dict(dropped) or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

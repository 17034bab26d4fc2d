"""A held-out check for the image-reading report checker, made OUTSIDE medmm's error generators.

Synthetic chest radiographs of a seed of your choice (``medmm synth``, the default sizes), and for every study
whose report names a sided finding: the report unchanged (clean) and the same report with EVERY left/right
swapped (an error only the image can reveal: the report stays consistent with itself). Rows are in
``medmm inject``'s format plus ``images`` (the study's files, relative to the dataset file). This script does not
import medmm.reports (the swap is a few lines of its own), so the check does not grade the generator with itself.

    python scripts/make_side_swap_heldout.py --out /tmp/heldout --seed 4242 --n 300
    medmm check-eval /tmp/heldout/dataset.jsonl --checker vlm --model hf:runs/synth-checker/model --out /tmp/he
    medmm check-eval /tmp/heldout/dataset.jsonl --checker vlm --model hf:runs/synth-checker/model --blind --out /tmp/heb
    # check-eval.json: simple.recall - clean.fpr (Youden's J)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

SWAP = {"left": "right", "right": "left"}
WORD = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def swap_sides(text: str) -> tuple[str, int, int]:
    """Every left <-> right (case kept); the span of the first swapped word."""
    first: list[int] = []

    def repl(m: re.Match[str]) -> str:
        w = m.group(0)
        new = SWAP[w.lower()]
        if not first:
            first.append(m.start())
        return new.upper() if w.isupper() else new.capitalize() if w[0].isupper() else new

    out = WORD.sub(repl, text)
    start = first[0] if first else 0
    return out, start, start + 5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args(argv)
    studies = os.path.join(args.out, "studies")
    if not os.path.isfile(os.path.join(studies, "manifest.jsonl")):
        subprocess.run([sys.executable, "-m", "medmm.cli", "synth", "--out", studies, "--n", str(args.n), "--seed",
                        str(args.seed), "--kinds", "cxr"], check=True)
    rows = []
    with open(os.path.join(studies, "manifest.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if not any(f.get("side") in ("left", "right") for f in rec["findings"]):
                continue
            report = rec["report"]
            if not WORD.search(report):
                continue
            images = [os.path.join("studies", i["path"]) for i in rec["images"]]
            sid = f"{args.seed}-{rec['study_id']}"
            rows.append({"id": f"{sid}-clean", "report": report, "header": None, "has_error": False, "errors": [],
                         "images": images, "study_id": sid})
            swapped, start, end = swap_sides(report)
            rows.append({"id": f"{sid}-swap", "report": swapped, "header": None, "has_error": True,
                         "errors": [{"type": "laterality", "complex": "substitute", "original_sentence": "",
                                     "edited_sentence": "", "start": start, "end": end, "detail": "every left/right",
                                     "model": "outside: every left/right swapped", "text_detectable": False}],
                         "images": images, "study_id": sid})
    path = os.path.join(args.out, "dataset.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    print(f"wrote {path}: {len(rows)} rows ({len(rows) // 2} studies with a sided finding, clean + swapped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

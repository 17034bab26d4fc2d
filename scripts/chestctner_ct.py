"""Turn the chest CT report sentences of leechehao/Chest-CT-NER into a sentence-level chest CT dev set (outside the repo).

Source: ``github.com/leechehao/Chest-CT-NER`` (a chest CT named-entity model's training pipeline), commit
``65f304e7f96dc59549047f05fa47b91ab8901f18``: ``new_data/chest_ct_ner_2024-01-29-15-00.json`` and
``new_data/new_data.json``, Label Studio exports: a list of tasks, each ``{"id", "inner_id", "data": {"Text",
"Section" (COMP / FIND / IMP), "Tag", "Hosp_id"}, "annotations": [...]}``. One task is one sentence (or one bullet)
of a real chest CT report, tokenised by the dataset's author (spaces around punctuation: ``"4 cm , compatible"``).
The export keeps **no report id** (``Hosp_id`` names a source, not a report: one value spans many reports), so the
sentences are NOT grouped into reports: each row is one sentence, and a clean-FPR figure on this set is a rate per
sentence. The annotations (entity spans) are dropped.

The text is kept as written except for the tokeniser's spaces, which are removed where English puts none (before
``, . : ; ) ]`` and ``%``, after ``( [``), so the rules read punctuation as a radiologist typed it; letters, words and
their order are unchanged. Sentences repeated word for word are kept once.

Output: ``<out>/chestctner_ct.jsonl``, one object a line, ``{"id": "cctner<task id>", "source": "chest-ct-ner",
"text", "header": {"modality": "CT", "body_part": "CHEST"}, "section": "FIND"|"IMP"|"COMP"}``. The tune / held-out
split is ``medmm.reports.evaluate.split_of`` of the id. See ``datasets/chest-ct-ner.md``.

    git -C Chest-CT-NER show 65f304e:new_data/chest_ct_ner_2024-01-29-15-00.json > /tmp/cctner1.json
    git -C Chest-CT-NER show 65f304e:new_data/new_data.json > /tmp/cctner2.json
    python scripts/chestctner_ct.py /tmp/cctner1.json /tmp/cctner2.json /work/ctmr_dev/
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter

_BEFORE = re.compile(r"\s+([,.:;)\]%])")
_AFTER = re.compile(r"([(\[])\s+")


def detokenise(text: str) -> str:
    """Undo the dataset's tokeniser spacing around punctuation ("4 cm , stable ." -> "4 cm, stable.")."""
    return _AFTER.sub(r"\1", _BEFORE.sub(r"\1", " ".join(text.split())))


def convert(tasks: list[dict], dropped: Counter | None = None) -> list[dict]:
    """Sentence rows for Label Studio tasks (see the module doc); what was dropped is counted in ``dropped``."""
    dropped = Counter() if dropped is None else dropped
    out: list[dict] = []
    seen: set[str] = set()
    for task in sorted(tasks, key=lambda t: (t.get("inner_id") or 0, t.get("id") or 0)):
        data = task.get("data") or {}
        text = detokenise(str(data.get("Text") or ""))
        if task.get("id") is None:
            dropped["no task id"] += 1
        elif len(text) < 3:
            dropped["no text"] += 1
        elif text.lower() in seen:
            dropped["same sentence as an earlier task"] += 1
        else:
            seen.add(text.lower())
            out.append({"id": f"cctner{task['id']}", "source": "chest-ct-ner", "text": text,
                        "header": {"modality": "CT", "body_part": "CHEST"},
                        "section": str(data.get("Section") or "")})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("source", nargs="+", help="Label Studio JSON exports (new_data/*.json of leechehao/Chest-CT-NER)")
    ap.add_argument("out", help="folder for chestctner_ct.jsonl (keep it outside the repository)")
    args = ap.parse_args(argv)
    tasks: list[dict] = []
    for path in args.source:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, list):
            sys.exit(f"{path}: expected a Label Studio export (a JSON list of tasks)")
        tasks += data
    dropped: Counter = Counter()
    rows = convert(tasks, dropped)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "chestctner_ct.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    sections = Counter(r["section"] for r in rows)
    print(f"wrote {path}: {len(rows)} chest CT sentences ({dict(sections)}) from {len(tasks)} tasks; "
          f"dropped: {dict(dropped) or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

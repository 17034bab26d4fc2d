"""Turn the chest CT report findings of openimagingdata/CDEStaging into a real chest CT dev corpus (kept outside the repo).

Source: ``github.com/openimagingdata/CDEStaging`` (the ACR/RSNA common-data-element staging area), branch
``report_representation``, commit ``026d76f909b95d312fe42c1858b511cdc39f2df4``: the folder
``report_representation/structured_extractions/`` holds 140 files ``chest_ct_findings_<n>.md``, each the FINDINGS part
of one real chest CT report (organ sub-headings "LUNGS:", "PLEURA:", "MEDIASTINUM:", series/image references
"(4:333)", no impression), quoted in a fenced ```` ```text ```` block under a "# Report text" heading, followed by a
hand-made list of the findings extracted from it. Only the quoted report text is kept; the extraction is dropped.
The repository states no licence: the text is used for internal evaluation only and never copied into medmm
(see ``datasets/cdestaging-chest-ct.md``).

Input: the folder of ``chest_ct_findings_*.md`` files (or single files), e.g. from a git mirror of the repository::

    git -C CDEStaging archive 026d76f report_representation/structured_extractions | tar -x -C /tmp/cde
    python scripts/cdestaging_ct.py /tmp/cde/report_representation/structured_extractions /work/ctmr_dev/

Output: ``<out>/cdestaging_ct.jsonl``, one object a line, ``{"id": "cdect<n>", "source": "cdestaging", "text",
"header": {"modality": "CT", "body_part": "CHEST"}, "file"}``, sorted by ``n``; a text that repeats an earlier file's
text (after whitespace is normalised) is dropped and counted. The text is the quoted block as it stands (its own
line breaks, including the hard wraps some files have); nothing else is changed. The tune / held-out split is the
one ``medmm.reports.evaluate.split_of`` makes from the id (``medmm check-eval --split``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter

_NAME = re.compile(r"chest_ct_findings_(\d+)\.md$")
_HEADING = re.compile(r"^#\s*report\s+text\s*$", re.I | re.M)
_FENCE = re.compile(r"^[ \t]*```[ \t]*text[ \t]*\n(.*?)^[ \t]*```", re.S | re.M)


def report_text(markdown: str) -> str | None:
    """The quoted report of one extraction file: the first ```text block after "# Report text" (None if absent)."""
    head = _HEADING.search(markdown)
    if head is None:
        return None
    block = _FENCE.search(markdown, head.end())
    if block is None:
        return None
    lines = [ln.rstrip() for ln in block.group(1).splitlines()]
    text = "\n".join(lines).strip()
    return text or None


def convert(files: list[tuple[str, str]], dropped: Counter | None = None) -> list[dict]:
    """Rows for ``(file name, markdown)`` pairs (see the module doc); what was dropped is counted in ``dropped``."""
    dropped = Counter() if dropped is None else dropped
    numbered = []
    for name, markdown in files:
        m = _NAME.search(os.path.basename(name))
        if m is None:
            dropped["not a chest_ct_findings_<n>.md file"] += 1
            continue
        numbered.append((int(m.group(1)), os.path.basename(name), markdown))
    out: list[dict] = []
    seen: set[str] = set()
    for n, name, markdown in sorted(numbered):
        text = report_text(markdown)
        if text is None:
            dropped["no quoted report text"] += 1
            continue
        key = " ".join(text.split()).lower()
        if key in seen:
            dropped["same text as an earlier file"] += 1
            continue
        seen.add(key)
        out.append({"id": f"cdect{n}", "source": "cdestaging", "text": text,
                    "header": {"modality": "CT", "body_part": "CHEST"}, "file": name})
    return out


def read_files(paths: list[str]) -> list[tuple[str, str]]:
    out = []
    for path in paths:
        names = ([os.path.join(path, f) for f in sorted(os.listdir(path))] if os.path.isdir(path) else [path])
        for full in names:
            if full.endswith(".md") and os.path.isfile(full):
                with open(full, encoding="utf-8", errors="replace") as fh:
                    out.append((full, fh.read()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("source", nargs="+", help="the structured_extractions folder (or chest_ct_findings_<n>.md files)")
    ap.add_argument("out", help="folder for cdestaging_ct.jsonl (keep it outside the repository)")
    args = ap.parse_args(argv)
    files = read_files(args.source)
    if not files:
        sys.exit(f"{', '.join(args.source)}: no .md files found; give the report_representation/"
                 "structured_extractions folder of openimagingdata/CDEStaging (see the module doc)")
    dropped: Counter = Counter()
    rows = convert(files, dropped)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "cdestaging_ct.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    print(f"wrote {path}: {len(rows)} chest CT findings from {len(files)} files; dropped: {dict(dropped) or 'none'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

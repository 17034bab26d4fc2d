"""Every result of the rule checker on a set of reports, as JSON lines: for a speed change that must not change any
output, dump before and after and compare (``cmp`` or ``diff``).

    python bench/dump_checker_results.py OUT.jsonl [corpus.jsonl | folder ...]

Without corpora it reads the IU dev reports (../shared/data/real_reports/iu_dev.jsonl) and every *.jsonl under
$MEDMM_CTMR_DEV (default /work/ctmr_dev, top level, teaching/ and sentences/). Each report is checked twice: without
a header and with its own header (IU reports: a chest radiograph's), and for each both the flags before the
threshold (every rule's flags, deduplicated and capped, with spans, related spans, confidences) and the result of
``check`` (score, has_error, flags, notes) are written. The output holds report ids and offsets, no report text
beyond the flagged words: keep it out of git all the same.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import sys
from typing import Any, Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
IU = os.path.join(HERE, "..", "..", "shared", "data", "real_reports", "iu_dev.jsonl")
IU_HEADER = {"modality": "DX", "body_part": "CHEST"}


def _rows(paths: list[str]) -> Iterator[tuple[str, str, Any]]:
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                row = json.loads(line)
                text = row.get("report", row.get("text"))
                header = row.get("header") or (IU_HEADER if os.path.basename(path).startswith("iu_") else None)
                yield f"{os.path.basename(path)}:{row.get('id', i)}", text, header


def default_paths() -> list[str]:
    ctmr = os.environ.get("MEDMM_CTMR_DEV", "/work/ctmr_dev")
    paths = [IU] if os.path.isfile(IU) else []
    for pattern in ("*.jsonl", "teaching/*.jsonl", "sentences/*.jsonl"):
        paths += sorted(glob.glob(os.path.join(ctmr, pattern)))
    return paths


def _flag(f: Any) -> dict[str, Any]:
    return dataclasses.asdict(f)


def dump(out_path: str, paths: list[str]) -> int:
    from medmm.reports.analysis import analyze
    from medmm.reports.checker import RulesChecker, clean_text

    checker = RulesChecker()
    n = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for rid, text, header in _rows(paths):
            for hdr in (None, header) if header is not None else (None,):
                notes: list[str] = []
                clean = clean_text(text, notes)
                flags = []
                if clean and not clean.isspace():
                    flags = [_flag(f) for f in checker.analyze_flags(analyze(clean), checker_header(hdr), notes)]
                res = checker.check(text, hdr)
                out.write(json.dumps({"id": rid, "header": hdr, "all_flags": flags, "analyze_notes": notes,
                                      "has_error": res.has_error, "score": res.score,
                                      "flags": [_flag(f) for f in res.flags], "notes": list(res.notes)},
                                     sort_keys=True) + "\n")
                n += 1
    return n


def checker_header(hdr: Any) -> Any:
    from medmm.reports.checker import as_header

    return as_header(hdr, [])


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):  # "--help" is no output file
        sys.exit(__doc__)
    print(dump(sys.argv[1], sys.argv[2:] or default_paths()), "results written to", sys.argv[1])

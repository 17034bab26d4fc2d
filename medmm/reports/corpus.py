"""Report corpora: a folder of .txt files (MIMIC-CXR's nested sNNNNNNNN.txt included), CSV with
a report column (IU-Xray's indiana_reports.csv with findings/impression columns included),
JSONL, and medmm's synthetic manifest. A bad row is skipped with its reason, never fatal."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any

from medmm.errors import InputError

csv.field_size_limit(10_000_000)


@dataclass
class Corpus:
    rows: list[dict[str, Any]] = field(default_factory=list)  # {"id", "report", "header", "source"}
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)


def _read_text(path: str) -> str:
    raw = open(path, "rb").read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def iter_jsonl(path: str):  # noqa: ANN201 - yields (line number, object or None, problem or None)
    """JSON objects of a JSONL file; a bad line yields its problem instead of stopping the read."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, None, f"not JSON ({exc.msg})"
                continue
            if not isinstance(rec, dict):
                yield n, None, "not a JSON object"
                continue
            yield n, rec, None


def _is_block_file(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return any(line.strip() == "---" for line in fh)


def _read_blocks(path: str) -> Corpus:
    """A "report block" file: reports separated by lines ``---``; ``# `` lines are comments; an optional
    first line ``#header {json}`` gives the report's DICOM header facts."""
    import re

    out = Corpus()
    text = _read_text(path)
    for i, block in enumerate(re.split(r"^---[ \t]*$", text, flags=re.M), start=1):
        lines = [ln for ln in block.strip().splitlines() if not (ln.startswith("# ") or ln.strip() == "#")]
        header = None
        if lines and lines[0].startswith("#header"):
            try:
                header = json.loads(lines[0][len("#header"):])
            except json.JSONDecodeError as exc:
                out.skipped.append((f"{path}: block {i}", f"#header is not JSON ({exc.msg})"))
                continue
            lines = lines[1:]
        report = "\n".join(lines).strip()
        if report:
            out.rows.append({"id": f"{os.path.basename(path)}#{i}", "report": report, "header": header, "source": "blocks"})
        elif header is not None:
            out.skipped.append((f"{path}: block {i}", "empty report"))
    return out


def read_corpus(path: str) -> Corpus:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    out = Corpus()
    if os.path.isfile(path) and path.lower().endswith(".txt") and _is_block_file(path):
        return _read_blocks(path)
    if os.path.isdir(path):
        from medmm.imaging.files import REPORT_MAX_BYTES, walk  # the one file policy (symlinks, FIFOs, size)

        for full, reason in walk(path, suffixes=(".txt",), max_bytes=REPORT_MAX_BYTES):
            if reason:
                out.skipped.append((full, reason))
                continue
            text = _read_text(full)
            if text.strip():
                out.rows.append({"id": os.path.relpath(full, path), "report": text, "header": None,
                                 "source": "txt"})
            else:
                out.skipped.append((full, "empty report"))
        return out
    low = path.lower()
    if low.endswith(".csv"):
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.DictReader(fh)
            cols = {c.lower(): c for c in reader.fieldnames or []}
            iu = "findings" in cols and "impression" in cols
            text_col = next((cols[c] for c in ("report", "text", "report_text") if c in cols), None)
            if not iu and text_col is None:
                raise InputError(f"{path}: CSV needs a 'report' (or 'text') column, or IU-Xray's 'findings' and "
                                 f"'impression' columns; found {reader.fieldnames}")
            for n, row in enumerate(reader, start=2):
                rid = row.get(cols.get("uid", ""), None) or row.get(cols.get("id", ""), None) or f"row{n}"
                if iu:
                    parts = []
                    if (row[cols["findings"]] or "").strip():
                        parts.append("FINDINGS: " + row[cols["findings"]].strip())
                    if (row[cols["impression"]] or "").strip():
                        parts.append("IMPRESSION: " + row[cols["impression"]].strip())
                    text = "\n\n".join(parts)
                else:
                    text = row.get(text_col) or ""
                if text.strip():
                    out.rows.append({"id": str(rid), "report": text, "header": None, "source": "csv"})
                else:
                    out.skipped.append((f"{path}:{n}", "empty report"))
        return out
    if low.endswith((".jsonl", ".json")):
        for n, rec, problem in iter_jsonl(path):
            if problem:
                out.skipped.append((f"{path}:{n}", problem))
                continue
            text = rec.get("report") or rec.get("text") or ""
            if not isinstance(text, str) or not text.strip():
                out.skipped.append((f"{path}:{n}", "no report text"))
                continue
            if "study_id" in rec and "modality" in rec:  # a synthetic manifest line: read as the one study record
                from medmm.studies import study_from_record

                study = study_from_record(rec, os.path.dirname(os.path.abspath(path)), f"{path}:{n}",
                                          source="synthetic")
                if study.problem:  # e.g. an image path outside the manifest's folder, an unreadable box
                    out.skipped.append((f"{path}:{n}", study.problem))
                    continue
                out.rows.append({"id": study.study_id, "report": text,
                                 "header": study.header.to_dict(report_facts_only=True) if study.header else None,
                                 "source": "synthetic", "images": [i.path for i in study.images],
                                 "regions": [b.to_dict() for b in study.regions]})
            else:
                out.rows.append({"id": str(rec.get("id", f"line{n}")), "report": text, "header": rec.get("header"),
                                 "source": "jsonl"})
        return out
    raise InputError(f"{path}: use a folder of .txt reports, a .csv, a .jsonl or a synthetic manifest.jsonl")

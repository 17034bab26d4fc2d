"""scripts/cdestaging_ct.py on made-up extraction files in the layout of openimagingdata/CDEStaging's
``report_representation/structured_extractions/chest_ct_findings_<n>.md`` (no text of that repository here)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():  # noqa: ANN202 - the converter is a script, not a package module
    spec = importlib.util.spec_from_file_location("cdestaging_ct", ROOT / "scripts" / "cdestaging_ct.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REPORT = "LUNGS: Made-up nodule in the left lower lobe (4:12).\nPLEURA: No effusion."


def _md(text: str = REPORT, heading: str = "# Report text", fence_indent: str = "") -> str:
    return (f"{heading}\n\n```text\n{text}\n{fence_indent}```\n\n## Extracted findings\n\n- nodule\n  - size: 5 mm\n"
            "\n```text\nnot the report\n```\n")


def test_the_quoted_report_is_kept_and_the_extraction_dropped():
    mod = _script()
    assert mod.report_text(_md()) == REPORT
    assert mod.report_text(_md(heading="# Report Text", fence_indent=" ")) == REPORT  # both seen in the source
    assert mod.report_text("## Extracted findings\n\n```text\nno heading above\n```\n") is None


def test_rows_are_numbered_by_file_sorted_deduplicated_and_chest_ct():
    mod = _script()
    dropped: Counter = Counter()
    rows = mod.convert([("x/chest_ct_findings_10.md", _md("BONES: Made-up rib.")),
                        ("x/chest_ct_findings_2.md", _md()),
                        ("x/chest_ct_findings_3.md", _md(REPORT.replace("\n", "\n  "))),  # same text, other spaces
                        ("x/chest_ct_findings_4.md", "# Report text\n\nno fence\n"),
                        ("x/negative_statements.md", _md())], dropped)
    assert [r["id"] for r in rows] == ["cdect2", "cdect10"]
    assert rows[0] == {"id": "cdect2", "source": "cdestaging", "text": REPORT,
                       "header": {"modality": "CT", "body_part": "CHEST"}, "file": "chest_ct_findings_2.md"}
    assert dropped == Counter({"same text as an earlier file": 1, "no quoted report text": 1,
                               "not a chest_ct_findings_<n>.md file": 1})


def test_main_writes_jsonl_that_the_corpus_reader_takes(tmp_path):
    from medmm.reports.corpus import read_corpus

    src = tmp_path / "structured_extractions"
    src.mkdir()
    (src / "chest_ct_findings_1.md").write_text(_md(), encoding="utf-8")
    (src / "chest_ct_findings_7.md").write_text(_md("MEDIASTINUM: Made-up normal heart."), encoding="utf-8")
    assert _script().main([str(src), str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "cdestaging_ct.jsonl"
    assert [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()] == ["cdect1", "cdect7"]
    rows = read_corpus(str(out)).rows
    assert [r["report"] for r in rows] == [REPORT, "MEDIASTINUM: Made-up normal heart."]
    assert rows[0]["header"] == {"modality": "CT", "body_part": "CHEST"}

"""scripts/mtsamples_ct_mr.py on made-up rows in the Kaggle / clinspacy layout of MTSamples (no MTSamples text here)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():  # noqa: ANN202 - the converter is a script, not a package module
    spec = importlib.util.spec_from_file_location("mtsamples_ct_mr", ROOT / "scripts" / "mtsamples_ct_mr.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REPORT = ("EXAM: , CT abdomen and pelvis without contrast.,FINDINGS:,  Small stones in both kidneys.,The appendix is "
          "normal.,IMPRESSION:,1.  Bilateral renal stones.,2.  Normal appendix.")


def _row(note_id: str, name: str, text: str = REPORT, specialty: str = "Radiology") -> dict[str, str]:
    return {"note_id": note_id, "sample_name": f" {name} ", "description": " A made-up row.",
            "medical_specialty": f" {specialty}", "transcription": text}


def test_line_breaks_come_back():
    text = _script().restore_lines(REPORT)
    assert text.splitlines() == ["EXAM:", "CT abdomen and pelvis without contrast.", "FINDINGS:",
                                 "Small stones in both kidneys.", "The appendix is normal.", "IMPRESSION:",
                                 "1. Bilateral renal stones.", "2. Normal appendix."]
    glued = _script().restore_lines("FINDINGS:,  The study was done on 4/9/07,Normal menisci, no tear.")
    assert glued.splitlines() == ["FINDINGS:", "The study was done on 4/9/07", "Normal menisci, no tear."]


def test_only_radiology_reports_once_each_with_their_header():
    mod = _script()
    vignette = "CC:, Headache.,HX: , A made-up history of a made-up patient, long enough to read.,MRI Brain: , Normal."
    rows = [_row("10", "CT Abdomen & Pelvis - 1"),
            _row("11", "CT Abdomen & Pelvis - 1", specialty="Gastroenterology"),  # listed twice on MTSamples
            _row("12", "CT Abdomen & Pelvis - 2"),  # the same text again under another name: a duplicate
            _row("13", "MRI Brain - Case", vignette),  # a teaching case, not a report
            _row("14", "CT-Guided Biopsy - Kidney", REPORT.replace("pelvis", "pelvis, guided")),
            _row("15", "MRI Knee - 1", REPORT.replace("CT abdomen and pelvis", "MRI of the left knee")),
            _row("16", "Office Visit", "SUBJECTIVE:, Made-up text long enough to be read as a transcription at all.")]
    dropped: Counter = Counter()
    out = mod.convert(rows, dropped=dropped)
    assert [(r["id"], r["header"]) for r in out] == [("mts10", {"modality": "CT", "body_part": "ABDOMEN"}),
                                                     ("mts15", {"modality": "MR", "body_part": "KNEE"})]
    assert dropped == Counter({"duplicate text": 1, "teaching case (CC:/HX: narrative), not a report": 1,
                               "CT-guided procedure note": 1})


def test_main_writes_one_file_per_modality(tmp_path):
    import csv

    src = tmp_path / "mtsamples.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["note_id", "description", "medical_specialty", "sample_name",
                                           "transcription"])
        w.writeheader()
        w.writerow(_row("1", "CT Head", REPORT.replace("abdomen and pelvis", "head")))
        w.writerow(_row("2", "MRI Shoulder - 1", REPORT.replace("CT abdomen and pelvis", "MRI left shoulder")))
    assert _script().main([str(src), str(tmp_path / "out")]) == 0
    ct = [json.loads(ln) for ln in open(tmp_path / "out" / "mtsamples_ct.jsonl")]
    mr = [json.loads(ln) for ln in open(tmp_path / "out" / "mtsamples_mr.jsonl")]
    assert [r["header"] for r in ct] == [{"modality": "CT", "body_part": "HEAD"}]
    assert [r["header"] for r in mr] == [{"modality": "MR", "body_part": "SHOULDER"}]


@pytest.mark.parametrize("name", ["reports_ctmr_source_errors.jsonl", "reports_ctmr_source_errors_tune.jsonl"])
def test_source_error_files_hold_no_report_text(name):
    """tests/data/reports_ctmr_source_errors*.jsonl name errors in the MTSamples reports by id and sentence hash: only
    the few wrong words are kept, never a sentence."""
    lines = [ln for ln in (ROOT / "tests" / "data" / name).read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert len(lines) >= 5
    for ln in lines:
        e = json.loads(ln)
        assert set(e) == {"id", "sentence", "wrong", "right", "type", "text_detectable", "note"}, e
        assert e["id"].startswith("mts") and len(e["sentence"]) == 12
        assert len(e["wrong"].split()) <= 4 and len(e["right"].split()) <= 8, e


def test_hand_edit_file_holds_no_report_text():
    """tests/data/reports_ctmr_hand_edits.jsonl: ids, sentence hashes and the few words each edit replaces."""
    lines = [ln for ln in (ROOT / "tests" / "data" / "reports_ctmr_hand_edits.jsonl").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert len(lines) >= 20
    for ln in lines:
        e = json.loads(ln)
        assert set(e) == {"id", "sentence", "op", "old", "new", "type", "text_detectable", "note"}, e
        assert e["id"].startswith("mts") and len(e["sentence"]) == 12 and e["op"] == "replace"
        assert len(e["old"].split()) <= 9 and len(e["new"].split()) <= 9, e

"""`medmm export --deid-text`: the report-derived columns (flagged text, explanation) are scrubbed, each
fragment with its whole report as context, so a flagged word that is a name is caught too."""

from __future__ import annotations

import json

from medmm.audit.runner import audit, export
from medmm.cli import main

REPORT = ("FINDINGS: 3 cm mass in the left lung since 03/04/2021, MRN 77340219, seen by Quentina Zyxwood MD.\n"
          "IMPRESSION: 3 cm mass in the right lung.")
PHI = ("Quentina", "Zyxwood", "03/04/2021", "77340219")


def test_export_deid_text_scrubs_report_columns(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"study_id": "s1", "report": REPORT}) + "\n")
    db = str(tmp_path / "db.sqlite")
    assert audit(str(manifest), db, workers=1, progress=False).flagged == 1
    plain = tmp_path / "plain.jsonl"
    export(db, str(plain))
    assert all(p in plain.read_text() for p in PHI)  # the flags do quote the PHI
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"deid.{fmt}"
        assert main(["export", "--db", db, "--out", str(out), "--deid-text"]) == 0
        text = out.read_text()
        assert not [p for p in PHI if p in text], text
        assert "3 cm mass in the right lung." in text and "[NAME]" in text and "[DATE]" in text

"""Issue 19's acceptance run against a real Orthanc: PACS + HL7 reports -> audit -> 0 new on rerun -> SR per study
in the PACS (idempotent) -> the same flags from a FHIR bundle -> a wrong password writes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from medmm.cli import main
from medmm.hospital.reports import oru_message

from .conftest import PASSWORD, USER
from .helpers import reports_for, write_fhir, write_hl7

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]  # ~25 s: synthetic studies, uploads, 4 audits


def _audit(orthanc, feed: str, db, *extra: str) -> int:
    return main(["audit", "--pacs", orthanc.spec, "--pacs-user", USER, "--pacs-password-env", "MEDMM_TEST_PACS_PW",
                 "--reports", feed, "--db", str(db), "--quiet", "--workers", "1", *extra])


def _flags(db) -> set[tuple[str, str, str]]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT s.accession_number, f.type, f.text FROM flags f JOIN studies s ON s.key = f.study_key")
    return set(rows.fetchall())


def test_acceptance_run(orthanc, synth12, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDMM_TEST_PACS_PW", PASSWORD)
    assert orthanc.upload(str(synth12 / "studies")) > 12
    reports = reports_for(synth12)
    stray = oru_message("FINDINGS: Normal.\nIMPRESSION: Normal.", "NOSUCHACC01", "RX1", written_at="20250101090000")
    hl7 = write_hl7(tmp_path / "reports.hl7", reports, extra=[stray])
    db = tmp_path / "audit.sqlite"

    # 1. the audit: 12 studies, report text as received, flags on most injected and at most one clean
    assert _audit(orthanc, f"hl7:{hl7}", db) == 0
    con = sqlite3.connect(db)
    stored = dict(con.execute("SELECT s.accession_number, r.text FROM studies s JOIN reports r ON r.study_key = s.key"))
    assert len(stored) == 12
    assert all(stored[r["accession_number"]] == r["text"] for r in reports)  # OBX lines joined by newlines
    flagged = {a for (a,) in con.execute("SELECT s.accession_number FROM studies s JOIN results r ON r.study_key = s.key "
                                         "WHERE r.has_error = 1")}
    injected = {r["accession_number"] for r in reports if r["injected"]}
    clean = {r["accession_number"] for r in reports} - injected
    assert len(injected) >= 5
    assert len(flagged & injected) > len(injected) / 2 and len(flagged & clean) <= 1
    reasons = [r for (r,) in con.execute("SELECT reason FROM failures")]
    assert len(reasons) == 1 and "no study in" in reasons[0] and "accession number" in reasons[0]
    uids = dict(con.execute("SELECT accession_number, study_instance_uid FROM studies WHERE study_instance_uid IS NOT NULL"))
    assert all(uids[r["accession_number"]] == r["study_instance_uid"] for r in reports)
    con.close()
    capsys.readouterr()

    # 2. the same command again checks 0 new studies
    assert _audit(orthanc, f"hl7:{hl7}", db) == 0
    assert ": 0 studies checked" in capsys.readouterr().err
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM results WHERE status='done'").fetchone()[0] == 12

    # 3. publish: one SR per audited study, in that study, referencing it and quoting a flag; again adds nothing
    pub = ["publish", "--db", str(db), "--to", orthanc.spec, "--pacs-user", USER, "--pacs-password-env",
           "MEDMM_TEST_PACS_PW"]
    assert main(pub) == 0
    assert "12 SR(s) written" in capsys.readouterr().err
    srs = _srs(orthanc)
    assert sorted(srs) == sorted(r["study_instance_uid"] for r in reports) and all(len(v) == 1 for v in srs.values())
    _check_sr(orthanc, reports, db)
    assert main(pub) == 0
    assert "0 SR(s) written" in capsys.readouterr().err and _srs(orthanc) == srs

    # results for an EHR: one DetectedIssue per stored flag, one Observation per study
    out = tmp_path / "results.json"
    assert main(["publish", "--db", str(db), "--format", "fhir", "--to", str(out)]) == 0
    import json

    kinds = [e["resource"]["resourceType"] for e in json.loads(out.read_text())["entry"]]
    assert kinds.count("Observation") == 12 and kinds.count("DetectedIssue") == len(_flags(db))

    # 4. the same reports as FHIR bundles (R5 and R4) give the same flags
    for version in ("R5", "R4"):
        bundle = write_fhir(tmp_path / f"bundle-{version}.json", reports, version)
        fdb = tmp_path / f"fhir-{version}.sqlite"
        assert _audit(orthanc, f"fhir:{bundle}", fdb) == 0
        assert _flags(fdb) == _flags(db) and _flags(db)

    # 5. a wrong password: exit 2, one line naming the failure (never the password), nothing written
    monkeypatch.setenv("MEDMM_TEST_PACS_PW", "wrong-" + PASSWORD)
    capsys.readouterr()
    new_db = tmp_path / "never.sqlite"
    assert _audit(orthanc, f"hl7:{hl7}", new_db) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "authentication failed" in err and PASSWORD not in err
    assert not new_db.exists()
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert _audit(orthanc, f"hl7:{hl7}", db) == 2
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == before


def _srs(orthanc) -> dict[str, list[str]]:
    from medmm.hospital.dicomweb import DicomwebPacs
    from medmm.hospital.net import Credentials

    pacs = DicomwebPacs(orthanc.url, Credentials(USER, PASSWORD))
    out: dict[str, list[str]] = {}
    for hit in pacs.find_studies():
        for s in pacs.series(hit.study_instance_uid):
            if s["modality"] == "SR":
                out.setdefault(hit.study_instance_uid, []).extend(pacs.instances_of_series(hit.study_instance_uid, s["uid"]))
    return out


def _check_sr(orthanc, reports, db) -> None:
    """Each SR is in its study, for the same patient, lists the study's instances as evidence and quotes the flags."""
    from medmm.hospital.dicomweb import DicomwebPacs
    from medmm.hospital.net import Credentials

    pacs = DicomwebPacs(orthanc.url, Credentials(USER, PASSWORD))
    quoted = {(a, t) for a, _, t in _flags(db)}
    seen_quote = False
    for r in reports:
        uid = r["study_instance_uid"]
        metas = pacs.instance_metadata(uid)
        (sr,) = [m for m in metas if str(m.Modality) == "SR"]
        image = next(m for m in metas if str(m.Modality) != "SR")
        assert sr.PatientID == image.PatientID and sr.AccessionNumber == r["accession_number"]
        refs = {i.ReferencedSOPInstanceUID for e in sr.CurrentRequestedProcedureEvidenceSequence
                for s in e.ReferencedSeriesSequence for i in s.ReferencedSOPSequence}
        assert image.SOPInstanceUID in refs and sr.StudyInstanceUID == uid
        texts = _texts(sr)
        for acc, text in quoted:
            if acc == r["accession_number"]:
                assert text in texts
                seen_quote = True
    assert seen_quote


def _texts(ds) -> list[str]:
    out = []
    for item in getattr(ds, "ContentSequence", []):
        if getattr(item, "ValueType", "") == "TEXT":
            out.append(str(item.TextValue))
        out.extend(_texts(item))
    return out

"""Nightly and incremental audits against a real Orthanc: corrected reports, reports before their study, a PACS
that drops mid-run."""

from __future__ import annotations

import sqlite3

import pytest

from medmm.audit.hospital import audit_hospital
from medmm.audit.store import Store
from medmm.hospital.net import Credentials, PacsUnavailable, RetryPolicy

from .conftest import PASSWORD, USER
from .helpers import reports_for, write_hl7

pytestmark = pytest.mark.timeout(120)
CREDS = Credentials(USER, PASSWORD)
FAST = RetryPolicy(attempts=3, first_wait=0.05, timeout=5)


def _run(orthanc, feed, db, **kw):
    return audit_hospital(str(db), pacs=orthanc.spec, reports=f"hl7:{feed}", credentials=CREDS, progress=False,
                          policy=FAST, **kw)


def _cxr(synth12):
    """The chest radiograph studies only (fast to upload)."""
    return [r for r in reports_for(synth12) if r["study"].header.modality in ("DX", "CR")]


def test_corrected_report_is_rechecked_and_the_old_result_kept(orthanc, synth12, tmp_path):
    reports = _cxr(synth12)[:2]
    for r in reports:
        orthanc.upload(str(synth12 / "studies" / r["study"].study_id))
    db = tmp_path / "a.sqlite"
    first = _run(orthanc, write_hl7(tmp_path / "day1.hl7", reports), db)
    assert (first.studies, first.failures) == (2, 0)
    fixed = dict(reports[0], id="R-C1", status="C", written="20251231090000",
                 text=reports[0]["text"] + "\nADDENDUM: There is a 4 cm left pleural effusion. No effusion.")
    second = _run(orthanc, write_hl7(tmp_path / "day2.hl7", reports + [fixed]), db)
    assert second.studies == 1  # only the corrected report is new
    with Store(str(db)) as s:
        key = s.current_version(fixed["study_instance_uid"])
        history = s.report_history(key)
        assert [h["report_status"] for h in history] == ["F", "C"]
        assert history[0]["report"] == reports[0]["text"] and history[1]["report"] == fixed["text"]
        assert history[0]["result"]["status"] == "done" and history[1]["result"]["status"] == "done"
        assert history[1]["current"] and not history[0]["current"]
        assert history[1]["result"]["has_error"] == 1  # the addendum contradicts itself
        published = {r["study_instance_uid"]: r["study_key"] for r in s.results_to_publish()}
        assert published[fixed["study_instance_uid"]] == key and len(published) == 2  # the current version only
    third = _run(orthanc, write_hl7(tmp_path / "day2.hl7", reports + [fixed]), db)
    assert third.studies == 0


def test_report_before_its_study_is_unmatched_then_matched(orthanc, synth12, tmp_path):
    reports = _cxr(synth12)[:2]
    orthanc.upload(str(synth12 / "studies" / reports[0]["study"].study_id))
    feed, db = write_hl7(tmp_path / "r.hl7", reports), tmp_path / "a.sqlite"
    first = _run(orthanc, feed, db)
    assert (first.studies, first.failures) == (1, 1)
    reason = sqlite3.connect(db).execute("SELECT reason FROM failures").fetchone()[0]
    assert "no study in dicomweb:" in reason and "accession number" in reason
    orthanc.upload(str(synth12 / "studies" / reports[1]["study"].study_id))  # the images arrive later
    second = _run(orthanc, feed, db)
    assert (second.studies, second.failures) == (1, 0)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM results WHERE status='done'").fetchone()[0] == 2
    assert _run(orthanc, feed, db).studies == 0


def test_studies_without_a_report_in_the_window_are_failures(orthanc, synth12, tmp_path):
    reports = _cxr(synth12)[:2]
    for r in reports:
        orthanc.upload(str(synth12 / "studies" / r["study"].study_id))
    summary = _run(orthanc, write_hl7(tmp_path / "r.hl7", reports[:1]), tmp_path / "a.sqlite", since="2025-01-01")
    assert (summary.studies, summary.failures) == (1, 1)
    reason = sqlite3.connect(tmp_path / "a.sqlite").execute("SELECT reason FROM failures").fetchone()[0]
    assert reason.startswith("no report received")


def test_pacs_that_drops_mid_run_resumes_without_loss_or_duplicates(orthanc, synth12, tmp_path, monkeypatch):
    from medmm.hospital.dicomweb import DicomwebPacs

    reports = _cxr(synth12)
    assert len(reports) >= 4
    for r in reports:
        orthanc.upload(str(synth12 / "studies" / r["study"].study_id))
    feed, db = write_hl7(tmp_path / "r.hl7", reports), tmp_path / "a.sqlite"
    real_header, calls = DicomwebPacs.header, []

    def header_then_outage(self, uid):
        calls.append(uid)
        if len(calls) == 3:
            orthanc.stop()  # the PACS goes down in the middle of the night
        return real_header(self, uid)

    monkeypatch.setattr(DicomwebPacs, "header", header_then_outage)
    with pytest.raises(PacsUnavailable, match="run the same command again"):
        _run(orthanc, feed, db, batch_size=1)
    con = sqlite3.connect(db)
    done_before = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 1 <= done_before < len(reports)
    assert con.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0  # an outage is not the study's failure
    assert con.execute("SELECT COUNT(*) FROM watermarks").fetchone()[0] == 0  # not moved by a broken run
    con.close()
    monkeypatch.setattr(DicomwebPacs, "header", real_header)
    orthanc.start()  # back, same storage
    resumed = _run(orthanc, feed, db)
    assert resumed.studies == len(reports) - done_before and resumed.skipped_done == done_before
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM results WHERE status='done'").fetchone()[0] == len(reports)
    assert con.execute("SELECT COUNT(DISTINCT study_instance_uid) FROM studies").fetchone()[0] == len(reports)
    assert con.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == len(reports)  # no duplicates


def test_dimse_source_and_publish(orthanc, synth12, tmp_path):
    """The same audit and publish through DIMSE (C-ECHO, C-FIND, C-GET, C-STORE) with pynetdicom."""
    from medmm.audit.publish import publish_sr
    from medmm.hospital import open_pacs

    reports = _cxr(synth12)[:2]
    for r in reports:
        orthanc.upload(str(synth12 / "studies" / r["study"].study_id))
    spec = f"dimse:ORTHANC@127.0.0.1:{orthanc.dicom_port}"
    db = tmp_path / "a.sqlite"
    summary = audit_hospital(str(db), pacs=spec, reports=f"hl7:{write_hl7(tmp_path / 'r.hl7', reports)}",
                             progress=False, policy=FAST)
    assert (summary.studies, summary.failures) == (2, 0)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM studies WHERE modality IN ('DX', 'CR')").fetchone()[0] == 2
    pacs = open_pacs(spec, policy=FAST)
    assert publish_sr(str(db), pacs).written == 2
    assert publish_sr(str(db), pacs).unchanged == 2
    for r in reports:
        mods = [s["modality"] for s in pacs.series(r["study_instance_uid"])]
        assert mods.count("SR") == 1
    bad = open_pacs(f"dimse:ORTHANC@127.0.0.1:{orthanc.dicom_port}", policy=RetryPolicy(attempts=1, timeout=5))
    bad.called_ae = "NOT-ORTHANC"
    from medmm.hospital.net import AuthenticationError

    with pytest.raises(AuthenticationError, match="rejected the association"):
        bad.check_access()


def test_reports_stored_in_the_pacs_as_sr(orthanc, synth12, tmp_path):
    """--reports pacs-sr: the signed report is an SR document in the study; medmm's own result SRs are not reports."""
    import pydicom
    from highdicom.sr import CodedConcept, ComprehensiveSR, ContainerContentItem, TextContentItem
    from pydicom.uid import generate_uid

    from medmm.audit.publish import publish_sr
    from medmm.hospital import open_pacs

    reports = _cxr(synth12)[:2]
    pacs = open_pacs(orthanc.spec, CREDS, policy=FAST)
    for r in reports:
        folder = synth12 / "studies" / r["study"].study_id
        orthanc.upload(str(folder))
        image = pydicom.dcmread(str(next(folder.glob("*.dcm"))), stop_before_pixels=True)
        findings, _, impression = r["text"].partition("IMPRESSION:")
        root = ContainerContentItem(CodedConcept("18748-4", "LN", "Diagnostic imaging report"))
        root.ContentSequence = [
            TextContentItem(CodedConcept("121071", "DCM", "Finding"), findings.strip(), relationship_type="CONTAINS"),
            TextContentItem(CodedConcept("121073", "DCM", "Impression"), impression.strip(), relationship_type="CONTAINS")]
        sr = ComprehensiveSR([image], root, generate_uid(), 77, generate_uid(), 1, manufacturer="RIS", is_complete=True,
                             series_description="Radiology report")
        pacs.store([sr])
    db = tmp_path / "a.sqlite"
    summary = audit_hospital(str(db), pacs=orthanc.spec, reports="pacs-sr", credentials=CREDS, progress=False,
                             policy=FAST)
    assert (summary.studies, summary.failures) == (2, 0)
    texts = [t for (t,) in sqlite3.connect(db).execute("SELECT text FROM reports")]
    assert all(t.startswith("FINDINGS:") and "\nIMPRESSION: " in t for t in texts)
    assert publish_sr(str(db), pacs).written == 2  # medmm's SRs now sit beside the report SRs ...
    again = audit_hospital(str(db), pacs=orthanc.spec, reports="pacs-sr", credentials=CREDS, progress=False,
                           policy=FAST)
    assert (again.studies, again.failures) == (0, 0)  # ... and are not read as reports


def test_reports_from_a_fhir_server_paged_with_credentials(orthanc, synth12, tmp_path):
    """--reports fhir:URL: a FHIR search followed page by page (basic auth); a wrong password writes nothing."""
    import base64
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from medmm.hospital.net import AuthenticationError
    from medmm.hospital.reports import fhir_bundle

    reports = _cxr(synth12)[:2]
    for r in reports:
        orthanc.upload(str(synth12 / "studies" / r["study"].study_id))
    pages = [fhir_bundle([{"id": r["id"], "text": r["text"], "accession_number": r["accession_number"]}], "R4")
             for r in reports]
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.path)
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"ris:fhir-pw").decode():
                self.send_response(401)
                self.end_headers()
                return
            page = dict(pages[1 if "page=2" in self.path else 0])
            if "page=2" not in self.path:
                page["link"] = [{"relation": "next", "url": f"http://127.0.0.1:{port}/fhir/DiagnosticReport?page=2"}]
            body = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        feed = f"fhir:http://127.0.0.1:{port}/fhir"
        db = tmp_path / "a.sqlite"
        with pytest.raises(AuthenticationError, match="authentication failed for user 'ris'"):
            audit_hospital(str(db), pacs=orthanc.spec, reports=feed, credentials=CREDS, progress=False, policy=FAST,
                           reports_credentials=Credentials("ris", "wrong"))
        assert not db.exists()
        summary = audit_hospital(str(db), pacs=orthanc.spec, reports=feed, credentials=CREDS, progress=False,
                                 policy=FAST, reports_credentials=Credentials("ris", "fhir-pw"))
        assert (summary.studies, summary.failures) == (2, 0)
        assert any("_count=100" in p for p in seen) and any("page=2" in p for p in seen)
    finally:
        server.shutdown()


def test_match_falls_back_to_the_study_instance_uid(orthanc, synth12, tmp_path):
    """No accession number (or one the PACS does not know) but the Study Instance UID in an OBX 113014: matched."""
    from medmm.hospital.reports import oru_message

    reports = _cxr(synth12)[:2]
    for r in reports:
        orthanc.upload(str(synth12 / "studies" / r["study"].study_id))
    feed = tmp_path / "r.hl7"
    feed.write_bytes(oru_message(reports[0]["text"], "", "U1", study_instance_uid=reports[0]["study_instance_uid"])
                     + b"\r" + oru_message(reports[1]["text"], "TYPO-ACC", "U2",
                                           study_instance_uid=reports[1]["study_instance_uid"]))
    db = tmp_path / "a.sqlite"
    summary = _run(orthanc, feed, db)
    assert (summary.studies, summary.failures) == (2, 0)
    con = sqlite3.connect(db)
    got = dict(con.execute("SELECT study_instance_uid, accession_number FROM studies"))
    assert got == {r["study_instance_uid"]: r["accession_number"] for r in reports}  # the PACS's accession is kept


def test_a_changed_result_replaces_the_sr_with_a_new_version(orthanc, synth12, tmp_path):
    """publish after a corrected report: a second SR in the same series, InstanceNumber 2, the first as predecessor."""
    from medmm.audit.publish import publish_sr
    from medmm.hospital import open_pacs

    (r,) = _cxr(synth12)[:1]
    orthanc.upload(str(synth12 / "studies" / r["study"].study_id))
    db = tmp_path / "a.sqlite"
    pacs = open_pacs(orthanc.spec, CREDS, policy=FAST)
    _run(orthanc, write_hl7(tmp_path / "d1.hl7", [r]), db)
    assert publish_sr(str(db), pacs).written == 1
    fixed = dict(r, id="R-C", status="C", written="20251231090000",
                 text=r["text"] + "\nADDENDUM: There is a 4 cm left pleural effusion. No effusion.")
    assert _run(orthanc, write_hl7(tmp_path / "d2.hl7", [r, fixed]), db).studies == 1
    second = publish_sr(str(db), pacs)
    assert (second.written, second.replaced) == (1, 1)
    assert publish_sr(str(db), pacs).unchanged == 1
    uid = r["study_instance_uid"]
    srs = sorted((m for m in pacs.instance_metadata(uid) if str(m.Modality) == "SR"), key=lambda m: int(m.InstanceNumber))
    assert [int(m.InstanceNumber) for m in srs] == [1, 2] and srs[0].SeriesInstanceUID == srs[1].SeriesInstanceUID
    pred = srs[1].PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert pred.ReferencedSOPInstanceUID == srs[0].SOPInstanceUID

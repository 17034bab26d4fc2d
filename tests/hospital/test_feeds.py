"""Report feeds (HL7 v2, FHIR R4/R5, MLLP), credentials that are never printed, the SR's image region —
no PACS needed."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import pydicom
import pytest

from medmm.errors import InputError
from medmm.hospital.net import Credentials, PacsUnavailable, RetryPolicy, redact_url, with_retries
from medmm.hospital.reports import (fhir_bundle, iter_feed, oru_message, parse_hl7_message, read_fhir_bundle,
                                    split_hl7)

REPORT = "FINDINGS: A 12 mm nodule | in the right ^ upper lobe & more ~ here \\ too.\n\nIMPRESSION: Nodule."


def test_hl7_round_trip_with_escapes_status_and_uid():
    raw = oru_message(REPORT, "ACC1", "MSG1", study_instance_uid="1.2.3.4", status="C", written_at="20250314104000")
    msg = parse_hl7_message(raw, "x")
    assert msg.text == REPORT and msg.problem is None  # OBX lines joined by newlines, escapes decoded
    assert (msg.accession_number, msg.study_instance_uid, msg.status, msg.report_id) == ("ACC1", "1.2.3.4", "C", "MSG1")
    assert msg.written_at == "2025-03-14T10:40:00"


def test_hl7_files_with_any_line_ends_split_into_messages(tmp_path):
    one = oru_message(REPORT, "A1", "M1")
    two = oru_message("FINDINGS: Normal.", "A2", "M2")
    for sep in (b"\r", b"\n", b"\r\n"):
        path = tmp_path / "feed.hl7"
        path.write_bytes((one + b"\r" + two).replace(b"\r", sep))
        msgs = list(iter_feed(f"hl7:{path}"))
        assert [m.accession_number for m in msgs] == ["A1", "A2"] and msgs[0].text == REPORT
    assert len(split_hl7(b"\x0b" + one + b"\x1c\r")) == 1  # MLLP framing bytes dropped


def test_bad_hl7_messages_are_problems_not_crashes():
    assert "not an HL7" in parse_hl7_message(b"garbage", "x").problem
    adt = oru_message(REPORT, "A1", "M1").replace(b"ORU^R01", b"ADT^A01")
    assert "expected ORU^R01" in parse_hl7_message(adt, "x").problem
    no_acc = parse_hl7_message(oru_message(REPORT, "", "M1"), "x")
    assert "no accession number" in no_acc.problem


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_fhir_bundles_of_both_versions(tmp_path, version):
    rows = [{"id": "r1", "text": REPORT, "accession_number": "A1", "study_instance_uid": "1.2.3", "status": "C",
             "issued": "2025-01-02T03:04:05Z"}]
    path = tmp_path / "b.json"
    import json

    path.write_text(json.dumps(fhir_bundle(rows, version)))
    (m,) = read_fhir_bundle(str(path))
    assert (m.text, m.accession_number, m.study_instance_uid, m.status) == (REPORT, "A1", "1.2.3", "C")
    bad = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": {"resourceType": "DiagnosticReport", "id": "x", "status": "nonsense"}}]}
    (b,) = read_fhir_bundle("x", bad)
    assert b.problem and "not a valid DiagnosticReport" in b.problem
    with pytest.raises(InputError, match="FHIR Bundle"):
        list(read_fhir_bundle("x", {"resourceType": "Patient"}))


def test_credentials_are_never_printed(tmp_path, monkeypatch):
    monkeypatch.setenv("PACS_PW", "hunter2-secret")
    c = Credentials.from_options("u", "PACS_PW")
    assert "hunter2" not in repr(c) and "hunter2" not in str(c) and "hunter2" not in f"{c}"
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    os.chmod(f, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        Credentials.from_options("u", password_file=str(f))
    os.chmod(f, 0o600)
    assert Credentials.from_options("u", password_file=str(f)).password == "from-file"
    with pytest.raises(InputError, match="not set"):
        Credentials.from_options("u", "NO_SUCH_VAR_19")
    assert redact_url("https://u:p@pacs:8443/dicom-web?x=1") == "https://pacs:8443/dicom-web"


def test_retries_back_off_then_give_up_and_never_retry_an_answer():
    waits, calls = [], []

    def down():
        calls.append(1)
        raise ConnectionRefusedError("down")

    with pytest.raises(PacsUnavailable, match="no answer after 4 attempts"):
        with_retries(down, "pacs", RetryPolicy(attempts=4, first_wait=0.5), sleep=waits.append)
    assert len(calls) == 4 and waits == [0.5, 1.0, 2.0]
    with pytest.raises(ValueError):  # not an outage: raised at once
        with_retries(lambda: (_ for _ in ()).throw(ValueError("bad")), "pacs", RetryPolicy(), sleep=waits.append)


def test_the_audit_refuses_a_url_with_credentials_in_it():
    from medmm.hospital import open_pacs

    with pytest.raises(InputError, match="--pacs-user"):
        open_pacs("dicomweb:https://user:pw@pacs/dicom-web")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(30)
def test_mllp_listener_acks_good_messages_naks_bad_ones(tmp_path):
    import hl7.mllp

    from medmm.hospital.mllp import serve

    port, spool = _free_port(), tmp_path / "spool"
    t = threading.Thread(target=serve, args=("127.0.0.1", port, str(spool), 2), daemon=True)
    t.start()

    async def send(messages: list[bytes]) -> list[str]:
        for _ in range(100):
            try:
                reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        acks = []
        for raw in messages:
            writer.writemessage(hl7.parse(raw.decode()))
            await writer.drain()
            acks.append(str(await reader.readmessage()))
        writer.close()
        return acks

    adt = oru_message(REPORT, "A1", "BAD1").replace(b"ORU^R01", b"ADT^A01")
    acks = asyncio.run(send([oru_message(REPORT, "A1", "M1"), adt, oru_message("FINDINGS: ok.", "A2", "M2")]))
    assert "MSA|AA|M1" in acks[0] and "MSA|AE|BAD1" in acks[1] and "expected ORU" in acks[1] and "MSA|AA|M2" in acks[2]
    t.join(10)
    msgs = list(iter_feed(f"hl7:{spool}"))
    assert sorted(m.accession_number for m in msgs) == ["A1", "A2"] and all(m.problem is None for m in msgs)


def test_sr_region_is_an_image_referenced_scoord(tmp_path):
    from medmm.hospital.sr import build_sr, content_sha256
    from medmm.synth.generate import SMALL, make_study

    rec = make_study(str(tmp_path), 19, 1, "cxr", SMALL)
    image = pydicom.dcmread(str(tmp_path / rec["images"][0]["path"]), stop_before_pixels=True)
    flag = {"type": "laterality", "text": "Left effusion.", "confidence": 0.9, "explanation": "side",
            "region": {"image": 0, "slice": None, "x1": 3, "y1": 4, "x2": 10, "y2": 12}}
    result = {"config_key": "k", "checker": "vlm", "has_error": True, "score": 0.9, "flags": [flag]}
    sr = build_sr([image], result)
    assert sr.StudyInstanceUID == image.StudyInstanceUID and sr.PatientID == image.PatientID
    assert sr.SeriesInstanceUID != image.SeriesInstanceUID  # a new series in the same study
    (flag_item,) = [i for i in sr.ContentSequence if i.ValueType == "CONTAINER"]
    (scoord,) = [i for i in flag_item.ContentSequence if i.ValueType == "SCOORD"]
    assert scoord.GraphicType == "POLYLINE" and list(scoord.GraphicData[:4]) == [3.0, 4.0, 10.0, 4.0]
    assert scoord.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
    same = build_sr([image], dict(result))
    changed = build_sr([image], dict(result, score=0.5), version=2, previous=[sr])
    assert same.SOPInstanceUID == sr.SOPInstanceUID and changed.SOPInstanceUID != sr.SOPInstanceUID
    assert changed.InstanceNumber == 2 and content_sha256(result) != content_sha256(dict(result, score=0.5))
    assert changed.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0] \
        .ReferencedSOPInstanceUID == sr.SOPInstanceUID


def test_mllp_spool_is_private(tmp_path):
    from medmm.hospital.mllp import handle

    ok, _, path = handle(oru_message(REPORT, "A1", "M1"), str(tmp_path / "spool"))
    assert ok and os.stat(path).st_mode & 0o077 == 0 and os.stat(tmp_path / "spool").st_mode & 0o077 == 0
    assert not handle(b"garbage", str(tmp_path / "spool"))[0]

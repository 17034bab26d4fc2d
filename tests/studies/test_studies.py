"""The one study record: JSON round trip, the three readers, and confinement of manifest paths (issue 20 N3)."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from medmm.audit.runner import audit
from medmm.errors import InputError
from medmm.imaging.volume import HeaderFacts
from medmm.regions import Box, Display
from medmm.studies import ImageRef, InjectedError, Study, StudyTruth, TruthFinding, iter_studies

REPORT = "FINDINGS: There is a 12 mm nodule in the right upper lobe.\n\nIMPRESSION: Right upper lobe nodule."
SECRET = "admin: {password_hash: SECRETHASH}"


def test_round_trip_through_json():
    s = Study("S1", source="dicomweb", images=(ImageRef("a/b.dcm", view="PA", format="dicom-file"),),
              report=REPORT, report_status="C", header=HeaderFacts(modality="DX", view_position="PA"),
              accession_number="ACC1", study_instance_uid="1.2.3", patient_key="p1", exam_date="2026-01-02",
              exam_time="10:11:12", exam_description="CHEST PA",
              regions=(Box(1, 2, 3, 4, frame=Display("coronal"), slice=2, label="mass"),),
              truth=StudyTruth(findings=(TruthFinding("nodule", "lung_right", "right", 12.0, 101,
                                                      boxes=(Box(1, 1, 5, 5),)),),
                               errors=(InjectedError("laterality", "location", "a", "b", 1, 2),), has_error=True))
    d = json.loads(json.dumps(s.to_dict()))
    assert Study.from_dict(d) == s
    assert s.image_paths == ("a/b.dcm",) and s.view == "PA"
    assert s.truth.boxes()[0].label == "nodule"
    with pytest.raises(InputError, match="unknown keys"):
        Study.from_dict({**d, "acession_number": "typo"})


def test_synthetic_manifest_reads_truth_views_and_roles(tmp_path):
    rec = {"study_id": "S0001", "modality": "CT", "body_part": "CHEST", "sex": "F", "report": REPORT,
           "images": [{"path": "studies/S0001/ct", "format": "dicom-series", "label_map": "studies/S0001/l.nii.gz"},
                      {"path": "studies/S0001/ct.nii.gz", "format": "nifti", "label_map": None}],
           "findings": [{"type": "nodule", "organ": "lung_right", "side": "right", "size_mm": 12.0, "label": 101,
                         "boxes": [{"image": 0, "slice": 3, "x1": 4, "y1": 5, "x2": 9, "y2": 11}]}],
           "comparison": False, "accession_number": "A123"}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(rec) + "\n")
    (s,) = iter_studies(str(tmp_path))
    assert s.problem is None and s.source == "synthetic" and s.accession_number == "A123"
    assert s.image_paths == (str(tmp_path / "studies/S0001/ct"),)  # the NIfTI copy is "derived", not a second image
    assert [i.role for i in s.images] == ["image", "derived"]
    assert s.header.modality == "CT" and s.header.patient_sex == "F"
    assert s.truth.findings[0].boxes == (Box(4, 5, 9, 11, slice=3),)
    assert s.regions == (Box(4, 5, 9, 11, slice=3, label="nodule"),)


def test_folder_and_csv_readers(tmp_path):
    study = tmp_path / "root" / "st1"
    study.mkdir(parents=True)
    (study / "report.txt").write_text(REPORT)
    (study / "img.dcm").write_bytes(b"x")
    (s,) = iter_studies(str(tmp_path / "root"))
    assert s.source == "folder" and s.report_path.endswith("report.txt") and s.image_paths[0].endswith("img.dcm")
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("study_id,report,image_paths,accession_number\nx1,\"" + REPORT + "\",a.png;b.png,ACC9\n")
    (c,) = iter_studies(str(csv_path))
    assert c.accession_number == "ACC9" and c.image_paths == (str(tmp_path / "a.png"), str(tmp_path / "b.png"))


# ------------------------------------------------------------------ N3: paths outside the audited folder
def _outside_attack(tmp_path):
    """An audited folder whose manifest points at a users.yaml outside it, by absolute path, by '..' and by a
    symlink inside the folder; one honest study beside them."""
    outside = tmp_path / "secrets"
    outside.mkdir()
    users = outside / "users.yaml"
    users.write_text(SECRET)
    audited = tmp_path / "audited"
    audited.mkdir()
    (audited / "good.txt").write_text(REPORT)
    os.symlink(users, audited / "innocent.txt")
    rows = [{"study_id": "abs", "report_path": str(users)},
            {"study_id": "dots", "report_path": "../secrets/users.yaml"},
            {"study_id": "link", "report_path": "innocent.txt"},
            {"study_id": "img", "report": REPORT, "images": [str(users)]},
            {"study_id": "good", "report_path": "good.txt"}]
    (audited / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return audited


def test_manifest_paths_outside_the_audited_folder_are_refused(tmp_path):
    audited = _outside_attack(tmp_path)
    items = {s.study_id: s for s in iter_studies(str(audited / "manifest.jsonl"))}
    assert "absolute path outside the audited folder" in items["abs"].problem
    assert "'..' path outside the audited folder" in items["dots"].problem
    assert "symlink outside the audited folder" in items["link"].problem
    assert items["img"].problem.startswith("image 1:") and not items["img"].images
    assert items["good"].problem is None
    for s in items.values():  # the refusal never names the path
        assert "users.yaml" not in (s.problem or "") and s.report_path in (None, str(audited / "good.txt"))


def test_audit_records_the_refusals_and_never_reads_the_outside_file(tmp_path):
    audited = _outside_attack(tmp_path)
    db = str(tmp_path / "a.sqlite")
    summary = audit(str(audited), db, workers=1, progress=False)
    assert (summary.studies, summary.failures) == (1, 4)
    con = sqlite3.connect(db)
    reasons = [r[0] for r in con.execute("SELECT reason FROM failures")]
    assert len(reasons) == 4 and all("outside the audited folder" in r for r in reasons)
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    cells = [str(v) for t in tables for row in con.execute(f'SELECT * FROM "{t}"') for v in row if v is not None]
    assert not [c for c in cells if "SECRETHASH" in c or "users.yaml" in c]


def test_a_hard_linked_report_is_refused_in_folders_and_manifests(tmp_path):
    """A hard link inside the audited folder can name any file on the file system (N3, verifier's round):
    a report with more than one link is the study's recorded problem and its text never reaches the store."""
    outside = tmp_path / "secrets"
    outside.mkdir()
    users = outside / "users.yaml"
    users.write_text(SECRET)
    root = tmp_path / "root"
    (root / "st1").mkdir(parents=True)
    os.link(users, root / "st1" / "report.txt")
    (root / "st2").mkdir()
    (root / "st2" / "report.txt").write_text(REPORT)
    items = {s.study_id: s for s in iter_studies(str(root))}
    assert "hard links" in items["st1"].problem and items["st1"].report_path is None
    assert items["st2"].problem is None
    audited = tmp_path / "audited"
    audited.mkdir()
    os.link(users, audited / "r.txt")
    (audited / "manifest.jsonl").write_text(json.dumps({"study_id": "m", "report_path": "r.txt"}) + "\n")
    (m,) = iter_studies(str(audited))
    assert "hard links" in m.problem and "users.yaml" not in m.problem
    db = str(tmp_path / "a.sqlite")
    audit(str(root), db, workers=1, progress=False)
    con = sqlite3.connect(db)
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    cells = [str(v) for t in tables for row in con.execute(f'SELECT * FROM "{t}"') for v in row if v is not None]
    assert not [c for c in cells if "SECRETHASH" in c]


def test_an_image_swapped_for_a_symlink_after_the_audit_is_not_opened_by_the_viewer(tmp_path):
    """N3, the viewer's half (verifier's round): the store keeps each image's resolved path, and the review app
    refuses a stored path that now leads elsewhere (the file replaced by a link to another patient's image)."""
    from medmm.audit.store import Store, image_path_problem

    root = tmp_path / "root"
    (root / "st1").mkdir(parents=True)
    (root / "st1" / "report.txt").write_text(REPORT)
    img = root / "st1" / "img.dcm"
    img.write_bytes(b"x")
    db = str(tmp_path / "a.sqlite")
    audit(str(root), db, workers=1, progress=False)
    with Store(db) as store:
        key = store.conn.execute("SELECT key FROM studies").fetchone()[0]
        (stored,) = store.study(key)["images"]
    assert stored == os.path.realpath(img) and image_path_problem(stored) is None
    outside = tmp_path / "other_patient.dcm"
    outside.write_bytes(b"y")
    img.unlink()
    os.symlink(outside, img)
    assert "not opened" in image_path_problem(stored)
    assert "other_patient" not in image_path_problem(stored)

"""De-identifying whole trees: no original identifier byte survives anywhere (values, private tags,
sequences, file and folder names), pixels and geometry are unchanged, series still assemble, UIDs
and date shifts are consistent across a study and across runs with the same seed, burned-in text
is refused unless allowed, report text is scrubbed."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medmm.cli import main
from medmm.deid import DeidOptions, deid_tree
from medmm.imaging import load_volume
from medmm.imaging.dicom_write import ProjectionSpec, SeriesSpec, axial_positions, write_projection, write_series
from medmm.imaging.series import discover
from tests.conftest import shipped_file

PHI = {
    "PatientName": "ZYXWOOD^QUENTINA", "PatientID": "MRN7734021", "PatientBirthDate": "19400203",
    "AccessionNumber": "ACC9876512", "InstitutionName": "Saint Elsewhereton Hospital",
    "InstitutionAddress": "1234 Wobbleberry Lane", "ReferringPhysicianName": "HOUSEWRIGHT^GREGORIO",
    "PatientAddress": "77 Quillfeather Road", "PatientTelephoneNumbers": "555-0199-321",
    "StudyID": "STUDY55Q", "OperatorsName": "TECHNOVA^PIPPA", "StudyDate": "20240105", "SeriesDate": "20240105",
    "AcquisitionDate": "20240105", "ContentDate": "20240105",
}
PRIVATE_PHI = "QUENTINA ZYXWOOD PRIVATE NOTE"
NESTED_PHI = "REQPROC5512"
FOLDER = "ZYXWOOD_QUENTINA_MRN7734021"


def _add_phi(path: str, ref_uid: str | None) -> None:
    ds = pydicom.dcmread(path)
    for k, v in PHI.items():
        setattr(ds, k, v)
    block = ds.private_block(0x0011, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", PRIVATE_PHI)
    block.add_new(0x02, "LO", "safe private value")
    inner = Dataset()
    inner.PatientName = PHI["PatientName"]
    block.add_new(0x03, "SQ", Sequence([inner]))
    request = Dataset()
    request.AccessionNumber = PHI["AccessionNumber"]
    request.RequestedProcedureID = NESTED_PHI
    ds.RequestAttributesSequence = Sequence([request])
    other = Dataset()
    other.PatientID = "OTHERID7788"
    ds.OtherPatientIDsSequence = Sequence([other])
    if ref_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = ref_uid
        ds.ReferencedImageSequence = Sequence([ref])
    new_name = os.path.join(os.path.dirname(path), f"ZYXWOOD_{os.path.basename(path)}")
    ds.save_as(new_name)
    os.remove(path)


def _study(root: Path, patient_id: str = PHI["PatientID"], folder: str = FOLDER) -> dict:
    """Two series (CT 4 slices, MR 3 slices) of one study with PHI everywhere; returns the originals."""
    study_uid = pydicom.uid.generate_uid(entropy_srcs=[folder, "study"])
    made = {}
    for modality, n in (("CT", 4), ("MR", 3)):
        stored = (np.arange(n * 8 * 6, dtype=np.int16).reshape(n, 8, 6) * 7) % 900
        out = root / folder / f"{modality}_{folder}"
        spec = SeriesSpec(positions=axial_positions(n, 2.5, (-10.0, 5.0, 20.0)), modality=modality,
                          seed=f"{folder}{modality}", study_uid=study_uid, series_description=f"{modality} of ZYXWOOD")
        paths = write_series(str(out), stored, spec)
        uids = [str(pydicom.dcmread(p).SOPInstanceUID) for p in paths]
        for k, p in enumerate(paths):
            _add_phi(p, uids[0] if k else None)
        first = pydicom.dcmread(next(iter(sorted(out.iterdir()))))
        made[modality] = {"folder": str(out), "stored": stored, "sop_uids": uids,
                          "series_uid": str(first.SeriesInstanceUID), "frame_uid": str(first.FrameOfReferenceUID)}
    if patient_id != PHI["PatientID"]:
        for p in (root / folder).rglob("*.dcm"):
            ds = pydicom.dcmread(p)
            ds.PatientID = patient_id
            ds.save_as(p)
    made["study_uid"] = study_uid
    (root / folder / "report.txt").write_text(
        "Patient: Quentina Zyxwood, MRN: MRN7734021. CT chest 01/05/2024.\nFINDINGS: 6 mm nodule, unchanged.\n"
        "Dictated by Dr. Housewright.\n")
    return made


def _identifiers(made: dict) -> list[bytes]:
    values = [v for k, v in PHI.items()] + [PRIVATE_PHI, NESTED_PHI, "OTHERID7788", FOLDER, "ZYXWOOD", "QUENTINA",
                                            "Zyxwood", "Quentina", "Housewright", made["study_uid"]]
    for m in ("CT", "MR"):
        values += made[m]["sop_uids"] + [made[m]["series_uid"], made[m]["frame_uid"]]
    return [v.encode() for v in values]


def _files(root: str) -> list[str]:
    return sorted(str(p) for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def study(tmp_path):
    return tmp_path / "in", _study(tmp_path / "in")


def test_no_original_identifier_byte_survives(study, tmp_path):
    src, made = study
    out = tmp_path / "out"
    summary = deid_tree(str(src), str(out), seed="s1")
    assert len(summary.written) == 7 and len(summary.texts) == 1 and not summary.skipped and not summary.burned_in
    leaks = []
    for path in _files(str(out)):
        blob = open(path, "rb").read() + os.path.relpath(path, out).encode()
        leaks += [(os.path.relpath(path, out), v) for v in _identifiers(made) if v in blob]
    assert not leaks
    for path in _files(str(out)):
        if path.endswith(".dcm"):
            ds = pydicom.dcmread(path)
            assert ds.PatientIdentityRemoved == "YES" and not any(e.tag.is_private for e in ds.iterall())
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert sum(1 for p in _files(str(out)) if p.endswith(".txt")) == 1


def test_pixels_geometry_and_series_survive(study, tmp_path):
    src, made = study
    out = tmp_path / "out"
    deid_tree(str(src), str(out), seed="s1")
    found = discover(str(out))
    assert [s.path.endswith(".txt") for s in found.skipped] == [True] and len(found.series) == 2
    assert len({h.study_uid for g in found.series for h in g.headers}) == 1  # one study, consistently
    for group in found.series:
        assert all(p.usable for p in group.plans) and len(group.plans) == 1
        before = load_volume(made[group.first.modality]["folder"])
        after = load_volume(os.path.dirname(group.first.path))
        assert np.array_equal(before.data, after.data) and np.allclose(before.affine, after.affine, atol=0)
        assert after.data.shape == before.data.shape


def test_uids_consistent_within_a_study_and_across_runs_with_the_seed(study, tmp_path):
    src, _ = study
    a, b, c = (deid_tree(str(src), str(tmp_path / name), seed=seed) for name, seed in
               (("a", "s1"), ("b", "s1"), ("c", "s2")))
    assert sorted(a.written) == sorted(b.written) and not set(a.written) & set(c.written)
    for rel in a.written:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    by_sop = {}
    for rel in a.written:
        ds = pydicom.dcmread(tmp_path / "a" / rel)
        by_sop[str(ds.SOPInstanceUID)] = ds
        assert rel == os.path.join(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), f"{ds.SOPInstanceUID}.dcm")
    refs = [ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID for ds in by_sop.values()
            if "ReferencedImageSequence" in ds]
    assert len(refs) == 5 and all(r in by_sop for r in refs)  # references follow the new UIDs


def test_dates_shifted_per_patient_or_removed(tmp_path):
    src = tmp_path / "in"
    _study(src)
    _study(src, patient_id="MRN0000002", folder="OTHER_PATIENT")
    shifted = deid_tree(str(src), str(tmp_path / "s"), seed="s1", options=DeidOptions(keep_dates_shifted=True))
    offsets = {}
    for rel in shifted.written:
        ds = pydicom.dcmread(tmp_path / "s" / rel)
        days = (dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date() - dt.date(2024, 1, 5)).days
        offsets.setdefault(str(ds.PatientID), set()).add(days)
        assert ds.SeriesDate == ds.StudyDate == ds.AcquisitionDate == ds.ContentDate
        assert ds.PatientBirthDate == "" and "113107" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
    assert len(offsets) == 2 and all(len(v) == 1 for v in offsets.values())  # one offset per patient
    (a,), (b,) = offsets.values()
    assert a != b and all(-3650 <= d <= -1 for d in (a, b))
    removed = deid_tree(str(src), str(tmp_path / "r"), seed="s1")
    for rel in removed.written:
        ds = pydicom.dcmread(tmp_path / "r" / rel)
        assert all(ds.get(k, "") in ("", "19000101") for k in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")) and ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_private_tags_kept_only_by_name(study, tmp_path):
    src, _ = study
    summary = deid_tree(str(src), str(tmp_path / "o"), seed="s1", options=DeidOptions(keep_private=("ACME 1.0:02",)))
    ds = pydicom.dcmread(tmp_path / "o" / summary.written[0])
    private = {int(e.tag): e.value for e in ds if e.tag.is_private}
    assert private == {0x00110010: "ACME 1.0", 0x00111002: "safe private value"}
    assert "113111" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]


def test_burned_in_refused_unless_allowed(tmp_path, capsys):
    src = tmp_path / "in"
    write_projection(str(src / "PATIENT_NAME_dx.dcm"), np.full((16, 12), 100, np.uint16), ProjectionSpec())
    ct_dir = src / "ct"
    write_series(str(ct_dir), np.zeros((2, 4, 4), np.int16), SeriesSpec(positions=axial_positions(2)),
                 extra={"BurnedInAnnotation": "YES"})
    write_series(str(src / "clean"), np.zeros((2, 4, 4), np.int16), SeriesSpec(positions=axial_positions(2), seed="c"))
    refused = deid_tree(str(src), str(tmp_path / "o1"), seed="s")
    assert len(refused.written) == 2 and len(refused.burned_in) == 3
    reasons = dict(refused.burned_in)
    assert "absent on a DX image" in reasons["PATIENT_NAME_dx.dcm"]
    assert "is YES" in reasons[os.path.join("ct", "IM00001.dcm")]
    assert main(["deid", str(src), str(tmp_path / "o2"), "--seed", "s"]) == 2
    err = capsys.readouterr().err
    assert "burned-in: PATIENT_NAME_dx.dcm" in err and "--allow-burned-in" in err
    allowed = deid_tree(str(src), str(tmp_path / "o3"), seed="s", options=DeidOptions(allow_burned_in=True))
    assert len(allowed.written) == 5 and len(allowed.burned_in) == 3
    assert all("allowed by --allow-burned-in" in why for _, why in allowed.burned_in)


def test_cli_and_hostile_inputs(study, tmp_path, capsys):
    src, made = study
    os.symlink(shipped_file("CT_small.dcm"), src / "outside_link.dcm")
    (src / "notes.bin").write_bytes(b"\x00not dicom")
    assert main(["deid", str(src), str(tmp_path / "out"), "--seed", "s1", "--keep-dates-shifted"]) == 0
    err = capsys.readouterr().err
    assert "7 DICOM file(s) and 1 text file(s) written" in err
    assert "outside_link.dcm: symlink points outside" in err and "notes.bin: not a DICOM file" in err
    assert main(["deid", str(src), str(src / "inside")]) == 2  # output inside the input


def test_report_text_in_the_tree_is_scrubbed(study, tmp_path):
    src, _ = study
    summary = deid_tree(str(src), str(tmp_path / "o"), seed="s1")
    (text_rel,) = summary.texts
    text = (tmp_path / "o" / text_rel).read_text()
    assert "Zyxwood" not in text and "MRN7734021" not in text and "01/05/2024" not in text and "Housewright" not in text
    assert "6 mm nodule, unchanged." in text


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "JPEG2000.dcm", "liver_1frame.dcm",
                                  "emri_small_jpeg_ls_lossless.dcm", "SC_rgb_rle_2frame.dcm", "eCT_Supplemental.dcm"])
def test_shipped_files_deidentify_with_pixels_unchanged(name, tmp_path):
    src = shipped_file(name)
    original = pydicom.dcmread(src)
    summary = deid_tree(src, str(tmp_path / "o"), seed="s", options=DeidOptions(allow_burned_in=True))
    assert len(summary.written) == 1, summary.skipped
    ds = pydicom.dcmread(tmp_path / "o" / summary.written[0])
    assert ds.Rows == original.Rows
    if name == "JPEG2000.dcm":  # its codestream carries a COM segment: removed, the image bytes untouched
        assert ds.PixelData != original.PixelData and np.array_equal(ds.pixel_array, original.pixel_array)
    else:
        assert ds.PixelData == original.PixelData
    assert str(ds.get("PatientName", "")) == "" and ds.SOPInstanceUID != original.SOPInstanceUID
    if name in ("CT_small.dcm", "MR_small.dcm"):
        before, after = load_volume(src), load_volume(str(tmp_path / "o" / summary.written[0]))
        assert np.array_equal(before.data, after.data) and np.allclose(before.affine, after.affine)
    shutil.rmtree(tmp_path / "o")


def test_corrupt_headers_are_skipped_with_a_reason_not_an_unexpected_error(tmp_path):
    """Regressions from the DICOM fuzzer (bench/fuzz_dicom.py runs medmm.deid on every mutated file)."""
    src = tmp_path / "in"
    src.mkdir()
    raw = Path(shipped_file("CT_small.dcm")).read_bytes()
    at = raw.index(b"\x20\x00\x0e\x00UI")  # Series Instance UID, explicit VR: make its VR unknown
    (src / "bad_vr.dcm").write_bytes(raw[:at + 4] + b"Ui" + raw[at + 6:])
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.StudyInstanceUID = ["1.2.3.4", "1.2.3.5"]  # several values where one UID belongs (a corrupt length)
    ds.save_as(src / "two_uids.dcm")
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    del ds.SOPInstanceUID
    ds.save_as(src / "no_sop.dcm")
    summary = deid_tree(str(src), str(tmp_path / "out"), seed="s")
    reasons = dict(summary.skipped)
    assert set(reasons) == {"bad_vr.dcm", "no_sop.dcm"}
    assert "cannot be decoded (NotImplementedError)" in reasons["bad_vr.dcm"]
    assert "no SOP Class or SOP Instance UID" in reasons["no_sop.dcm"]
    (written,) = summary.written
    assert all(re.fullmatch(r"[0-9.]{1,64}", part) for part in written.removesuffix(".dcm").split(os.sep))


def test_budgets_apply_before_a_file_is_read_for_deid(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMM_MAX_FRAMES", "10")
    summary = deid_tree(shipped_file("rtdose.dcm"), str(tmp_path / "o"), seed="s")  # 15 frames
    assert not summary.written and "frame budget" in summary.skipped[0][1]

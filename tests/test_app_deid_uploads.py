"""Check-now uploads through de-identification (AppConfig.deid_uploads): PS3.15 before the checker reads
or the store keeps the files; patient characteristics kept for the sex-specific checks."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from medmm.app.uploads import UploadLimits, deidentify_upload, save_upload
from medmm.errors import InputError
from medmm.imaging import header_facts, load_volume


def _zip_of(paths: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in paths:
            z.write(p, arcname=os.path.basename(p))
    return buf.getvalue()


def _all_bytes(folder: str) -> bytes:
    return b"".join(open(os.path.join(d, f), "rb").read() for d, _, fs in os.walk(folder) for f in fs)


def test_upload_is_deidentified_and_still_checkable(make_series, tmp_path):
    folder, stored, paths = make_series(n=3, rows=6, cols=6, name="ct", patient_sex="F")
    import pydicom

    for p in paths:  # identifiers a hospital file carries
        ds = pydicom.dcmread(p)
        ds.PatientName, ds.PatientID, ds.AccessionNumber = "DOE^JANE", "MRN123456", "ACC98765"
        ds.save_as(p)
    before = load_volume(folder)
    root = str(tmp_path / "uploads")
    up = save_upload(_zip_of(paths), "DOE_JANE.zip", root, UploadLimits())
    out = deidentify_upload(up, root, seed="store-secret")
    assert not os.path.exists(up.folder)  # the identifiable copy is gone
    data = _all_bytes(out.folder)
    for ident in (b"DOE", b"JANE", b"MRN123456", b"ACC98765"):
        assert ident not in data
    assert b"DOE" not in "".join(os.listdir(out.folder)).encode()
    facts = header_facts(list(out.images))
    assert facts.modality == "CT" and facts.patient_sex == "F"  # what the report checker reads survives
    after = load_volume(out.images[0])
    assert (after.data == before.data).all() and (after.affine == before.affine).all()


def test_radiograph_without_burned_in_statement_is_refused(make_series, tmp_path):
    import pydicom

    _, _, paths = make_series(n=1, rows=6, cols=6, name="cxr")
    ds = pydicom.dcmread(paths[0])
    ds.Modality = "DX"  # a radiograph that does not say whether text is burned into its pixels
    if "BurnedInAnnotation" in ds:
        del ds.BurnedInAnnotation
    ds.save_as(paths[0])
    root = str(tmp_path / "uploads")
    up = save_upload(open(paths[0], "rb").read(), "x.dcm", root, UploadLimits())
    with pytest.raises(InputError, match="burned-in"):
        deidentify_upload(up, root, seed="s")
    assert not os.path.exists(up.folder)
    assert not os.listdir(os.path.join(root, "pending"))  # nothing identifiable left behind


def test_upload_without_dicom_is_unchanged(tmp_path):
    root = str(tmp_path / "uploads")
    up = save_upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "scan.png", root, UploadLimits())
    assert deidentify_upload(up, root, seed="s") == up

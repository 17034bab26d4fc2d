"""Check-now with de-identification on: an upload holding a DICOM file that cannot be de-identified
(an encapsulated PDF, a corrupt header) is refused and deleted. Before, ``deidentify_upload`` returned
such an upload unchanged — identifiable — because nothing had been written."""

from __future__ import annotations

import os

import pydicom
import pytest

from medmm.app.uploads import UploadLimits, deidentify_upload, save_upload
from medmm.errors import InputError
from tests.conftest import shipped_file


def _pdf_bytes(tmp_path) -> bytes:
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    del ds.PixelData
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.PatientName = "DOE^JANE"
    ds.DocumentTitle = "Discharge letter of Jane Doe"
    ds.EncapsulatedDocument = b"%PDF-1.4 Jane Doe"
    path = tmp_path / "doc.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def test_encapsulated_pdf_upload_is_refused_not_returned_as_is(tmp_path):
    root = str(tmp_path / "uploads")
    up = save_upload(_pdf_bytes(tmp_path), "letter.dcm", root, UploadLimits())
    with pytest.raises(InputError, match="cannot be de-identified"):
        deidentify_upload(up, root, seed="store-secret")
    assert not os.path.exists(up.folder)
    assert not os.listdir(os.path.join(root, "pending"))


def test_png_upload_has_no_header_and_is_returned_unchanged(tmp_path):
    import numpy as np
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)
    root = str(tmp_path / "uploads")
    up = save_upload(path.read_bytes(), "x.png", root, UploadLimits())
    assert deidentify_upload(up, root, seed="s") == up

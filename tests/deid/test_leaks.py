"""Issue 20, N10 (de-identification by allow-list) and D3's burned-in half: a file with a planted marker
in every place the review found one surviving — file meta, overlays, sequences the profile marks D,
unlisted attributes (text and UIDs), private tags, a JPEG COM segment, an encapsulated PDF — and the
modalities whose pixels can hold text. No marker may survive anywhere in the output bytes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.sequence import Sequence

from medmm.deid import DeidOptions, deid_tree
from medmm.deid.core import burned_in_reason
from medmm.deid.pixels import strip_j2k, strip_jpeg
from tests.conftest import shipped_file


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "99LOCAL", meaning
    return item


def _leaky_ct(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    original_sop = str(ds.SOPInstanceUID)
    ds.file_meta.SourceApplicationEntityTitle = "LEAKMETAAE"
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.999"
    ds.file_meta.PrivateInformation = b"LEAKMETAPRIV"
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000022, "LO", "LEAKOVLDESC")
    ds.add_new(0x60001500, "LO", "LEAKOVLLABEL")
    ds.add_new(0x60003000, "OW", b"\xff" * 8)
    content = Dataset()
    content.ValueType, content.TextValue = "TEXT", "LEAKCONTENT seen by Dr Leak"
    ds.ContentSequence = Sequence([content])
    text = Dataset()
    text.UnformattedTextValue = "LEAKGRAPHIC"
    ann = Dataset()
    ann.TextObjectSequence = Sequence([text])
    ds.GraphicAnnotationSequence = Sequence([ann])
    ds.InstitutionCodeSequence = Sequence([_code("H1", "LEAKINSTITUTION")])
    operator = Dataset()
    operator.PersonIdentificationCodeSequence = Sequence([_code("OP7", "LEAKOPERATOR")])
    ds.OperatorIdentificationSequence = Sequence([operator])
    ds.SOPInstanceUIDOfConcatenationSource = original_sop
    ds.AcquisitionDeviceProcessingCode = "LEAKUNLISTED"
    ds.add_new(0x00700081, "LO", "LEAKCONTENTDESC")
    ds.add_new(0x00291010, "LO", "LEAKPRIVATE")
    ds.add_new(0x00290010, "LO", "ACME")
    ds.BodyPartExamined = "chest LEAKCS"  # not a coded string: removed
    ds.save_as(path, enforce_file_format=True)
    return str(path), original_sop


MARKERS = (b"LEAKMETA", b"LEAKOVL", b"LEAKCONTENT", b"LEAKGRAPHIC", b"LEAKINSTITUTION", b"LEAKOPERATOR",
           b"LEAKUNLISTED", b"LEAKPRIVATE", b"LEAKCS", b"Dr Leak")


def _only_output(out: Path) -> Path:
    (f,) = [p for p in out.rglob("*.dcm")]
    return f


def test_no_planted_marker_survives_anywhere(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _, original_sop = _leaky_ct(src / "a.dcm")
    summary = deid_tree(str(src), str(tmp_path / "out"))
    assert len(summary.written) == 1, summary.skipped
    out = _only_output(tmp_path / "out")
    raw = out.read_bytes()
    leaked = [m for m in MARKERS if m in raw]
    assert not leaked, leaked
    assert original_sop.encode() not in raw
    ds = pydicom.dcmread(out)
    assert len(ds.ContentSequence) == 0 and len(ds.GraphicAnnotationSequence) == 0  # D on a sequence: empty
    assert len(ds.InstitutionCodeSequence) == 0 and len(ds.OperatorIdentificationSequence) == 0
    assert ds.SOPInstanceUIDOfConcatenationSource == ds.SOPInstanceUID  # replaced by the same pseudonym
    assert not [t for t in ds.keys() if t.group == 0x6000]  # the overlay goes whole
    assert sorted(e.keyword for e in ds.file_meta) == sorted([  # rebuilt: the writer's own elements only
        "FileMetaInformationGroupLength", "FileMetaInformationVersion", "MediaStorageSOPClassUID",
        "MediaStorageSOPInstanceUID", "TransferSyntaxUID", "ImplementationClassUID", "ImplementationVersionName"])
    assert ds.Rows == 128 and ds.Modality == "CT" and ds.Manufacturer  # what a reader needs stays
    np.testing.assert_array_equal(ds.pixel_array, pydicom.dcmread(shipped_file("CT_small.dcm")).pixel_array)


def test_every_output_attribute_is_replaced_by_the_profile_or_on_the_allow_list(tmp_path):
    from medmm.deid.allowlist import load_allowlist
    from medmm.deid.table import load_table

    src = tmp_path / "in"
    src.mkdir()
    _leaky_ct(src / "a.dcm")
    deid_tree(str(src), str(tmp_path / "out"))
    ds = pydicom.dcmread(_only_output(tmp_path / "out"))
    allowed, table = load_allowlist(), load_table()
    written_by_medmm = {0x00120062, 0x00120063, 0x00120064, 0x00280303}
    for elem in ds.iterall():
        tag = int(elem.tag)
        assert tag in allowed or table.lookup(tag) is not None or tag in written_by_medmm, elem.keyword


def _with_com(frame: bytes, text: bytes) -> bytes:
    com = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
    app = b"\xff\xe1" + struct.pack(">H", len(text) + 8) + b"Exif\0\0" + text
    return frame[:2] + com + app + frame[2:]


def test_jpeg_com_and_app_segments_removed_without_reencoding(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(shipped_file("SC_rgb_jpeg_dcmtk.dcm"))
    before = ds.pixel_array.copy()
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    ds.PixelData = encapsulate([_with_com(frame, b"LEAKCOM patient Jane Roe")])
    ds.BurnedInAnnotation = "NO"
    ds.save_as(src / "a.dcm", enforce_file_format=True)
    summary = deid_tree(str(src), str(tmp_path / "out"))
    assert len(summary.written) == 1, (summary.skipped, summary.burned_in)
    out = _only_output(tmp_path / "out")
    assert b"LEAKCOM" not in out.read_bytes() and b"Jane Roe" not in out.read_bytes()
    after = pydicom.dcmread(out)
    (new_frame,) = generate_frames(after.PixelData, number_of_frames=1)
    assert new_frame == strip_jpeg(frame)[0]  # the same entropy-coded bytes: nothing re-encoded
    np.testing.assert_array_equal(after.pixel_array, before)


def test_j2k_com_in_main_and_tile_headers_removed():
    ds = pydicom.dcmread(shipped_file("MR_small_jp2klossless.dcm"))
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    com = b"\xff\x64" + struct.pack(">H", 4 + 11) + b"\x00\x01" + b"LEAKJ2KMAIN"
    sot = frame.index(b"\xff\x90")
    tile_com = b"\xff\x64" + struct.pack(">H", 4 + 11) + b"\x00\x01" + b"LEAKJ2KTILE"
    psot = struct.unpack_from(">I", frame, sot + 6)[0]
    tile = bytearray(frame[sot:sot + 12])
    if psot:
        struct.pack_into(">I", tile, 6, psot + len(tile_com))
    planted = frame[:sot] + com + bytes(tile) + tile_com + frame[sot + 12:]
    cleaned, removed = strip_j2k(planted)
    assert removed >= 2 and b"LEAKJ2K" not in cleaned
    ds.PixelData = encapsulate([cleaned])
    np.testing.assert_array_equal(ds.pixel_array, pydicom.dcmread(shipped_file("MR_small_jp2klossless.dcm")).pixel_array)


def test_encapsulated_pdf_is_refused_not_passed_through(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.Modality = "DOC"
    for keyword in ("PixelData", "Rows", "Columns"):
        del ds[keyword]
    ds.DocumentTitle = "LEAKPDFTITLE discharge letter of Jane Roe"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4 LEAKPDFBODY"
    ds.save_as(src / "doc.dcm", enforce_file_format=True)
    summary = deid_tree(str(src), str(tmp_path / "out"))
    assert not summary.written
    assert any("encapsulated document" in why for _, why in summary.skipped)
    assert not list((tmp_path / "out").rglob("*.dcm")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("modality", ["RF", "MG", "ES", "XC", "OP", "PX", "IO", "US", "SC", "XA", "CR", "DX", "OT", "SM"])
def test_modalities_with_text_in_pixels_are_burned_in_risks(modality):
    ds = Dataset()
    ds.Modality, ds.SOPClassUID = modality, "1.2.840.10008.5.1.4.1.1.2"
    assert burned_in_reason(ds) is not None
    ds.BurnedInAnnotation = "NO"
    assert burned_in_reason(ds) is None


@pytest.mark.parametrize("sop_class, modality, refused", [
    ("1.2.840.10008.5.1.4.1.1.7", "CT", True),  # Secondary Capture
    ("1.2.840.10008.5.1.4.1.1.7.2", "CT", True),  # Multi-frame Grayscale Byte SC
    ("1.2.840.10008.5.1.4.1.1.77.1.4", "CT", True),  # VL Photographic
    ("1.2.840.10008.5.1.4.1.1.77.1.5.4", "OPT", False),  # Ophthalmic Tomography: was refused by the SC prefix
    ("1.2.840.10008.5.1.4.1.1.78.1", "LEN", False),  # Lensometry Measurements: no image at all
    ("1.2.840.10008.5.1.4.1.1.79.1", "OPM", False),  # Macular Grid Thickness and Volume Report
    ("1.2.840.10008.5.1.4.1.1.2", "CT", False),
])
def test_secondary_capture_rule_matches_its_classes_only(sop_class, modality, refused):
    ds = Dataset()
    ds.Modality, ds.SOPClassUID = modality, sop_class
    assert (burned_in_reason(ds) is not None) is refused


def test_screen_captures_and_embedded_overlays_are_burned_in_risks():
    ds = Dataset()
    ds.Modality, ds.SOPClassUID = "CT", "1.2.840.10008.5.1.4.1.1.2"
    ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    assert "screen capture" in burned_in_reason(ds)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.add_new(0x60000100, "US", 16)
    ds.add_new(0x60000102, "US", 12)
    assert "unused bits" in burned_in_reason(ds)


def test_shipped_allow_list_is_the_one_the_rules_build():
    import json
    from importlib import resources

    from medmm.deid.allowlist import ALLOWLIST_FILE, build_allowlist

    shipped = json.loads(resources.files("medmm.deid").joinpath(ALLOWLIST_FILE).read_text())
    built = build_allowlist(shipped["source"])
    assert shipped["attributes"] == [list(r) for r in built["attributes"]], \
        "regenerate medmm/deid/safe_attributes.json with medmm.deid.allowlist.build_allowlist"


@pytest.mark.parametrize("name", ["eCT_Supplemental.dcm", "emri_small.dcm", "liver_1frame.dcm"])
def test_enhanced_and_multiframe_geometry_survives_the_allow_list(name, tmp_path):
    from medmm.imaging import load

    src = shipped_file(name)
    summary = deid_tree(src, str(tmp_path / "o"), options=DeidOptions(allow_burned_in=True))
    assert len(summary.written) == 1, summary.skipped
    before = load(src, force=True)
    after = load(str(tmp_path / "o" / summary.written[0]), force=True)
    assert len(before) == len(after)
    for b, a in zip(before, after):
        assert b.shape == a.shape and np.allclose(b.affine, a.affine) and np.array_equal(b.data, a.data)

"""Every real DICOM file shipped with pydicom and pydicom-data: decodes, or fails clearly."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from medmm.errors import DecodeError, DicomReadError, InputError, MedmmError, NotDicomError
from medmm.imaging import load
from tests.conftest import PYDICOM_DATA, PYDICOM_FILES

ALL_FILES = sorted(PYDICOM_FILES.glob("*.dcm")) + sorted(PYDICOM_DATA.glob("*.dcm"))

# Known-broken fixtures and the error each must give (checked both ways: a file here that
# starts to decode, or a file not here that stops decoding, fails the test).
KNOWN_BROKEN: dict[str, tuple[type[MedmmError], str]] = {
    "JPEG-lossy.dcm": (DecodeError, "gpl-codecs"),  # 12-bit JPEG Extended: GPL libjpeg only
    "JPGExtended.dcm": (DecodeError, "gpl-codecs"),
    "JPEG2000-embedded-sequence-delimiter.dcm": (DecodeError, "corrupt"),
    "MR_truncated.dcm": (DicomReadError, "truncated"),
    "badVR.dcm": (DicomReadError, "Number of Frames (0028,0008) is '1A'"),
    "meta_missing_tsyntax.dcm": (DicomReadError, "Rows/Columns"),
    "nested_priv_SQ.dcm": (DicomReadError, "Rows/Columns"),
    "emri_small_jpeg_2k_lossless_too_short.dcm": (DicomReadError, "truncated or corrupt"),
    "no_meta.dcm": (NotDicomError, "not a DICOM file"),
    "rtplan_truncated.dcm": (DicomReadError, "truncated"),
}
NOT_IMAGES = {
    "ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm", "UN_sequence.dcm", "empty_charset_LEI.dcm",
    "no_meta_group_length.dcm", "priv_SQ.dcm", "reportsi.dcm", "reportsi_with_empty_number_tags.dcm",
    "rtplan.dcm", "rtstruct.dcm", "test-SR.dcm", "waveform_ecg.dcm",
}


def test_corpus_is_present():
    assert len(ALL_FILES) > 140, "pydicom / pydicom-data test files missing"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_file_decodes_or_fails_clearly(path):
    name = path.name
    if name in KNOWN_BROKEN:
        kind, words = KNOWN_BROKEN[name]
        with pytest.raises(kind) as info:
            load(str(path), force=True)
        msg = str(info.value)
        assert words in msg and str(path) in msg
        assert "\n" not in msg
        return
    if name in NOT_IMAGES:
        with pytest.raises(InputError, match="no pixel data"):
            load(str(path), force=True)
        return
    volumes = load(str(path), force=True)
    assert volumes
    for vol in volumes:
        assert vol.data.size > 0
        assert np.isfinite(vol.affine).all() and abs(np.linalg.det(vol.affine[:3, :3])) > 0
        if not vol.rgb:
            assert vol.data.dtype == np.float32
            assert np.isfinite(vol.data).all()


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_jp2klossless.dcm",
     "MR_small_jpeg_ls_lossless.dcm", "JPEG-LL.dcm", "SC_rgb_rle.dcm", "SC_rgb_expb_16bit.dcm", "emri_small_RLE.dcm",
     "rtdose.dcm", "693_J2KR.dcm", "image_dfl.dcm"],
)
def test_lossless_values_equal_pydicom_with_rescale(name):
    """Lossless syntaxes: medmm's values are pydicom's stored values through the rescale."""
    from tests.conftest import shipped_file

    path = shipped_file(name)
    ds = pydicom.dcmread(path)
    ref = ds.pixel_array.astype(np.float64)
    vol = load(path, force=True)[0]
    if vol.rgb:
        got = vol.data.transpose(2, 1, 0, 3)  # back to (frames, rows, cols, 3)
        assert np.array_equal(got.reshape(ref.shape), ref)
        return
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    got = vol.data.transpose(2, 1, 0)  # (k, rows, cols)
    frames = ref if ref.ndim == 3 else ref[np.newaxis]
    np.testing.assert_allclose(got, frames * slope + intercept, rtol=1e-6, atol=1e-3)


def test_default_install_has_no_gpl_decoder_yet_decodes_jpeg_lossless():
    """The GPL libjpeg plugin is an opt-in extra; JPEG Lossless still decodes (gdcm, Apache-2.0)."""
    import importlib.util

    from tests.conftest import shipped_file

    assert importlib.util.find_spec("libjpeg") is None, "pylibjpeg-libjpeg (GPL) must not be in the default install"
    path = shipped_file("JPGLosslessP14SV1_1s_1f_8b.dcm")
    vol = load(path)[0]
    ref = pydicom.dcmread(path).pixel_array
    assert np.array_equal(vol.data[:, :, 0].T, ref.astype(np.float32))


def _native_gray_files():
    from medmm.imaging.dicom import _native_fast_path, read_header

    out = []
    for path in ALL_FILES:
        try:
            header = read_header(str(path))
        except MedmmError:
            continue
        if header.has_pixels and not header.truncated and _native_fast_path(header):
            out.append(path)
    return out


NATIVE_GRAY = _native_gray_files()


def test_fast_path_covers_many_files():
    assert len(NATIVE_GRAY) >= 20


@pytest.mark.parametrize("path", NATIVE_GRAY, ids=lambda p: p.name)
def test_native_fast_path_equals_pydicom(path):
    """medmm reads uncompressed frames straight from disk; values must equal pydicom's."""
    from medmm.imaging.dicom import _read_native, read_header

    header = read_header(str(path))
    frames = [p.frame for p in header.planes]
    got = _read_native(header, frames, np.empty((len(frames), header.rows, header.cols), np.float32))
    ds = pydicom.dcmread(str(path))
    ref = ds.pixel_array
    ref = ref if header.n_frames > 1 else ref[np.newaxis]
    expected = np.stack([ref[f or 0] * p.slope + p.intercept for f, p in zip(frames, header.planes)])
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-6)

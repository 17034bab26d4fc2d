"""Pixel pipeline (modality LUT, per-frame rescale, colour) and display (VOI, MONOCHROME1, views)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut, apply_modality_lut

from medmm.errors import InputError
from medmm.imaging import load, load_volume, render, save_png, three_windows
from medmm.imaging.views import PRESETS, apply_window, plane, resolve_window
from medmm.imaging.volume import Volume, Window
from tests.conftest import shipped_file


@pytest.mark.parametrize("name", ["RG1_UNCI.dcm", "RG1_J2KR.dcm", "RG3_UNCR.dcm", "RG3_J2KI.dcm"])
def test_monochrome1_displays_inverted(name):
    vol = load_volume(shipped_file(name))
    assert vol.photometric == "MONOCHROME1" and vol.display_inverted
    shown = render(vol, window="file")
    # Same values, same window, but as if MONOCHROME2: exactly the complement.
    as_mono2 = Volume(vol.data, vol.affine, windows=vol.windows, photometric="MONOCHROME2")
    assert np.array_equal(shown.astype(int), 255 - render(as_mono2, window="file").astype(int))
    # Low stored values (little attenuation, e.g. air) appear bright.
    values = plane(vol)
    assert shown[values == values.min()].mean() > 200


def test_enhanced_ct_per_frame_geometry_and_rescale():
    path = shipped_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    vol = load_volume(path)
    assert not np.allclose(vol.affine, np.eye(4))  # MONAI's PydicomReader gives identity here
    pf = ds.PerFrameFunctionalGroupsSequence
    ipps = [np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]) for item in pf]
    # Each frame's world position equals its PlanePositionSequence (LPS → RAS).
    origins = [vol.world(np.array([0, 0, k])) for k in range(vol.shape[2])]
    expected = sorted(([-p[0], -p[1], p[2]] for p in ipps), key=lambda v: -v[2])
    assert np.allclose(origins, expected, atol=1e-3)
    # Per-frame Pixel Value Transformation (intercept -1024) applied: values in HU.
    shared = ds.SharedFunctionalGroupsSequence[0]
    intercept = float(shared.PixelValueTransformationSequence[0].RescaleIntercept)
    assert intercept == -1024
    assert vol.data.min() == pytest.approx(float(ds.pixel_array.min()) + intercept)
    assert vol.windows[0] == Window(center=49.0, width=102.0)


def test_modality_lut_sequence_applied():
    path = shipped_file("mlut_18.dcm")
    ds = pydicom.dcmread(path)
    vol = load_volume(path)
    expected = apply_modality_lut(ds.pixel_array, ds)
    assert np.array_equal(vol.data[:, :, 0].T, expected.astype(np.float32))
    assert not np.array_equal(expected, ds.pixel_array)  # the LUT does something


def test_voi_lut_sequence_is_a_display_option():
    path = shipped_file("vlut_04.dcm")
    ds = pydicom.dcmread(path)
    vol = load_volume(path)
    assert vol.voi_luts and not vol.windows
    shown = render(vol, window="file")
    ref = pydicom.pixels.apply_voi_lut(ds.pixel_array, ds)
    lut_max = vol.voi_luts[0].max_output
    assert np.allclose(shown, np.rint(ref / lut_max * 255), atol=1)


def test_several_windows_kept():
    vol = load_volume(shipped_file("MR2_UNCR.dcm"))
    ds = pydicom.dcmread(shipped_file("MR2_UNCR.dcm"))
    n_windows = len(ds.WindowCenter) if isinstance(ds.WindowCenter, pydicom.multival.MultiValue) else 1
    assert len(vol.windows) == n_windows >= 1


@pytest.mark.parametrize("name", ["OBXXXX1A.dcm", "examples_palette.dcm", "OBXXXX1A_rle_2frame.dcm"])
def test_palette_color_converted_to_rgb(name):
    path = shipped_file(name)
    ds = pydicom.dcmread(path)
    vol = load_volume(path)
    assert vol.rgb and vol.photometric == "PALETTE COLOR"
    ref = apply_color_lut(ds.pixel_array, ds)
    ref = ref if ref.ndim == 4 else ref[np.newaxis]
    assert np.array_equal(vol.data.transpose(2, 1, 0, 3), ref)


@pytest.mark.parametrize("name", ["SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm"])
def test_ybr_converted_to_rgb(name):
    ybr = load_volume(shipped_file(name))
    rgb = load_volume(shipped_file("SC_rgb.dcm"))
    assert ybr.rgb
    # The YBR files encode the same picture as SC_rgb.dcm; after conversion they match closely.
    diff = np.abs(ybr.data.astype(int) - rgb.data.astype(int))
    assert diff.mean() < 3


def test_window_formula_matches_dicom_linear():
    w = Window(center=40.0, width=400.0)
    x = np.array([-1000.0, 40 - 0.5 - 199.5, 40.0, 40 - 0.5 + 199.5, 3000.0])
    out = apply_window(x, w)
    assert out[0] == 0 and out[-1] == 1
    assert out[2] == pytest.approx((40 - 39.5) / 399 + 0.5)
    assert out[1] == pytest.approx(0.0) and out[3] == pytest.approx(1.0)


def test_presets_and_custom_windows():
    vol = Volume(np.zeros((2, 2, 1), np.float32), np.eye(4))
    assert resolve_window(vol, "lung") == PRESETS["lung"]
    assert resolve_window(vol, "40,400") == Window(40.0, 400.0, "custom")
    with pytest.raises(InputError, match="unknown window"):
        resolve_window(vol, "nonsense")


def _marker_volume() -> Volume:
    """A 3-slice LPS-aligned volume with a bright voxel at the patient's left and anterior."""
    data = np.zeros((10, 12, 3), np.float32)
    data[8, 1, 1] = 1000.0  # i=8: toward patient left; j=1: anterior (LPS j → posterior)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS affine of DICOM axis-aligned LPS data
    return Volume(data, affine)


def test_axial_view_is_radiological():
    img = plane(_marker_volume(), index=1)
    r, c = np.unravel_index(np.argmax(img), img.shape)
    assert img.shape == (12, 10)
    assert c == 8 and r == 1  # patient left on image right, anterior at the top


def test_view_independent_of_storage_orientation():
    """The same anatomy stored in RAS order (as many NIfTI files are) renders identically."""
    lps = _marker_volume()
    flipped = lps.data[::-1, ::-1, :].copy()  # i now → right, j → anterior
    ras_affine = np.eye(4)
    ras_affine[:3, 3] = [-9.0, -11.0, 0.0]  # keeps every voxel at the same world position
    ras = Volume(flipped, ras_affine)
    assert np.allclose(ras.world(np.array([1, 10, 1])), lps.world(np.array([8, 1, 1])))
    assert np.array_equal(plane(ras, index=1), plane(lps, index=1))


def test_mip_three_windows_and_png(tmp_path, make_series):
    folder, stored, _ = make_series(n=4, intercept=-1024.0)
    vol = load_volume(folder)
    mip = plane(vol, mip=True)
    assert np.array_equal(mip, vol.data.max(axis=2).T)
    rgb = three_windows(vol)
    assert rgb.shape == (8, 6, 3) and rgb.dtype == np.uint8
    out = save_png(render(vol, window="lung", index=0), str(tmp_path / "v.png"))
    from PIL import Image

    assert Image.open(out).size == (6, 8)
    with pytest.raises(InputError, match="out of range"):
        render(vol, index=99)


def test_nifti_4d_frame_selection(tmp_path):
    import nibabel as nib
    from nibabel.testing import data_path

    vol = load(f"{data_path}/example4d.nii.gz")[0]
    assert vol.data.ndim == 4
    a = render(vol, window="auto", frame=0)
    b = render(vol, window="auto", frame=1)
    assert a.shape == b.shape
    assert nib.load(f"{data_path}/example4d.nii.gz").shape[3] == 2
    with pytest.raises(InputError, match="frame"):
        render(vol, frame=5)


def _frames_world_check(path: str) -> None:
    """Each frame's first voxel sits at its own PlanePositionSequence position."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    vol = load_volume(path)
    assert not np.allclose(vol.affine, np.eye(4))
    pf = ds.PerFrameFunctionalGroupsSequence
    truth = np.array([[-float(p[0]), -float(p[1]), float(p[2])]
                      for p in (item.PlanePositionSequence[0].ImagePositionPatient for item in pf)])
    got = np.array([vol.world(np.array([0, 0, k])) for k in range(vol.shape[2])])
    assert vol.shape[2] == len(pf)
    # every frame's stored position is matched by exactly one slice of the regular grid (0.01 mm)
    dist = np.linalg.norm(truth[:, None, :] - got[None, :, :], axis=-1)
    assert dist.min(axis=1).max() < 0.01
    assert len(set(dist.argmin(axis=1))) == len(pf)


def test_enhanced_mr_philips_geometry(tmp_path):
    """nibabel's Philips Enhanced MR (176 oblique frames): per-frame positions honoured."""
    import gzip
    import os

    import nibabel

    src = os.path.join(os.path.dirname(nibabel.__file__), "nicom", "tests", "data", "philips_mprage.dcm.gz")
    path = tmp_path / "philips_mprage.dcm"
    path.write_bytes(gzip.open(src).read())
    _frames_world_check(str(path))
    vol = load_volume(str(path))
    assert vol.problems == () and vol.spacing == pytest.approx((1.0, 1.0, 1.0), abs=1e-4)


def test_enhanced_ct_frames_world_positions():
    _frames_world_check(shipped_file("eCT_Supplemental.dcm"))

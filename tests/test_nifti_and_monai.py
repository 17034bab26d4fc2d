"""NIfTI round trips, DICOM → NIfTI in world coordinates, and the MONAI reader."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from medmm.errors import InputError
from medmm.imaging import load_nifti, load_volume, save_nifti
from medmm.imaging.dicom_write import SeriesSpec, write_series
from tests.conftest import DICOMDIR_TESTS

NIFTI_FILES = ["example4d.nii.gz", "standard.nii.gz", "example_nifti2.nii.gz", "anatomical.nii", "functional.nii"]


@pytest.mark.parametrize("name", NIFTI_FILES)
def test_nifti_load_matches_nibabel_and_round_trips(name, tmp_path):
    path = f"{data_path}/{name}"
    ref = nib.load(path)
    vol = load_nifti(path)
    assert np.allclose(vol.affine, ref.affine)
    assert np.allclose(vol.data.reshape(ref.shape), ref.get_fdata())
    out = save_nifti(vol, str(tmp_path / "rt.nii.gz"))
    back = load_nifti(out)
    assert np.allclose(back.affine, vol.affine, atol=1e-5)
    assert np.array_equal(back.data, vol.data)


def test_sform_takes_precedence_over_qform(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    img = nib.Nifti1Image(data, np.eye(4))
    sform = np.diag([2.0, 3.0, 4.0, 1.0])
    qform = np.diag([1.0, 1.0, 1.0, 1.0])
    img.set_qform(qform, code=1)
    img.set_sform(sform, code=2)
    nib.save(img, tmp_path / "x.nii")
    assert np.allclose(load_nifti(str(tmp_path / "x.nii")).affine, sform)
    img.set_sform(sform, code=0)  # unset sform: qform wins, as in nibabel
    nib.save(img, tmp_path / "y.nii")
    assert np.allclose(load_nifti(str(tmp_path / "y.nii")).affine, qform)


def _oblique_series(tmp_path):
    """An oblique, anisotropic series whose slices are stored in reverse z order."""
    theta = np.radians(20)
    row = np.array([np.cos(theta), np.sin(theta), 0.0])
    col = np.array([0.0, 0.0, -1.0])  # coronal-ish
    normal = np.cross(row, col)
    n, rows, cols = 7, 9, 11
    positions = np.array([np.array([5.0, -30.0, 40.0]) + k * 3.0 * normal for k in range(n)])[::-1]
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 3000, size=(n, rows, cols)).astype(np.int16)
    spec = SeriesSpec(positions=positions, orientation=tuple(np.r_[row, col]), pixel_spacing=(0.8, 1.3),
                      slope=0.5, intercept=-100.0, seed="oblique")
    folder = tmp_path / "oblique"
    write_series(str(folder), stored, spec)
    return str(folder), stored, positions, row, col


def test_dicom_to_nifti_matches_in_world_coordinates(tmp_path):
    folder, stored, positions, row, col = _oblique_series(tmp_path)
    dicom_vol = load_volume(folder)
    out = save_nifti(dicom_vol, str(tmp_path / "o.nii.gz"))
    nii = nib.load(out)
    data = nii.get_fdata()
    # For every stored pixel: its LPS world position from the DICOM header, then the NIfTI
    # voxel at that position (through nibabel's own affine) must hold the same value.
    inv = np.linalg.inv(nii.affine)
    for k in range(stored.shape[0]):
        for r in (0, 4, 8):
            for c in (0, 5, 10):
                lps = positions[k] + c * 1.3 * row + r * 0.8 * col
                ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
                ijk = np.rint(inv @ ras)[:3].astype(int)
                assert data[tuple(ijk)] == pytest.approx(stored[k, r, c] * 0.5 - 100.0)


def test_real_series_to_nifti_and_back(tmp_path):
    vol = load_volume(str(DICOMDIR_TESTS / "98892001" / "CT5N"))
    back = load_nifti(save_nifti(vol, str(tmp_path / "ct5n.nii.gz")))
    assert np.allclose(back.affine, vol.affine, atol=1e-4)
    assert np.array_equal(back.data, vol.data)


def test_sheared_affine_saved_as_sform_only(tmp_path, make_series):
    pos = np.array([[0.0, k * 0.5, 2.0 * k] for k in range(4)])
    folder, _, _ = make_series(n=4, positions=pos)
    vol = load_volume(folder)
    img = nib.load(save_nifti(vol, str(tmp_path / "tilt.nii.gz")))
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 0
    assert np.allclose(img.affine, vol.affine, atol=1e-5)


def test_bad_nifti_inputs(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    with pytest.raises(InputError, match="not a readable NIfTI"):
        load_nifti(str(bad))
    empty = tmp_path / "empty.nii"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_nifti(str(empty))


# ---------------------------------------------------------------- MONAI
@pytest.mark.parametrize("kind", ["series", "enhanced", "nifti"])
def test_monai_reader_same_array_and_affine(kind, tmp_path):
    from monai.data import MetaTensor
    from monai.transforms import LoadImage

    from medmm.imaging.monai_reader import MedmmReader
    from tests.conftest import shipped_file

    if kind == "series":
        path, _, _, _, _ = _oblique_series(tmp_path)
    elif kind == "enhanced":
        path = shipped_file("eCT_Supplemental.dcm")
    else:
        path = f"{data_path}/anatomical.nii"
    ours = load_volume(path)
    img = LoadImage(reader=MedmmReader(), image_only=True)(path)
    assert isinstance(img, MetaTensor)
    assert np.array_equal(img.numpy(), ours.data)
    assert np.allclose(img.affine.numpy(), ours.affine)
    assert str(img.meta["space"]) == "RAS"
    # and channel-first works with MONAI's own transform
    from monai.transforms import EnsureChannelFirst

    assert EnsureChannelFirst()(img).shape[0] == 1

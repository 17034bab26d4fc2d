"""Series grouping, sorting and problem detection on real broken series and synthetic truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medmm.errors import SeriesGeometryError
from medmm.imaging import POLICIES, describe, load, load_volume
from medmm.imaging.problems import Policy
from tests.conftest import DICOMDIR_TESTS


def codes(stack) -> set[str]:
    return {p["code"] for p in stack.problems}


# ---------------------------------------------------------------- real series (pydicom)
def test_ct2_reports_gap_and_is_refused_not_averaged():
    desc = describe(str(DICOMDIR_TESTS / "77654033" / "CT2"))
    assert len(desc.series) == 1
    stack = desc.series[0]
    assert codes(stack) == {"gap"} and not stack.usable
    assert stack.spacing[2] == pytest.approx(1.25, abs=1e-3)  # not (105.52 + 99.48) / 3 = 68.33
    with pytest.raises(SeriesGeometryError, match="gap"):
        load(str(DICOMDIR_TESTS / "77654033" / "CT2"))


def test_ct2_forced_splits_into_contiguous_runs():
    vols = load(str(DICOMDIR_TESTS / "77654033" / "CT2"), force=True)
    assert sorted(v.shape[2] for v in vols) == [1, 3]
    three = next(v for v in vols if v.shape[2] == 3)
    assert three.spacing[2] == pytest.approx(1.25, abs=1e-3)
    assert three.affine[2, 3] == pytest.approx(103.02, abs=1e-2)
    assert all("gap" in {p.code for p in v.problems} for v in vols)


def test_ct5n_sorted_by_position_not_instance_number():
    folder = DICOMDIR_TESTS / "98892001" / "CT5N"
    vol = load_volume(str(folder))
    assert vol.problems == ()
    # z of slice k increases with k, starting at the lowest slice (InstanceNumber 10).
    z = [vol.world(np.array([0, 0, k]))[2] for k in range(vol.shape[2])]
    assert z == pytest.approx([-1.2375, 1.2625, 3.7625, 6.2625, 8.7625], abs=1e-3)
    by_z = sorted(
        (pydicom.dcmread(str(f)) for f in folder.iterdir()), key=lambda ds: float(ds.ImagePositionPatient[2])
    )
    assert [int(ds.InstanceNumber) for ds in by_z] == [10, 9, 8, 7, 6]
    for k, ds in enumerate(by_z):
        expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(vol.data[:, :, k].T, expected.astype(np.float32))


@pytest.mark.parametrize("folder,n_orientations", [("98892001/CT2N", 2), ("98892003/MR700", 7)])
def test_mixed_orientation_is_split(folder, n_orientations):
    desc = describe(str(DICOMDIR_TESTS / folder))
    assert len(desc.series) == n_orientations
    assert all("mixed_orientation" in codes(s) for s in desc.series)
    affines = [np.array(s.affine) for s in desc.series]
    normals = {tuple(np.round(a[:3, 2] / np.linalg.norm(a[:3, 2]), 3)) for a in affines}
    assert len(normals) == n_orientations
    vols = load(str(DICOMDIR_TESTS / folder))
    assert len(vols) == n_orientations and all(v.shape[2] == 1 for v in vols)


def test_folder_tree_groups_by_series_uid():
    desc = describe(str(DICOMDIR_TESTS / "98892003"))
    uids = {s.series_uid for s in desc.series}
    assert len(uids) >= 5  # MR1 holds three single-file series; MR2 and MR700 more
    mr1 = describe(str(DICOMDIR_TESTS / "98892003" / "MR1"))
    assert len({s.series_uid for s in mr1.series}) == 3


# ---------------------------------------------------------------- synthetic truth
def test_clean_series_geometry_matches_truth(make_series):
    folder, stored, _ = make_series(n=6, spacing=2.5, pixel_spacing=(0.7, 0.9), intercept=-1024.0)
    vol = load_volume(folder)
    assert vol.shape == (6, 8, 6)
    assert vol.spacing == pytest.approx((0.9, 0.7, 2.5))
    # RAS affine: x and y flipped relative to DICOM LPS.
    assert np.allclose(vol.affine[:3, 3], [10.0, 20.0, 30.0])
    assert np.allclose(np.diag(vol.affine)[:3], [-0.9, -0.7, 2.5])
    assert np.array_equal(vol.data.transpose(2, 1, 0), stored.astype(np.float32) - 1024)
    assert vol.facts.modality == "CT" and vol.windows[0].center == 40.0


def test_shuffled_instance_numbers_do_not_change_order(make_series):
    folder, stored, _ = make_series(n=5, instance_numbers=[3, 1, 5, 2, 4])
    vol = load_volume(folder)
    assert np.array_equal(vol.data.transpose(2, 1, 0), stored.astype(np.float32))


def test_gap_detected_on_synthetic(make_series):
    pos = np.array([[0, 0, z] for z in (0.0, 2.0, 4.0, 10.0, 12.0)])
    folder, _, _ = make_series(n=5, positions=pos)
    stack = describe(folder).series[0]
    assert codes(stack) == {"gap"}
    assert len(load(folder, force=True)) == 2


def test_uneven_spacing_detected(make_series):
    pos = np.array([[0, 0, z] for z in (0.0, 2.0, 4.0, 5.5, 7.5, 9.5)])
    folder, _, _ = make_series(n=6, positions=pos)
    stack = describe(folder).series[0]
    assert codes(stack) == {"uneven_spacing"}
    with pytest.raises(SeriesGeometryError, match="uneven_spacing"):
        load(folder)
    vol = load_volume(folder, force=True)
    assert "uneven_spacing" in {p.code for p in vol.problems}


def test_spacing_within_dicom2nifti_tolerance_is_clean(make_series):
    pos = np.array([[0, 0, z] for z in (0.0, 2.0, 4.05, 6.0, 8.0)])
    folder, _, _ = make_series(n=5, positions=pos)
    assert codes(describe(folder).series[0]) == set()


def test_duplicate_position_detected(make_series):
    pos = np.array([[0, 0, z] for z in (0.0, 2.0, 2.0, 4.0)])
    folder, stored, _ = make_series(n=4, positions=pos)
    assert "duplicate_position" in codes(describe(folder).series[0])
    with pytest.raises(SeriesGeometryError):
        load(folder)
    vol = load_volume(folder, force=True)
    assert vol.shape[2] == 3


def test_gantry_tilt_keeps_exact_sheared_affine(make_series):
    # 10 degree tilt: each 2 mm slice step also moves 2*tan(10°) mm along y.
    dy = 2.0 * np.tan(np.radians(10))
    pos = np.array([[0.0, k * dy, 2.0 * k] for k in range(5)])
    folder, _, _ = make_series(n=5, positions=pos, gantry_tilt=10.0)
    vol = load_volume(folder)
    assert {p.code for p in vol.problems} == {"gantry_tilt"}
    # World position of slice k's first voxel equals its IPP (converted to RAS).
    for k in range(5):
        lps = pos[k]
        assert np.allclose(vol.world(np.array([0, 0, k])), [-lps[0], -lps[1], lps[2]], atol=1e-4)


def test_inconsistent_shape_is_split(make_series, tmp_path):
    a, _, _ = make_series(n=3, rows=8, cols=6, name="a", seed="same")
    b, _, _ = make_series(n=3, rows=10, cols=6, name="b", seed="same",
                          positions=[[0, 0, 100.0 + 2 * k] for k in range(3)])
    merged = tmp_path / "merged"
    merged.mkdir()
    for i, f in enumerate(sorted((tmp_path / "a").iterdir()) + sorted((tmp_path / "b").iterdir())):
        shutil.copy(f, merged / f"f{i}.dcm")
    stacks = describe(str(merged)).series
    assert len(stacks) == 2 and all("inconsistent_shape" in codes(s) for s in stacks)
    assert len({s.series_uid for s in stacks}) == 1


def test_single_slice_uses_thickness(make_series):
    folder, _, _ = make_series(n=1, slice_thickness=3.0)
    vol = load_volume(folder)
    assert {p.code for p in vol.problems} == {"single_slice"}
    assert vol.spacing[2] == pytest.approx(3.0)


# ---------------------------------------------------------------- every problem code does what its policy says
def _merge(tmp_path, *folders) -> str:
    merged = tmp_path / "merged"
    merged.mkdir()
    files = [f for folder in folders for f in sorted(Path(folder).iterdir())]
    for i, f in enumerate(files):
        shutil.copy(f, merged / f"f{i}.dcm")
    return str(merged)


def _strip_geometry(folder: str) -> str:
    for f in Path(folder).iterdir():
        ds = pydicom.dcmread(str(f))
        del ds.ImagePositionPatient
        del ds.ImageOrientationPatient
        ds.save_as(str(f))
    return folder


def _z(*zs: float) -> np.ndarray:
    return np.array([[0.0, 0.0, z] for z in zs])


# One constructed series per problem code (nothing else wrong with it).
SERIES_WITH = {
    "gap": lambda make, tmp: make(n=5, positions=_z(0, 2, 4, 10, 12))[0],
    "uneven_spacing": lambda make, tmp: make(n=6, positions=_z(0, 2, 4, 5.5, 7.5, 9.5))[0],
    "duplicate_position": lambda make, tmp: make(n=4, positions=_z(0, 2, 2, 4))[0],
    "mixed_orientation": lambda make, tmp: _merge(
        tmp, make(n=3, name="ax", seed="same")[0],
        make(n=3, name="cor", seed="same", orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
             positions=[[0.0, 50.0 + 2 * k, 0.0] for k in range(3)])[0]),
    "inconsistent_shape": lambda make, tmp: _merge(
        tmp, make(n=3, rows=8, name="a", seed="same")[0],
        make(n=3, rows=10, name="b", seed="same", positions=_z(100, 102, 104))[0]),
    "gantry_tilt": lambda make, tmp: make(
        n=5, gantry_tilt=10.0, positions=[[0.0, k * 2 * np.tan(np.radians(10)), 2.0 * k] for k in range(5)])[0],
    "single_slice": lambda make, tmp: make(n=1, slice_thickness=3.0)[0],
    "no_geometry": lambda make, tmp: _strip_geometry(make(n=3)[0]),
}


@pytest.mark.parametrize("code", sorted(POLICIES))
def test_each_problem_code_gets_the_outcome_of_its_policy(code, make_series, tmp_path):
    """error: described, refused by load, loaded with force=True carrying the problem;
    split: one usable stack per part, each carrying the problem, loaded without force;
    warning: one usable volume carrying the problem, no force needed."""
    assert code in SERIES_WITH, f"problem code {code!r} has no constructed series in this test: add one"
    folder = SERIES_WITH[code](make_series, tmp_path)
    stacks = describe(folder).series
    assert all(code in codes(s) for s in stacks), [codes(s) for s in stacks]
    policy = POLICIES[code]
    if policy is Policy.ERROR:
        assert len(stacks) == 1 and not stacks[0].usable
        with pytest.raises(SeriesGeometryError, match=code):
            load(folder)
        forced = load(folder, force=True)
        assert forced and all(code in {p.code for p in v.problems} for v in forced)
    elif policy is Policy.SPLIT:
        assert len(stacks) == 2 and all(s.usable for s in stacks)
        vols = load(folder)
        assert len(vols) == 2 and all(code in {p.code for p in v.problems} for v in vols)
    else:
        assert policy is Policy.WARNING
        assert len(stacks) == 1 and stacks[0].usable
        vol = load_volume(folder)
        assert code in {p.code for p in vol.problems}


def test_a_clean_series_has_no_problem(make_series):
    folder, _, _ = make_series(n=4)
    stacks = describe(folder).series
    assert len(stacks) == 1 and codes(stacks[0]) == set() and stacks[0].usable
    assert load_volume(folder).problems == ()

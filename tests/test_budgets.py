"""Budgets before allocation: a tiny file declaring a huge image is refused from its header, in
bounded time and memory, before one record per declared frame is built (issue 14, finding 2)."""

from __future__ import annotations

import time
import tracemalloc

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medmm.cli import main
from medmm.errors import PixelBudgetError
from medmm.imaging import describe, load
from medmm.imaging.dicom import DEFAULT_MAX_FRAMES, read_header
from medmm.imaging.index import scan
from medmm.imaging.nifti import load_nifti
from tests.conftest import shipped_file

MB = 2**20


def _bounded(fn, seconds: float = 2.0, peak_bytes: int = 4 * MB):
    """Call ``fn`` expecting PixelBudgetError; return the error after checking time and peak memory."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(PixelBudgetError) as info:
            fn()
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < peak_bytes, f"peak {peak / MB:.1f} MiB"
    return info.value


def _frame_bomb(path, frames=1_000_000, rows=4, cols=4, enhanced=False, pixels=True):
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = rows, cols
    if enhanced:
        shared = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [0, 0, 0]
        shared.PlanePositionSequence = Sequence([pos])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
    if pixels:
        ds.PixelData = b"\x00" * 32
    else:
        del ds.PixelData
    ds.save_as(path)
    assert path.stat().st_size < 10_000  # a few KB declaring a million frames
    return str(path)


def test_million_frame_header_refused_fast_and_small(tmp_path):
    bomb = _frame_bomb(tmp_path / "bomb.dcm")
    err = _bounded(lambda: describe(bomb))
    assert "1,000,000 frames" in str(err) and "frame budget" in str(err)
    _bounded(lambda: load(bomb))
    _bounded(lambda: read_header(bomb))


def test_enhanced_and_pixelless_frame_bombs_refused(tmp_path):
    _bounded(lambda: describe(_frame_bomb(tmp_path / "enh.dcm", enhanced=True)))
    _bounded(lambda: read_header(_frame_bomb(tmp_path / "nopix.dcm", pixels=False)))


def test_voxel_budget_checked_at_the_header_under_the_frame_budget(tmp_path):
    frames = DEFAULT_MAX_FRAMES - 1
    bomb = _frame_bomb(tmp_path / "wide.dcm", frames=frames, rows=512, cols=512)
    err = _bounded(lambda: describe(bomb))
    assert f"{frames * 512 * 512:,} voxels" in str(err)


def test_frame_budget_is_configurable(tmp_path, monkeypatch):
    dose = shipped_file("rtdose.dcm")  # 15 frames
    assert read_header(dose).n_frames == 15
    monkeypatch.setenv("MEDMM_MAX_FRAMES", "10")
    with pytest.raises(PixelBudgetError, match="15 frames"):
        read_header(dose)
    monkeypatch.setenv("MEDMM_MAX_FRAMES", "15")
    assert len(read_header(dose).planes) == 15


def test_max_voxels_option_reaches_the_header_check(tmp_path):
    ct = shipped_file("CT_small.dcm")  # 128 x 128
    with pytest.raises(PixelBudgetError, match="16,384 voxels"):
        load(ct, max_voxels=16_383)
    assert load(ct, max_voxels=16_384)[0].shape[:2] == (128, 128)


def test_scan_records_the_bomb_and_keeps_the_rest(tmp_path, make_series):
    folder, _, _ = make_series(n=3)
    _frame_bomb(tmp_path / "series" / "bomb.dcm")
    t0 = time.perf_counter()
    table = scan(folder, workers=1).table
    assert time.perf_counter() - t0 < 5
    skipped = table[table.status == "skipped"]
    assert list(skipped.path.str.rsplit("/", n=1).str[-1]) == ["bomb.dcm"]
    assert "frame budget" in skipped.reason.iloc[0]
    assert int(table[table.status == "ok"].n_files.iloc[0]) == 3


def test_cli_info_on_the_bomb_is_a_clear_error(tmp_path, capsys):
    bomb = _frame_bomb(tmp_path / "bomb.dcm")
    t0 = time.perf_counter()
    code = main(["info", bomb])
    assert time.perf_counter() - t0 < 3
    assert code != 0
    assert "frame budget" in capsys.readouterr().err


def test_nifti_declaring_a_huge_volume_is_refused_before_reading(tmp_path):
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((4000, 4000, 4000))
    path = tmp_path / "huge.nii"
    with open(path, "wb") as fh:  # header and a few voxels: the declared volume is 128 GB
        fh.write(hdr.binaryblock + b"\x00" * (int(hdr["vox_offset"]) - len(hdr.binaryblock)) + b"\x00" * 64)
    err = _bounded(lambda: load_nifti(str(path)))
    assert "64,000,000,000 voxels" in str(err)
    assert describe(str(path)).series[0].shape == [4000, 4000, 4000]  # describing reads the header only

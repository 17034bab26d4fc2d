"""Header index of folder trees, and every kind of bad input the issue lists."""

from __future__ import annotations

import os
import shutil
import time
import tracemalloc

import pandas as pd
import pydicom
import pytest

from medmm.errors import DicomReadError, InputError, NotDicomError, PixelBudgetError
from medmm.imaging import describe, load
from medmm.imaging.index import scan, write_table
from tests.conftest import DICOMDIR_TESTS, shipped_file


@pytest.fixture
def messy_tree(tmp_path, make_series):
    """A tree with two good series and every kind of bad file."""
    root = tmp_path / "tree"
    root.mkdir()
    a, _, _ = make_series(n=4, name="a")
    shutil.copytree(a, root / "patient1" / "a")
    shutil.copytree(DICOMDIR_TESTS / "77654033" / "CT2", root / "patient2" / "ct2")
    (root / "zero.dcm").write_bytes(b"")
    (root / "notes.txt").write_text("not dicom at all\n")
    good = open(shipped_file("CT_small.dcm"), "rb").read()
    (root / "truncated.dcm").write_bytes(good[: len(good) - 5000])
    (root / "header-cut.dcm").write_bytes(good[:700])
    (root / "garbage.dcm").write_bytes(good[:132] + os.urandom(600))
    shutil.copy(shipped_file("rtplan.dcm"), root / "plan.dcm")
    outside = tmp_path / "outside.dcm"
    shutil.copy(shipped_file("CT_small.dcm"), outside)
    os.symlink(outside, root / "link-out.dcm")
    return root


def test_scan_lists_series_and_bad_files_with_reasons(messy_tree, tmp_path):
    result = scan(str(messy_tree), workers=1)
    t = result.table
    ok = t[t.status == "ok"]
    assert len(ok) == 2 and set(ok.n_files) == {4}
    ct2 = ok[ok.problems.str.contains("gap", na=False)]
    assert len(ct2) == 1 and not bool(ct2.usable.iloc[0])
    assert set(ok.orientation) == {"AXIAL"}
    bad = t[t.status == "skipped"].set_index(t[t.status == "skipped"].path.map(os.path.basename))
    assert "empty file" in bad.loc["zero.dcm", "reason"]
    assert "not a DICOM file" in bad.loc["notes.txt", "reason"]
    assert "truncated" in bad.loc["truncated.dcm", "reason"]
    assert "truncated" in bad.loc["header-cut.dcm", "reason"]
    assert any(w in bad.loc["garbage.dcm", "reason"] for w in ("corrupt", "truncated"))
    assert "without pixel data" in bad.loc["plan.dcm", "reason"]
    assert "outside the scanned root" in bad.loc["link-out.dcm", "reason"]
    for ext in ("parquet", "csv"):
        out = write_table(t, str(tmp_path / f"index.{ext}"))
        back = pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
        assert len(back) == len(t) and list(back.columns) == list(t.columns)


def test_scan_process_pool_gives_same_table(tmp_path, make_series, monkeypatch):
    import medmm.imaging.series as series

    monkeypatch.setattr(series, "POOL_MIN_FILES", 100)  # exercise the pool on a small tree
    root = tmp_path / "many"
    for s in range(30):
        folder, _, _ = make_series(n=6, rows=4, cols=4, name=f"s{s}", seed=f"s{s}")
        shutil.move(folder, root / f"s{s}")
    (root / "junk.bin").write_bytes(b"\x00" * 10)
    one = scan(str(root), workers=1).table
    two = scan(str(root), workers=2).table
    key = ["status", "series_uid", "n_files", "shape", "spacing", "problems", "path", "reason"]
    sort = lambda t: t[key].sort_values(["series_uid", "path"], na_position="last").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(sort(one), sort(two))
    assert (one.status == "ok").sum() == 30


def test_scan_never_reads_pixels(tmp_path, make_series, monkeypatch):
    folder, _, _ = make_series(n=3)
    import medmm.imaging.dicom as dicom

    def boom(*a, **k):
        raise AssertionError("pixels decoded during a header scan")

    monkeypatch.setattr(dicom, "decode_planes", boom)
    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(boom))
    assert scan(folder, workers=1).n_series == 1


# ---------------------------------------------------------------- bad input
def test_zero_byte_file(tmp_path):
    p = tmp_path / "z.dcm"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load(str(p))


def test_non_dicom_file(tmp_path):
    p = tmp_path / "x.dcm"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    with pytest.raises(NotDicomError):
        load(str(p))


def test_truncated_file(tmp_path):
    good = open(shipped_file("CT_small.dcm"), "rb").read()
    p = tmp_path / "t.dcm"
    p.write_bytes(good[:-1000])
    with pytest.raises(DicomReadError, match="truncated"):
        load(str(p))


def test_missing_pixel_data(tmp_path):
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    del ds.PixelData
    p = tmp_path / "nopix.dcm"
    ds.save_as(p)
    with pytest.raises(InputError, match="no pixel data"):
        load(str(p))


def _huge_header_file(path):
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 1000
    ds.PixelData = b"\x00" * 64
    ds.save_as(path)


def test_huge_header_refused_before_allocating(tmp_path):
    p = tmp_path / "huge.dcm"
    _huge_header_file(p)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(PixelBudgetError) as info:
        load(str(p))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 5
    assert peak < 50 * 2**20
    assert "3,600,000,000,000 voxels" in str(info.value)


def test_pixel_budget_is_configurable(make_series, monkeypatch):
    folder, _, _ = make_series(n=4, rows=8, cols=6)
    with pytest.raises(PixelBudgetError, match="pixel budget"):
        load(folder, max_voxels=100)
    monkeypatch.setenv("MEDMM_MAX_VOXELS", "100")
    with pytest.raises(PixelBudgetError):
        load(folder)
    monkeypatch.setenv("MEDMM_MAX_VOXELS", "1e6")
    assert load(folder)[0].shape == (6, 8, 4)


def test_huge_header_budget_checked_even_when_pixels_present(tmp_path):
    """A file whose declared size exceeds the budget is refused by the budget, not the decoder."""
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    p = tmp_path / "big.dcm"
    ds.save_as(p)
    with pytest.raises(PixelBudgetError):
        load(str(p), max_voxels=128 * 127)


def test_symlink_outside_root_not_followed(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret"
    shutil.copytree(DICOMDIR_TESTS / "98892001" / "CT5N", outside)
    os.symlink(outside, root / "dirlink")
    os.symlink(outside / "2062", root / "filelink")
    with pytest.raises(InputError, match="no DICOM images"):
        describe(str(root))


def test_bad_file_in_folder_does_not_stop_load(tmp_path):
    root = tmp_path / "s"
    shutil.copytree(DICOMDIR_TESTS / "98892001" / "CT5N", root)
    (root / "junk").write_text("hello")
    (root / "empty").write_bytes(b"")
    from medmm.imaging.series import load_dicom_folder

    vols, skipped = load_dicom_folder(str(root))
    assert len(vols) == 1 and vols[0].shape[2] == 5
    assert {os.path.basename(s.path) for s in skipped} == {"junk", "empty"}


def test_no_phi_in_error_messages(tmp_path):
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 1000
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "MRN123456"
    p = tmp_path / "f.dcm"
    ds.save_as(p)
    with pytest.raises(Exception) as info:
        load(str(p))
    assert "DOE" not in str(info.value) and "MRN123456" not in str(info.value)


def test_fifo_is_not_opened(tmp_path):
    """A FIFO in a scanned tree (or given directly) must not block the scan forever."""
    root = tmp_path / "r"
    shutil.copytree(DICOMDIR_TESTS / "98892001" / "CT5N", root)
    os.mkfifo(root / "pipe")
    t0 = time.perf_counter()
    result = scan(str(root), workers=1)
    assert time.perf_counter() - t0 < 10
    skipped = result.table[result.table.status == "skipped"]
    assert list(skipped.reason) == ["not a regular file (FIFO, socket or device); not opened"]
    with pytest.raises(InputError, match="not a regular file"):
        load(str(root / "pipe"))

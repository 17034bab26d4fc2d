"""Decoded size is a budget (issue 20, N4 and "what to build" 2): the inflated size of a Deflated
Explicit VR file and every codestream's declared dimensions (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE)
are checked before anything is inflated or decoded — in load/info/render, audits' header reads, the
app's Check-now uploads and de-identification alike. Each bomb is built here, small."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import DeflatedExplicitVRLittleEndian

from medmm.errors import DecodeError, MedmmError, PixelBudgetError
from medmm.imaging import describe, load
from medmm.imaging.codestream import check_inflated_size
from medmm.imaging.dicom import read_header
from tests.conftest import shipped_file

MB = 2**20


def _bounded(fn, seconds: float = 5.0, peak_bytes: int = 16 * MB, error=PixelBudgetError):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(error) as info:
            fn()
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < peak_bytes, f"peak {peak / MB:.1f} MiB"
    return info.value


# ------------------------------------------------------------------ Deflated Explicit VR
def _deflate_bomb(path, inflated_extra: int) -> str:
    """CT_small (128² int16) saved Deflated, with a private OB of zeros that inflates to ``inflated_extra``."""
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.add_new(0x00091010, "LO", "BOMB")
    ds.add_new(0x00091000 | 0x0010, "LO", "ACME")
    ds.add_new(0x00091011, "OB", b"\x00" * inflated_extra)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    assert path.stat().st_size < inflated_extra // 200  # small on disk, large inflated
    return str(path)


def test_deflated_bomb_over_a_small_budget_is_refused_before_inflating(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMM_MAX_HEADER_BYTES", str(1 * MB))
    bomb = _deflate_bomb(tmp_path / "dfl.dcm", 24 * MB)
    err = _bounded(lambda: read_header(bomb), peak_bytes=4 * MB)
    assert "deflated data set inflates" in str(err) and "MEDMM_MAX_HEADER_BYTES" in str(err)
    _bounded(lambda: describe(bomb), peak_bytes=4 * MB)
    _bounded(lambda: load(bomb), peak_bytes=4 * MB)


def test_deflated_bomb_under_default_budget_is_refused(tmp_path):
    """128² int16 declared (32 KiB of pixels) but 80 MiB inflated: past the 64 MiB header allowance."""
    bomb = _deflate_bomb(tmp_path / "dfl.dcm", 80 * MB)
    _bounded(lambda: read_header(bomb), peak_bytes=4 * MB)


def test_real_deflated_file_still_reads(tmp_path, monkeypatch):
    path = shipped_file("image_dfl.dcm")
    assert 0 < check_inflated_size(path) < 512 * 512 + 64 * 1024
    (vol,) = load(path)
    assert sorted(vol.shape)[-2:] == [512, 512]
    assert check_inflated_size(shipped_file("CT_small.dcm")) == 0  # not deflated: nothing inflated


def test_deflated_bomb_in_a_tree_scan_and_deid_is_one_skipped_file(tmp_path, monkeypatch, make_series):
    from medmm.deid import deid_tree
    from medmm.imaging.index import scan

    monkeypatch.setenv("MEDMM_MAX_HEADER_BYTES", str(1 * MB))
    folder, _, _ = make_series(n=3)
    _deflate_bomb(tmp_path / "series" / "zz_bomb.dcm", 8 * MB)
    index = scan(folder, workers=1)
    reasons = index.table[index.table["status"] == "skipped"]["reason"].tolist()
    assert any("inflates" in r for r in reasons), reasons
    summary = deid_tree(folder, str(tmp_path / "out"), options=_allow_burned_in())
    assert any("inflates" in why for _, why in summary.skipped)
    assert len(summary.written) == 3


def _allow_burned_in():
    from medmm.deid import DeidOptions

    return DeidOptions(allow_burned_in=True)


# ------------------------------------------------------------------ codestreams
def _frames(ds) -> list[bytes]:
    n = int(ds.get("NumberOfFrames") or 1)
    return list(generate_frames(ds.PixelData, number_of_frames=n))


def _with_frame(src_name: str, path, edit, syntax: str | None = None) -> str:
    ds = pydicom.dcmread(shipped_file(src_name))
    frame = bytearray(_frames(ds)[0])
    edit(frame)
    ds.PixelData = encapsulate([bytes(frame)])
    if "NumberOfFrames" in ds:
        ds.NumberOfFrames = 1
    if syntax:
        ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def _set_siz(frame: bytearray, width: int, height: int) -> None:
    assert frame[:4] == b"\xff\x4f\xff\x51"
    struct.pack_into(">II", frame, 8, width, height)
    struct.pack_into(">II", frame, 16, 0, 0)


def _set_sof(frame: bytearray, rows: int, cols: int) -> None:
    pos = 2
    while True:
        marker = frame[pos + 1]
        (length,) = struct.unpack_from(">H", frame, pos + 2)
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xF7):
            struct.pack_into(">HH", frame, pos + 5, rows, cols)
            return
        pos += 2 + length


@pytest.mark.parametrize("name, syntax", [
    ("MR_small_jp2klossless.dcm", None),
    ("MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.201"),  # HTJ2K lossless: same SIZ marker
])
def test_j2k_codestream_declaring_16000_squared_under_64_squared_is_refused(tmp_path, name, syntax):
    bomb = _with_frame(name, tmp_path / "j2k.dcm", lambda f: _set_siz(f, 16000, 16000), syntax)
    assert (tmp_path / "j2k.dcm").stat().st_size < 20_000
    err = _bounded(lambda: load(bomb), error=DecodeError)  # 256 M voxels: under the budget, over the header
    assert "16,000 × 16,000" in str(err) and "refused before decoding" in str(err)


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEG-LL.dcm"])
def test_jpeg_and_jpeg_ls_sof_larger_than_the_header_is_refused(tmp_path, name):
    bomb = _with_frame(name, tmp_path / "jpg.dcm", lambda f: _set_sof(f, 30000, 30000))
    err = _bounded(lambda: load(bomb), error=DecodeError)  # 0.9-2.7 G samples
    assert "30,000 × 30,000" in str(err) and "refused before decoding" in str(err)


def test_rle_segment_expanding_past_the_header_is_refused(tmp_path):
    ds = pydicom.dcmread(shipped_file("MR_small_RLE.dcm"))  # 64² × 16 bit: 2 segments of 4096 bytes
    runs = b"\x81\x00" * 200_000  # each 2-byte run expands to 128 bytes: 25.6 MB per segment
    header = struct.pack("<16I", 2, 64, 64 + len(runs), *([0] * 13))
    ds.PixelData = encapsulate([header + runs + runs])
    path = tmp_path / "rle.dcm"
    ds.save_as(path, enforce_file_format=True)
    err = _bounded(lambda: load(str(path)))
    assert "RLE segment expands" in str(err)


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_RLE.dcm", "JPEG2000.dcm", "emri_small_jpeg_2k_lossless.dcm",
                                  "emri_small_RLE.dcm", "SC_rgb_rle_2frame.dcm"])
def test_real_codestreams_pass_the_guard_and_decode(name):
    (vol,) = load(shipped_file(name), force=True)
    assert min(vol.shape) >= 1


def test_checknow_upload_of_a_codestream_bomb_is_a_clear_error(tmp_path):
    """The app's Check-now path (save_upload, then the imaging loader the app calls) refuses the bomb."""
    from medmm.app.uploads import save_upload
    from medmm.imaging import load_volume

    bomb = _with_frame("MR_small_jp2klossless.dcm", tmp_path / "b.dcm", lambda f: _set_siz(f, 16000, 16000))
    with open(bomb, "rb") as fh:
        upload = save_upload(fh.read(), "b.dcm", str(tmp_path / "store"))
    with pytest.raises(MedmmError, match="refused before decoding"):
        load_volume(upload.images[0])


def test_guard_ignores_native_and_counts_every_frame():
    from medmm.imaging.codestream import check_codestreams

    ds = pydicom.dcmread(shipped_file("emri_small_jpeg_2k_lossless.dcm"))
    n = check_codestreams(ds.PixelData, str(ds.file_meta.TransferSyntaxUID), ds.Rows, ds.Columns, 1, 16, "x")
    assert n == int(ds.NumberOfFrames) == 10
    assert check_codestreams(b"", "1.2.840.10008.1.2.1", 1, 1, 1, 8, "x") == 0
    compressed = zlib.compress(b"x")
    assert compressed  # zlib in use here is the stdlib one


def test_header_readers_of_audits_and_region_tasks_refuse_the_deflate_bomb(tmp_path):
    """Audits read header facts (a bomb is a skipped file, never a 2 GB inflate); region tasks read image
    sizes through the same reader (it used pydicom.dcmread directly, which inflates the whole file)."""
    from medmm.errors import InputError
    from medmm.imaging import header_facts
    from medmm.regions.tasks import image_size

    bomb = _deflate_bomb(tmp_path / "dfl.dcm", 80 * MB)
    tracemalloc.start()
    t0 = time.perf_counter()
    assert header_facts(bomb) is None
    with pytest.raises(InputError, match="PixelBudgetError"):
        image_size(bomb)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5 and peak < 8 * MB, (elapsed, peak / MB)
    assert image_size(shipped_file("CT_small.dcm")) == (128, 128)


def test_cli_info_and_render_on_the_bombs_are_clear_errors(tmp_path, capsys):
    from medmm.cli import main

    deflated = _deflate_bomb(tmp_path / "dfl.dcm", 80 * MB)
    j2k = _with_frame("MR_small_jp2klossless.dcm", tmp_path / "j2k.dcm", lambda f: _set_siz(f, 16000, 16000))
    for argv, words in ((["info", deflated], "inflates"), (["render", deflated, "--out", str(tmp_path / "a.png")], "inflates"),
                        (["render", j2k, "--out", str(tmp_path / "b.png")], "refused before decoding")):
        t0 = time.perf_counter()
        assert main(argv) != 0
        assert time.perf_counter() - t0 < 5
        assert words in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_checknow_deidentified_upload_of_a_deflate_bomb_is_refused(tmp_path, monkeypatch):
    from medmm.app.uploads import deidentify_upload, save_upload
    from medmm.errors import InputError

    bomb = _deflate_bomb(tmp_path / "dfl.dcm", 80 * MB)
    with open(bomb, "rb") as fh:
        upload = save_upload(fh.read(), "b.dcm", str(tmp_path / "store"))
    with pytest.raises(InputError, match="inflates"):
        deidentify_upload(upload, str(tmp_path / "store"), seed="store-secret")


def _deflated_item_bomb(path, items: int) -> str:
    """CT_small saved Deflated with a Content Sequence of ``items`` tiny undefined-length items: a few KB on
    disk, a few MB inflated (well inside the header allowance), but every item a pydicom Dataset."""
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    item = (struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + struct.pack("<HH", 0x0040, 0xA160) + b"UT\0\0"
            + struct.pack("<I", 2) + b"ab" + struct.pack("<HHI", 0xFFFE, 0xE00D, 0))
    seq = (struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF) + item * items
           + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    raw = body.getvalue()
    at = raw.find(struct.pack("<HH", 0x7FE0, 0x0010))
    meta = DicomBytesIO()
    write_file_meta_info(meta, ds.file_meta)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = deflater.compress(raw[:at] + seq + raw[at:]) + deflater.flush()
    path.write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue() + data)
    return str(path)


def test_deflated_sequence_item_bomb_inside_the_byte_allowance_is_refused(tmp_path):
    """Verifier's probe: 200,000 empty items (6 MB inflated, 15 KB on disk) passed the byte allowance and
    took `medmm info` 18 s and 317 MB; at the 64 MiB allowance (~2.2 M items) it reached ~3 GB, as the
    original N4 bomb did. The items a deflated header declares are counted while inflating."""
    bomb = _deflated_item_bomb(tmp_path / "items.dcm", 300_000)
    assert (tmp_path / "items.dcm").stat().st_size < 64 * 1024
    err = _bounded(lambda: read_header(bomb), peak_bytes=8 * MB)
    assert "items" in str(err) and "MEDMM_MAX_HEADER_ITEMS" in str(err)
    _bounded(lambda: load(bomb), peak_bytes=8 * MB)
    ok = _deflated_item_bomb(tmp_path / "few.dcm", 1000)  # a real header's sequences still read
    assert read_header(ok).rows == 128

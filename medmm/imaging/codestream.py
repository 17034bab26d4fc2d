"""Decoded size is a budget: what a compressed file *will* expand to is checked before anything expands.

A header's Rows × Columns × Frames is checked against the pixel budget in :mod:`medmm.imaging.dicom`,
but a decoder allocates what the *codestream* declares, and pydicom inflates a Deflated Explicit VR
Little Endian file whole before it reads one element. So a 1 KB JPEG 2000 codestream declaring
16000² under a 64² header, or a 1 MB deflated file that inflates to gigabytes, passed that check and
took the host down (issue 20, N4). This module reads only what the compressed data *declares*:

- Deflated Explicit VR (1.2.840.10008.1.2.1.99): the data set is inflated in chunks, counted and
  thrown away, and refused as soon as it passes the declared pixel bytes plus a header allowance
  (``MEDMM_MAX_HEADER_BYTES``, 64 MiB) — before pydicom inflates it whole; the sequence items it holds
  are counted on the way and refused past ``MEDMM_MAX_HEADER_ITEMS`` (200,000): an empty item is 16
  bytes inflated but a whole pydicom Dataset once read, so 6 MB of them (15 KB deflated) took 18 s and
  300 MB, and the byte allowance alone let ~3 GB through;
- JPEG (baseline, extended, lossless) and JPEG-LS: the SOF marker's lines × samples per line ×
  components, found by walking marker segments from SOI (no entropy-coded data is read);
- JPEG 2000 and HTJ2K: the SIZ marker (Xsiz − XOsiz, Ysiz − YOsiz, Csiz), in a raw codestream or
  inside a JP2 ``jp2c`` box;
- RLE: the segment count of each frame's header and every segment's decoded length, counted from
  its run headers without expanding it (a 2-byte run expands to 128 bytes).

Each frame's declared size must be no larger than what the header declares for one frame (which the
pixel budget already bounds), or the file is refused with :class:`~medmm.errors.DecodeError` (the
stream contradicts its header); an inflated size or an RLE segment past its allowance raises
:class:`~medmm.errors.PixelBudgetError`.
Written by hand because no library exposes "declared size without decoding" for these formats
(pydicom's ``get_*_parameters`` helpers cover JPEG/J2K partially and raise on corrupt input).
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import Iterator

from medmm.errors import DecodeError, DicomReadError, InputError, PixelBudgetError

DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",  # JPEG-LS lossless / near-lossless
})
J2K_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",  # HTJ2K
})
RLE = "1.2.840.10008.1.2.5"
DEFAULT_MAX_HEADER_BYTES = 64 << 20
DEFAULT_MAX_HEADER_ITEMS = 200_000  # an enhanced 5,000-frame MR holds ~50,000 (functional groups)
_ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000) little endian: every sequence item starts with it
_CHUNK = 1 << 16
# SOF markers: C0-C3, C5-C7, C9-CB, CD-CF (ITU T.81) and SOF55 F7 (JPEG-LS, ITU T.87)
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length


def max_header_bytes() -> int:
    """The allowance for everything in a data set that is not pixel data (``MEDMM_MAX_HEADER_BYTES``)."""
    env = os.environ.get("MEDMM_MAX_HEADER_BYTES")
    if not env:
        return DEFAULT_MAX_HEADER_BYTES
    try:
        return int(float(env))
    except ValueError as exc:
        raise InputError(f"MEDMM_MAX_HEADER_BYTES={env!r} is not a number; set it to e.g. 268435456") from exc


def max_header_items() -> int:
    """How many sequence items a deflated data set may hold (``MEDMM_MAX_HEADER_ITEMS``)."""
    env = os.environ.get("MEDMM_MAX_HEADER_ITEMS")
    if not env:
        return DEFAULT_MAX_HEADER_ITEMS
    try:
        return int(float(env))
    except ValueError as exc:
        raise InputError(f"MEDMM_MAX_HEADER_ITEMS={env!r} is not a number; set it to e.g. 1000000") from exc


@dataclass(frozen=True)
class Declared:
    """What one frame's codestream says it decodes to."""

    rows: int
    cols: int
    samples: int

    @property
    def size(self) -> int:
        return self.rows * self.cols * self.samples


# ------------------------------------------------------------------ Deflated Explicit VR Little Endian
def _meta_end(fh: BytesIO | object, path: str) -> tuple[int, str | None]:
    """The file offset where the data set starts (after preamble and file meta) and the transfer syntax."""
    fh.seek(128)  # type: ignore[attr-defined]
    if fh.read(4) != b"DICM":  # type: ignore[attr-defined]
        return 0, None
    pos, ts = 132, None
    while True:
        head = fh.read(8)  # type: ignore[attr-defined]
        if len(head) < 8:
            return pos, ts
        group, elem = struct.unpack("<HH", head[:4])
        if group != 0x0002:
            return pos, ts
        vr = head[4:6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"):
            more = fh.read(4)  # type: ignore[attr-defined]
            if len(more) < 4:
                return pos, ts
            (length,), header = struct.unpack("<I", more), 12
        else:
            (length,), header = struct.unpack("<H", head[6:8]), 8
        if length == 0xFFFFFFFF:
            raise DicomReadError(f"{path}: file meta element of undefined length; the file meta is corrupt")
        value = fh.read(length) if elem == 0x0010 and length <= 256 else None  # type: ignore[attr-defined]
        if value is not None:
            ts = value.decode("ascii", "replace").strip(" \x00")
        else:
            fh.seek(length, 1)  # type: ignore[attr-defined]
        pos += header + length


def _declared_pixel_bytes(prefix: bytes) -> int | None:
    """Rows × Columns × Frames × Samples × bytes from the start of an inflated data set; None if unreadable."""
    import warnings

    from pydicom.filereader import read_dataset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_dataset(BytesIO(prefix), False, True, stop_when=lambda tag, vr, length: tag > 0x00290000,
                              defer_size=4096)
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.get("BitsAllocated") or 0)
    except Exception:  # a prefix cut inside an element, or a corrupt value: the allowance alone applies
        return None
    return max(rows, 0) * max(cols, 0) * max(frames, 1) * max(samples, 1) * max((bits + 7) // 8, 0)


def check_inflated_size(path: str, max_voxels: int | None = None, header_bytes: int | None = None) -> int:
    """For a Deflated Explicit VR Little Endian file, the inflated size of its data set, refused with
    :class:`PixelBudgetError` once it passes the pixel data the header declares (within the pixel budget)
    plus ``header_bytes`` (default ``MEDMM_MAX_HEADER_BYTES``). Returns 0 for any other file.
    Memory stays at one chunk: nothing inflated is kept beyond the first chunks read for the header."""
    from medmm.imaging.dicom import max_voxels as voxel_budget

    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    with fh:
        start, ts = _meta_end(fh, path)
        if ts != DEFLATED:
            return 0
        allowance = header_bytes if header_bytes is not None else max_header_bytes()
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        fh.seek(start)
        prefix = bytearray()
        total, limit = 0, None
        items, max_items, tail = 0, max_header_items(), b""
        while True:
            chunk = fh.read(_CHUNK)
            data = inflater.unconsumed_tail + chunk if inflater.unconsumed_tail else chunk
            if not data:
                break
            while data:
                try:
                    out = inflater.decompress(data, _CHUNK)
                except zlib.error as exc:
                    raise DicomReadError(f"{path}: the deflated data set cannot be inflated (corrupt stream)") from exc
                total += len(out)
                joined = tail + out  # an item tag cut between two chunks is counted once
                items += joined.count(_ITEM_TAG)
                tail = joined[-3:]
                if items > max_items:
                    raise PixelBudgetError(
                        f"{path}: the deflated data set holds more than {max_items:,} sequence items (a "
                        "decompression bomb: each item is a few bytes inflated but a whole data set once read); "
                        "refused before reading it. If the file is right, raise MEDMM_MAX_HEADER_ITEMS."
                    )
                if limit is None:
                    prefix += out
                    if len(prefix) >= _CHUNK * 4 or inflater.eof:
                        pixels = _declared_pixel_bytes(bytes(prefix))
                        budget = voxel_budget(max_voxels) * 8  # at most 8 bytes a sample (float64)
                        limit = min(pixels if pixels is not None else 0, budget) + allowance
                        prefix = bytearray()
                if limit is not None and total > limit:
                    raise PixelBudgetError(
                        f"{path}: the deflated data set inflates to more than {limit:,} bytes, past the pixel data its "
                        f"header declares plus the {allowance:,}-byte header allowance (a decompression bomb?); "
                        "refused before inflating it. If the file is right, raise MEDMM_MAX_HEADER_BYTES or the "
                        "pixel budget (MEDMM_MAX_VOXELS)."
                    )
                data = inflater.unconsumed_tail
                if inflater.eof or not out:
                    break
            if inflater.eof or not chunk:
                break
        if limit is None:  # a data set shorter than the first chunks: small by construction
            return total
    return total


# ------------------------------------------------------------------ encapsulated frames
def _items(buffer: bytes) -> Iterator[bytes]:
    """The items of encapsulated Pixel Data (Basic Offset Table first), up to the sequence delimiter."""
    pos, n = 0, len(buffer)
    while pos + 8 <= n:
        tag, length = struct.unpack_from("<II", buffer, pos)
        tag = ((tag & 0xFFFF) << 16) | (tag >> 16)
        if tag == 0xFFFEE0DD:
            return
        if tag != 0xFFFEE000 or length == 0xFFFFFFFF:
            raise DecodeError("encapsulated pixel data has an item that is not a fragment (corrupt stream)")
        yield buffer[pos + 8: pos + 8 + length]
        pos += 8 + length


def _jpeg_declared(frag: bytes) -> Declared | None:
    """SOF of a JPEG / JPEG-LS codestream starting with SOI; None if the fragment does not start one."""
    if frag[:2] != b"\xff\xd8":
        return None
    pos, n = 2, len(frag)
    while pos + 4 <= n:
        if frag[pos] != 0xFF:
            raise DecodeError("JPEG codestream: a marker was expected before the image (corrupt stream)")
        marker = frag[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", frag, pos + 2)
        if marker in _SOF:
            if pos + 10 > n:
                break
            lines, per_line = struct.unpack_from(">HH", frag, pos + 5)
            if lines == 0:
                raise DecodeError("JPEG codestream declares its height later (DNL marker); not decoded")
            return Declared(lines, per_line, frag[pos + 9])
        if marker in (0xDA, 0xD9):  # scan or end before any frame header
            break
        pos += 2 + length
    raise DecodeError("JPEG codestream without a frame header (SOF) before its data (corrupt stream)")


def _j2k_declared(frag: bytes) -> Declared | None:
    """SIZ of a JPEG 2000 / HTJ2K codestream (raw, or in a JP2 ``jp2c`` box); None if none starts here."""
    start = 0
    if frag[4:8] == b"jP  ":  # JP2 file format: walk the boxes to the contiguous codestream
        pos, n = 0, len(frag)
        start = -1
        while pos + 8 <= n:
            (lbox,), tbox = struct.unpack_from(">I", frag, pos), frag[pos + 4: pos + 8]
            header = 8
            if lbox == 1:
                if pos + 16 > n:
                    break
                (lbox,), header = struct.unpack_from(">Q", frag, pos + 8), 16
            if tbox == b"jp2c":
                start = pos + header
                break
            if lbox == 0 or lbox < header:
                break
            pos += lbox
        if start < 0:
            raise DecodeError("JP2 file without a codestream box (corrupt stream)")
    if frag[start: start + 4] != b"\xff\x4f\xff\x51":
        return None
    if start + 40 > len(frag):
        raise DecodeError("JPEG 2000 codestream cut inside its SIZ marker (corrupt stream)")
    xsiz, ysiz, xo, yo = struct.unpack_from(">IIII", frag, start + 8)
    (csiz,) = struct.unpack_from(">H", frag, start + 40)
    if xsiz <= xo or ysiz <= yo:
        raise DecodeError("JPEG 2000 codestream declares an empty image (corrupt stream)")
    return Declared(ysiz - yo, xsiz - xo, csiz)


def _rle_segment_length(seg: bytes, stop: int) -> int:
    """Decoded length of one RLE segment (PackBits, PS3.5 G.3.1), counted without expanding it;
    stops counting past ``stop``."""
    pos, n, out = 0, len(seg), 0
    while pos < n and out <= stop:
        h = seg[pos]
        if h < 128:
            out += h + 1
            pos += h + 2
        elif h > 128:
            out += 257 - h
            pos += 2
        else:
            pos += 1
    return out


def _rle_check(frag: bytes, rows: int, cols: int, samples: int, bits: int, what: str) -> None:
    if len(frag) < 64:
        raise DecodeError(f"{what}: RLE frame shorter than its 64-byte header (corrupt stream)")
    header = struct.unpack_from("<16I", frag, 0)
    n_seg = header[0]
    expected_seg = samples * max((bits + 7) // 8, 1)
    if n_seg != expected_seg:
        raise DecodeError(f"{what}: RLE frame has {n_seg} segments, the header's samples and bits need {expected_seg}")
    offsets = list(header[1: 1 + n_seg]) + [len(frag)]
    seg_len = rows * cols
    for k in range(n_seg):
        a, b = offsets[k], offsets[k + 1]
        if not 64 <= a <= b <= len(frag):
            raise DecodeError(f"{what}: RLE segment offsets out of order (corrupt stream)")
        if (b - a) * 128 <= seg_len * 2:  # cannot expand past twice one segment: no need to count
            continue
        if _rle_segment_length(frag[a:b], seg_len * 2) > seg_len * 2:
            raise PixelBudgetError(f"{what}: an RLE segment expands past twice the {seg_len:,} bytes the header "
                                   "declares for it (a decompression bomb?); refused before decoding")


def check_codestreams(pixel_data: bytes, transfer_syntax: str | None, rows: int, cols: int, samples: int,
                      bits_allocated: int, what: str) -> int:
    """Check every frame codestream in encapsulated ``pixel_data`` before decoding: its declared rows ×
    columns × components must not exceed one frame of the header (rows × cols × samples), which the
    pixel budget bounds), or :class:`DecodeError` names the frame (a corrupt or hostile stream: what a
    decoder would allocate is not what the budget allowed). Returns how many codestreams were checked (0 for native data)."""
    ts = str(transfer_syntax or "")
    if ts not in JPEG_SYNTAXES and ts not in J2K_SYNTAXES and ts != RLE:
        return 0
    limit = max(rows, 0) * max(cols, 0) * max(samples, 1)
    checked = 0
    try:
        fragments = _items(pixel_data)
        next(fragments, None)  # the Basic Offset Table
        for index, frag in enumerate(fragments):
            if ts == RLE:
                _rle_check(frag, rows, cols, samples, bits_allocated, what)
                checked += 1
                continue
            declared = _jpeg_declared(frag) if ts in JPEG_SYNTAXES else _j2k_declared(frag)
            if declared is None:
                if index == 0:
                    raise DecodeError(f"{what}: the first fragment does not start a "
                                      f"{'JPEG' if ts in JPEG_SYNTAXES else 'JPEG 2000'} codestream (corrupt stream)")
                continue  # a continuation fragment of a frame
            checked += 1
            if declared.size > limit:
                raise DecodeError(
                    f"{what}: frame codestream {checked} declares {declared.rows:,} × {declared.cols:,} × "
                    f"{declared.samples} samples, more than the header's {rows:,} × {cols:,} × {samples} (a "
                    "decompression bomb, or a corrupt file); refused before decoding"
                )
    except (PixelBudgetError, DecodeError) as exc:
        if str(exc).startswith(what):
            raise
        raise type(exc)(f"{what}: {exc}") from exc
    except struct.error as exc:
        raise DecodeError(f"{what}: encapsulated pixel data is cut short (corrupt stream)") from exc
    return checked

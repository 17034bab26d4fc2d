"""Metadata inside compressed pixel data, removed without re-encoding the image.

A JPEG frame can carry COM (comment) and APPn segments (EXIF with a camera owner's name, vendor
blocks with the patient's name, a JFIF thumbnail that is itself an image), and a JPEG 2000
codestream COM segments and, in a JP2 wrapper, XML and UUID boxes — all outside the image data that
DICOM's attributes describe (issue 20, N10: a COM segment passed de-identification untouched).
This module walks each frame's marker segments and drops those, byte for byte, leaving every
entropy-coded byte as it was, so the decoded pixels are identical:

- JPEG / JPEG-LS: COM (FFFE) and APP0–APP15 (FFE0–FFEF) segments anywhere in the stream are removed,
  except an APP14 "Adobe" segment of the standard 12-byte form (it holds only the colour transform
  flag that decoders need, no text);
- JPEG 2000 / HTJ2K: COM (FF64) segments in the main and tile-part headers are removed (a tile-part's
  Psot length is corrected, and a TLM index, which would then be wrong, is removed); a JP2 file is
  reduced to its contiguous codestream (the ``jp2c`` box), dropping every other box.

Pixel *values* are never edited: text burned into the image itself is refused by
:func:`medmm.deid.core.burned_in_reason`, not painted over. Hand-written because pydicom, pylibjpeg
and gdcm decode these streams but none removes segments from one without re-encoding.
"""

from __future__ import annotations

import re
import struct

from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames

from medmm.errors import DecodeError
from medmm.imaging.codestream import J2K_SYNTAXES, JPEG_SYNTAXES

_MARKER = re.compile(rb"\xff[\xc0-\xcf\xd8-\xfe]")  # a marker inside entropy-coded data (not RSTn, not stuffing)
_APPN = frozenset(range(0xE0, 0xF0))
_COM = 0xFE
_ADOBE = b"Adobe"


def strip_jpeg(frame: bytes) -> tuple[bytes, int]:
    """``frame`` without COM/APPn segments (APP14 Adobe kept), and how many were removed."""
    if frame[:2] != b"\xff\xd8":
        raise DecodeError("a JPEG frame does not start with SOI; its metadata cannot be checked")
    out = [frame[:2]]
    pos, n, removed = 2, len(frame), 0
    while pos < n:
        if frame[pos] != 0xFF or pos + 1 >= n:
            raise DecodeError("a JPEG frame has bytes outside any marker segment (corrupt stream)")
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            out.append(b"\xff")
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            out.append(frame[pos:])
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            out.append(frame[pos: pos + 2])
            pos += 2
            continue
        if pos + 4 > n:
            raise DecodeError("a JPEG frame is cut inside a marker segment (corrupt stream)")
        (length,) = struct.unpack_from(">H", frame, pos + 2)
        end = pos + 2 + length
        if end > n:
            raise DecodeError("a JPEG marker segment runs past the end of its frame (corrupt stream)")
        adobe = marker == 0xEE and length == 14 and frame[pos + 4: pos + 9] == _ADOBE
        if (marker == _COM or marker in _APPN) and not adobe:
            removed += 1
        else:
            out.append(frame[pos:end])
        pos = end
        if marker == 0xDA:  # SOS: entropy-coded data up to the next marker that is not RSTn or stuffing
            m = _MARKER.search(frame, pos)
            stop = m.start() if m else n
            out.append(frame[pos:stop])
            pos = stop
    return b"".join(out), removed


def _jp2_codestream(frame: bytes) -> bytes:
    pos, n = 0, len(frame)
    while pos + 8 <= n:
        (lbox,), tbox = struct.unpack_from(">I", frame, pos), frame[pos + 4: pos + 8]
        header = 8
        if lbox == 1:
            (lbox,), header = struct.unpack_from(">Q", frame, pos + 8), 16
        if tbox == b"jp2c":
            return frame[pos + header: pos + lbox if lbox else n]
        if lbox < header:
            break
        pos += lbox
    raise DecodeError("a JP2 frame without a codestream box (corrupt stream)")


def strip_j2k(frame: bytes) -> tuple[bytes, int]:
    """``frame`` as a bare codestream without COM segments, and how many segments/boxes were removed."""
    removed = 0
    if frame[4:8] == b"jP  ":
        frame = _jp2_codestream(frame)
        removed += 1
    if frame[:2] != b"\xff\x4f":
        raise DecodeError("a JPEG 2000 frame does not start with SOC; its metadata cannot be checked")
    main: list[bytes] = [frame[:2]]
    tiles: list[bytes] = []
    pos, n, tile_com = 2, len(frame), False
    while pos + 4 <= n:  # main header
        marker = frame[pos + 1]
        if frame[pos] != 0xFF:
            raise DecodeError("a JPEG 2000 main header has bytes outside a marker segment (corrupt stream)")
        if marker == 0x90:  # first SOT
            break
        (length,) = struct.unpack_from(">H", frame, pos + 2)
        if marker == 0x64:
            removed += 1
        else:
            main.append(frame[pos: pos + 2 + length])
        pos += 2 + length
    while pos + 12 <= n and frame[pos: pos + 2] == b"\xff\x90":  # tile-parts
        (psot,) = struct.unpack_from(">I", frame, pos + 6)
        end = pos + psot if psot else n
        if psot and (psot < 14 or end > n):
            raise DecodeError("a JPEG 2000 tile-part length is out of range (corrupt stream)")
        sot = bytearray(frame[pos: pos + 12])
        parts, p, cut = [], pos + 12, 0
        while p + 2 <= end and frame[p: p + 2] != b"\xff\x93":  # tile-part header up to SOD
            (length,) = struct.unpack_from(">H", frame, p + 2)
            if frame[p + 1] == 0x64:
                cut += 2 + length
            else:
                parts.append(frame[p: p + 2 + length])
            p += 2 + length
        if cut:
            removed += 1
            tile_com = True
            if psot:
                struct.pack_into(">I", sot, 6, psot - cut)
        tiles.append(bytes(sot) + b"".join(parts) + frame[p:end])
        pos = end
    tiles.append(frame[pos:])  # EOC
    if tile_com:  # tile-part lengths changed: an index of them would now be wrong
        main = [seg for seg in main if seg[:2] != b"\xff\x55"]
    return b"".join(main) + b"".join(tiles), removed


def strip_codestream_metadata(ds: Dataset, transfer_syntax: str | None) -> int:
    """Remove comment/application segments from every frame of ``ds``'s encapsulated pixel data (in place);
    returns how many were removed (0 leaves the pixel data untouched)."""
    ts = str(transfer_syntax or "")
    if "PixelData" not in ds or (ts not in JPEG_SYNTAXES and ts not in J2K_SYNTAXES):
        return 0
    n_frames = int(ds.get("NumberOfFrames") or 1)
    try:
        frames = list(generate_frames(ds.PixelData, number_of_frames=n_frames))
    except Exception as exc:  # pydicom raises ValueError/KeyError on broken item structure
        raise DecodeError(f"the encapsulated pixel data cannot be split into frames ({type(exc).__name__}); "
                          "its metadata cannot be checked, so the file is not de-identified") from exc
    strip = strip_jpeg if ts in JPEG_SYNTAXES else strip_j2k
    cleaned, removed = [], 0
    for frame in frames:
        new, k = strip(frame)
        cleaned.append(new)
        removed += k
    if removed:
        ds.PixelData = encapsulate(cleaned, has_bot=len(cleaned) > 1)
        elem = ds["PixelData"]
        elem.VR, elem.is_undefined_length = "OB", True
        for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if keyword in ds:
                del ds[keyword]  # offsets of the old fragments
    return removed

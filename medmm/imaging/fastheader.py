"""A fast, read-only scanner for the top-level header of ordinary DICOM files.

Why this exists (pydicom is the reference reader everywhere else in medmm): a header index
of a hospital archive reads millions of files, and ``pydicom.dcmread`` tops out near 3,000
small files per second per core because it builds a Python object for every element. This
scanner walks the bytes of Explicit/Implicit VR Little Endian files, keeps only the
elements medmm's header record needs, skips sequences without decoding them, and stops at
Pixel Data (recording its offset). Anything it is not sure about — another transfer syntax,
a functional-group or LUT sequence, a malformed length — returns ``None`` and the caller
falls back to pydicom, so the fast path can never be the one that decides an error.
``tests/test_fastheader.py`` checks that both paths give identical header records on every
file of pydicom's and pydicom-data's corpora.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import pydicom.charset
import pydicom.datadict

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
ASCII_VRS = frozenset({"CS", "DS", "IS", "UI", "DA", "TM", "DT", "AS", "AE"})
TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UC", "UT", "PN"})
BINARY_VRS = {"US": ("H", 2), "SS": ("h", 2), "UL": ("I", 4), "SL": ("i", 4), "FL": ("f", 4), "FD": ("d", 8)}
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD

# Sequences whose content medmm reads: a file holding one goes through pydicom.
_NEEDS_PYDICOM = frozenset(
    int(pydicom.datadict.tag_for_keyword(k))  # type: ignore[arg-type]
    for k in (
        "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "VOILUTSequence",
        "ModalityLUTSequence", "RedPaletteColorLookupTableDescriptor", "FloatPixelData", "DoubleFloatPixelData",
    )
)
# Elements converted by value (everything else is skipped by length).
WANTED_KEYWORDS = (
    "SpecificCharacterSet", "SOPClassUID", "Modality", "Manufacturer", "SeriesDescription", "BodyPartExamined",
    "SliceThickness", "SpacingBetweenSlices", "GantryDetectorTilt", "ViewPosition", "PatientSex",
    "StudyInstanceUID", "SeriesInstanceUID", "AcquisitionNumber", "InstanceNumber", "ImagePositionPatient",
    "ImageOrientationPatient", "Laterality", "ImageLaterality", "SamplesPerPixel", "PhotometricInterpretation",
    "NumberOfFrames", "Rows", "Columns", "PixelSpacing", "ImagerPixelSpacing", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction",
    "RescaleIntercept", "RescaleSlope", "PresentationLUTShape", "GridFrameOffsetVector",
)
WANTED: dict[int, str] = {
    int(pydicom.datadict.tag_for_keyword(k)): k for k in WANTED_KEYWORDS  # type: ignore[arg-type]
}
KEYWORD_TAG: dict[str, int] = {k: t for t, k in WANTED.items()}


class _Unsure(Exception):
    """The scanner met something it does not handle; pydicom will."""


def convert(vr: str, value: bytes, order: str = "<", encodings: list[str] | None = None) -> Any:
    """Convert raw element bytes of a simple VR; raises KeyError for VRs it does not handle."""
    if vr in ASCII_VRS:
        text = value.decode("latin-1").strip(" \x00")
        if not text:
            return None
        parts = [p.strip(" \x00") for p in text.split("\\")]
        return parts[0] if len(parts) == 1 else parts
    if vr in BINARY_VRS:
        fmt, size = BINARY_VRS[vr]
        n = len(value) // size
        if n == 0:
            return None
        vals = struct.unpack(f"{order}{fmt * n}", value[: n * size])
        return vals[0] if n == 1 else list(vals)
    if vr in TEXT_VRS and vr != "PN":
        text = pydicom.charset.decode_bytes(value, encodings or ["iso8859"], {0x5C} if vr in ("LO", "SH", "UC") else set())
        text = text.strip(" \x00")
        if not text:
            return None
        if vr in ("LO", "SH", "UC"):
            parts = [p.strip(" \x00") for p in text.split("\\")]
            return parts[0] if len(parts) == 1 else parts
        return text
    raise KeyError(vr)


class RawSource:
    """Top-level header values of one file, as scanned from its bytes."""

    def __init__(self, path: str, transfer_syntax: str, values: dict[int, tuple[str, bytes]],
                 pixel_tell: int | None, pixel_length: int | None, end: int, size: int, present: set[int]) -> None:
        self.path = path
        self.transfer_syntax = transfer_syntax
        self._values = values
        self._cache: dict[str, Any] = {}
        self._present = present
        self.pixel_tell = pixel_tell
        self.pixel_length = pixel_length
        self.end = end
        self.size = size
        cs = values.get(SPECIFIC_CHARACTER_SET)
        terms = convert("CS", cs[1]) if cs else None
        try:
            self._encodings = pydicom.charset.convert_encodings(
                [terms] if isinstance(terms, str) else (terms or ["ISO_IR 6"])
            )
        except (ValueError, LookupError, TypeError):  # a corrupt Specific Character Set (e.g. a NUL inside)
            self._encodings = pydicom.charset.convert_encodings(["ISO_IR 6"])

    def get(self, keyword: str) -> Any:
        if keyword in self._cache:
            return self._cache[keyword]
        tag = KEYWORD_TAG.get(keyword)
        item = self._values.get(tag) if tag is not None else None
        value = None if item is None else convert(item[0], item[1], "<", self._encodings)
        self._cache[keyword] = value
        return value

    def has(self, tag: int) -> bool:
        return tag in self._present

    @property
    def has_pixels(self) -> bool:
        return self.pixel_tell is not None

    @property
    def truncated(self) -> bool:
        """The file ends inside an element (pydicom reads such files silently)."""
        return self.end > self.size or 0 < self.size - self.end < 8


class _Reader:
    def __init__(self, fh: Any, size: int, chunk: int = 8192) -> None:
        self.fh = fh
        self.size = size
        self.buf = fh.read(chunk)
        self.chunk = chunk

    def need(self, end: int) -> None:
        """Make sure bytes [0, end) are buffered (raises _Unsure past the end of file)."""
        if end <= len(self.buf):
            return
        if end > self.size:
            raise _Unsure("element runs past the end of the file")
        more = max(end - len(self.buf), self.chunk)
        self.buf += self.fh.read(more)
        if end > len(self.buf):
            raise _Unsure("short read")


def _skip_items(r: _Reader, pos: int, implicit: bool, depth: int) -> int:
    """Skip the items of an undefined-length sequence starting at ``pos``; return the end."""
    if depth > 16:
        raise _Unsure("sequences nested too deeply")
    while True:
        r.need(pos + 8)
        group, elem, length = struct.unpack_from("<HHI", r.buf, pos)
        tag = (group << 16) | elem
        pos += 8
        if tag == SEQ_END:
            return pos
        if tag != ITEM:
            raise _Unsure("unexpected element inside a sequence")
        if length != UNDEFINED:
            pos += length
            continue
        pos = _walk(r, pos, implicit, depth + 1, values=None, present=None, stop_at=ITEM_END)


def _walk(r: _Reader, pos: int, implicit: bool, depth: int, values: dict[int, tuple[str, bytes]] | None,
          present: set[int] | None, stop_at: int | None) -> int:
    """Walk data elements from ``pos``. At top level (``values`` given) collect wanted values and
    stop at Pixel Data; inside items stop at the item delimiter. Returns the end position."""
    while True:
        if stop_at is None and pos >= r.size:
            return pos
        r.need(pos + 8)
        group, elem = struct.unpack_from("<HH", r.buf, pos)
        tag = (group << 16) | elem
        if tag == stop_at:
            return pos + 8
        if implicit or group == 0xFFFE:
            vr = None
            (length,) = struct.unpack_from("<I", r.buf, pos + 4)
            header = 8
        else:
            vr = r.buf[pos + 4: pos + 6].decode("latin-1")
            if vr in _LONG_VRS:
                r.need(pos + 12)
                (length,) = struct.unpack_from("<I", r.buf, pos + 8)
                header = 12
            elif len(vr) == 2 and vr.isalpha() and vr.isupper():
                (length,) = struct.unpack_from("<H", r.buf, pos + 6)
                header = 8
            else:
                raise _Unsure("invalid VR")
        value_pos = pos + header
        if values is not None:
            if tag in _NEEDS_PYDICOM:
                raise _Unsure("file holds sequences medmm reads through pydicom")
            present.add(tag)  # type: ignore[union-attr]
            if tag == PIXEL_DATA:
                if length == UNDEFINED:
                    raise _Unsure("encapsulated pixel data in a native transfer syntax")
                values[-1] = ("", struct.pack("<QQ", value_pos, length))
                if value_pos + length > r.size:
                    return value_pos + length  # truncated: nothing more to walk
                # elements after Pixel Data (padding, private tags) are walked to detect a cut file
            if tag in WANTED:
                if length == UNDEFINED:
                    raise _Unsure("undefined length on a simple element")
                r.need(value_pos + length)
                if vr is None:
                    vr = pydicom.datadict.dictionary_VR(tag)
                values[tag] = (vr, bytes(r.buf[value_pos: value_pos + length]))
        if length == UNDEFINED:
            # SQ (or UN holding a sequence, encoded as implicit VR little endian)
            pos = _skip_items(r, value_pos, implicit or vr == "UN", depth)
        else:
            pos = value_pos + length
            if stop_at is not None:
                r.need(pos)


def scan(path: str) -> RawSource | None:
    """Scan one file's top-level header, or return None when pydicom should read it."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            r = _Reader(fh, size)
            if len(r.buf) < 144 or r.buf[128:132] != b"DICM":
                return None
            pos = 132
            transfer_syntax = None
            while True:  # File Meta Information: always explicit VR little endian
                r.need(pos + 8)
                group, elem = struct.unpack_from("<HH", r.buf, pos)
                if group != 0x0002:
                    break
                vr = r.buf[pos + 4: pos + 6].decode("latin-1")
                if vr in _LONG_VRS:
                    r.need(pos + 12)
                    (length,) = struct.unpack_from("<I", r.buf, pos + 8)
                    header = 12
                else:
                    (length,) = struct.unpack_from("<H", r.buf, pos + 6)
                    header = 8
                if length == UNDEFINED:
                    return None
                if elem == 0x0010:
                    r.need(pos + header + length)
                    transfer_syntax = bytes(r.buf[pos + header: pos + header + length]).decode("latin-1").strip(" \x00")
                pos += header + length
            if transfer_syntax not in (EXPLICIT_LE, IMPLICIT_LE):
                return None
            values: dict[int, tuple[str, bytes]] = {}
            present: set[int] = set()
            end = _walk(r, pos, transfer_syntax == IMPLICIT_LE, 0, values, present, None)
    except (_Unsure, OSError, struct.error, UnicodeDecodeError, KeyError):
        return None
    pixel = values.pop(-1, None)
    pixel_tell, pixel_length = struct.unpack("<QQ", pixel[1]) if pixel else (None, None)
    if not values:
        return None
    return RawSource(path, transfer_syntax, values, pixel_tell, pixel_length, end, size, present)

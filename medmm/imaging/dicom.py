"""Reading one DICOM file: sniffing, headers, per-frame geometry, and the pixel pipeline.

The pixel pipeline follows the standard's order (PS3.3 C.11): decode → modality LUT
(Rescale Slope/Intercept per frame, or Modality LUT Sequence) → the VOI options kept for
display (windows, VOI LUT Sequence) → photometric handling (PALETTE COLOR and YBR to RGB at
load; MONOCHROME1 inverted at display, never in the stored values).

Decoding itself is pydicom's (with pylibjpeg/openjpeg and gdcm plugins); medmm adds what
pydicom leaves to the caller: per-frame functional groups of Enhanced CT/MR, per-frame
rescale, a pixel budget checked before allocation, and clear errors.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medmm.errors import DecodeError, DicomReadError, InputError, MedmmError, NotDicomError, PixelBudgetError
from medmm.imaging import codestream, fastheader
from medmm.imaging.volume import HeaderFacts, VoiLut, Window

PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float, Double Float
NATIVE_SYNTAXES = {str(ImplicitVRLittleEndian), str(ExplicitVRLittleEndian), str(ExplicitVRBigEndian)}
DEFAULT_MAX_VOXELS = 1_000_000_000  # 4 GB of float32; override with MEDMM_MAX_VOXELS
DEFAULT_MAX_FRAMES = 50_000  # frames one file may declare; override with MEDMM_MAX_FRAMES


def _limit(override: int | None, env_name: str, default: int, example: str) -> int:
    if override is not None:
        return int(override)
    env = os.environ.get(env_name)
    if env:
        try:
            return int(float(env))
        except ValueError as exc:
            raise InputError(f"{env_name}={env!r} is not a number; set it to e.g. {example}") from exc
    return default


def max_voxels(override: int | None = None) -> int:
    """The pixel budget: the most voxels a single load may allocate."""
    return _limit(override, "MEDMM_MAX_VOXELS", DEFAULT_MAX_VOXELS, "2e9")


def max_frames(override: int | None = None) -> int:
    """The frame budget: the most frames one file may declare (each frame costs a header record)."""
    return _limit(override, "MEDMM_MAX_FRAMES", DEFAULT_MAX_FRAMES, "200000")


def check_budget(n_voxels: int, what: str, budget: int | None = None) -> None:
    """Refuse, before allocating, a load larger than the pixel budget."""
    limit = max_voxels(budget)
    if n_voxels > limit:
        raise PixelBudgetError(
            f"{what}: decoding needs {n_voxels:,} voxels ({n_voxels * 4 / 2**30:.1f} GiB as float32), "
            f"over the pixel budget of {limit:,}. If the header is right, raise the budget with "
            f"--max-voxels or MEDMM_MAX_VOXELS; a header declaring a huge image is often corrupt."
        )


def check_declared_size(n_frames: int, rows: int, cols: int, samples: int, what: str,
                        budget: int | None = None, frame_budget: int | None = None) -> None:
    """Refuse a header whose declared size is over the frame or pixel budget, before anything
    per frame is built (a 6 KB file can declare a million frames)."""
    limit = max_frames(frame_budget)
    if n_frames > limit:
        raise PixelBudgetError(
            f"{what}: Number of Frames (0028,0008) declares {n_frames:,} frames, over the frame budget of "
            f"{limit:,}. A header declaring that many frames is usually corrupt; if it is right, raise the "
            f"budget with MEDMM_MAX_FRAMES."
        )
    check_budget(n_frames * max(rows, 0) * max(cols, 0) * max(samples, 1), what, budget)


# --------------------------------------------------------------------------------------
# Sniffing and reading
# --------------------------------------------------------------------------------------
def sniff(path: str) -> bool:
    """Check that ``path`` is a readable, non-empty file that looks like DICOM.

    Returns True when the file has the 'DICM' preamble, False when it has no preamble but its
    first element is a plausible group 0002/0008 tag (old ACR-NEMA style files, which pydicom
    reads with ``force=True``). Raises :class:`InputError` / :class:`NotDicomError` otherwise.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, not a file")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
        raise InputError(f"{path}: not a regular file (FIFO, socket or device)")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) >= 8:
        group_le = int.from_bytes(head[0:2], "little")
        group_be = int.from_bytes(head[0:2], "big")
        if group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008):
            return False
    raise NotDicomError(f"{path}: not a DICOM file (no 'DICM' preamble and no DICOM element at the start)")


def read_dataset(path: str, headers_only: bool = False) -> Dataset:
    """Read a DICOM file with pydicom; files without a preamble are read with ``force``.

    ``headers_only`` defers large values (pixel data stays on disk), so a header scan never
    reads pixels. The transfer syntax of files that lack one is set from the encoding pydicom
    detected (native syntaxes only). Raises :class:`MedmmError` subclasses with a clear reason.
    """
    has_preamble = sniff(path)
    if has_preamble:  # a deflated data set is inflated whole by pydicom: its inflated size is checked first
        codestream.check_inflated_size(path)
    kwargs: dict[str, Any] = {"defer_size": 1024} if headers_only else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=not has_preamble, **kwargs)
    except InvalidDicomError as exc:
        raise NotDicomError(f"{path}: not a DICOM file ({exc})") from exc
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise DicomReadError(f"{path}: corrupt DICOM header ({type(exc).__name__}: {_short(exc)})") from exc
    if len(ds) == 0:
        if has_preamble:
            raise DicomReadError(f"{path}: DICOM preamble but no readable data elements (truncated or corrupt file)")
        raise NotDicomError(f"{path}: not a DICOM file (no data elements could be parsed)")
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        _set_transfer_syntax_from_encoding(ds, path)
    return ds


def _set_transfer_syntax_from_encoding(ds: Dataset, path: str) -> None:
    implicit, little = ds.original_encoding
    if implicit is None:
        return
    if implicit:
        ts = ImplicitVRLittleEndian
    else:
        ts = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts


def _short(exc: BaseException, n: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 3] + "..."


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plane:
    """One 2-D image plane: a single-frame file, or one frame of a multi-frame file.

    Positions and orientations are in DICOM patient space (LPS), as stored.
    """

    path: str
    frame: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns) in mm
    rows: int
    cols: int
    samples: int
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int | None = None
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None
    acquisition: str | None = None  # AcquisitionNumber / stack id, for splitting


@dataclass(frozen=True)
class FileHeader:
    """What medmm needs from one file's header, without its pixels (picklable)."""

    path: str
    series_uid: str | None
    study_uid: str | None
    sop_class: str | None
    modality: str | None
    photometric: str | None
    transfer_syntax: str | None
    transfer_syntax_name: str | None
    rows: int
    cols: int
    samples: int
    bits_allocated: int
    n_frames: int
    has_pixels: bool
    truncated: bool
    facts: HeaderFacts
    windows: tuple[Window, ...]
    display_inverted: bool
    planes: tuple[Plane, ...]
    gantry_tilt: float | None
    series_description: str | None = None
    bits_stored: int = 0
    pixel_representation: int = 0
    pixel_offset: int | None = None  # file offset of native, defined-length Pixel Data
    has_modality_lut_sequence: bool = False
    has_voi_lut_sequence: bool = False

    @property
    def multi_frame(self) -> bool:
        return self.n_frames > 1


def _num(value: Any, default: float | None = None) -> float | None:
    if value is None or value == "":
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _int(value: Any, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _vec(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        return None
    return vals


class _DatasetSource:
    """Top-level values of a pydicom dataset, converted straight from its raw elements.

    pydicom's generic conversion path (hooks, DataElement objects, DS/IS validation) costs
    ~0.5 ms per file — most of a header scan. ASCII-only VRs and binary numbers are converted
    by :func:`medmm.imaging.fastheader.convert`; everything else goes through ``Dataset.get``.
    """

    def __init__(self, ds: Dataset, path: str) -> None:
        self.ds = ds
        self.path = path
        little = ds.original_encoding[1]
        self.order = ">" if little is False else "<"
        meta = getattr(ds, "file_meta", None)
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
        self.transfer_syntax = str(ts) if ts else None
        self.shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
        self.per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        self.has_pixels = any(t in ds for t in PIXEL_DATA_TAGS)
        self.truncated = _ends_past_eof(ds, path, self.transfer_syntax)
        self.pixel_tell: int | None = None
        self.pixel_length: int | None = None
        if self.has_pixels:
            raw = ds.get_item(PIXEL_DATA_TAGS[0], keep_deferred=True)
            self.pixel_tell = getattr(raw, "value_tell", None)
            self.pixel_length = getattr(raw, "length", None)

    def has(self, tag: int) -> bool:
        return tag in self.ds

    def get(self, keyword: str) -> Any:
        tag = _TAGS.get(keyword)
        if tag is None:
            tag = _TAGS[keyword] = int(pydicom.datadict.tag_for_keyword(keyword))  # type: ignore[arg-type]
        raw = self.ds.get_item(tag, keep_deferred=True)
        if raw is None:
            return None
        if isinstance(raw, pydicom.dataelem.RawDataElement) and raw.value is not None:
            vr = raw.VR or pydicom.datadict.dictionary_VR(tag)
            if vr in fastheader.ASCII_VRS or vr in fastheader.BINARY_VRS:
                return fastheader.convert(vr, raw.value, self.order)
        return self.ds.get(keyword)


_TAGS: dict[str, int] = {}
MODALITY_LUT_SEQUENCE = 0x00283000
VOI_LUT_SEQUENCE = 0x00283010


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return list(value)
    return [value]


def _spacing(value: Any) -> tuple[float, float] | None:
    """A pixel spacing pair, or None when missing or not positive (e.g. '0.000\\0.000')."""
    vals = _vec(value, 2)
    if vals is None or min(vals) <= 0:
        return None
    return vals  # type: ignore[return-value]


def _str(ds: Any, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _seq_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    if seq is None or len(seq) == 0:
        return None
    return seq[0]


def _functional(groups: list[Dataset | None], macro: str) -> Dataset | None:
    """First item of a functional-group macro, per-frame item first, then shared."""
    for group in groups:
        if group is not None:
            item = _seq_item(group, macro)
            if item is not None:
                return item
    return None


def _windows_from(ds: Any) -> tuple[Window, ...]:
    if ds is None:
        return ()
    centers = _as_list(ds.get("WindowCenter"))
    widths = _as_list(ds.get("WindowWidth"))
    if not centers or not widths:
        return ()
    names = [str(n) for n in _as_list(ds.get("WindowCenterWidthExplanation"))]
    function = str(ds.get("VOILUTFunction") or "LINEAR").upper()
    out = []
    for idx, (c, w) in enumerate(zip(centers, widths)):
        cf, wf = _num(c), _num(w)
        if cf is None or wf is None or wf <= 0:
            continue
        out.append(Window(center=cf, width=wf, name=names[idx] if idx < len(names) else None, function=function))
    return tuple(out)


def voi_luts_from(ds: Dataset) -> tuple[VoiLut, ...]:
    """VOI LUTs of the VOI LUT Sequence (0028,3010), decoded to arrays."""
    out = []
    for item in ds.get("VOILUTSequence") or []:
        try:
            n_entries, first, bits = (int(v) for v in item.LUTDescriptor)
            n_entries = n_entries or 65536
            raw = item.LUTData
            if isinstance(raw, bytes):
                dtype = "<u2" if bits > 8 or len(raw) >= 2 * n_entries else "u1"
                lut = np.frombuffer(raw, dtype=dtype)[:n_entries]
            else:
                lut = np.asarray(raw if isinstance(raw, (list, pydicom.multival.MultiValue)) else [raw])
            if first < 0 and "PixelRepresentation" in ds and int(ds.PixelRepresentation) == 0:
                first &= 0xFFFF
            out.append(VoiLut(first_mapped=int(first), lut=lut.astype(np.float64), name=_str(item, "LUTExplanation")))
        except Exception:  # a malformed LUT is a missing display option, not a load failure
            continue
    return tuple(out)


def _facts(ds: Any, shared: Dataset | None, n_frames: int) -> HeaderFacts:
    laterality = _str(ds, "ImageLaterality") or _str(ds, "Laterality")
    if laterality is None:
        anatomy = _functional([shared], "FrameAnatomySequence")
        if anatomy is not None:
            laterality = _str(anatomy, "FrameLaterality")
    return HeaderFacts(
        modality=_str(ds, "Modality"),
        body_part=_str(ds, "BodyPartExamined"),
        laterality=laterality,
        view_position=_str(ds, "ViewPosition"),
        patient_sex=_str(ds, "PatientSex"),
        n_frames=n_frames,
        manufacturer=_str(ds, "Manufacturer"),
    )


def _ends_past_eof(ds: Dataset, path: str, ts: str | None) -> bool:
    """True when the last element (pixel data or a header element) runs past the end of file.

    pydicom reads a cut file silently; the last raw element's offset + declared length tells
    (fewer than 8 bytes left after it is an element header cut short).
    Offsets of deflated files are in the inflated stream, so they are not checked.
    """
    if ts == DeflatedExplicitVRLittleEndian or len(ds) == 0:
        return False
    try:
        size = os.path.getsize(path)
        raw = ds.get_item(max(ds.keys()), keep_deferred=True)
    except (OSError, KeyError, ValueError):
        return False
    length = getattr(raw, "length", None)
    tell = getattr(raw, "value_tell", None)
    if length is None or tell is None or length == 0xFFFFFFFF:
        return False
    end = tell + length
    # Past the end, or a few stray bytes after the last element: a cut inside the next header.
    return end > size or 0 < size - end < 8


def parse_header(ds: Dataset, path: str, max_voxels: int | None = None) -> FileHeader:
    """Extract medmm's header record (geometry per plane, facts, VOI) from a pydicom dataset."""
    return parse_source(_DatasetSource(ds, path), path, max_voxels=max_voxels)


def parse_source(src: Any, path: str, max_voxels: int | None = None) -> FileHeader:
    """Build the header record from a value source (:class:`_DatasetSource` or
    :class:`medmm.imaging.fastheader.RawSource`: both offer ``get(keyword)``, ``has(tag)``,
    ``transfer_syntax``, ``has_pixels``, ``truncated``, ``pixel_tell``/``pixel_length``).

    The declared size (frames × rows × columns × samples) is checked against the frame and
    pixel budgets (:func:`check_declared_size`) before one record per frame is built."""
    ts = src.transfer_syntax
    rows = _int(src.get("Rows"), 0) or 0
    cols = _int(src.get("Columns"), 0) or 0
    samples = _int(src.get("SamplesPerPixel"), 1) or 1
    bits = _int(src.get("BitsAllocated"), 0) or 0
    has_pixels = src.has_pixels
    raw_frames = src.get("NumberOfFrames")
    n_frames = _int(raw_frames, None) if raw_frames not in (None, "") else 1
    if n_frames is None or n_frames < 1:
        if raw_frames not in (None, "") and has_pixels:
            raise DicomReadError(f"{path}: Number of Frames (0028,0008) is {str(raw_frames)!r}, not a positive integer")
        n_frames = 1
    check_declared_size(n_frames, rows, cols, samples, path, max_voxels)
    truncated = src.truncated
    pixel_offset = None
    if has_pixels and ts in NATIVE_SYNTAXES and src.pixel_tell is not None and src.pixel_length not in (None, 0xFFFFFFFF):
        pixel_offset = int(src.pixel_tell)

    shared = getattr(src, "shared", None)
    per_frame = getattr(src, "per_frame", None)
    photometric = _str(src, "PhotometricInterpretation")
    presentation = (_str(src, "PresentationLUTShape") or "").upper()
    display_inverted = (photometric or "").upper() == "MONOCHROME1" or presentation == "INVERSE"

    top_ipp = _vec(src.get("ImagePositionPatient"), 3)
    top_iop = _vec(src.get("ImageOrientationPatient"), 6)
    top_ps = _spacing(src.get("PixelSpacing")) or _spacing(src.get("ImagerPixelSpacing"))
    top_slope = _num(src.get("RescaleSlope"), 1.0) or 1.0
    top_intercept = _num(src.get("RescaleIntercept"), 0.0) or 0.0
    top_thick = _num(src.get("SliceThickness"))
    top_between = _num(src.get("SpacingBetweenSlices"))
    instance = _int(src.get("InstanceNumber"))
    acquisition = _str(src, "AcquisitionNumber")
    windows = _windows_from(src)

    planes: list[Plane] = []
    if per_frame is not None or shared is not None:
        # Enhanced multi-frame: per-frame functional groups override shared ones.
        for f in range(n_frames):
            pf = per_frame[f] if per_frame is not None and f < len(per_frame) else None
            groups = [pf, shared]
            pos_item = _functional(groups, "PlanePositionSequence")
            ori_item = _functional(groups, "PlaneOrientationSequence")
            meas = _functional(groups, "PixelMeasuresSequence")
            pvt = _functional(groups, "PixelValueTransformationSequence")
            content = _functional(groups, "FrameContentSequence")
            if f == 0 and not windows:
                windows = _windows_from(_functional(groups, "FrameVOILUTSequence"))
            planes.append(
                Plane(
                    path=path,
                    frame=f,
                    position=_vec(pos_item.get("ImagePositionPatient"), 3) if pos_item is not None else top_ipp,
                    orientation=_vec(ori_item.get("ImageOrientationPatient"), 6) if ori_item is not None else top_iop,
                    pixel_spacing=(_spacing(meas.get("PixelSpacing")) if meas is not None else None) or top_ps,
                    rows=rows,
                    cols=cols,
                    samples=samples,
                    slope=(_num(pvt.get("RescaleSlope"), 1.0) if pvt is not None else top_slope) or 1.0,
                    intercept=(_num(pvt.get("RescaleIntercept"), 0.0) if pvt is not None else top_intercept) or 0.0,
                    instance_number=f + 1,
                    slice_thickness=(_num(meas.get("SliceThickness")) if meas is not None else None) or top_thick,
                    spacing_between_slices=(_num(meas.get("SpacingBetweenSlices")) if meas is not None else None)
                    or top_between,
                    acquisition=_str(content, "StackID") if content is not None else None,
                )
            )
    else:
        positions: list[tuple[float, float, float] | None] = [top_ipp] * n_frames
        if n_frames > 1 and top_ipp is not None and top_iop is not None:
            normal = np.cross(top_iop[:3], top_iop[3:])
            offsets = _vec(src.get("GridFrameOffsetVector"), n_frames)
            if offsets is not None:  # RT Dose: offsets along the normal (PS3.3 C.8.8.3.2)
                base = offsets[0]
                steps = [o - base for o in offsets]
            elif top_between:  # NM / legacy multi-frame tomography
                steps = [k * top_between for k in range(n_frames)]
            else:
                steps = None
            positions = (
                [tuple(float(v) for v in np.asarray(top_ipp) + s * normal) for s in steps]  # type: ignore[misc]
                if steps is not None
                else [None] * n_frames
            )
        for f in range(n_frames):
            planes.append(
                Plane(
                    path=path,
                    frame=f if n_frames > 1 else None,
                    position=positions[f],
                    orientation=top_iop if positions[f] is not None else None,
                    pixel_spacing=top_ps,
                    rows=rows,
                    cols=cols,
                    samples=samples,
                    slope=top_slope,
                    intercept=top_intercept,
                    instance_number=instance if n_frames == 1 else f + 1,
                    slice_thickness=top_thick,
                    spacing_between_slices=top_between,
                    acquisition=acquisition,
                )
            )

    return FileHeader(
        path=path,
        series_uid=_str(src, "SeriesInstanceUID"),
        study_uid=_str(src, "StudyInstanceUID"),
        sop_class=_str(src, "SOPClassUID"),
        modality=_str(src, "Modality"),
        photometric=photometric,
        transfer_syntax=ts,
        transfer_syntax_name=pydicom.uid.UID(ts).name if ts else None,
        rows=rows,
        cols=cols,
        samples=samples,
        bits_allocated=bits,
        n_frames=n_frames,
        has_pixels=has_pixels,
        truncated=truncated,
        facts=_facts(src, shared, n_frames),
        windows=windows,
        display_inverted=display_inverted,
        planes=tuple(planes),
        gantry_tilt=_num(src.get("GantryDetectorTilt")),
        series_description=_str(src, "SeriesDescription"),
        bits_stored=_int(src.get("BitsStored"), bits) or bits,
        pixel_representation=_int(src.get("PixelRepresentation"), 0) or 0,
        pixel_offset=pixel_offset,
        has_modality_lut_sequence=src.has(MODALITY_LUT_SEQUENCE),
        has_voi_lut_sequence=src.has(VOI_LUT_SEQUENCE),
    )


def header_of(ds: Dataset, path: str, max_voxels: int | None = None) -> FileHeader:
    """:func:`parse_header` with pydicom's warnings silenced and any failure made a clear error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns on invalid VR values; the reason is ours to give
            return parse_header(ds, path, max_voxels=max_voxels)
    except MedmmError:
        raise
    except Exception as exc:
        raise DicomReadError(f"{path}: header cannot be interpreted ({type(exc).__name__}: {_short(exc)})") from exc


def read_header(path: str, max_voxels: int | None = None) -> FileHeader:
    """Headers only: pixel data is never read. Ordinary files go through the fast scanner
    (:mod:`medmm.imaging.fastheader`); everything else, and every error, through pydicom.
    A header declaring more than the frame or pixel budget (``max_voxels``) raises
    :class:`~medmm.errors.PixelBudgetError`."""
    sniff(path)
    try:
        raw = fastheader.scan(path)
    except Exception:  # the fast path never decides an error: pydicom reads the file and names the problem
        raw = None
    if raw is not None:
        try:
            return parse_source(raw, path, max_voxels=max_voxels)
        except PixelBudgetError:
            raise
        except Exception:  # the fast path never decides an error: let pydicom speak
            pass
    return header_of(read_dataset(path, headers_only=True), path, max_voxels=max_voxels)


# --------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------
_GPL_ONLY = {
    "1.2.840.10008.1.2.4.51": "JPEG Extended (12-bit)",
}


def _decode_hint(ts: str | None) -> str:
    if ts in _GPL_ONLY:
        return (
            "this transfer syntax needs pylibjpeg-libjpeg, which is GPL-3.0 and therefore not installed by "
            "default: pip install 'medmm[gpl-codecs]'"
        )
    return "the stream may be corrupt; check the file with dcmdump or gdcminfo, or convert it with gdcmconv --raw"


def require_pixels(header: FileHeader) -> None:
    """Raise a clear error for a file that has no usable pixel data."""
    if header.truncated:
        raise DicomReadError(f"{header.path}: file is truncated (it ends inside an element: pixel data or header cut short)")
    if not header.has_pixels:
        kind = header.sop_class and pydicom.uid.UID(header.sop_class).name
        raise InputError(f"{header.path}: has no pixel data ({kind or 'unknown SOP class'}); it is not an image")
    if header.rows <= 0 or header.cols <= 0:
        raise DicomReadError(f"{header.path}: Rows/Columns (0028,0010/0011) are missing or zero")
    if header.bits_allocated <= 0:
        raise DicomReadError(f"{header.path}: Bits Allocated (0028,0100) is missing; the pixel data cannot be read")


def decode_planes(
    header: FileHeader,
    frames: list[int | None] | None = None,
    out: np.ndarray | None = None,
    ds: Dataset | None = None,
) -> np.ndarray:
    """Decode the given frames of one file to modality-LUT values (or RGB), stacked on axis 0.

    Monochrome output is float32 after the modality LUT, one rescale per frame; RGB output
    keeps the decoded integer dtype. When ``out`` is given (shape (n, rows, cols[, 3])),
    frames are written into it and it is returned. Uncompressed grayscale frames are read
    straight from the file; otherwise the dataset is read (``ds``, if given) and decoded by
    pydicom.
    """
    require_pixels(header)
    if frames is None:
        frames = [p.frame for p in header.planes]
    n_out = len(frames)
    budget_shape = n_out * header.rows * header.cols * header.samples
    check_budget(budget_shape, header.path)
    if _native_fast_path(header):
        if out is None:
            out = np.empty((n_out, header.rows, header.cols), dtype=np.float32)
        return _read_native(header, frames, out)
    if ds is None:
        ds = read_dataset(header.path, headers_only=True)
    check_codestreams(ds, header)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = _pixel_array(ds, header)
    except MedmmError:
        raise
    except (NotImplementedError, RuntimeError) as exc:
        raise DecodeError(
            f"{header.path}: cannot decode pixel data ({header.transfer_syntax_name or 'unknown transfer syntax'}): "
            f"{_decode_hint(header.transfer_syntax)}"
        ) from exc
    except ValueError as exc:
        msg = str(exc)
        if "less than expected" in msg or "truncat" in msg.lower():
            raise DicomReadError(f"{header.path}: file is truncated (pixel data shorter than Rows×Columns×Frames)") from exc
        raise DicomReadError(f"{header.path}: pixel data cannot be read ({_short(exc)})") from exc
    except AttributeError as exc:
        raise DicomReadError(f"{header.path}: pixel data cannot be read: {_short(exc)}") from exc
    except Exception as exc:
        raise DecodeError(f"{header.path}: cannot decode pixel data ({type(exc).__name__}: {_short(exc)})") from exc

    _check_decoded_shape(arr, header)
    photometric = (header.photometric or "").upper()
    if photometric == "PALETTE COLOR":
        try:
            arr = pydicom.pixels.apply_color_lut(arr, ds)
        except Exception as exc:
            raise DecodeError(f"{header.path}: PALETTE COLOR lookup tables cannot be applied ({_short(exc)})") from exc
        rgb = True
    else:
        rgb = header.samples == 3
    frame_axis = header.n_frames > 1
    if not frame_axis:
        arr = arr[np.newaxis]
    arr = arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))

    plane_by_frame = {p.frame: p for p in header.planes}
    use_mlut = "ModalityLUTSequence" in ds and not rgb
    if out is None:
        shape = (n_out, header.rows, header.cols) + ((3,) if rgb else ())
        out = np.empty(shape, dtype=arr.dtype if rgb else np.float32)
    for k, frame in enumerate(frames):
        src = arr[frame or 0]
        if rgb:
            out[k] = src
            continue
        if use_mlut:
            try:
                out[k] = pydicom.pixels.apply_modality_lut(src, ds)
            except Exception as exc:  # a Modality LUT Sequence without its descriptor or data (KeyError, ...)
                raise DecodeError(f"{header.path}: the Modality LUT Sequence (0028,3000) cannot be applied "
                                  f"({type(exc).__name__}: {_short(exc)}); the header is corrupt") from exc
            continue
        plane = plane_by_frame.get(frame, header.planes[0])
        dst = out[k]
        if plane.slope != 1.0:
            np.multiply(src, np.float32(plane.slope), out=dst, casting="unsafe")
        else:
            dst[...] = src
        if plane.intercept != 0.0:
            dst += np.float32(plane.intercept)
    return out


def check_codestreams(ds: Dataset, header: FileHeader) -> None:
    """Every frame codestream's declared size checked against the header (and so the pixel budget)
    before a decoder allocates it (:mod:`medmm.imaging.codestream`)."""
    if header.transfer_syntax in NATIVE_SYNTAXES or header.transfer_syntax == str(DeflatedExplicitVRLittleEndian):
        return
    try:
        pixel_data = ds.PixelData
    except Exception as exc:  # a deferred read of a cut file
        raise DicomReadError(f"{header.path}: pixel data cannot be read ({type(exc).__name__})") from exc
    if isinstance(pixel_data, (bytes, bytearray)):
        codestream.check_codestreams(bytes(pixel_data), header.transfer_syntax, header.rows, header.cols,
                                     header.samples, header.bits_allocated, header.path)


def _check_decoded_shape(arr: np.ndarray, header: FileHeader) -> None:
    """The decoder's output must be what the header declares, or every later step indexes garbage."""
    expected = ((header.n_frames,) if header.n_frames > 1 else ()) + (header.rows, header.cols)
    expected += (header.samples,) if header.samples > 1 else ()
    if tuple(arr.shape) != expected:
        raise DecodeError(
            f"{header.path}: decoded pixel data has shape {tuple(arr.shape)}, but the header declares {expected} "
            "(Number of Frames, Rows, Columns, Samples per Pixel): the header or the pixel stream is corrupt"
        )


# gdcm reports some corrupt streams by throwing a C++ exception nothing catches: the whole process
# aborts. It is therefore tried last, and only in a child process (pydicom's other plugins first):
# medmm.imaging.gdcm_child, a fresh interpreter that never imports the caller's __main__ (issue 20, N12).
_GDCM = "gdcm"


def _pixel_array(ds: Dataset, header: FileHeader) -> np.ndarray:
    """pydicom's ``pixel_array``, with the gdcm plugin isolated in a child process."""
    try:
        plugins = tuple(pydicom.pixels.get_decoder(header.transfer_syntax).available_plugins) \
            if header.transfer_syntax else ()
    except (NotImplementedError, ValueError, KeyError):
        plugins = ()
    if _GDCM not in plugins:
        return ds.pixel_array
    failure: Exception | None = None
    for plugin in plugins:
        if plugin == _GDCM:
            continue
        try:
            ds.pixel_array_options(decoding_plugin=plugin)
            return ds.pixel_array
        except Exception as exc:  # the next plugin, then gdcm, may still decode it
            failure = exc
    try:
        return _decode_gdcm_isolated(header.path)
    except DecodeError:
        raise
    except Exception as exc:
        raise failure or exc from exc


def _decode_gdcm_isolated(path: str) -> np.ndarray:
    from medmm.imaging import gdcm_child

    try:
        return gdcm_child.decode(path)
    except gdcm_child.ChildCrashed as exc:
        raise DecodeError(
            f"{path}: the gdcm decoder crashed on this file's pixel data (a corrupt stream); "
            f"{_decode_hint(None)}"
        ) from exc


def _native_fast_path(header: FileHeader) -> bool:
    """Uncompressed grayscale with a known Pixel Data offset: read frames straight from disk.

    pydicom's ``pixel_array`` would first load the whole element into a bytes object and then
    copy it; for one-file-per-slice series that double copy is most of the load time. The
    result is identical to pydicom's (unused high bits corrected the same way) — a test
    compares the two on every native file of pydicom's test corpus.
    """
    return (
        header.pixel_offset is not None
        and header.samples == 1
        and header.bits_allocated in (8, 16, 32)
        and 0 < header.bits_stored <= header.bits_allocated
        and (header.photometric or "").upper() in ("MONOCHROME1", "MONOCHROME2")
        and not header.has_modality_lut_sequence
    )


def _read_native(header: FileHeader, frames: list[int | None], out: np.ndarray) -> np.ndarray:
    kind = "i" if header.pixel_representation == 1 else "u"
    nbytes = header.bits_allocated // 8
    big = header.transfer_syntax == str(ExplicitVRBigEndian)
    dtype = np.dtype(f"{'>' if big else '<'}{kind}{nbytes}")
    frame_len = header.rows * header.cols * nbytes
    scratch = np.empty((header.rows, header.cols), dtype=dtype)
    buf = memoryview(scratch).cast("B")
    shift = header.bits_allocated - header.bits_stored
    planes = {p.frame: p for p in header.planes}
    try:
        fh = open(header.path, "rb", buffering=0)
    except OSError as exc:
        raise InputError(f"{header.path}: cannot be read ({exc.strerror})") from exc
    with fh:
        for k, frame in enumerate(frames):
            fh.seek(header.pixel_offset + (frame or 0) * frame_len)  # type: ignore[operator]
            if fh.readinto(buf) != frame_len:
                raise DicomReadError(f"{header.path}: file is truncated (pixel data shorter than Rows×Columns×Frames)")
            src = scratch if not big else scratch.astype(dtype.newbyteorder("="))
            if shift:
                np.left_shift(src, shift, out=src)
                np.right_shift(src, shift, out=src)
            plane = planes.get(frame, header.planes[0])
            dst = out[k]
            if plane.slope != 1.0:
                np.multiply(src, np.float32(plane.slope), out=dst, casting="unsafe")
            else:
                np.copyto(dst, src, casting="unsafe")
            if plane.intercept != 0.0:
                dst += np.float32(plane.intercept)
    return out

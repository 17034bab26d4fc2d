"""DICOM de-identification by the PS3.15 Annex E Basic Application Level Confidentiality Profile,
applied as an allow-list.

Table-driven: every attribute of Table E.1-1 (package data, :mod:`medmm.deid.table`) gets its
action, at the top level and inside every sequence item; an attribute the table does not name is
kept only if it is on the allow-list (:mod:`medmm.deid.allowlist`: numbers, coded strings, registry
UIDs, sequences cleaned item by item, reviewed equipment text, pixel data) — everything else is
removed (issue 20, N10: unlisted attributes such as SOPInstanceUIDOfConcatenationSource, overlay
descriptions and vendor text went through). Private attributes are removed unless kept by the caller;
UIDs are replaced by keyed pseudonyms (:mod:`medmm.deid.keys`), so the same original UID gives the
same new UID in every file of a study and in every run with the same key. ``D`` on a sequence gives
an empty sequence (the profile's dummy for a sequence: no original item survives), ``Z`` an empty
one, ``X`` none. The file meta is rebuilt from the transfer syntax and the new SOP UIDs only.
JPEG/JPEG 2000 COM and APPn segments are removed from the pixel data without re-encoding
(:mod:`medmm.deid.pixels`). Encapsulated documents (PDF, CDA, STL...) are refused: medmm cannot
clean their content.

Options (each recorded in DeidentificationMethodCodeSequence next to 113100):
- ``keep_dates_shifted``: dates and date-times the profile marks ``C`` under the Retain Longitudinal
  Temporal Information with Modified Dates Option are shifted by one offset per patient (times of
  day are kept, the shift is whole days) — 113107; otherwise they get the basic action (removed or
  emptied);
- ``keep_private``: private attributes named by tag (``0009,1001``) or by private creator and element
  (``GEMS_ACQU_01:10``) are kept — 113111;
- ``keep_patient_characteristics``: sex, age, size, weight… kept — 113108.

Images that may carry burned-in text are refused unless ``allow_burned_in`` (:func:`burned_in_reason`):
the profile cannot clean pixels, and medmm never edits pixel values.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from medmm.deid.allowlist import CS_VALUE, NUMERIC_VRS, load_allowlist
from medmm.deid.keys import DeidKey
from medmm.deid.table import OPTION_CODES, Rule, Table, applied_action, load_table
from medmm.errors import DicomReadError, InputError

# Modalities whose images are often screens, photographs or annotated projections: text burned into
# the pixels is common (ultrasound, secondary capture, angiography/fluoroscopy, radiographs,
# mammography, endoscopy, external/ophthalmic photography, panoramic and intra-oral dental X-ray,
# general/slide microscopy, dermoscopy, documents and "other").
BURNED_IN_MODALITIES = ("US", "SC", "XA", "RF", "CR", "DX", "MG", "IO", "PX", "ES", "XC", "OP", "GM", "SM", "DMS",
                        "DOC", "OT", "VL", "TG")
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame classes 1.2.840.10008.5.1.4.1.1.7.1-4
_VL = "1.2.840.10008.5.1.4.1.1.77.1."
VISIBLE_LIGHT_PHOTOS = frozenset(_VL + s for s in (  # photographs and video: a camera sees labels, screens, faces
    "1", "1.1", "2", "2.1", "3", "4", "4.1", "5.1", "5.2", "5.5", "5.6", "6", "7"))
ENCAPSULATED_DOCUMENT = "1.2.840.10008.5.1.4.1.1.104"  # PDF, CDA, STL, OBJ, MTL
SCREEN_IMAGE_TYPES = ("SCREEN SAVE", "SCREENSHOT", "SCREEN CAPTURE", "DOSE INFO", "DOSE_INFO", "DOSE REPORT")
DUMMY_TEXT = "ANONYMIZED"
_DUMMY = {
    "AE": "ANONYMOUS", "AS": "000D", "CS": DUMMY_TEXT, "DA": "19000101", "DT": "19000101000000", "TM": "000000",
    "DS": "0", "IS": "0", "LO": DUMMY_TEXT, "LT": DUMMY_TEXT, "SH": DUMMY_TEXT, "ST": DUMMY_TEXT, "UT": DUMMY_TEXT,
    "UC": DUMMY_TEXT, "PN": DUMMY_TEXT, "UR": "urn:anonymized", "US": 0, "SS": 0, "UL": 0, "SL": 0, "FL": 0.0, "FD": 0.0,
    "OB": b"\x00\x00", "OW": b"\x00\x00", "UN": b"\x00\x00",
}
PATIENT_ID = 0x00100020


class BurnedInAnnotationError(InputError):
    """The image may show identifying text in its pixels; refused unless ``allow_burned_in``."""


class EncapsulatedDocumentError(InputError):
    """An encapsulated document (PDF, CDA...): its content cannot be de-identified, so it is refused."""


@dataclass(frozen=True)
class DeidOptions:
    keep_dates_shifted: bool = False
    keep_private: tuple[str, ...] = ()
    allow_burned_in: bool = False
    keep_patient_characteristics: bool = False

    def codes(self, kept_private: bool) -> list[tuple[str, str]]:
        out = [OPTION_CODES["basic"]]
        if self.keep_dates_shifted:
            out.append(OPTION_CODES["rtnLongModifDatesOpt"])
        if self.keep_patient_characteristics:
            out.append(OPTION_CODES["rtnPatCharsOpt"])
        if kept_private:
            out.append(OPTION_CODES["rtnSafePrivOpt"])
        return out


@dataclass
class DeidNotes:
    """What was done to one dataset (counts only: no values)."""

    actions: dict[str, int] = field(default_factory=dict)
    private_removed: int = 0
    private_kept: int = 0
    not_allowed: int = 0  # attributes neither in the table nor on the allow-list: removed
    codestream_segments: int = 0  # JPEG/J2K comment and application segments removed from the pixel data
    burned_in: str | None = None  # why the image may carry burned-in text, when allowed through

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1


# ------------------------------------------------------------------ private attributes
def _parse_keep(specs: Iterable[str]) -> tuple[set[int], set[tuple[str, int]]]:
    """``0009,1001`` / ``(0009,1001)`` / ``00091001`` -> exact tags; ``CREATOR:10`` -> (creator, element byte)."""
    tags: set[int] = set()
    by_creator: set[tuple[str, int]] = set()
    for spec in specs:
        text = spec.strip()
        if ":" in text:
            creator, _, elem = text.rpartition(":")
            try:
                by_creator.add((creator.strip().upper(), int(elem.strip().removeprefix("0x"), 16) & 0xFF))
            except ValueError as exc:
                raise InputError(f"--keep-private {spec!r}: use GGGG,EEEE or CREATOR:EE (hex)") from exc
            continue
        hexdigits = text.strip("()").replace(",", "").replace(" ", "")
        try:
            value = int(hexdigits, 16)
        except ValueError as exc:
            raise InputError(f"--keep-private {spec!r}: use GGGG,EEEE or CREATOR:EE (hex)") from exc
        if len(hexdigits) != 8 or not (value >> 16) & 1:
            raise InputError(f"--keep-private {spec!r}: not a private tag (GGGG,EEEE with an odd group)")
        tags.add(value)
    return tags, by_creator


def _creator_of(ds: Dataset, tag: int) -> str | None:
    group, elem = tag >> 16, tag & 0xFFFF
    if elem < 0x1000:
        return None
    creator = ds.get((group, elem >> 8))
    return str(creator.value).strip().upper() if creator is not None and creator.value else None


def _private_kept(ds: Dataset, tag: int, keep: tuple[set[int], set[tuple[str, int]]]) -> bool:
    tags, by_creator = keep
    if tag in tags:
        return True
    creator = _creator_of(ds, tag)
    return creator is not None and (creator, tag & 0xFF) in by_creator


def _strip_private(ds: Dataset, keep: tuple[set[int], set[tuple[str, int]]], notes: DeidNotes) -> None:
    """Remove private attributes not kept; keep the creator elements of kept blocks."""
    private = [int(t) for t in ds.keys() if Tag(t).is_private]
    kept = {t for t in private if (t & 0xFFFF) >= 0x1000 and _private_kept(ds, t, keep)}
    needed_creators = {(t >> 16, (t & 0xFFFF) >> 8) for t in kept}
    for t in private:
        group, elem = t >> 16, t & 0xFFFF
        if t in kept or (0x0010 <= elem <= 0x00FF and (group, elem) in needed_creators):
            notes.private_kept += t in kept
            continue
        del ds[t]
        notes.private_removed += 1


# ------------------------------------------------------------------ values
def _shift_date(value: str, days: int) -> str | None:
    text = value.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return day.strftime("%Y%m%d") + text[8:]


def _shifted(elem: DataElement, days: int) -> Any:
    values = list(elem.value) if isinstance(elem.value, (list, MultiValue)) else [elem.value]
    out = []
    for v in values:
        if v in (None, ""):
            continue
        parts = str(v).split("-") if elem.VR == "DA" else [str(v)]  # DA ranges "20200101-20200201"
        shifted = [_shift_date(p, days) if p else "" for p in parts]
        if any(s is None for s in shifted):
            return None  # an unparsable date is removed, never kept
        out.append("-".join(shifted))  # type: ignore[arg-type]
    return out if len(out) > 1 else (out[0] if out else None)


def _uids(value: Any, key: DeidKey) -> Any:
    if isinstance(value, (list, MultiValue)):
        return [key.uid(str(v)) for v in value if v]
    return key.uid(str(value)) if value else value


@dataclass(frozen=True)
class _Context:
    table: Table
    key: DeidKey
    options: DeidOptions
    days: int
    keep: tuple[set[int], set[tuple[str, int]]]
    allow: dict[int, str]


def _action_for(rule: Rule, elem: DataElement, ctx: _Context) -> str:
    if ctx.options.keep_dates_shifted and rule.options.get("rtnLongModifDatesOpt") == "C":
        if elem.VR in ("DA", "DT"):
            return "shift"
        if elem.VR == "TM":
            return "K"  # whole-day shifts leave times of day unchanged
    if ctx.options.keep_patient_characteristics and rule.options.get("rtnPatCharsOpt") == "K":
        return "K"
    return applied_action(rule.action)


def _apply(ds: Dataset, elem: DataElement, action: str, ctx: _Context, notes: DeidNotes) -> None:
    notes.count(action)
    tag = int(elem.tag)
    if action == "X" or action == "C":  # the basic profile has no bare C; a clean medmm cannot do is a removal
        del ds[tag]
        return
    if elem.VR == "SQ":
        if action in ("Z", "D"):  # D: a sequence's dummy is an empty one; no original item survives
            elem.value = Sequence([])
        else:  # K, U*: keep the structure, clean every item (the allow-list applies inside)
            for item in elem.value:
                _clean(item, ctx, notes)
        return
    if action == "K":
        return
    if action == "Z":
        elem.value = None
    elif action in ("U", "U*"):
        elem.value = _uids(elem.value, ctx.key)
    elif action == "shift":
        elem.value = _shifted(elem, ctx.days)
    elif action == "D":
        if tag == PATIENT_ID and elem.value:
            elem.value = "ANON" + ctx.key.name("patient-id", str(elem.value), 12).upper()
        elif elem.VR == "UI":
            elem.value = _uids(elem.value, ctx.key) or ctx.key.uid("dummy")
        else:
            elem.value = _DUMMY.get(elem.VR, b"\x00\x00" if elem.VR.startswith("O") else None)
    else:
        raise ValueError(f"unknown de-identification action {action!r}")


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, MultiValue)) else [value]


def _registry_uid(value: str) -> bool:
    from pydicom.uid import UID_dictionary  # type: ignore[attr-defined]

    return value in UID_dictionary


def _is_number(value: Any) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _keep_allowed(ds: Dataset, elem: DataElement, why: str, ctx: _Context, notes: DeidNotes) -> None:
    """An attribute on the allow-list: kept when its value is what its kind allows, else removed."""
    tag, vr = int(elem.tag), elem.VR
    ok = True
    if why == "sequence":
        ok = vr == "SQ"
        if ok:
            for item in elem.value:
                _clean(item, ctx, notes)
    elif why == "code":
        ok = vr == "CS" and all(CS_VALUE.fullmatch(str(v).strip()) for v in _values(elem.value))
    elif why == "number":
        ok = vr in NUMERIC_VRS and (vr not in ("DS", "IS") or all(_is_number(v) for v in _values(elem.value)))
    elif why == "uid":  # a registry UID (SOP class, transfer syntax, coding scheme) names no one; others are replaced
        ok = vr == "UI"
        values = [str(v) for v in _values(elem.value)]
        if ok and not all(_registry_uid(v) for v in values):
            new = [v if _registry_uid(v) else ctx.key.uid(v) for v in values]
            elem.value = new if len(new) > 1 else new[0]
            notes.count("U")
    elif why == "data":
        ok = vr != "SQ" and vr != "UN"
    if not ok:
        del ds[tag]
        notes.not_allowed += 1


def _clean(ds: Dataset, ctx: _Context, notes: DeidNotes) -> None:
    _strip_private(ds, ctx.keep, notes)
    for tag in list(ds.keys()):
        if tag not in ds:
            continue
        elem = ds[tag]
        if Tag(tag).is_private:  # kept private attributes: sequences inside are still cleaned
            if elem.VR == "SQ":
                for item in elem.value:
                    _clean(item, ctx, notes)
            continue
        rule = ctx.table.lookup(int(tag))
        if rule is not None:
            _apply(ds, elem, _action_for(rule, elem, ctx), ctx, notes)
            continue
        why = ctx.allow.get(int(tag))
        if why is None:  # neither replaced by the profile nor on the allow-list
            del ds[tag]
            notes.not_allowed += 1
            continue
        _keep_allowed(ds, elem, why, ctx, notes)


# ------------------------------------------------------------------ one dataset
def _embedded_overlay(ds: Dataset) -> bool:
    """An overlay stored in the pixel data's unused high bits (retired, still written by old devices)."""
    for group in range(0x6000, 0x6020, 2):
        position = ds.get((group, 0x0102))
        allocated = ds.get((group, 0x0100))
        if position is not None and allocated is not None and position.value and int(position.value) > 0 \
                and int(allocated.value or 1) != 1:
            return True
    return False


def burned_in_reason(ds: Dataset) -> str | None:
    """Why the pixels may carry identifying text, or None."""
    if _embedded_overlay(ds):
        return "an overlay is stored in the pixel data's unused bits (it can hold text)"
    value = str(ds.get("BurnedInAnnotation") or "").strip().upper()
    if value == "YES":
        return "BurnedInAnnotation (0028,0301) is YES"
    if value == "NO":
        return None
    modality = str(ds.get("Modality") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID") or "").strip()
    image_type = {str(v).strip().upper() for v in _values(ds.get("ImageType"))}
    if modality in BURNED_IN_MODALITIES:
        return f"BurnedInAnnotation (0028,0301) is absent on a {modality} image"
    if sop_class == SECONDARY_CAPTURE or sop_class.startswith(SECONDARY_CAPTURE + "."):
        return "BurnedInAnnotation (0028,0301) is absent on a secondary capture image"
    if sop_class in VISIBLE_LIGHT_PHOTOS:
        return "BurnedInAnnotation (0028,0301) is absent on a visible-light (photographic) image"
    if image_type & set(SCREEN_IMAGE_TYPES):
        return "BurnedInAnnotation (0028,0301) is absent on a screen capture (ImageType)"
    return None


def encapsulated_document(ds: Dataset) -> bool:
    sop_class = str(ds.get("SOPClassUID") or "").strip()
    return "EncapsulatedDocument" in ds or sop_class.startswith(ENCAPSULATED_DOCUMENT + ".")


def patient_key(ds: Dataset) -> str:
    """What identifies the patient for the per-patient date offset (never stored)."""
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID"):
        value = ds.get(keyword)
        if value not in (None, ""):
            return f"{keyword}:{value}"
    return "unknown-patient"


def deid_dataset(ds: Dataset, key: DeidKey, options: DeidOptions = DeidOptions(), table: Table | None = None,
                 where: str = "dataset") -> DeidNotes:
    """De-identify ``ds`` in place (file meta included) and record how; raises
    :class:`BurnedInAnnotationError` for an image that may show text, unless allowed."""
    notes = DeidNotes()
    if encapsulated_document(ds):
        raise EncapsulatedDocumentError(
            f"{where}: an encapsulated document (PDF, CDA or a 3-D model): its content cannot be de-identified "
            "by the profile, so it is refused; export the document's text separately and scrub it"
        )
    reason = burned_in_reason(ds)
    if reason:
        if not options.allow_burned_in:
            raise BurnedInAnnotationError(
                f"{where}: {reason}: its pixels may show identifying text, which the profile cannot remove. "
                "Check the image, then pass --allow-burned-in to de-identify the header only."
            )
        notes.burned_in = reason
    old_meta = getattr(ds, "file_meta", None)
    syntax = old_meta.get("TransferSyntaxUID") if old_meta is not None else None
    from medmm.deid.pixels import strip_codestream_metadata

    try:
        notes.codestream_segments = strip_codestream_metadata(ds, str(syntax) if syntax else None)
    except InputError as exc:
        raise DicomReadError(f"{where}: {exc}") from exc
    ctx = _Context(table or load_table(), key, options, key.day_offset(patient_key(ds)), _parse_keep(options.keep_private),
                   load_allowlist())
    _clean(ds, ctx, notes)
    meta = FileMetaDataset()  # rebuilt: nothing of the original file meta but its transfer syntax
    if syntax:
        meta.TransferSyntaxUID = syntax
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    ds.PatientIdentityRemoved = "YES"
    codes = options.codes(kept_private=notes.private_kept > 0)
    ds.DeidentificationMethod = "medmm deid PS3.15 E.1-1 " + "+".join(value for value, _ in codes)  # LO: <= 64
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if options.keep_dates_shifted else "REMOVED"
    return notes


# ------------------------------------------------------------------ files
def read_for_deid(path: str) -> Dataset:
    """The whole dataset (pixels included) through medmm's reader (clear errors, missing syntax set)."""
    from medmm.imaging.dicom import read_dataset

    ds = read_dataset(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for source in (getattr(ds, "file_meta", None) or Dataset(), ds):
                for elem in source.iterall():  # convert every raw element now: a corrupt value fails here
                    _ = elem.value
    except Exception as exc:  # pydicom raises many types on corrupt elements; values are never quoted
        raise DicomReadError(f"{path}: an element cannot be decoded ({type(exc).__name__}); the header is corrupt, "
                             "so the file cannot be de-identified") from exc
    return ds


def output_name(ds: Dataset, key: DeidKey, fallback: str) -> str:
    """``<new study UID>/<new series UID>/<new SOP UID>.dcm`` (after de-identification: UIDs are new)."""
    def part(keyword: str, default: str) -> str:
        value = ds.get(keyword)
        text = str(value) if isinstance(value, str) else ""  # a corrupt header can hold several values
        return text if re.fullmatch(r"[0-9.]{1,64}", text) else default

    study = part("StudyInstanceUID", key.uid("no-study"))
    series = part("SeriesInstanceUID", key.uid("no-series"))
    sop = part("SOPInstanceUID", key.name("file", fallback, 32))
    return os.path.join(study, series, sop + ".dcm")


def write_deid(ds: Dataset, path: str, where: str = "dataset") -> None:
    """Write a de-identified dataset as a DICOM file: zeroed preamble; file meta rebuilt from the transfer
    syntax and the SOP UIDs only (pydicom's writer adds its version, group length and implementation UID)."""
    ds.preamble = b"\x00" * 128  # a preamble can hold anything (TIFF headers, vendor text)
    for tag in [t for t in ds.keys() if (int(t) >> 16) in (0x0000, 0x0002)]:
        del ds[tag]  # command and file-meta groups do not belong in a stored dataset (file meta is rebuilt)
    old_meta = getattr(ds, "file_meta", None)
    syntax = old_meta.get("TransferSyntaxUID") if old_meta is not None else None
    ds.file_meta = FileMetaDataset()
    if syntax:
        ds.file_meta.TransferSyntaxUID = syntax
    if not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID"):
        raise DicomReadError(f"{where}: no SOP Class or SOP Instance UID; not a storable DICOM object")
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "TransferSyntaxUID" not in ds.file_meta:
        raise DicomReadError(f"{where}: no transfer syntax could be determined; not de-identified")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
    except Exception as exc:  # a corrupt element that pydicom cannot encode again
        if os.path.exists(path):
            os.remove(path)
        raise DicomReadError(f"{where}: the de-identified dataset cannot be written ({type(exc).__name__}); "
                             "the header is corrupt") from exc

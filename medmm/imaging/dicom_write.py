"""Writing DICOM series (one file per slice) for synthetic studies, tests and benchmarks.

Files are valid Explicit VR Little Endian CT/MR Image Storage instances with the geometry
given by the caller — including deliberately broken geometry (gaps, tilt, duplicates) so
that readers can be tested against a known truth. UIDs are derived deterministically from
a seed (``pydicom.uid.generate_uid`` with entropy sources), so output is reproducible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medmm.errors import InputError

SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
}


@dataclass(frozen=True)
class StudyIdentity:
    """How a hospital names the study (General Study / Patient modules). Every field is Type 2 there:
    always written, empty when not known (``ReferringPhysicianName`` is often empty)."""

    accession_number: str = ""  # SH, <= 16 characters: what the RIS orders and reports by
    study_id: str = ""  # SH, <= 16 characters
    study_date: str = ""  # DA, YYYYMMDD
    study_time: str = ""  # TM, HHMMSS
    patient_birth_date: str = ""  # DA
    referring_physician_name: str = ""  # PN, empty allowed
    study_description: str = ""  # LO (Type 3)

    def __post_init__(self) -> None:
        for name in ("accession_number", "study_id"):
            if len(getattr(self, name)) > 16:
                raise InputError(f"{name} {getattr(self, name)!r} is longer than 16 characters (DICOM SH)")


@dataclass(frozen=True)
class SeriesSpec:
    """Geometry and labels of a series to write. Positions/orientation are DICOM LPS."""

    positions: np.ndarray  # (n, 3) ImagePositionPatient per slice
    orientation: tuple[float, float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    pixel_spacing: tuple[float, float] = (1.0, 1.0)  # (between rows, between columns)
    slice_thickness: float | None = None
    modality: str = "CT"
    slope: float = 1.0
    intercept: float = 0.0
    window: tuple[float, float] | None = (40.0, 400.0)
    body_part: str | None = None
    patient_sex: str | None = None
    series_description: str = "medmm synthetic"
    instance_numbers: Sequence[int] | None = None
    gantry_tilt: float | None = None
    seed: str = "medmm"
    study_uid: str | None = None  # default: derived from seed
    series_number: int = 1
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")
    identity: StudyIdentity = StudyIdentity()


def write_series(out_dir: str, stored: np.ndarray, spec: SeriesSpec, extra: dict[str, Any] | None = None) -> list[str]:
    """Write ``stored`` (n, rows, cols) int16/uint16 stored values as one file per slice.

    Returns the written paths, named ``IM00001.dcm``... in slice order (InstanceNumber may
    differ when ``spec.instance_numbers`` says so).
    """
    stored = np.asarray(stored)
    if stored.ndim != 3:
        raise InputError(f"write_series expects (slices, rows, cols), got shape {stored.shape}")
    if stored.dtype not in (np.int16, np.uint16):
        raise InputError(f"write_series expects int16 or uint16 stored values, got {stored.dtype}")
    n, rows, cols = stored.shape
    positions = np.asarray(spec.positions, dtype=np.float64)
    if positions.shape != (n, 3):
        raise InputError(f"positions must have shape ({n}, 3), got {positions.shape}")
    modality = spec.modality.upper()
    if modality not in ("CT", "MR"):
        raise InputError(f"modality {spec.modality!r} not supported by write_series (CT or MR)")
    os.makedirs(out_dir, exist_ok=True)
    study_uid = spec.study_uid or generate_uid(entropy_srcs=[spec.seed, "study"])
    series_uid = generate_uid(entropy_srcs=[spec.seed, "series", spec.series_description])
    frame_uid = generate_uid(entropy_srcs=[spec.seed, "frame"])
    numbers = list(spec.instance_numbers) if spec.instance_numbers is not None else list(range(1, n + 1))
    signed = stored.dtype == np.int16
    paths = []
    for k in range(n):
        sop_uid = generate_uid(entropy_srcs=[spec.seed, series_uid, str(k)])
        ds = _new_dataset(modality, sop_uid, study_uid, series_uid, spec.seed, spec.series_description,
                          spec.patient_sex, spec.body_part, spec.series_number, spec.image_type, spec.identity)
        ds.FrameOfReferenceUID = frame_uid
        ds.InstanceNumber = int(numbers[k])
        ds.ImagePositionPatient = [f"{v:.6g}" for v in positions[k]]
        ds.ImageOrientationPatient = [f"{v:.6g}" for v in spec.orientation]
        ds.PixelSpacing = [f"{v:.6g}" for v in spec.pixel_spacing]
        if spec.slice_thickness is not None:
            ds.SliceThickness = f"{spec.slice_thickness:.6g}"
        if spec.gantry_tilt is not None:
            ds.GantryDetectorTilt = f"{spec.gantry_tilt:.6g}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleSlope = f"{spec.slope:.6g}"
        ds.RescaleIntercept = f"{spec.intercept:.6g}"
        if modality == "CT":
            ds.RescaleType = "HU"
        if spec.window is not None:
            ds.WindowCenter = f"{spec.window[0]:.6g}"
            ds.WindowWidth = f"{spec.window[1]:.6g}"
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.PixelData = np.ascontiguousarray(stored[k]).astype("<i2" if signed else "<u2").tobytes()
        path = os.path.join(out_dir, f"IM{k + 1:05d}.dcm")
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def _new_dataset(modality: str, sop_uid: str, study_uid: str, series_uid: str, seed: str, description: str,
                 sex: str | None, body_part: str | None, series_number: int, image_type: Sequence[str],
                 identity: StudyIdentity = StudyIdentity()) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES[modality]
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(entropy_srcs=["medmm-implementation"])
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(image_type)
    ds.SOPClassUID = SOP_CLASSES[modality]
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.Manufacturer = "medmm synthetic"
    ds.SeriesDescription = description
    ds.PatientName = "SYNTHETIC^PHANTOM"
    ds.PatientID = seed[:64]  # LO: up to 64 characters; the first 16 of synth's seeds repeat across studies
    if sex:
        ds.PatientSex = sex
    if body_part:
        ds.BodyPartExamined = body_part
    ds.PatientBirthDate = identity.patient_birth_date
    ds.StudyInstanceUID = study_uid
    ds.StudyID = identity.study_id
    ds.AccessionNumber = identity.accession_number
    ds.StudyDate = identity.study_date
    ds.StudyTime = identity.study_time
    ds.ReferringPhysicianName = identity.referring_physician_name
    if identity.study_description:
        ds.StudyDescription = identity.study_description
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    return ds


@dataclass(frozen=True)
class ProjectionSpec:
    """A projection radiograph (DX or CR): no patient-space geometry, detector pixel spacing."""

    modality: str = "DX"
    pixel_spacing: tuple[float, float] = (0.7, 0.7)  # ImagerPixelSpacing (rows, columns)
    photometric: str = "MONOCHROME2"
    view_position: str = "PA"
    laterality: str | None = None
    body_part: str = "CHEST"
    patient_sex: str | None = None
    window: tuple[float, float] | None = None
    bits_stored: int = 12
    series_description: str = "medmm synthetic radiograph"
    seed: str = "medmm"
    study_uid: str | None = None
    series_number: int = 1
    identity: StudyIdentity = StudyIdentity()


def write_projection(path: str, stored: np.ndarray, spec: ProjectionSpec) -> str:
    """Write one radiograph: ``stored`` (rows, cols) uint16 stored values, as given.

    For MONOCHROME1 the caller passes values already inverted (low = white), as a MONOCHROME1
    detector stores them; the Presentation LUT Shape is set accordingly.
    """
    stored = np.asarray(stored)
    if stored.ndim != 2 or stored.dtype != np.uint16:
        raise InputError(f"write_projection expects (rows, cols) uint16, got {stored.shape} {stored.dtype}")
    modality = spec.modality.upper()
    if modality not in ("DX", "CR"):
        raise InputError(f"modality {spec.modality!r} not supported by write_projection (DX or CR)")
    if spec.photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(f"photometric {spec.photometric!r}: use MONOCHROME1 or MONOCHROME2")
    study_uid = spec.study_uid or generate_uid(entropy_srcs=[spec.seed, "study"])
    series_uid = generate_uid(entropy_srcs=[spec.seed, "series", spec.series_description, spec.view_position])
    sop_uid = generate_uid(entropy_srcs=[spec.seed, series_uid, "0"])
    ds = _new_dataset(modality, sop_uid, study_uid, series_uid, spec.seed, spec.series_description,
                      spec.patient_sex, spec.body_part, spec.series_number, ("ORIGINAL", "PRIMARY"), spec.identity)
    ds.InstanceNumber = 1
    ds.ViewPosition = spec.view_position
    if spec.laterality:
        ds.ImageLaterality = spec.laterality
    ds.PatientOrientation = ["L", "F"] if spec.view_position == "AP" else (["R", "F"] if spec.view_position == "PA" else ["P", "F"])
    ds.ImagerPixelSpacing = [f"{v:.6g}" for v in spec.pixel_spacing]
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = spec.photometric
    ds.PresentationLUTShape = "INVERSE" if spec.photometric == "MONOCHROME1" else "IDENTITY"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = spec.bits_stored
    ds.HighBit = spec.bits_stored - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope = "1"
    ds.RescaleIntercept = "0"
    if spec.window is not None:
        ds.WindowCenter = f"{spec.window[0]:.6g}"
        ds.WindowWidth = f"{spec.window[1]:.6g}"
    if int(stored.max(initial=0)) >= (1 << spec.bits_stored):
        raise InputError(f"stored values exceed BitsStored={spec.bits_stored}")
    ds.PixelData = np.ascontiguousarray(stored).astype("<u2").tobytes()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def axial_positions(n: int, spacing: float = 1.0, origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """ImagePositionPatient of ``n`` axial slices ``spacing`` mm apart (z increasing)."""
    pos = np.tile(np.asarray(origin, dtype=np.float64), (n, 1))
    pos[:, 2] += spacing * np.arange(n)
    return pos

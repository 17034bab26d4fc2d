"""Ground-truth records of synthetic studies, and the manifest line they become.

Schema (one JSON object per line of ``manifest.jsonl``; documented in ``datasets/synthetic.md``)::

    {"study_id", "modality": "CT"|"DX"|"CR"|"MR", "body_part", "sex": "M"|"F",
     "images": [{"path", "format": "dicom-series"|"dicom-file"|"nifti", "label_map", "view"}],
     "report", "findings": [{"type", "organ", "side", "size_mm", "boxes": [{"image", "slice",
     "x1", "y1", "x2", "y2", "frame": "acquisition"}], "label", "category", "severity", "location",
     "interval"}], "comparison", "attributes": {...},
     "accession_number", "study_instance_uid", "patient_key", "exam_date": "YYYY-MM-DD",
     "exam_time": "HH:MM:SS", "exam_description"}

The identity fields name the study as a hospital does (the same values are in every DICOM file:
AccessionNumber, StudyInstanceUID, PatientID, StudyDate/Time, StudyDescription, and StudyID,
PatientBirthDate, an empty ReferringPhysicianName). Read a manifest through
:func:`medmm.studies.iter_studies` (one typed :class:`medmm.studies.Study` per line).

Boxes are :class:`medmm.regions.Box` in the **acquisition** frame of ``images[image]``
(``Box.to_dict`` / ``Box.from_dict``): x = column, y = row, ``x2``/``y2`` exclusive (the box
covers columns x1..x2-1); ``slice`` is the index in position order of a series (``null`` for a
radiograph) — *not* the display slice of a view: convert with ``Box.to_display(volume)``
before rendering. A box dict without ``"frame"`` (older manifests) reads as acquisition.
``label`` is the value of the finding's voxels in the image's label map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from medmm.imaging.volume import HeaderFacts
from medmm.regions.box import Box

# Label-map values of organs (lesions and devices use LESION_LABEL_BASE + finding index).
ORGAN_LABELS: dict[str, int] = {
    "body": 1, "lung_right": 2, "lung_left": 3, "heart": 4, "liver": 5, "kidney_right": 6, "kidney_left": 7,
    "spine": 8, "brain": 9, "ventricles": 10, "skull": 11,
}
LESION_LABEL_BASE = 100

LESION_TYPES = ("nodule", "mass", "cyst", "effusion", "pneumothorax", "consolidation", "fracture")
DEVICE_TYPES = ("endotracheal_tube", "central_line", "pacemaker", "chest_tube")


__all__ = ["Box", "DEVICE_TYPES", "Finding", "ImageEntry", "LESION_LABEL_BASE", "LESION_TYPES", "ORGAN_LABELS", "Study"]


@dataclass
class Finding:
    type: str
    organ: str
    side: str | None  # left, right, bilateral, midline or None
    size_mm: float | None
    label: int
    category: str = "lesion"  # lesion | device
    severity: str | None = None  # small / moderate / large for effusion, pneumothorax
    location: str | None = None  # e.g. "right upper lobe", for reports and probing
    interval: str | None = None  # new / unchanged / increased, only when a prior exists
    boxes: list[Box] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["boxes"] = [b.to_dict() for b in self.boxes]
        # fixed key order: schema keys first
        order = ["type", "organ", "side", "size_mm", "boxes", "label", "category", "severity", "location", "interval"]
        return {k: d[k] for k in order}


@dataclass
class ImageEntry:
    path: str
    format: str  # dicom-series | dicom-file | nifti
    label_map: str | None
    view: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "label_map": self.label_map, "view": self.view}


@dataclass
class Study:
    study_id: str
    modality: str
    body_part: str
    sex: str
    images: list[ImageEntry]
    report: str
    findings: list[Finding]
    comparison: bool
    indication: str | None = None

    def attributes(self) -> dict[str, Any]:
        """The probing attribute record: what a negation-pair builder asks about."""
        organs = {
            "CT": ["lungs", "heart", "liver", "kidneys", "spine"],
            "DX": ["lungs", "heart", "mediastinum"],
            "CR": ["lungs", "heart", "mediastinum"],
            "MR": ["brain", "ventricles", "skull"],
        }[self.modality]
        return {
            "modality": self.modality,
            "body_part": self.body_part.lower(),
            "organs": organs,
            "normal": not any(f.category == "lesion" for f in self.findings),
            "findings": [
                {"type": f.type, "organ": f.organ, "side": f.side, "location": f.location, "category": f.category}
                for f in self.findings
            ],
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "study_id": self.study_id,
            "modality": self.modality,
            "body_part": self.body_part,
            "sex": self.sex,
            "images": [i.as_dict() for i in self.images],
            "report": self.report,
            "findings": [f.as_dict() for f in self.findings],
            "comparison": self.comparison,
            "indication": self.indication,
            "attributes": self.attributes(),
        }


def manifest_header(rec: dict[str, Any]) -> HeaderFacts | None:
    """The header facts a manifest record carries (``modality``, ``body_part``, ``sex``, the first image
    ``view``), through the one header type: :func:`medmm.studies.manifest_header` (the study record's reader)."""
    from medmm.studies.readers import manifest_header as _header

    return _header(rec)

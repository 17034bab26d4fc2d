"""The one study record: what every source produces and every consumer reads.

A :class:`Study` is one imaging study with its report, as a source found it — a study folder,
an audit manifest line, a synthetic manifest line, a PACS query result (``medmm.hospital``) with
its RIS report — and what is known about it for evaluation (``truth``: the synthetic generator's
findings and boxes, ``medmm inject``'s injected errors). Everything is frozen; images are file
*references* (paths with their role and view), never pixels; ``to_dict`` / ``from_dict`` round
trip exactly through JSON (``from_dict(s.to_dict()) == s``).

Identity fields, as a hospital names a study:

- ``study_id``: what the source calls it (a folder name, a manifest ``study_id``, ``S0001``);
- ``accession_number`` (RIS order number, DICOM AccessionNumber, HL7 OBR-3/OBR-2, FHIR
  identifier/basedOn): what reports are matched by first;
- ``study_instance_uid``: the DICOM StudyInstanceUID (the fall-back match, and the study the
  results are published into);
- ``patient_key``: a pseudonymous key of the patient (for patient-level splits; never a name);
- ``exam_date`` (``YYYY-MM-DD``), ``exam_time`` (``HH:MM:SS``), ``exam_description``
  (StudyDescription): what a radiologist uses to find the study in the PACS.

``problem`` is set by a reader that found something wrong with this study's input (a path
outside the audited folder, two report files): a batch records it as the study's failure and
goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from medmm.errors import InputError
from medmm.imaging.volume import HeaderFacts
from medmm.regions.box import Box

__all__ = ["ImageRef", "InjectedError", "Study", "StudyTruth", "TruthFinding", "image_role"]

IMAGE_ROLES = ("image", "label_map", "derived")  # derived: e.g. the NIfTI copy of a DICOM series


def image_role(fmt: str | None) -> str:
    """The role an image of a synthetic manifest plays: the NIfTI copy of a DICOM series is ``derived``."""
    return "derived" if fmt == "nifti" else "image"


@dataclass(frozen=True)
class ImageRef:
    """One image of a study: a file or a series folder (``path``), or a PACS reference (``uri``)."""

    path: str
    role: str = "image"  # one of IMAGE_ROLES
    view: str | None = None  # PA, AP, LATERAL...
    format: str | None = None  # dicom-series | dicom-file | nifti | png | ...
    label_map: str | None = None  # a label map of the image (synthetic truth)
    series_instance_uid: str | None = None
    description: str | None = None  # SeriesDescription

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | str) -> "ImageRef":
        if isinstance(d, str):
            return cls(path=d)
        if not isinstance(d, Mapping) or not d.get("path"):
            raise InputError("an image needs a 'path'")
        known = {f.name for f in fields(cls)}
        return cls(**{k: (str(v) if v is not None else None) for k, v in d.items() if k in known})


@dataclass(frozen=True)
class TruthFinding:
    """A finding the synthetic generator drew (schema of ``medmm.synth.truth.Finding``)."""

    type: str
    organ: str | None = None
    side: str | None = None
    size_mm: float | None = None
    label: int | None = None
    category: str = "lesion"
    severity: str | None = None
    location: str | None = None
    interval: str | None = None
    boxes: tuple[Box, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["boxes"] = [b.to_dict() for b in self.boxes]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TruthFinding":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known and k != "boxes"}
        return cls(**kw, boxes=tuple(Box.from_dict(b) for b in d.get("boxes") or ()))


@dataclass(frozen=True)
class InjectedError:
    """An error made in the report on purpose (``medmm inject``'s provenance)."""

    type: str
    complex: str | None = None
    original_sentence: str | None = None
    edited_sentence: str | None = None
    start: int | None = None
    end: int | None = None
    detail: str = ""
    model: str = ""
    text_detectable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "InjectedError":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class StudyTruth:
    """What is known to be true of a study (synthetic generator, error injector); None in a hospital."""

    findings: tuple[TruthFinding, ...] = ()
    errors: tuple[InjectedError, ...] = ()
    has_error: bool | None = None  # None: not known
    original_report: str | None = None
    comparison: bool | None = None
    indication: str | None = None
    attributes: Mapping[str, Any] | None = None  # the probing attribute record of a synthetic study

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings], "errors": [e.to_dict() for e in self.errors],
                "has_error": self.has_error, "original_report": self.original_report, "comparison": self.comparison,
                "indication": self.indication, "attributes": dict(self.attributes) if self.attributes else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StudyTruth":
        return cls(findings=tuple(TruthFinding.from_dict(f) for f in d.get("findings") or ()),
                   errors=tuple(InjectedError.from_dict(e) for e in d.get("errors") or ()),
                   has_error=d.get("has_error"), original_report=d.get("original_report"),
                   comparison=d.get("comparison"), indication=d.get("indication"),
                   attributes=d.get("attributes"))

    def boxes(self) -> tuple[Box, ...]:
        """Every truth box, labelled with its finding's type."""
        return tuple(replace(b, label=f.type) for f in self.findings for b in f.boxes)


@dataclass(frozen=True)
class Study:
    """One study and its report, from any source (module docstring)."""

    study_id: str
    source: str | None = None  # "folder", "manifest", "synthetic", "dicomweb", "dimse", ...
    source_path: str | None = None  # the study folder or the manifest it came from (PHI-bearing: never logged)
    images: tuple[ImageRef, ...] = ()
    report: str | None = None  # the text as received
    report_path: str | None = None  # or where to read it (checked to lie inside the audited folder)
    report_status: str | None = None  # F final, C corrected, P preliminary (HL7 OBR-25 / FHIR status)
    report_id: str | None = None  # the feed's identifier of the report (HL7 message control id, FHIR id)
    header: HeaderFacts | None = None
    accession_number: str | None = None
    study_instance_uid: str | None = None
    patient_key: str | None = None
    exam_date: str | None = None  # YYYY-MM-DD
    exam_time: str | None = None  # HH:MM:SS
    exam_description: str | None = None
    regions: tuple[Box, ...] = ()  # known regions shown by the review app (synthetic truth boxes)
    truth: StudyTruth | None = None
    problem: str | None = None  # why this study cannot be checked (recorded as its failure)
    extra: Mapping[str, Any] = field(default_factory=dict)  # source-specific fields kept as given

    def __hash__(self) -> int:  # extra is a dict: hash the identity
        return hash((self.source, self.study_id, self.accession_number, self.study_instance_uid, self.report))

    @property
    def image_paths(self) -> tuple[str, ...]:
        """The paths of the images to read (labels and derived copies excluded)."""
        return tuple(i.path for i in self.images if i.role == "image")

    @property
    def view(self) -> str | None:
        return next((i.view for i in self.images if i.view), None)

    def with_report(self, text: str | None, **changes: Any) -> "Study":
        return replace(self, report=text, **changes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "images":
                v = [i.to_dict() for i in v]
            elif f.name == "regions":
                v = [b.to_dict() for b in v]
            elif f.name == "header":
                v = v.to_dict() if v is not None else None
            elif f.name == "truth":
                v = v.to_dict() if v is not None else None
            elif f.name == "extra":
                v = dict(v)
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Study":
        """The inverse of :meth:`to_dict` (unknown keys are refused: a typo is not silently dropped)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"study record: unknown keys {unknown} (known: {sorted(known)})")
        if not d.get("study_id"):
            raise InputError("study record: 'study_id' is required")
        kw = dict(d)
        kw["images"] = tuple(ImageRef.from_dict(i) for i in d.get("images") or ())
        kw["regions"] = tuple(Box.from_dict(b) for b in d.get("regions") or ())
        kw["header"] = HeaderFacts.from_mapping(d.get("header"))
        kw["truth"] = StudyTruth.from_dict(d["truth"]) if d.get("truth") else None
        kw["extra"] = dict(d.get("extra") or {})
        return cls(**kw)

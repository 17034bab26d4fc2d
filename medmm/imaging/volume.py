"""The :class:`Volume` type every medmm reader returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from medmm.imaging.problems import Problem

# Diagonal flip between DICOM patient space (LPS) and NIfTI/MONAI world space (RAS).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


# Keys accepted by HeaderFacts.from_mapping beside the field names (older medmm stores, report
# corpora and manifests wrote ``sex``; DICOM keywords are accepted too).
_HEADER_ALIASES: dict[str, str] = {
    "sex": "patient_sex", "PatientSex": "patient_sex", "Modality": "modality", "BodyPartExamined": "body_part",
    "ImageLaterality": "laterality", "Laterality": "laterality", "ViewPosition": "view_position",
    "NumberOfFrames": "n_frames", "Manufacturer": "manufacturer", "frames": "n_frames",
}
# The facts a report can contradict (what the report checker reads and the review store keeps).
REPORT_FACTS: tuple[str, ...] = ("modality", "body_part", "laterality", "view_position", "patient_sex")


@dataclass(frozen=True)
class HeaderFacts:
    """Header facts later modules use (report checking, probing, the review store). No names, IDs or dates.

    This is the one header type of medmm: readers build it from DICOM headers, manifests and
    report corpora convert through :meth:`from_mapping`, and everything that stores or prints
    it goes through :meth:`to_dict`.
    """

    modality: str | None = None
    body_part: str | None = None
    laterality: str | None = None  # ImageLaterality / Laterality / FrameLaterality: R, L, B, U
    view_position: str | None = None  # PA, AP, LL, RL, LATERAL, ...
    patient_sex: str | None = None  # M, F, O
    n_frames: int = 1
    manufacturer: str | None = None

    def to_dict(self, report_facts_only: bool = False) -> dict[str, Any]:
        """The facts as a plain dict (field names as keys); ``report_facts_only`` keeps :data:`REPORT_FACTS`."""
        # field values are str/int/None: a shallow dict (dataclasses.asdict deep-copies, on the store's write path)
        names = REPORT_FACTS if report_facts_only else _HEADER_FIELDS
        return {k: getattr(self, k) for k in names}

    as_dict = to_dict  # older name, kept for callers of medmm 0.1

    def is_empty(self) -> bool:
        return all(getattr(self, k) in (None, "") for k in REPORT_FACTS)

    @classmethod
    def from_mapping(cls, data: Any, notes: list[str] | None = None) -> "HeaderFacts | None":
        """Build from a mapping (a JSON header, a manifest record's facts, a store row) or return None.

        Field names and the aliases in ``_HEADER_ALIASES`` (``sex``, DICOM keywords) are read;
        empty strings become None; values are stripped strings (``n_frames`` an int). Unknown keys
        are ignored with a note in ``notes`` when given; a non-mapping gives None with a note.
        """
        if data is None:
            return None
        if isinstance(data, HeaderFacts):
            return data
        if not isinstance(data, Mapping):
            if notes is not None:
                notes.append(f"header ignored: expected a JSON object, got {type(data).__name__}")
            return None
        names = {f.name for f in fields(cls)}
        clean: dict[str, Any] = {}
        unknown = []
        for key, value in data.items():
            name = key if key in names else _HEADER_ALIASES.get(str(key))
            if name is None:
                unknown.append(str(key))
                continue
            if value in (None, ""):
                continue
            if name == "n_frames":
                try:
                    clean[name] = max(1, int(value))
                except (TypeError, ValueError):
                    if notes is not None:
                        notes.append(f"header n_frames ignored: not a number ({type(value).__name__})")
                continue
            clean[name] = str(value).strip() or None
        if unknown and notes is not None:
            notes.append(f"header keys ignored: {sorted(unknown)} (known: {sorted(names)})")
        return cls(**clean)


_HEADER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(HeaderFacts))


@dataclass(frozen=True)
class Window:
    """A VOI linear window (DICOM PS3.3 C.11.2.1.2) in modality-LUT output units."""

    center: float
    width: float
    name: str | None = None
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID


@dataclass(frozen=True, eq=False)
class VoiLut:
    """A VOI LUT from VOILUTSequence: input values first_mapped.. map to lut[...]."""

    first_mapped: int
    lut: np.ndarray
    name: str | None = None

    @property
    def max_output(self) -> int:
        return int(self.lut.max()) if self.lut.size else 0


@dataclass(frozen=True, eq=False)
class Volume:
    """A voxel array with its geometry and the header facts medmm needs.

    ``data`` is indexed ``[i, j, k]`` (plus a trailing RGB channel axis when ``rgb``, or a
    trailing time axis for 4-D NIfTI), as in NIfTI and MONAI. For DICOM, ``i`` runs along a
    row (column index), ``j`` down the columns (row index) and ``k`` over slices or frames.

    ``affine`` maps ``(i, j, k, 1)`` to **RAS** world coordinates in millimetres — the NIfTI
    and MONAI convention, *not* DICOM's LPS. ``affine_lps`` gives the DICOM form.
    The affine may be sheared (gantry tilt): its third column is the true slice step.

    Scalar data are float32 after the modality LUT (rescale slope/intercept or Modality LUT
    Sequence, per frame where the file has per-frame values) — i.e. in HU for CT.
    Display is a separate step (:mod:`medmm.imaging.views`): ``windows`` and ``voi_luts``
    are the file's own display options and ``display_inverted`` is True for MONOCHROME1
    (or Presentation LUT Shape INVERSE): low values are shown white.
    """

    data: np.ndarray
    affine: np.ndarray
    modality: str | None = None
    photometric: str | None = None  # as stored in the file (MONOCHROME1, PALETTE COLOR, ...)
    rgb: bool = False
    facts: HeaderFacts = field(default_factory=HeaderFacts)
    windows: tuple[Window, ...] = ()
    voi_luts: tuple[VoiLut, ...] = ()
    display_inverted: bool = False
    problems: tuple[Problem, ...] = ()
    series_uid: str | None = None
    source: str | None = None  # a path; never logged (paths can carry patient names)

    def __post_init__(self) -> None:
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got shape {aff.shape}")
        object.__setattr__(self, "affine", aff)
        n_spatial = self.data.ndim - (1 if self.rgb else 0)
        if n_spatial not in (3, 4):
            raise ValueError(f"Volume data must have 3 spatial axes (+channel/time), got shape {self.data.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape (i, j, k)."""
        return tuple(int(s) for s in self.data.shape[:3])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k (norms of the affine's columns)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def affine_lps(self) -> np.ndarray:
        """The affine in DICOM patient space (LPS)."""
        return LPS_TO_RAS @ self.affine

    def world(self, ijk: np.ndarray) -> np.ndarray:
        """World (RAS, mm) coordinates of voxel indices, shape (..., 3)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

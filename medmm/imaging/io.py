"""One entry point for every supported input: a DICOM file, a DICOM folder or a NIfTI file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medmm.errors import InputError
from medmm.imaging.dicom import read_header, require_pixels
from medmm.imaging.geometry import StackPlan, plan_stacks
from medmm.imaging.nifti import is_nifti, load_nifti, nifti_geometry
from medmm.imaging.series import Skipped, discover, load_dicom_file, load_dicom_folder
from medmm.imaging.volume import HeaderFacts, Volume


@dataclass(frozen=True)
class StackInfo:
    """What ``medmm info`` reports for one stack (headers only)."""

    series_uid: str | None
    modality: str | None
    shape: list[int]
    spacing: list[float]
    affine: list[list[float]]
    photometric: str | None
    n_files: int
    problems: list[dict[str, str]]
    usable: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "series_uid": self.series_uid,
            "modality": self.modality,
            "shape": self.shape,
            "spacing": self.spacing,
            "affine": self.affine,
            "photometric": self.photometric,
            "n_files": self.n_files,
            "problems": self.problems,
            "usable": self.usable,
        }


@dataclass
class Description:
    kind: str  # dicom-file | dicom-series | nifti
    series: list[StackInfo] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "series": [s.as_dict() for s in self.series],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


def _round(a: np.ndarray, nd: int = 6) -> list:
    return np.round(np.asarray(a, dtype=np.float64), nd).tolist()


def _stack_info(plan: StackPlan, series_uid: str | None, modality: str | None, photometric: str | None) -> StackInfo:
    shape = list(plan.shape)
    if plan.planes[0].samples == 3 or (photometric or "").upper() == "PALETTE COLOR":
        shape = shape + [3]
    return StackInfo(
        series_uid=series_uid,
        modality=modality,
        shape=shape,
        spacing=_round(plan.spacing),
        affine=_round(plan.affine),
        photometric=photometric,
        n_files=len({p.path for p in plan.planes}),
        problems=[p.as_dict() for p in plan.problems],
        usable=plan.usable,
    )


def describe(path: str, workers: int = 1) -> Description:
    """Headers-only description of a DICOM file, DICOM folder tree or NIfTI file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        found = discover(path, workers=workers)
        if not found.series:
            raise InputError(f"{path}: no DICOM images found ({len(found.skipped)} file(s) skipped)")
        desc = Description("dicom-series", skipped=found.skipped)
        for group in found.series:
            for plan in group.plans:
                desc.series.append(_stack_info(plan, group.series_uid, group.first.modality, group.first.photometric))
        return desc
    if is_nifti(path):
        shape, affine = nifti_geometry(path)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        info = StackInfo(None, None, list(shape), _round(spacing), _round(affine), None, 1, [], True)
        return Description("nifti", [info])
    header = read_header(path)
    require_pixels(header)
    desc = Description("dicom-file")
    for plan in plan_stacks(list(header.planes)):
        desc.series.append(_stack_info(plan, header.series_uid, header.modality, header.photometric))
    return desc


def load(path: str, force: bool = False, max_voxels: int | None = None) -> list[Volume]:
    """Load every volume in ``path`` (DICOM file, DICOM folder tree or NIfTI).

    Raises :class:`~medmm.errors.SeriesGeometryError` for a series whose problems would make
    the volume wrong, unless ``force`` (see :mod:`medmm.imaging.problems`).
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        volumes, _ = load_dicom_folder(path, force=force, max_voxels=max_voxels)
        return volumes
    if is_nifti(path):
        return [load_nifti(path, max_voxels=max_voxels)]
    return load_dicom_file(path, force=force, max_voxels=max_voxels)


def load_volume(path: str, force: bool = False, max_voxels: int | None = None) -> Volume:
    """Load exactly one volume; refuse with the list of candidates when there are several."""
    volumes = load(path, force=force, max_voxels=max_voxels)
    if len(volumes) != 1:
        shapes = "; ".join(f"{v.series_uid or '?'} {list(v.shape)}" for v in volumes)
        raise InputError(
            f"{path}: holds {len(volumes)} volumes ({shapes}); point at one series folder, "
            "or run `medmm info` to see them"
        )
    return volumes[0]


_NOT_DICOM_SUFFIXES = (".nii", ".nii.gz", ".png", ".jpg", ".jpeg", ".txt", ".json", ".jsonl", ".csv")


def header_facts(paths: str | os.PathLike[str] | list[str] | tuple[str, ...], max_files_per_folder: int = 5) -> HeaderFacts | None:
    """Header facts of a study from its first readable DICOM file (headers only, no pixels decoded).

    ``paths``: DICOM files and/or folders (a folder is scanned with the imaging file policy:
    symlinks out of the tree, FIFOs and devices skipped; at most ``max_files_per_folder`` tried
    per folder). Files that are not DICOM or cannot be read are skipped; None when none is readable.
    """
    from medmm.errors import MedmmError
    from medmm.imaging.series import iter_files

    items = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    for path in items:
        candidates = [path]
        if os.path.isdir(path):
            candidates = [p for p, reason in iter_files(path) if reason is None
                          and not p.lower().endswith(_NOT_DICOM_SUFFIXES)][:max_files_per_folder]
        for c in candidates:
            if c.lower().endswith(_NOT_DICOM_SUFFIXES):
                continue
            try:
                return read_header(c).facts
            except MedmmError:
                continue
    return None

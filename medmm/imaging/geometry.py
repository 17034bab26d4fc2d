"""From image planes to regular stacks: grouping, sorting along the normal, problem detection.

This works on header records only (:class:`~medmm.imaging.dicom.Plane`), so the header index,
``medmm info`` and the pixel loader share one implementation and always agree. Policies for
each problem live in :mod:`medmm.imaging.problems`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from medmm.imaging.dicom import Plane
from medmm.imaging.problems import (
    GAP_FACTOR,
    ORIENTATION_ATOL,
    SPACING_ATOL_MM,
    SPACING_RTOL,
    TILT_DEGREES,
    Policy,
    Problem,
)
from medmm.imaging.volume import LPS_TO_RAS

DUPLICATE_ATOL_MM = 0.01


@dataclass(frozen=True, eq=False)
class StackPlan:
    """A sorted stack of planes and the geometry it will have once decoded."""

    planes: tuple[Plane, ...]
    affine: np.ndarray  # RAS
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    forced: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        first = self.planes[0]
        return (first.cols, first.rows, len(self.planes))

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.policy is Policy.ERROR)

    @property
    def usable(self) -> bool:
        """True when the volume is correct as planned (no error-policy problem, or forced)."""
        return self.forced or not self.errors

    @property
    def orientation(self) -> tuple[float, ...] | None:
        return self.planes[0].orientation


def _affine(orientation: tuple[float, ...] | None, pixel_spacing: tuple[float, float] | None,
            step: np.ndarray, origin: np.ndarray) -> np.ndarray:
    row_cos = np.asarray(orientation[:3] if orientation else (1.0, 0.0, 0.0))
    col_cos = np.asarray(orientation[3:] if orientation else (0.0, 1.0, 0.0))
    row_sp, col_sp = pixel_spacing if pixel_spacing else (1.0, 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_sp  # i runs along a row: spacing between columns
    lps[:3, 1] = col_cos * row_sp  # j runs down a column: spacing between rows
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    n = np.cross(orientation[:3], orientation[3:])
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else n


def _group_by_orientation(planes: list[Plane]) -> list[list[Plane]]:
    groups: list[tuple[tuple[float, ...] | None, list[Plane]]] = []
    for p in planes:
        key = p.orientation if p.position is not None else None
        for ref, members in groups:
            if ref is key or (
                ref is not None
                and key is not None
                and max(abs(a - b) for a, b in zip(ref, key)) <= ORIENTATION_ATOL  # plain floats: hot loop
            ):
                members.append(p)
                break
        else:
            groups.append((key, [p]))
    return [members for _, members in groups]


def plan_stacks(planes: list[Plane] | tuple[Plane, ...], force: bool = False) -> list[StackPlan]:
    """Group planes into regular stacks and attach every detected problem.

    Splits by shape and orientation (policy *split*); within a group sorts by position along
    the slice normal (never by InstanceNumber) and detects gaps, uneven spacing, duplicates,
    tilt and single slices. With ``force``, error-policy problems are resolved as documented
    in :mod:`medmm.imaging.problems` instead of leaving the plan unusable.
    """
    planes = list(planes)
    if not planes:
        return []
    by_shape: dict[tuple, list[Plane]] = defaultdict(list)
    for p in planes:
        by_shape[(p.rows, p.cols, p.samples, _rounded(p.pixel_spacing))].append(p)
    shape_problem = None
    if len(by_shape) > 1:
        desc = ", ".join(f"{k[1]}x{k[0]} px spacing {k[3]}" for k in by_shape)
        shape_problem = Problem(
            "inconsistent_shape", f"images of different size or pixel spacing in one series ({desc}); split by shape"
        )
    plans: list[StackPlan] = []
    for members in by_shape.values():
        groups = _group_by_orientation(members)
        orient_problem = None
        if len(groups) > 1:
            orient_problem = Problem(
                "mixed_orientation",
                f"{len(groups)} different slice orientations in one series (localizers or radial slices); "
                "split into one stack per orientation",
            )
        for group in groups:
            inherited = tuple(p for p in (shape_problem, orient_problem) if p is not None)
            plans.extend(_plan_group(group, inherited, force))
    return plans


def _rounded(v: tuple[float, ...] | None) -> tuple[float, ...] | None:
    return None if v is None else tuple(round(x, 4) for x in v)


def _plan_group(group: list[Plane], inherited: tuple[Problem, ...], force: bool) -> list[StackPlan]:
    first = group[0]
    if first.position is None or first.orientation is None:
        ordered = sorted(group, key=lambda p: (p.instance_number is None, p.instance_number or 0, p.path, p.frame or 0))
        step = np.array([0.0, 0.0, 1.0])
        affine = _affine(None, first.pixel_spacing, step, np.zeros(3))
        what = "spacing from PixelSpacing/ImagerPixelSpacing" if first.pixel_spacing else "no pixel spacing: 1 mm assumed"
        prob = Problem(
            "no_geometry",
            f"no ImagePositionPatient/ImageOrientationPatient; {len(ordered)} frame(s) in stored order, "
            f"identity orientation, {what}",
        )
        return [StackPlan(tuple(ordered), affine, inherited + (prob,), forced=force)]

    normal = _normal(first.orientation)
    pos = np.array([p.position for p in group], dtype=np.float64)
    dist = pos @ normal
    order = sorted(range(len(group)), key=lambda i: (dist[i], group[i].instance_number or 0, group[i].frame or 0))
    ordered = [group[i] for i in order]
    dist = dist[order]
    pos = pos[order]

    problems: list[Problem] = list(inherited)
    # Duplicate positions.
    dup_mask = np.zeros(len(ordered), dtype=bool)
    if len(ordered) > 1:
        close = np.abs(np.diff(dist)) < DUPLICATE_ATOL_MM
        dup_mask[1:] = close
    if dup_mask.any():
        n_dup = int(dup_mask.sum())
        problems.append(
            Problem(
                "duplicate_position",
                f"{n_dup} slice(s) share a position with another (several echoes, phases or acquisitions?)"
                + ("; forced: kept the first slice of each position" if force else ""),
            )
        )
        if force:
            keep = ~dup_mask
            ordered = [p for p, k in zip(ordered, keep) if k]
            dist, pos = dist[keep], pos[keep]

    if len(ordered) == 1:
        p = ordered[0]
        if p.spacing_between_slices:
            thick, source = p.spacing_between_slices, "SpacingBetweenSlices"
        elif p.slice_thickness:
            thick, source = p.slice_thickness, "SliceThickness"
        else:
            thick, source = 1.0, "no thickness in the header: 1 mm assumed"
        problems.append(Problem("single_slice", f"one slice: out-of-plane spacing {thick:g} mm from {source}"))
        affine = _affine(p.orientation, p.pixel_spacing, normal * thick, pos[0])
        return [StackPlan(tuple(ordered), affine, tuple(problems), forced=force)]

    steps = np.diff(dist)
    positive = steps[steps > DUPLICATE_ATOL_MM]
    typical = float(np.median(positive)) if positive.size else 0.0
    gap_idx = [i for i, s in enumerate(steps) if typical > 0 and s > GAP_FACTOR * typical]
    if gap_idx:
        sizes = ", ".join(f"{steps[i]:.2f} mm after slice {i}" for i in gap_idx)
        gap = Problem(
            "gap",
            f"missing slices: typical step {typical:.3g} mm but {sizes}"
            + ("; forced: split into contiguous runs" if force else ""),
        )
        if force:
            out: list[StackPlan] = []
            bounds = [0] + [i + 1 for i in gap_idx] + [len(ordered)]
            for a, b in zip(bounds[:-1], bounds[1:]):
                for plan in _plan_group(ordered[a:b], tuple(problems) + (gap,), force):
                    out.append(plan)
            return out
        problems.append(gap)
    else:
        uneven = ~np.isclose(positive, typical, rtol=SPACING_RTOL, atol=SPACING_ATOL_MM) if positive.size else []
        if np.any(uneven):
            problems.append(
                Problem(
                    "uneven_spacing",
                    f"slice spacing varies from {positive.min():.3g} to {positive.max():.3g} mm "
                    f"(median {typical:.3g} mm)" + ("; forced: stacked at the median step" if force else ""),
                )
            )

    n = len(ordered)
    step_vec = (pos[-1] - pos[0]) / (n - 1)
    if gap_idx or any(p.code == "uneven_spacing" for p in problems):
        step_vec = normal * typical if typical > 0 else step_vec  # nominal only: the plan is not usable as is
    else:
        # In-plane drift of positions along the stack: tilt (a sheared but exact affine).
        norm = np.linalg.norm(step_vec)
        if norm > 0:
            cos = float(np.clip(abs(step_vec @ normal) / norm, -1.0, 1.0))
            angle = float(np.degrees(np.arccos(cos)))
            if angle > TILT_DEGREES:
                problems.append(
                    Problem(
                        "gantry_tilt",
                        f"slices are offset along the slice plane ({angle:.2f}° tilt); the affine keeps the true "
                        "sheared slice step, tools assuming orthogonal axes would misplace voxels",
                    )
                )
    affine = _affine(first.orientation, first.pixel_spacing, step_vec, pos[0])
    return [StackPlan(tuple(ordered), affine, tuple(problems), forced=force)]

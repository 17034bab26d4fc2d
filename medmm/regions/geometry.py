"""The geometry a box conversion needs — shape and RAS affine, no pixel data — and the index maps
of the view chain (acquisition voxel indices → display-canonical indices → a view's plane).

Everything here works on **voxel edges**: voxel ``p`` along an axis covers ``[p, p + 1)``, so a
half-open pixel range ``[x1, x2)`` (``x2`` exclusive, as in the synth manifest) maps to another
half-open range, and a flip of an axis of ``n`` voxels maps edge ``e`` to ``n - e``. Axis
permutations and flips are the only operations on the way to a display plane
(:func:`medmm.imaging.views.canonical_display` uses nibabel's orientation transform, and so do
we), which is why the acquisition ↔ display conversions are exact in integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from medmm.errors import InputError

AXES: tuple[str, ...] = ("axial", "coronal", "sagittal")
# The canonical (display) array axis a view slices along: axial along k (S), coronal along j (P),
# sagittal along i (L) — as medmm.imaging.views.plane does.
VIEW_SLICE_AXIS: dict[str, int] = {"axial": 2, "coronal": 1, "sagittal": 0}
# (column axis, row axis, rows flipped so superior is at the top) of each view, in canonical axes.
VIEW_PLANE_AXES: dict[str, tuple[int, int, bool]] = {
    "axial": (0, 1, False), "coronal": (0, 2, True), "sagittal": (1, 2, True),
}

Extent = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # half-open [lo, hi) per axis


@dataclass(frozen=True, eq=False)
class Geometry:
    """Spatial shape ``(i, j, k)`` and the RAS affine of a volume — all a box conversion needs.

    Build it from a :class:`~medmm.imaging.volume.Volume` (:meth:`of`), from a NIfTI header
    (:meth:`from_nifti`, reads no voxels) or from ``shape`` + ``affine`` directly.
    ``i`` is the acquisition column, ``j`` the row, ``k`` the slice in position order.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in tuple(self.shape)[:3])
        if len(shape) == 2:
            shape = (shape[0], shape[1], 1)
        if len(shape) != 3 or min(shape) < 1:
            raise InputError(f"a geometry needs a 3-D shape of positive sizes, got {self.shape!r}")
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-12:
            raise InputError("a geometry needs a finite, invertible 4x4 affine")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", aff)

    @classmethod
    def of(cls, source: Any) -> "Geometry":
        """The geometry of a Volume (or anything with ``shape``/``affine``), or ``source`` itself."""
        if isinstance(source, Geometry):
            return source
        if hasattr(source, "affine") and hasattr(source, "shape"):
            return cls(tuple(source.shape)[:3], source.affine)  # type: ignore[arg-type]
        raise InputError(f"expected a Volume or a Geometry, got {type(source).__name__}")

    @classmethod
    def from_nifti(cls, path: str) -> "Geometry":
        """Shape and affine from a NIfTI header (no voxel data read)."""
        from medmm.imaging.nifti import nifti_geometry

        shape, affine = nifti_geometry(path)
        return cls(tuple(shape[:3]) if len(shape) >= 3 else (shape[0], shape[1], 1), affine)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "affine": self.affine.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Geometry":
        return cls(tuple(d["shape"]), np.asarray(d["affine"], dtype=np.float64))  # type: ignore[arg-type]

    @cached_property
    def ornt(self) -> tuple[tuple[int, int], ...]:
        """Per acquisition axis ``(canonical axis, +1 | -1)``: the transform of ``canonical_display``."""
        import nibabel.orientations as nio

        current = nio.io_orientation(self.affine)
        target = nio.axcodes2ornt(("L", "P", "S"))
        t = nio.ornt_transform(current, target)
        return tuple((int(a), int(f)) for a, f in t)

    @cached_property
    def display_shape(self) -> tuple[int, int, int]:
        """Shape of the display-canonical array (i → Left, j → Posterior, k → Superior)."""
        out = [0, 0, 0]
        for a, (c, _f) in enumerate(self.ornt):
            out[c] = self.shape[a]
        return tuple(out)  # type: ignore[return-value]

    def acquisition_axis(self) -> str:
        """The view whose planes are the acquired slices (``axial`` for an axial series, ...)."""
        c = self.ornt[2][0]
        return next(v for v, ax in VIEW_SLICE_AXIS.items() if ax == c)

    def view_size(self, axis: str) -> tuple[int, int, int]:
        """``(width, height, n_slices)`` of ``axis`` views as :func:`medmm.imaging.views.plane` renders them."""
        check_axis(axis)
        col, row, _ = VIEW_PLANE_AXES[axis]
        ds = self.display_shape
        return ds[col], ds[row], ds[VIEW_SLICE_AXIS[axis]]


def check_axis(axis: str) -> None:
    if axis not in AXES:
        raise InputError(f"unknown view axis {axis!r}: use one of {', '.join(AXES)}")


def _flip(lo: int, hi: int, n: int) -> tuple[int, int]:
    return n - hi, n - lo


def acquisition_to_canonical(ext: Extent, g: Geometry) -> Extent:
    out: list[tuple[int, int]] = [(0, 0)] * 3
    for a, (c, f) in enumerate(g.ornt):
        lo, hi = ext[a]
        out[c] = (lo, hi) if f > 0 else _flip(lo, hi, g.shape[a])
    return tuple(out)  # type: ignore[return-value]


def canonical_to_acquisition(ext: Extent, g: Geometry) -> Extent:
    out: list[tuple[int, int]] = [(0, 0)] * 3
    for a, (c, f) in enumerate(g.ornt):
        lo, hi = ext[c]
        out[a] = (lo, hi) if f > 0 else _flip(lo, hi, g.shape[a])
    return tuple(out)  # type: ignore[return-value]


def canonical_to_view(ext: Extent, axis: str, g: Geometry) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``((x1, x2), (y1, y2), (s1, s2))`` of a canonical extent in an ``axis`` view."""
    col, row, flipped = VIEW_PLANE_AXES[axis]
    ys = ext[row]
    if flipped:
        ys = _flip(ys[0], ys[1], g.display_shape[row])
    return ext[col], ys, ext[VIEW_SLICE_AXIS[axis]]


def view_to_canonical(xs: tuple[int, int], ys: tuple[int, int], ss: tuple[int, int], axis: str, g: Geometry) -> Extent:
    col, row, flipped = VIEW_PLANE_AXES[axis]
    if flipped:
        ys = _flip(ys[0], ys[1], g.display_shape[row])
    out: list[tuple[int, int]] = [(0, 0)] * 3
    out[col], out[row], out[VIEW_SLICE_AXIS[axis]] = xs, ys, ss
    return tuple(out)  # type: ignore[return-value]


def centre_index(lo: int, hi: int) -> int:
    """The voxel at the centre of ``[lo, hi)`` (the lower one of two central voxels)."""
    return lo + max(hi - lo - 1, 0) // 2

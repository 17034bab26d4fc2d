"""One :class:`Box` for the whole of medmm, and the converters between its frames.

A box is a rectangle ``x1, y1, x2, y2`` in one plane — x = column, y = row, ``x2``/``y2``
**exclusive** (the box covers columns ``x1 .. x2-1``, as in the synth manifest) — plus the
``frame`` that says whose pixels those are (see :mod:`medmm.regions.frames`), the ``image`` of
the study it belongs to and the ``slice`` of that image (``None`` for a 2-D image).

Conversions need only geometry (shape + affine, :class:`~medmm.regions.geometry.Geometry`, or a
Volume), never pixel data::

    box = Box(30, 40, 52, 61, slice=17)                     # acquisition pixels of image 0
    d = box.to_display(geom)                                # the plane render(index=d.slice, axis=...) shows
    m = d.to_model(InputTransform.identity(*geom.view_size(d.frame.axis)[:2]).smart_resize())
    m.from_model().to_acquisition(geom) == box              # exact round trip
    w = box.to_world(geom); w.to_acquisition(geom) == box   # RAS mm, exact for axis-aligned volumes

Acquisition ↔ display is a permutation and flips of voxel edges: exact. Model coordinates are
kept as floats (rounding belongs to whoever writes them as text), so model round trips are
exact; rounded model coordinates come back within ``0.5 / scale`` pixels. World boxes are the
axis-aligned bounding box of the voxel region (edges at centres ± half a voxel); for an oblique
volume that box is larger than the region and the way back gives its bounding box.

A box converted to a view whose planes are not the box's plane (an axial box shown on a coronal
view) becomes its footprint in the view plane through the box's centre: one pixel thick along
the box's own slice axis. The same rule picks the slice when a world box spans several slices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Union

import numpy as np

from medmm.errors import InputError
from medmm.regions.frames import (ACQUISITION, WORLD, Acquisition, Display, Frame, InputTransform, Model, World,
                                  frame_from_dict)
from medmm.regions.geometry import (Extent, Geometry, acquisition_to_canonical, canonical_to_acquisition,
                                    canonical_to_view, centre_index, view_to_canonical)

GeometryLike = Any  # a Geometry, a Volume, or anything with ``shape`` and ``affine``
_COORDS = ("x1", "y1", "x2", "y2")


def _round(v: float) -> int:
    """Round half up (pixel edges: 2.5 -> 3), the same in both directions of a conversion."""
    return int(math.floor(v + 0.5))


@dataclass(frozen=True)
class Box:
    """A rectangle in a known frame. ``z1``/``z2`` (the S extent) are used only in the world frame.

    ``label`` names what is inside (a finding type, an organ); ``score`` is a prediction's
    confidence (ranking for :func:`medmm.regions.match.hit_at_k`).
    """

    x1: float
    y1: float
    x2: float
    y2: float
    frame: Frame = ACQUISITION
    image: int | None = 0
    slice: int | None = None
    z1: float | None = None
    z2: float | None = None
    label: str | None = None
    score: float | None = None

    def __post_init__(self) -> None:
        if not all(math.isfinite(float(v)) for v in (self.x1, self.y1, self.x2, self.y2)):
            raise InputError(f"box coordinates must be finite numbers, got {self.as_tuple()}")
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise InputError(f"box {self.as_tuple()} is inverted: x2/y2 (exclusive) must be at least x1/y1")
        if isinstance(self.frame, World):
            if self.z1 is None or self.z2 is None or self.z2 < self.z1:
                raise InputError("a world box needs z1 <= z2 (the superior extent in mm)")
        elif self.z1 is not None or self.z2 is not None:
            raise InputError("z1/z2 belong to world boxes only; pixel boxes carry a slice index")

    # -- plain accessors --------------------------------------------------------------------
    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        """Area in the frame's units (pixels², or mm² of the x/y face for world boxes)."""
        return self.width * self.height

    @property
    def volume(self) -> float:
        """``area × depth``: the depth is ``z2 - z1`` for world boxes and one slice otherwise."""
        return self.area * ((self.z2 - self.z1) if isinstance(self.frame, World) else 1.0)  # type: ignore[operator]

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0 or (isinstance(self.frame, World) and self.z2 <= self.z1)  # type: ignore[operator]

    def clip(self, width: float, height: float) -> "Box":
        """The box clipped to ``[0, width) × [0, height)`` (may become empty)."""
        x1, x2 = min(max(self.x1, 0), width), min(max(self.x2, 0), width)
        y1, y2 = min(max(self.y1, 0), height), min(max(self.y2, 0), height)
        return replace(self, x1=x1, y1=y1, x2=x2, y2=y2)

    # -- the view chain ---------------------------------------------------------------------
    def _acq_extent(self, g: Geometry) -> Extent:
        n = g.shape[2]
        k = 0 if self.slice is None else int(self.slice)
        if self.slice is None and n != 1:
            raise InputError(f"this acquisition box has no slice but the image has {n} slices: give slice=...")
        if not 0 <= k < n:
            raise InputError(f"box slice {k} out of range: the image has {n} slice(s) (0..{n - 1})")
        return ((_round(self.x1), _round(self.x2)), (_round(self.y1), _round(self.y2)), (k, k + 1))

    def _with_acq_extent(self, ext: Extent, g: Geometry) -> "Box":
        (x1, x2), (y1, y2), (k1, k2) = ext
        k = centre_index(k1, k2)
        return replace(self, x1=x1, y1=y1, x2=x2, y2=y2, frame=ACQUISITION, z1=None, z2=None,
                       slice=None if g.shape[2] == 1 else k)

    def _canonical_extent(self, g: Geometry) -> Extent:
        """Half-open voxel-edge extent in the display-canonical array (LPS axes)."""
        if isinstance(self.frame, Acquisition):
            return acquisition_to_canonical(self._acq_extent(g), g)
        if isinstance(self.frame, Display):
            axis = self.frame.axis
            _w, _h, n = g.view_size(axis)
            s = 0 if self.slice is None else int(self.slice)
            if self.slice is None and n != 1:
                raise InputError(f"this display box has no slice but the {axis} view has {n} slices: give slice=...")
            if not 0 <= s < n:
                raise InputError(f"display slice {s} out of range: the {axis} view has {n} slice(s) (0..{n - 1})")
            return view_to_canonical((_round(self.x1), _round(self.x2)), (_round(self.y1), _round(self.y2)),
                                     (s, s + 1), axis, g)
        return self.to_acquisition(g)._canonical_extent(g)

    def to_acquisition(self, geometry: GeometryLike | None = None) -> "Box":
        """This box in acquisition pixels of its image (needs ``geometry`` unless it is already there
        or is a model box whose source is the acquisition frame)."""
        if isinstance(self.frame, Acquisition):
            return self
        if isinstance(self.frame, Model):
            src = self.from_model()
            return src if isinstance(src.frame, Acquisition) else src.to_acquisition(geometry)
        g = _need(geometry, self)
        if isinstance(self.frame, World):
            return self._with_acq_extent(_world_to_extent(self, g), g)
        return self._with_acq_extent(canonical_to_acquisition(self._canonical_extent(g), g), g)

    def to_display(self, geometry: GeometryLike, axis: str | None = None) -> "Box":
        """This box in the ``axis`` view's display plane (default: the view of the acquired slices,
        :meth:`Geometry.acquisition_axis`); ``slice`` becomes the display slice index to render."""
        g = _need(geometry, self)
        if isinstance(self.frame, Model):
            return self.from_model().to_display(g, axis)
        axis = axis or (self.frame.axis if isinstance(self.frame, Display) else g.acquisition_axis())
        if isinstance(self.frame, Display) and self.frame.axis == axis:
            return self
        (x1, x2), (y1, y2), (s1, s2) = canonical_to_view(self._canonical_extent(g), axis, g)
        return replace(self, x1=x1, y1=y1, x2=x2, y2=y2, frame=Display(axis), slice=centre_index(s1, s2), z1=None, z2=None)

    def to_model(self, transform: InputTransform, clip: bool = True) -> "Box":
        """This (acquisition or display) box in the pixels of ``transform``'s output (floats)."""
        if not isinstance(self.frame, (Acquisition, Display)):
            raise InputError(f"to_model needs an acquisition or display box, this one is in the {_name(self.frame)} "
                             "frame: convert it first (to_display / to_acquisition)")
        x1, y1 = transform.forward(self.x1, self.y1)
        x2, y2 = transform.forward(self.x2, self.y2)
        out = replace(self, x1=x1, y1=y1, x2=x2, y2=y2, frame=Model(transform, self.frame))
        return out.clip(*transform.size) if clip else out

    def from_model(self) -> "Box":
        """A model-input box back in its source frame, rounded to whole pixel edges."""
        if not isinstance(self.frame, Model):
            raise InputError(f"from_model needs a model-frame box, this one is in the {_name(self.frame)} frame")
        t = self.frame.transform
        x1, y1 = t.inverse(self.x1, self.y1)
        x2, y2 = t.inverse(self.x2, self.y2)
        return replace(self, x1=_round(x1), y1=_round(y1), x2=_round(x2), y2=_round(y2), frame=self.frame.source)

    def to_world(self, geometry: GeometryLike) -> "Box":
        """The axis-aligned RAS (mm) bounding box of this box's voxels: x = R, y = A, z = S."""
        if isinstance(self.frame, World):
            return self
        g = _need(geometry, self)
        ext = self.to_acquisition(g)._acq_extent(g)
        corners = np.array([[a - 0.5, b - 0.5, c - 0.5] for a in ext[0] for b in ext[1] for c in ext[2]])
        world = corners @ g.affine[:3, :3].T + g.affine[:3, 3]
        lo, hi = world.min(axis=0), world.max(axis=0)
        return replace(self, x1=float(lo[0]), y1=float(lo[1]), x2=float(hi[0]), y2=float(hi[1]),
                       z1=float(lo[2]), z2=float(hi[2]), frame=WORLD, slice=None)

    def from_world(self, geometry: GeometryLike) -> "Box":
        """A world box in acquisition pixels (same as :meth:`to_acquisition`)."""
        return self.to_acquisition(geometry)

    def to_frame(self, frame: Frame, geometry: GeometryLike | None = None) -> "Box":
        """This box in ``frame`` (any of the four kinds)."""
        if isinstance(frame, Acquisition):
            return self.to_acquisition(geometry)
        if isinstance(frame, Display):
            return self.to_display(geometry, frame.axis)
        if isinstance(frame, World):
            return self.to_world(geometry)
        src = self.to_frame(frame.source, geometry)
        return src.to_model(frame.transform)

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"image", "slice", "x1", "y1", "x2", "y2", "frame", ...}``: the synth manifest keys plus
        the frame (``"axis"`` for display, ``"transform"``/``"source"`` for model, ``"z1"``/``"z2"`` for world)."""
        d: dict[str, Any] = {"image": self.image, "slice": self.slice}
        for k in _COORDS:
            v = getattr(self, k)
            d[k] = int(v) if float(v).is_integer() and not isinstance(self.frame, (Model, World)) else float(v)
        if isinstance(self.frame, World):
            d["z1"], d["z2"] = float(self.z1), float(self.z2)  # type: ignore[arg-type]
        d.update(self.frame.to_dict())
        if self.label is not None:
            d["label"] = self.label
        if self.score is not None:
            d["score"] = float(self.score)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Box":
        """Read :meth:`to_dict` output; a dict without ``"frame"`` (the synth manifest form) is acquisition."""
        if not isinstance(d, dict):
            raise InputError(f"not a box: expected a JSON object with x1, y1, x2, y2, got {type(d).__name__}")
        try:
            frame = frame_from_dict(d)
            world = isinstance(frame, World)
            label = d.get("label")
            return cls(*(float(d[k]) if not float(d[k]).is_integer() or isinstance(frame, (Model, World))
                         else int(d[k]) for k in _COORDS),
                       frame=frame, image=None if d.get("image") is None else int(d["image"]),
                       slice=None if d.get("slice") is None else int(d["slice"]),
                       z1=float(d["z1"]) if world else None, z2=float(d["z2"]) if world else None,
                       label=None if label is None else str(label),
                       score=None if d.get("score") is None else float(d["score"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a box: {type(exc).__name__} {exc} (expected keys x1, y1, x2, y2 and optionally "
                             "image, slice, frame)") from exc


BoxLike = Union[Box, tuple[float, float, float, float], list[float]]


def as_box(value: BoxLike | dict[str, Any], frame: Frame | None = None, **fields: Any) -> Box:
    """A :class:`Box` from a Box, a dict (:meth:`Box.from_dict`) or a plain ``(x1, y1, x2, y2)``
    (in ``frame``, which a plain tuple needs)."""
    if isinstance(value, Box):
        return value
    if isinstance(value, dict):
        return Box.from_dict(value)
    if frame is None:
        raise InputError("a plain (x1, y1, x2, y2) box needs its frame")
    x1, y1, x2, y2 = (float(v) for v in value)
    return Box(x1, y1, x2, y2, frame=frame, **fields)


def record_regions(record: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The region boxes of a manifest record as :meth:`Box.to_dict` JSON (frame explicit): its
    ``"regions"`` list, else (a synthetic manifest) its findings' truth boxes labelled with the
    finding ``type``. Raises :class:`~medmm.errors.InputError` on a box that cannot be read."""
    regions = tuple(Box.from_dict(b).to_dict() for b in record.get("regions") or ())
    if not regions and isinstance(record.get("findings"), list):
        regions = tuple(Box.from_dict({**b, "label": f.get("type")}).to_dict() for f in record["findings"]
                        if isinstance(f, dict) for b in f.get("boxes") or ())
    return regions


def _need(geometry: GeometryLike | None, box: Box) -> Geometry:
    if geometry is None:
        raise InputError(f"converting a {_name(box.frame)}-frame box needs the image geometry (a Volume or Geometry)")
    return Geometry.of(geometry)


def _name(frame: Frame) -> str:
    return frame.to_dict()["frame"]


def _world_to_extent(box: Box, g: Geometry) -> Extent:
    corners = np.array([[x, y, z] for x in (box.x1, box.x2) for y in (box.y1, box.y2)
                        for z in (box.z1, box.z2)], dtype=np.float64)
    ijk = (corners - g.affine[:3, 3]) @ np.linalg.inv(g.affine[:3, :3]).T + 0.5
    lo, hi = ijk.min(axis=0), ijk.max(axis=0)
    return tuple((_round(a), max(_round(b), _round(a) + 1)) for a, b in zip(lo, hi))  # type: ignore[return-value]


def same_plane(a: Box, b: Box) -> bool:
    """True when two boxes can overlap: same frame, same image and (for pixel frames) same slice."""
    if a.frame != b.frame:
        raise InputError(f"cannot compare boxes in different frames ({_name(a.frame)} vs {_name(b.frame)}): "
                         "convert one first")
    return a.image == b.image and (isinstance(a.frame, World) or a.slice == b.slice)


def intersection(a: Box, b: Box) -> float:
    """Overlap area (or volume for world boxes) of two boxes in the same frame."""
    if not same_plane(a, b):
        return 0.0
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    if isinstance(a.frame, World):
        d = min(a.z2, b.z2) - max(a.z1, b.z1)  # type: ignore[operator, type-var]
        return w * h * d if d > 0 else 0.0
    return w * h


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes in the same frame (0 on different images or slices;
    3-D for world boxes). Raises :class:`~medmm.errors.InputError` across frames."""
    inter = intersection(a, b)
    if inter <= 0:
        return 0.0
    return float(inter / (a.volume + b.volume - inter))

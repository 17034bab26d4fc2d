"""The coordinate frames a :class:`~medmm.regions.box.Box` can be in, and the model-input transform.

* :data:`ACQUISITION` — pixels of the image as stored: x = column (volume axis ``i``), y = row
  (``j``), ``slice`` = index in position order (``k``); ``None`` for a 2-D image.
* :class:`Display` ``(axis)`` — pixels of the plane :func:`medmm.imaging.views.plane` / ``render``
  produce for ``axis`` (radiological orientation), ``slice`` = the display slice index.
* :class:`Model` ``(transform, source)`` — pixels of the image a model receives, after the
  :class:`InputTransform` (resize / letterbox / pad / crop, or a processor's own resize such as
  Qwen2-VL ``smart_resize``) was applied to an image in the ``source`` frame (acquisition or display).
* :data:`WORLD` — millimetres in RAS patient space (the volume affine); the box is the axis-aligned
  bounding box of the voxel region (voxel edges, i.e. centres ± half a voxel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Union

from medmm.errors import InputError
from medmm.regions.geometry import check_axis


@dataclass(frozen=True)
class Acquisition:
    """Acquisition pixels (column, row, slice in position order)."""

    def to_dict(self) -> dict[str, Any]:
        return {"frame": "acquisition"}


@dataclass(frozen=True)
class Display:
    """Pixels of the rendered display plane of a view (``axial`` | ``coronal`` | ``sagittal``)."""

    axis: str = "axial"

    def __post_init__(self) -> None:
        check_axis(self.axis)

    def to_dict(self) -> dict[str, Any]:
        return {"frame": "display", "axis": self.axis}


@dataclass(frozen=True)
class World:
    """RAS millimetres (x = R, y = A, z = S)."""

    def to_dict(self) -> dict[str, Any]:
        return {"frame": "world"}


ACQUISITION = Acquisition()
WORLD = World()
SourceFrame = Union[Acquisition, Display]


@dataclass(frozen=True)
class InputTransform:
    """An axis-aligned map from a source image's pixels to a model input's pixels.

    ``x_model = x * scale_x + offset_x`` and ``y_model = y * scale_y + offset_y`` (pixel edges);
    ``source_size`` and ``size`` are ``(width, height)`` of the image before and after. Build one
    with :meth:`identity` and chain the steps the pipeline applies, in order::

        InputTransform.identity(512, 400).crop(10, 20, 490, 380).letterbox(448)
        InputTransform.identity(w, h).smart_resize()          # Qwen2-VL / Qwen2.5-VL processors
        InputTransform.identity(w, h).resize(W, H)            # a processor's own output size

    Compose two transforms with :meth:`then`. Boxes that fall outside the output are clipped by
    :meth:`medmm.regions.box.Box.to_model` (``clip=True``).
    """

    source_size: tuple[int, int]
    size: tuple[int, int]
    scale_x: float = 1.0
    scale_y: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    def __post_init__(self) -> None:
        for name in ("source_size", "size"):
            w, h = getattr(self, name)
            if int(w) < 1 or int(h) < 1:
                raise InputError(f"InputTransform {name} must be positive (width, height), got {(w, h)}")
            object.__setattr__(self, name, (int(w), int(h)))
        if not (self.scale_x > 0 and self.scale_y > 0):
            raise InputError("InputTransform scales must be positive")

    # -- builders ---------------------------------------------------------------------------
    @classmethod
    def identity(cls, width: int, height: int) -> "InputTransform":
        return cls((width, height), (width, height))

    def _step(self, sx: float, sy: float, ox: float, oy: float, size: tuple[int, int]) -> "InputTransform":
        return replace(self, size=size, scale_x=self.scale_x * sx, scale_y=self.scale_y * sy,
                       offset_x=self.offset_x * sx + ox, offset_y=self.offset_y * sy + oy)

    def resize(self, width: int, height: int) -> "InputTransform":
        """Stretch the current output to ``width`` × ``height``."""
        w, h = self.size
        return self._step(width / w, height / h, 0.0, 0.0, (width, height))

    def letterbox(self, size: int | tuple[int, int]) -> "InputTransform":
        """Scale uniformly to fit ``size`` (an int for a square) and pad both sides equally (centred)."""
        tw, th = (size, size) if isinstance(size, int) else size
        w, h = self.size
        s = min(tw / w, th / h)
        return self._step(s, s, (tw - w * s) / 2.0, (th - h * s) / 2.0, (tw, th))

    def pad(self, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0) -> "InputTransform":
        w, h = self.size
        if min(left, top, right, bottom) < 0:
            raise InputError("padding must be non-negative; use crop() to remove pixels")
        return self._step(1.0, 1.0, float(left), float(top), (w + left + right, h + top + bottom))

    def crop(self, x1: int, y1: int, x2: int, y2: int) -> "InputTransform":
        """Keep columns ``x1..x2-1`` and rows ``y1..y2-1`` of the current output."""
        if x2 <= x1 or y2 <= y1:
            raise InputError(f"empty crop ({x1}, {y1}, {x2}, {y2}): x2/y2 are exclusive and must exceed x1/y1")
        return self._step(1.0, 1.0, -float(x1), -float(y1), (x2 - x1, y2 - y1))

    def smart_resize(self, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280) -> "InputTransform":
        """Qwen2-VL's ``smart_resize``: both sides multiples of ``factor``, area in ``[min_pixels, max_pixels]``."""
        w, h = self.size
        height, width = smart_resize(h, w, factor, min_pixels, max_pixels)
        return self.resize(width, height)

    def then(self, other: "InputTransform") -> "InputTransform":
        """This transform followed by ``other`` (whose ``source_size`` must be this ``size``)."""
        if tuple(other.source_size) != tuple(self.size):
            raise InputError(f"cannot chain transforms: output {self.size} is not the next input {other.source_size}")
        return self._step(other.scale_x, other.scale_y, other.offset_x, other.offset_y, other.size)

    # -- use --------------------------------------------------------------------------------
    def forward(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale_x + self.offset_x, y * self.scale_y + self.offset_y

    def inverse(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.offset_x) / self.scale_x, (y - self.offset_y) / self.scale_y

    def to_dict(self) -> dict[str, Any]:
        return {"source_size": list(self.source_size), "size": list(self.size), "scale_x": self.scale_x,
                "scale_y": self.scale_y, "offset_x": self.offset_x, "offset_y": self.offset_y}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputTransform":
        return cls(tuple(d["source_size"]), tuple(d["size"]), float(d["scale_x"]), float(d["scale_y"]),  # type: ignore[arg-type]
                   float(d["offset_x"]), float(d["offset_y"]))


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 28 * 28 * 1280) -> tuple[int, int]:
    """``(height, width)`` as Qwen2-VL's image processor resizes (transformers ``smart_resize``)."""
    if max(height, width) / min(height, width) > 200:
        raise InputError(f"aspect ratio of {width}x{height} exceeds 200, which Qwen2-VL processors refuse")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class Model:
    """Model-input pixels: ``transform`` applied to an image in the ``source`` frame."""

    transform: InputTransform
    source: SourceFrame = Display("axial")

    def __post_init__(self) -> None:
        if not isinstance(self.source, (Acquisition, Display)):
            raise InputError("a model-input frame's source is the acquisition or a display frame")

    def to_dict(self) -> dict[str, Any]:
        return {"frame": "model", "transform": self.transform.to_dict(), "source": self.source.to_dict()}


Frame = Union[Acquisition, Display, Model, World]


def frame_from_dict(d: dict[str, Any]) -> Frame:
    """The frame of a box dict; a dict without ``"frame"`` (the synth manifest form) is acquisition."""
    kind = d.get("frame", "acquisition")
    if isinstance(kind, dict):  # nested form {"frame": {"frame": "display", "axis": ...}}
        d, kind = kind, kind.get("frame")
    if kind == "acquisition":
        return ACQUISITION
    if kind == "display":
        return Display(str(d.get("axis", "axial")))
    if kind == "world":
        return WORLD
    if kind == "model":
        source = frame_from_dict(d.get("source") or {"frame": "display", "axis": "axial"})
        if not isinstance(source, (Acquisition, Display)):
            raise InputError("a model-frame box's source must be an acquisition or display frame")
        return Model(InputTransform.from_dict(d["transform"]), source)
    raise InputError(f"unknown box frame {kind!r}: use acquisition, display, model or world")

"""The one drawing function: boxes as rectangles, ellipses or arrows on a copy of an image.

Used by the models' visual prompts (``Request.boxes``), the review app's viewer and the demo.
Boxes are drawn at their ``x1, y1, x2, y2`` in the pixels of ``image`` (x2/y2 exclusive: a box
``(2, 3, 5, 7)`` outlines columns 2..4 and rows 3..6); converting them into the image's frame
first is the caller's job (:meth:`medmm.regions.box.Box.to_display` / ``to_model``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from medmm.errors import InputError
from medmm.regions.box import Box
from medmm.regions.frames import World

SHAPES = ("rectangle", "ellipse", "arrow")
RED = (255, 0, 0)


def _coords(b: Any) -> tuple[float, float, float, float]:
    if isinstance(b, Box):
        if isinstance(b.frame, World):
            raise InputError("a world (mm) box cannot be drawn on pixels: convert it with to_display() first")
        return b.as_tuple()
    if isinstance(b, dict):
        return float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"])
    x1, y1, x2, y2 = (float(v) for v in b)
    return x1, y1, x2, y2


def line_width(size: tuple[int, int]) -> int:
    """Default outline width: about 1% of the shorter side, at least one pixel."""
    return max(1, round(min(size) / 100))


def draw(image: Image.Image | np.ndarray, boxes: Sequence[Box | tuple[float, float, float, float] | dict[str, Any]],
         shape: str = "rectangle", colour: tuple[int, int, int] = RED, width: int | None = None) -> Image.Image:
    """An RGB copy of ``image`` with every box outlined as a ``rectangle``, an inscribed ``ellipse``
    or an ``arrow`` pointing at the box from its upper left (ViP-LLaVA-style visual prompts)."""
    if shape not in SHAPES:
        raise InputError(f"unknown shape {shape!r}: use one of {', '.join(SHAPES)}")
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    pil = pil.convert("RGB") if pil.mode != "RGB" else pil.copy()
    pen = ImageDraw.Draw(pil)
    w = width or line_width(pil.size)
    for b in boxes:
        x1, y1, x2, y2 = _coords(b)
        right, bottom = max(x1, x2 - 1), max(y1, y2 - 1)  # last covered pixel
        if shape == "rectangle":
            pen.rectangle([x1, y1, right, bottom], outline=colour, width=w)
        elif shape == "ellipse":
            pen.ellipse([x1, y1, right, bottom], outline=colour, width=w)
        else:
            _arrow(pen, (x1, y1), max(x2 - x1, y2 - y1, 4.0), colour, w)
    return pil


def _arrow(pen: ImageDraw.ImageDraw, tip: tuple[float, float], size: float, colour: tuple[int, int, int], w: int) -> None:
    """An arrow whose tip touches ``tip`` (a box's top-left corner), coming from the upper left."""
    length = max(size, 8.0)
    tx, ty = tip
    sx, sy = tx - length / math.sqrt(2), ty - length / math.sqrt(2)
    pen.line([(sx, sy), (tx, ty)], fill=colour, width=w)
    head = max(3.0 * w, length / 4)
    for angle in (math.radians(45 - 25), math.radians(45 + 25)):  # two barbs around the shaft direction
        pen.line([(tx, ty), (tx - head * math.cos(angle), ty - head * math.sin(angle))], fill=colour, width=w)

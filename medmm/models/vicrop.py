"""Region-aware inference: ViCrop ("MLLMs know where to look") and visual prompts.

**ViCrop.** Ask once with the full image; then crop the region of interest (with a context
margin) and ask again with ``[full image, crop]``: small findings get the crop's resolution while
the full image keeps the context. The region comes from

* a **box** (from the question, a grounding answer, a label map): :func:`crop_with_margin`;
* for LLaVA-family models without a box, the **attention-ratio** crop (:func:`attention_box`):
  the attention of the answer position over the image tokens for the question, divided by the
  attention for a generic prompt (what the model looks at *because of the question*), summed in
  windows of several sizes over the token grid; the window that holds the largest share of the
  ratio beyond its share of the area wins.

Both answers and the crop are returned (:class:`ViCropResult`), so a caller records whether the
crop changed the answer.

**Visual prompts** (ViP-LLaVA) need no code here: ``Request(boxes=[[box]], box_shape="ellipse")``
draws through :func:`medmm.regions.draw`, and :func:`visual_prompt` phrases the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from medmm.errors import InputError
from medmm.models.base import ImageLike, Request, UnsupportedError
from medmm.models.families import family_of
from medmm.regions.frames import InputTransform

GENERIC_PROMPT = "Write a general description of the image."
PixelBox = tuple[int, int, int, int]


@dataclass(frozen=True)
class ViCropResult:
    question: str
    crop: PixelBox  # x1, y1, x2, y2 (exclusive) in pixels of the full image as given to the model
    method: str  # "box" | "attention"
    answer_full: str  # the answer with the full image only
    answer: str  # the answer with [full image, crop]
    image_size: tuple[int, int]

    @property
    def changed(self) -> bool:
        return self.answer.strip() != self.answer_full.strip()

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "crop": list(self.crop), "method": self.method,
                "answer_full": self.answer_full, "answer": self.answer, "changed": self.changed,
                "image_size": list(self.image_size)}


def crop_with_margin(box: Sequence[float], size: tuple[int, int], margin: float = 0.5, min_side: int = 16) -> PixelBox:
    """``box`` grown by ``margin`` × its width (height) on each side, at least ``min_side`` pixels per side
    (grown around its centre, shifted inside the image), clipped to the image; integer pixel edges."""
    w, h = int(size[0]), int(size[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise InputError(f"box {tuple(box)} is empty or inverted: give x1,y1,x2,y2 with x2 > x1 and y2 > y1")
    if margin < 0:
        raise InputError("the crop margin must be >= 0")
    bw, bh = x2 - x1, y2 - y1
    out = []
    for lo, hi, extent, side in ((x1 - margin * bw, x2 + margin * bw, w, bw), (y1 - margin * bh, y2 + margin * bh, h, bh)):
        a, b = math.floor(lo), math.ceil(hi)
        need = min(max(min_side, 1), extent)
        if b - a < need:
            centre = (lo + hi) / 2
            a = math.floor(centre - need / 2)
            b = a + need
        a, b = max(a, 0), min(b, extent)
        if b - a < need:  # at a border: shift inward
            a, b = (0, need) if a == 0 else (extent - need, extent)
        if b <= a:
            raise InputError(f"box {tuple(box)} lies outside the {w}x{h} image")
        out.append((a, b))
    (cx1, cx2), (cy1, cy2) = out
    return cx1, cy1, cx2, cy2


def _full_image(image: ImageLike) -> Image.Image:
    return Request(images=[image], prompt="").pil_images()[0]


def _grid_transform(vlm: Any, size: tuple[int, int]) -> tuple[InputTransform, int]:
    """The processor's map of an image of ``size`` and the side of the square the token grid covers
    (the model family's rule, :meth:`medmm.models.families.Family.attention_grid`)."""
    return family_of(vlm).attention_grid(vlm.processor.image_processor, size)


def best_window(ratio: np.ndarray, sizes: Sequence[int]) -> tuple[int, int, int, float]:
    """``(row, col, k, score)`` of the k×k window (k in ``sizes``) whose share of the ratio map most
    exceeds its share of the area."""
    g = ratio.shape[0]
    total = float(ratio.sum()) or 1.0
    best = (0, 0, g, -np.inf)
    for k in sizes:
        if not 1 <= k <= g:
            continue
        for r in range(g - k + 1):
            for c in range(g - k + 1):
                score = float(ratio[r:r + k, c:c + k].sum()) / total - (k * k) / (g * g)
                if score > best[3]:
                    best = (r, c, k, score)
    return best


def attention_box(vlm: Any, image: Image.Image, question: str, generic: str = GENERIC_PROMPT,
                  window_fractions: Sequence[float] = (0.25, 0.5, 0.75)) -> PixelBox:
    """The attention-ratio crop (module docstring) in pixels of ``image`` (LLaVA-family ``hf`` models)."""
    if not hasattr(vlm, "image_attention") or not family_of(vlm).attention_crop:
        raise UnsupportedError(f"{getattr(vlm, 'name', 'model')}: the attention crop needs an hf model of a family "
                               "with one square grid of image tokens (LLaVA); give a box instead (--box x1,y1,x2,y2)")
    att_q = vlm.image_attention(Request(images=[image], prompt=question))[0]
    att_g = vlm.image_attention(Request(images=[image], prompt=generic))[0]
    g = int(round(math.sqrt(len(att_q))))
    if g * g != len(att_q):
        raise UnsupportedError(f"{vlm.name}: {len(att_q)} image tokens do not form a square grid")
    ratio = (att_q / np.maximum(att_g, 1e-12)).reshape(g, g)
    sizes = sorted({max(1, round(f * g)) for f in window_fractions})
    r, c, k, _ = best_window(ratio, sizes)
    t, side = _grid_transform(vlm, image.size)
    cell = side / g
    x1, y1 = t.inverse(c * cell, r * cell)
    x2, y2 = t.inverse((c + k) * cell, (r + k) * cell)
    w, h = image.size
    return (max(0, math.floor(x1)), max(0, math.floor(y1)), min(w, math.ceil(x2)), min(h, math.ceil(y2)))


def vicrop(vlm: Any, image: ImageLike, question: str, box: Sequence[float] | None = None, margin: float = 0.5,
           min_side: int = 16, max_new_tokens: int = 64, system: str | None = None) -> ViCropResult:
    """Ask with the full image, then with ``[full image, crop]``; ``box`` in pixels of the image as shown
    (``None``: the attention-ratio crop of a LLaVA-family model)."""
    full = _full_image(image)
    if box is not None:
        crop = crop_with_margin(box, full.size, margin, min_side)
        method = "box"
    else:
        crop = attention_box(vlm, full, question)
        method = "attention"
    first = vlm.generate([Request(images=[full], prompt=question, system=system)], max_new_tokens=max_new_tokens)[0]
    cropped = full.crop(crop)
    second = vlm.generate([Request(images=[full, cropped], prompt=question, system=system)],
                          max_new_tokens=max_new_tokens)[0]
    return ViCropResult(question, crop, method, first.text, second.text, full.size)


def visual_prompt(question: str, shape: str = "rectangle", colour: str = "red") -> str:
    """The question with a reference to the drawn mark, unless it already mentions the colour."""
    if colour in question.lower():
        return question
    return f"{question.rstrip()} Look at the region marked by the {colour} {shape}."

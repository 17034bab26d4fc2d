"""Boxes as text, one codec per model family.

A vision-language model reads and writes boxes as text, and every family writes them its own
way. A codec turns labelled boxes **in the pixels of the model input** (the image after the
processor's own resize; ``size = (width, height)``) into the family's text and back:

| name | family | text | coordinates |
|---|---|---|---|
| ``medrega`` / ``internvl`` | MedRegA, InternVL | ``<ref>label</ref><box>[[x1, y1, x2, y2], ...]</box>`` | integers on a 0–``scale`` grid (999) |
| ``qwen2-vl`` | Qwen2-VL | ``<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`` | integers 0–``scale`` (1000) |
| ``qwen2.5-vl`` | Qwen2.5-VL | ``[{"bbox_2d": [x1, y1, x2, y2], "label": "..."}]`` | absolute pixels of the resized input |
| ``qwen3-vl`` | Qwen3-VL | the same JSON | integers 0–``scale`` (1000), relative to the image |
| ``llava`` | LLaVA family | ``label: [0.123, 0.456, 0.789, 0.901]`` | normalised 0–1, ``decimals`` fixed |

Grid values map to pixels as ``v / scale * size`` (MedRegA's ``v/999*W``). The grid is a
parameter: the shipped defaults are the families' real formats; a coarser grid (e.g. 0–99,
one token per number for a small tokenizer) is a configuration choice of a training recipe.

:meth:`BoxCodec.decode` is **robust**: model output is untrusted text. Malformed pieces give
no box (never an exception), several boxes per object are kept, coordinates are put in
order and clipped to the image, boxes that are empty after clipping are dropped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from medmm.errors import ConfigError, InputError
from medmm.regions.frames import InputTransform

Size = tuple[float, float]  # (width, height) of the model input in pixels
PixelBox = tuple[float, float, float, float]  # x1, y1, x2, y2 (x2/y2 exclusive edges)

_NUM = r"[-+]?\d+(?:\.\d+)?"
_QUAD = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")  # [a, b, c, d]


@dataclass(frozen=True)
class RefBoxes:
    """One object: a label and every box it has (pixels of the model input)."""

    label: str
    boxes: tuple[PixelBox, ...] = ()


@dataclass(frozen=True)
class Decoded:
    """What :meth:`BoxCodec.decode` found: objects, and how many box candidates were unusable."""

    objects: tuple[RefBoxes, ...] = ()
    rejected: int = 0

    @property
    def boxes(self) -> list[PixelBox]:
        return [b for o in self.objects for b in o.boxes]

    @property
    def parsed(self) -> bool:
        return bool(self.boxes)

    def for_label(self, label: str) -> list[PixelBox]:
        """Boxes of ``label`` (case-insensitive); boxes with no label count for any label."""
        want = label.strip().lower()
        return [b for o in self.objects if o.label.strip().lower() in (want, "") for b in o.boxes]


def _check_size(size: Size) -> tuple[float, float]:
    w, h = float(size[0]), float(size[1])
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        raise InputError(f"image size {size!r}: width and height must be positive")
    return w, h


def clip_box(box: Sequence[float], size: Size) -> PixelBox | None:
    """``box`` with its corners in order and clipped to the image; ``None`` when nothing is left."""
    w, h = _check_size(size)
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
    y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2, y2)


def _keep_open(lo: int, hi: int, top: int, empty: bool) -> tuple[int, int]:
    """A box that is not empty never rounds to an empty one: widen it by one unit inside ``0..top``."""
    if hi > lo or empty:
        return lo, hi
    return (lo, lo + 1) if lo < top else (lo - 1, lo)


def _quantise(box: PixelBox, fx: float, fy: float, top_x: int, top_y: int) -> tuple[int, int, int, int]:
    """``box`` scaled by (fx, fy), rounded to integers in ``0..top``, never collapsed to an empty box."""
    x1, y1, x2, y2 = box
    gx1, gx2 = _keep_open(min(max(round(x1 * fx), 0), top_x), min(max(round(x2 * fx), 0), top_x), top_x, x2 <= x1)
    gy1, gy2 = _keep_open(min(max(round(y1 * fy), 0), top_y), min(max(round(y2 * fy), 0), top_y), top_y, y2 <= y1)
    return gx1, gy1, gx2, gy2


def _clean_label(label: str) -> str:
    return re.sub(r"\s+", " ", label).strip(" \t\n:,;-")


class BoxCodec:
    """Base class: ``encode(objects, size) -> str`` and ``decode(text, size) -> Decoded``."""

    name = "codec"
    #: how a training prompt asks for this format (used by the region tasks' system prompts)
    format_hint = ""

    def encode(self, objects: Sequence[RefBoxes], size: Size) -> str:
        raise NotImplementedError

    def ref(self, label: str) -> str:
        """How a question names an object (``<ref>label</ref>`` for MedRegA, plain for LLaVA)."""
        return label

    def encode_boxes(self, boxes: Sequence[PixelBox], size: Size) -> str:
        """Boxes of one region without a label (a Region→Text question)."""
        raise NotImplementedError

    def decode(self, text: str, size: Size) -> Decoded:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def default_input(self, width: int, height: int) -> InputTransform:
        """The model input assumed when no model is at hand (an export): the image as is, unless the
        format's coordinates are pixels of a resized input (Qwen2.5-VL)."""
        return InputTransform.identity(width, height)


class _GridCodec(BoxCodec):
    """Integers on a 0..scale grid."""

    def __init__(self, scale: int) -> None:
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ConfigError(f"{self.name} codec: scale must be a positive integer (got {scale!r})")
        self.scale = scale

    def to_grid(self, box: PixelBox, size: Size) -> tuple[int, int, int, int]:
        w, h = _check_size(size)
        return _quantise(box, self.scale / w, self.scale / h, self.scale, self.scale)

    def from_grid(self, values: Sequence[float], size: Size) -> PixelBox | None:
        w, h = _check_size(size)
        s = self.scale
        x1, y1, x2, y2 = values
        return clip_box((x1 / s * w, y1 / s * h, x2 / s * w, y2 / s * h), size)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale}


class MedRegACodec(_GridCodec):
    """MedRegA / InternVL: ``<ref>label</ref><box>[[x1, y1, x2, y2], [...]]</box>`` on 0–999."""

    name = "medrega"

    def __init__(self, scale: int = 999) -> None:
        super().__init__(scale)
        self.format_hint = (f"<ref>object</ref><box>[[x1, y1, x2, y2]]</box> with integers from 0 to {scale}; "
                            "several boxes of one object as [[x1, y1, x2, y2], [x3, y3, x4, y4]]")

    def ref(self, label: str) -> str:
        return f"<ref>{label}</ref>"

    def encode_boxes(self, boxes: Sequence[PixelBox], size: Size) -> str:
        inner = ", ".join("[" + ", ".join(str(v) for v in self.to_grid(b, size)) + "]" for b in boxes)
        return f"<box>[{inner}]</box>"

    def encode(self, objects: Sequence[RefBoxes], size: Size) -> str:
        return ", ".join(f"<ref>{o.label}</ref>{self.encode_boxes(o.boxes, size)}" for o in objects)

    _BOX = re.compile(r"<box>(.*?)(?:</box>|$)", re.S)
    _QUAD = _QUAD

    def decode(self, text: str, size: Size) -> Decoded:
        _check_size(size)
        if not isinstance(text, str):
            return Decoded()
        objects: list[RefBoxes] = []
        rejected = 0
        for m in self._BOX.finditer(text):
            before = text[: m.start()]
            label = ""
            start = before.rfind("<ref>")
            if start >= 0:
                ref = re.fullmatch(r"<ref>(.*?)</ref>\s*", before[start:], re.S)
                label = _clean_label(ref.group(1)) if ref else ""
            boxes = []
            body = m.group(1)
            for q in self._QUAD.finditer(body):
                b = self.from_grid([float(v) for v in q.groups()], size)
                if b is None:
                    rejected += 1
                else:
                    boxes.append(b)
            # numbers that did not form a quadruple (e.g. "[[1, 2, 3]]") are rejected candidates
            if not self._QUAD.search(body) and re.search(_NUM, body):
                rejected += 1
            if boxes:
                objects.append(RefBoxes(label, tuple(boxes)))
        return Decoded(tuple(objects), rejected)


class InternVLCodec(MedRegACodec):
    """InternVL writes boxes exactly as MedRegA (which is built on it)."""

    name = "internvl"


class Qwen2VLCodec(_GridCodec):
    """Qwen2-VL: ``<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on 0–1000."""

    name = "qwen2-vl"

    def __init__(self, scale: int = 1000) -> None:
        super().__init__(scale)
        self.format_hint = (f"<|object_ref_start|>object<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|> "
                            f"with integers from 0 to {scale}, one <|box_start|>...<|box_end|> per box")

    def ref(self, label: str) -> str:
        return f"<|object_ref_start|>{label}<|object_ref_end|>"

    def encode_boxes(self, boxes: Sequence[PixelBox], size: Size) -> str:
        out = []
        for b in boxes:
            x1, y1, x2, y2 = self.to_grid(b, size)
            out.append(f"<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>")
        return "".join(out)

    def encode(self, objects: Sequence[RefBoxes], size: Size) -> str:
        return "".join(f"<|object_ref_start|>{o.label}<|object_ref_end|>{self.encode_boxes(o.boxes, size)}"
                       for o in objects)

    _TOKEN = re.compile(r"<\|object_ref_start\|>(.*?)<\|object_ref_end\|>|<\|box_start\|>(.*?)(?:<\|box_end\|>|$)", re.S)
    _PAIR = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")

    def decode(self, text: str, size: Size) -> Decoded:
        _check_size(size)
        if not isinstance(text, str):
            return Decoded()
        groups: list[tuple[str, list[PixelBox]]] = []
        rejected = 0
        label: str | None = None
        for m in self._TOKEN.finditer(text):
            if m.group(1) is not None:
                label = _clean_label(m.group(1))
                groups.append((label, []))
                continue
            if label is None:
                label = ""
                groups.append(("", []))
            q = self._PAIR.search(m.group(2))
            b = self.from_grid([float(v) for v in q.groups()], size) if q else None
            if b is None:
                rejected += 1
            else:
                groups[-1][1].append(b)
        objects = tuple(RefBoxes(lab, tuple(bs)) for lab, bs in groups if bs)
        return Decoded(objects, rejected)


class Qwen25VLCodec(BoxCodec):
    """Qwen2.5-VL: JSON ``[{"bbox_2d": [x1, y1, x2, y2], "label": "..."}]`` in absolute pixels of the
    resized model input (``size`` must be that size, e.g. ``smart_resize``'s multiples of 28)."""

    name = "qwen2.5-vl"
    format_hint = 'JSON [{"bbox_2d": [x1, y1, x2, y2], "label": "object"}] in pixels of the image; one entry per box'

    def default_input(self, width: int, height: int) -> InputTransform:
        """Qwen2.5-VL's processor defaults (``smart_resize``, factor 28): its boxes are in those pixels."""
        return InputTransform.identity(width, height).smart_resize()

    def encode_boxes(self, boxes: Sequence[PixelBox], size: Size) -> str:
        return json.dumps([{"bbox_2d": self._ints(b, size)} for b in boxes])

    def encode(self, objects: Sequence[RefBoxes], size: Size) -> str:
        return json.dumps([{"bbox_2d": self._ints(b, size), "label": o.label} for o in objects for b in o.boxes])

    @staticmethod
    def _ints(box: PixelBox, size: Size) -> list[int]:
        w, h = _check_size(size)
        return list(_quantise(box, 1.0, 1.0, int(w), int(h)))

    _OBJ = re.compile(r"\{[^{}]*\}", re.S)
    _BBOX = re.compile(rf"\"?bbox_2d\"?\s*:\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")
    _LABEL = re.compile(r"\"?label\"?\s*:\s*\"((?:[^\"\\]|\\.)*)\"")

    def decode(self, text: str, size: Size) -> Decoded:
        _check_size(size)
        if not isinstance(text, str):
            return Decoded()
        by_label: dict[str, list[PixelBox]] = {}
        rejected = 0
        for m in self._OBJ.finditer(text):
            chunk = m.group(0)
            if "bbox_2d" not in chunk:
                continue
            q = self._BBOX.search(chunk)
            if q is None:
                rejected += 1
                continue
            lab = self._LABEL.search(chunk)
            label = _clean_label(lab.group(1)) if lab else ""
            b = clip_box([float(v) for v in q.groups()], size)
            if b is None:
                rejected += 1
            else:
                by_label.setdefault(label, []).append(b)
        return Decoded(tuple(RefBoxes(k, tuple(v)) for k, v in by_label.items()), rejected)


class Qwen3VLCodec(_GridCodec):
    """Qwen3-VL: Qwen2.5-VL's JSON ``[{"bbox_2d": [x1, y1, x2, y2], "label": "..."}]``, but on a relative
    0–``scale`` grid (1000) of the image, whatever its size (no longer pixels of the resized input)."""

    name = "qwen3-vl"

    def __init__(self, scale: int = 1000) -> None:
        super().__init__(scale)
        self.format_hint = (f'JSON [{{"bbox_2d": [x1, y1, x2, y2], "label": "object"}}] with integers from 0 to {scale} '
                            "relative to the image; one entry per box")

    def encode_boxes(self, boxes: Sequence[PixelBox], size: Size) -> str:
        return json.dumps([{"bbox_2d": list(self.to_grid(b, size))} for b in boxes])

    def encode(self, objects: Sequence[RefBoxes], size: Size) -> str:
        return json.dumps([{"bbox_2d": list(self.to_grid(b, size)), "label": o.label} for o in objects for b in o.boxes])

    def decode(self, text: str, size: Size) -> Decoded:
        """Qwen2.5-VL's robust JSON reading, the values read on the grid."""
        w, h = _check_size(size)
        grid = Qwen25VLCodec().decode(text, (float(self.scale), float(self.scale)))
        objects = []
        for o in grid.objects:
            boxes = [b for b in (self.from_grid(v, size) for v in o.boxes) if b is not None]
            if boxes:
                objects.append(RefBoxes(o.label, tuple(boxes)))
        lost = sum(len(o.boxes) for o in grid.objects) - sum(len(o.boxes) for o in objects)
        return Decoded(tuple(objects), grid.rejected + lost)


class LlavaCodec(BoxCodec):
    """LLaVA family: ``label: [x1, y1, x2, y2]`` normalised to 0–1 with ``decimals`` digits; several boxes
    of one object follow each other (``label: [..], [..]``), objects are separated by ``"; "``."""

    name = "llava"

    def __init__(self, decimals: int = 3) -> None:
        if not isinstance(decimals, int) or isinstance(decimals, bool) or not 1 <= decimals <= 6:
            raise ConfigError(f"llava codec: decimals must be an integer from 1 to 6 (got {decimals!r})")
        self.decimals = decimals
        self.format_hint = f"object: [x1, y1, x2, y2] with numbers from 0 to 1 and {decimals} decimals"

    def _fmt(self, box: PixelBox, size: Size) -> str:
        w, h = _check_size(size)
        top = 10 ** self.decimals
        return "[" + ", ".join(f"{v / top:.{self.decimals}f}" for v in _quantise(box, top / w, top / h, top, top)) + "]"

    def encode_boxes(self, boxes: Sequence[PixelBox], size: Size) -> str:
        return ", ".join(self._fmt(b, size) for b in boxes)

    def encode(self, objects: Sequence[RefBoxes], size: Size) -> str:
        return "; ".join(f"{o.label}: {self.encode_boxes(o.boxes, size)}" for o in objects)

    _QUAD = _QUAD

    def decode(self, text: str, size: Size) -> Decoded:
        w, h = _check_size(size)
        if not isinstance(text, str):
            return Decoded()
        groups: list[tuple[str, list[PixelBox]]] = []
        rejected = 0
        last_end = 0
        for m in self._QUAD.finditer(text):
            between = text[last_end: m.start()]
            label_text = re.split(r"[;\n]", between)[-1]
            if groups and re.fullmatch(r"[\s,]*", between):
                target = groups[-1][1]  # another box of the same object
            else:
                groups.append((_clean_label(label_text), []))
                target = groups[-1][1]
            last_end = m.end()
            vals = [float(v) for v in m.groups()]
            if any(v < 0.0 or v > 1.0 for v in vals):  # not normalised: not this format
                rejected += 1
                continue
            b = clip_box((vals[0] * w, vals[1] * h, vals[2] * w, vals[3] * h), size)
            if b is None:
                rejected += 1
            else:
                target.append(b)
        return Decoded(tuple(RefBoxes(lab, tuple(bs)) for lab, bs in groups if bs), rejected)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "decimals": self.decimals}


CODECS: dict[str, Callable[..., BoxCodec]] = {
    "medrega": MedRegACodec,
    "internvl": InternVLCodec,
    "qwen2-vl": Qwen2VLCodec,
    "qwen2.5-vl": Qwen25VLCodec,
    "qwen3-vl": Qwen3VLCodec,
    "llava": LlavaCodec,
}

def get_codec(name: str, **options: Any) -> BoxCodec:
    """A codec by name (``medrega``, ``internvl``, ``qwen2-vl``, ``qwen2.5-vl``, ``llava``). Which codec a
    model family writes is declared by the family (``medmm.models.families``, a layer above this one)."""
    key = name
    if key not in CODECS:
        raise ConfigError(f"unknown box codec {name!r}: use one of {', '.join(CODECS)}")
    try:
        return CODECS[key](**options)
    except TypeError as exc:
        raise ConfigError(f"box codec {key!r}: bad option(s) {sorted(options)} ({exc})") from exc


@dataclass(frozen=True)
class CodecSpec:
    """A codec as configuration data (``{"name": "medrega", "scale": 99}``)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: str | dict[str, Any]) -> "CodecSpec":
        if isinstance(raw, str):
            return cls(raw)
        if not isinstance(raw, dict) or "name" not in raw:
            raise ConfigError("a codec is a name or a mapping with 'name' (and options such as scale, decimals)")
        return cls(str(raw["name"]), {k: v for k, v in raw.items() if k != "name"})

    def build(self) -> BoxCodec:
        return get_codec(self.name, **self.options)

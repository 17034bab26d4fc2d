"""What the review app shows of a flag raised from the image by a vision-language model (issue 18 item 6).

A VLM flag (``evidence: "image"``) carries, beside its sentence span, the model that raised it
(``model``: the model spec or name, never a patient's data) and, when the model grounded its answer, the
region it points at (``region``: a :meth:`medmm.regions.Box.to_dict`, acquisition frame of the study's
image ``image``, or any frame the viewer's volume converts). The viewer draws that region beside the
highlighted sentence; the flag card says the evidence is the image and which model raised it.
"""

from __future__ import annotations

from typing import Any, Sequence

from medmm.errors import InputError
from medmm.regions.box import Box


def is_image_flag(flag: dict[str, Any]) -> bool:
    return flag.get("evidence") == "image"


def evidence_line(flag: dict[str, Any]) -> str:
    """``Evidence: the image, read by <model>`` (and where its region is) for a VLM flag; ``""`` otherwise."""
    if not is_image_flag(flag):
        return ""
    model = str(flag.get("model") or "").strip() or "a vision-language model (name not recorded)"
    line = f"Evidence: the image, read by {model}"
    target = region_target(flag)
    if target is not None:
        image, slice_index = target
        line += f"; its region: image {image + 1}" + (f", slice {slice_index + 1}" if slice_index is not None else "")
    elif flag.get("region") is not None:
        line += "; its region could not be read"
    return line


def _box(flag: dict[str, Any]) -> Box | None:
    region = flag.get("region")
    if not region:
        return None
    try:
        return region if isinstance(region, Box) else Box.from_dict(region)
    except InputError:
        return None


def region_target(flag: dict[str, Any]) -> tuple[int, int | None] | None:
    """``(image index, zero-based slice or None)`` of a flag's region, for the viewer to jump to."""
    box = _box(flag)
    if box is None:
        return None
    return int(box.image or 0), (int(box.slice) if box.slice is not None else None)


def region_boxes(flags: Sequence[dict[str, Any]], image: int, slice_index: int | None, geometry: Any = None,
                 focus: int | None = None) -> list[tuple[Box, str, bool]]:
    """The regions of the flags that carry one, on image ``image`` and acquisition slice ``slice_index``,
    as :func:`medmm.app.views.draw_labelled` takes them: ``(box, "#id type (model)", focused)``."""
    from medmm.app.views import boxes_for

    out = []
    for f in flags:
        box = _box(f)
        if box is None:
            continue
        for placed in boxes_for([box.to_dict()], image, slice_index, geometry=geometry):
            out.append((placed, f"#{f.get('id')} {f.get('type')} (model)", f.get("id") == focus))
    return out

"""What the review app renders: a report with highlighted flag spans, and image views with boxes."""

from __future__ import annotations

import html
import logging
from typing import Any, Sequence

import numpy as np
from PIL import Image

from medmm.errors import InputError
from medmm.regions.box import Box
from medmm.regions.draw import draw
from medmm.regions.frames import Acquisition

log = logging.getLogger(__name__)

FLAG_COLOURS = {
    "laterality": "#ffb3b3", "negation": "#ffd59e", "measurement": "#fff59e", "severity": "#e6ff9e",
    "location": "#b3ffcc", "finding": "#9effe6", "insertion": "#9ed8ff", "omission": "#b3c6ff",
    "contradiction": "#d9b3ff", "device": "#ffb3f0", "interval": "#ffccd9", "transcription": "#d9d9d9",
    "metadata": "#c2f0c2",
}


def highlight(report: str, flags: Sequence[dict[str, Any]]) -> str:
    """The report as HTML with each flag's span marked in its type's colour (overlaps: first wins). A flag's
    ``related`` spans (the other side of a conflict) are marked too, outlined, with the same ``data-flag``."""
    marks = [(int(f["start"]), int(f["end"]), i, f, False) for i, f in enumerate(flags)]
    marks += [(int(r["start"]), int(r["end"]), i, f, True) for i, f in enumerate(flags) for r in f.get("related") or ()]
    spans = sorted(m for m in marks if 0 <= m[0] < m[1] <= len(report))
    out, pos = [], 0
    for start, end, _, f, related in spans:
        if start < pos:
            continue
        out.append(html.escape(report[pos:start]))
        colour = FLAG_COLOURS.get(f["type"], "#eeeeee")
        title = html.escape(f"{f['type']} ({float(f['confidence']):.2f}){' [other side]' if related else ''}: "
                            f"{f['explanation']}", quote=True)
        style = f"background:{colour}" + (";outline:2px dashed #555" if related else "")
        out.append(f'<mark class="flag flag-{html.escape(f["type"])}{" flag-related" if related else ""}" '
                   f'data-flag="{int(f.get("id", 0))}" style="{style}" title="{title}">'
                   f'{html.escape(report[start:end])}</mark>')
        pos = end
    out.append(html.escape(report[pos:]))
    body = "".join(out).replace("\n", "<br>")
    return f'<div class="medmm-report" style="font-family:monospace;line-height:1.5">{body}</div>'


def legend(types: Sequence[str]) -> str:
    items = "".join(f'<span style="background:{FLAG_COLOURS.get(t, "#eee")};padding:2px 6px;margin-right:6px">'
                    f"{html.escape(t)}</span>" for t in types)
    return f'<div class="medmm-legend">{items}</div>'


def draw_boxes(image: np.ndarray, boxes: Sequence[Box | dict[str, Any]], shape: str = "rectangle") -> Image.Image:
    """An RGB image with the given boxes (pixels of ``image``, x2/y2 exclusive) outlined by
    :func:`medmm.regions.draw`, 0.5% of the shorter side thick as the viewer always drew them."""
    pil = Image.fromarray(image)
    return draw(pil, boxes, shape=shape, colour=(255, 40, 40), width=max(1, min(pil.size) // 128))


def boxes_for(regions: Sequence[dict[str, Any]], image: int, slice_index: int | None,
              geometry: Any = None) -> list[Box]:
    """The stored regions of image ``image`` that lie on acquisition slice ``slice_index``, as
    acquisition-frame :class:`~medmm.regions.Box` (the viewer shows slices as acquired).

    Regions in another frame are converted with ``geometry`` (the Volume shown); without it they
    are left out, as are regions that cannot be read (counted in a warning: no coordinates logged).
    """
    out: list[Box] = []
    skipped = 0
    for r in regions:
        try:
            box = Box.from_dict(r)
            if int(box.image or 0) != image:
                continue
            if not isinstance(box.frame, Acquisition):
                if geometry is None:
                    skipped += 1
                    continue
                box = box.to_acquisition(geometry)
        except InputError:
            skipped += 1
            continue
        if box.slice is None or box.slice == slice_index:
            out.append(box)
    if skipped:
        log.warning("%d stored region(s) of image %d could not be placed on the acquired slices", skipped, image)
    return out


def acquisition_slice(volume: Any, k: int, window: Any = "file", frame: int = 0) -> np.ndarray:
    """Slice ``k`` as acquired (rows = j, columns = i, as the DICOM image is stored), windowed to uint8.

    A PACS viewer shows the acquired plane; pixel boxes from a manifest (x = column, y = row) then
    line up with no resampling or reorientation.
    """
    from medmm.imaging.views import to_uint8

    data = volume.data
    n = data.shape[2]
    if not 0 <= k < n:
        raise IndexError(f"slice {k} out of range (0..{n - 1})")
    spatial = data.ndim - (1 if volume.rgb else 0)
    plane = data[:, :, k, frame] if spatial == 4 else data[:, :, k]
    plane = np.swapaxes(plane, 0, 1)
    return to_uint8(np.ascontiguousarray(plane), volume, window)

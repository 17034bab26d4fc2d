"""What the review app renders: a report with highlighted flag spans, and image views with boxes."""

from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

FLAG_COLOURS = {
    "laterality": "#ffb3b3", "negation": "#ffd59e", "measurement": "#fff59e", "severity": "#e6ff9e",
    "location": "#b3ffcc", "finding": "#9effe6", "insertion": "#9ed8ff", "omission": "#b3c6ff",
    "contradiction": "#d9b3ff", "device": "#ffb3f0", "interval": "#ffccd9", "transcription": "#d9d9d9",
    "metadata": "#c2f0c2",
}


def highlight(report: str, flags: Sequence[dict[str, Any]]) -> str:
    """The report as HTML with each flag's span marked in its type's colour (overlaps: first wins)."""
    spans = sorted((int(f["start"]), int(f["end"]), f) for f in flags if 0 <= int(f["start"]) < int(f["end"]) <= len(report))
    out, pos = [], 0
    for start, end, f in spans:
        if start < pos:
            continue
        out.append(html.escape(report[pos:start]))
        colour = FLAG_COLOURS.get(f["type"], "#eeeeee")
        title = html.escape(f"{f['type']} ({float(f['confidence']):.2f}): {f['explanation']}", quote=True)
        out.append(f'<mark class="flag flag-{html.escape(f["type"])}" data-flag="{int(f.get("id", 0))}" '
                   f'style="background:{colour}" title="{title}">{html.escape(report[start:end])}</mark>')
        pos = end
    out.append(html.escape(report[pos:]))
    body = "".join(out).replace("\n", "<br>")
    return f'<div class="medmm-report" style="font-family:monospace;line-height:1.5">{body}</div>'


def legend(types: Sequence[str]) -> str:
    items = "".join(f'<span style="background:{FLAG_COLOURS.get(t, "#eee")};padding:2px 6px;margin-right:6px">'
                    f"{html.escape(t)}</span>" for t in types)
    return f'<div class="medmm-legend">{items}</div>'


def draw_boxes(image: np.ndarray, boxes: Sequence[dict[str, Any]]) -> Image.Image:
    """An RGB image with the given pixel boxes (x2/y2 exclusive) outlined."""
    pil = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(pil)
    for b in boxes:
        draw.rectangle([int(b["x1"]), int(b["y1"]), int(b["x2"]) - 1, int(b["y2"]) - 1], outline=(255, 40, 40),
                       width=max(1, min(pil.size) // 128))
    return pil


def boxes_for(regions: Sequence[dict[str, Any]], image: int, slice_index: int | None) -> list[dict[str, Any]]:
    return [r for r in regions if int(r.get("image", 0)) == image and (r.get("slice") is None or r.get("slice") == slice_index)]


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

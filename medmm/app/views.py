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


# ---------------------------------------------------------------- a radiologist's day (issue 19)
def blank(value: Any, decimals: int | None = None) -> str:
    """A value as a reviewer reads it: a missing value is blank (never "None"), a number with fixed decimals."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if decimals is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):.{decimals}f}"
    return str(value)


_VIEWS = {"PA": "PA", "AP": "AP", "LATERAL": "Lateral", "LL": "Left lateral", "RL": "Right lateral",
          "LLD": "Left lateral decubitus", "RLD": "Right lateral decubitus", "OBLIQUE": "Oblique"}
_MODALITY_NAMES = {"CT": "CT", "MR": "MR", "PT": "PET", "US": "Ultrasound", "NM": "NM", "XA": "Angiography",
                   "MG": "Mammogram", "CR": "Radiograph", "DX": "Radiograph"}
_NIFTI = (".nii.gz", ".nii")


def _stem(path: str) -> str:
    base = path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (*_NIFTI, ".dcm", ".dicom"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _folder(path: str) -> str:
    return path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[0]


def series_choices(paths: Sequence[str], facts: Any = None) -> list[tuple[int, str]]:
    """The images a reviewer picks from, as ``(index in the study's images, name)``, named by what they are.

    Left out: label maps (``*_labels.nii*``) and the NIfTI copy of a DICOM series or file (a NIfTI beside a
    DICOM series folder or file of the same name: one acquisition, not a second image). Names come from
    ``facts(path)`` (header facts: the view position, PA / AP / lateral, then the modality), never from a
    file or folder name (folders are often named after the patient); two images with the same name are
    numbered. The index stays the study's image index: stored boxes refer to it.
    """
    dicom_stems = {(_folder(p), _stem(p)) for p in paths if not p.lower().endswith(_NIFTI)}
    kept = [(i, p) for i, p in enumerate(paths)
            if not (p.lower().endswith(_NIFTI) and ("_labels" in p.rsplit("/", 1)[-1]
                                                     or (_folder(p), _stem(p)) in dicom_stems))]
    names = []
    for i, p in kept:
        f = facts(p) if facts is not None else None
        view = getattr(f, "view_position", None)
        modality = getattr(f, "modality", None)
        if view and str(view).upper() in _VIEWS:
            name = _VIEWS[str(view).upper()]
        elif modality:
            name = _MODALITY_NAMES.get(str(modality).upper(), str(modality)) + (" series" if modality in ("CT", "MR", "PT")
                                                                               else "")
        else:
            name = "Image"
        names.append(name)
    out = []
    for (i, _), name in zip(kept, names):
        n_same = names.count(name)
        if n_same > 1 or name == "Image":
            k = sum(1 for (j, _), m in zip(kept, names) if m == name and j <= i)
            name = f"{name} {k}"
        out.append((i, name))
    return out


def flag_sentence(report: str, flag: dict[str, Any]) -> str:
    """The sentence (or line) of the report that holds a flag's span."""
    start, end = int(flag["start"]), int(flag["end"])
    if not (0 <= start <= end <= len(report)):
        return ""
    stops = ".\n!?;"
    left = max(report.rfind(c, 0, start) for c in stops) + 1
    rights = [report.find(c, end) for c in stops]
    right = min([r for r in rights if r >= 0] or [len(report)])
    return report[left:right]


def label_words(label: str | None) -> list[str]:
    """The words a region's label is written with in a report (``endotracheal_tube`` -> endotracheal, tube)."""
    return [w for w in str(label or "").lower().replace("_", " ").replace("-", " ").split() if len(w) >= 3]


def regions_for_flag(report: str, flag: dict[str, Any], regions: Sequence[dict[str, Any]]) -> list[int]:
    """Indexes of the stored regions a flag concerns: those whose label (the finding) is named in the
    flag's sentence or in the sentence of one of its related spans (the other side of a conflict)."""
    text = " ".join([flag_sentence(report, flag)] +
                    [flag_sentence(report, r) for r in flag.get("related") or ()]).lower()
    words = set(text.replace(",", " ").split())
    stems = {w.rstrip("s") for w in words}
    out = []
    for i, r in enumerate(regions):
        lw = label_words(r.get("label"))
        if lw and any(w in words or w.rstrip("s") in stems for w in lw):
            out.append(i)
    return out


def draw_labelled(image: np.ndarray, boxes: Sequence[tuple[Box, str, bool]], min_side: int = 512) -> Image.Image:
    """The slice enlarged (nearest neighbour, to at least ``min_side`` pixels: small images stay readable)
    with each box outlined and labelled with its finding; ``True`` in a tuple marks the boxes of the flag
    the reviewer is looking at (drawn in yellow, thicker)."""
    from PIL import ImageDraw, ImageFont

    pil = Image.fromarray(image)
    scale = max(1, -(-min_side // max(1, min(pil.size))))
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    pil = pil.convert("RGB")
    pen = ImageDraw.Draw(pil)
    try:
        font = ImageFont.load_default(size=max(12, min(pil.size) // 32))
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    for box, label, focus in boxes:
        colour = (255, 215, 0) if focus else (255, 40, 40)
        x1, y1, x2, y2 = (v * scale for v in box.as_tuple())
        w = max(2, min(pil.size) // (96 if focus else 160))
        pen.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=w)
        if label:
            tx, ty = x1, max(0, y1 - font.size - 4) if hasattr(font, "size") else max(0, y1 - 14)
            pen.text((tx + 1, ty + 1), label, fill=(0, 0, 0), font=font)
            pen.text((tx, ty), label, fill=colour, font=font)
    return pil

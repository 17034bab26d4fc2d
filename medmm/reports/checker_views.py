"""Which images the report checker's VLM sees: one function for training, evaluation, audits and the app.

A chest radiograph is one picture; a CT or MR series is hundreds. The checker is given a small,
fixed set of 2-D views per study, chosen here and nowhere else (``medmm checker-data``, the
fine-tuning recipe's checker tasks, ``medmm check-eval --checker vlm|ensemble``, audits and the
app all call :func:`checker_views`):

* **radiographs** (a DICOM file, or a PNG/JPEG): the frontal view(s) — ``ViewPosition`` PA/AP (or
  no view named) — and no lateral when a frontal exists: a lateral projection sums both sides onto
  each other, so it cannot show which side a finding is on, which is what most image-only report
  errors are about. A study whose only image is a lateral keeps it.
* **volumes** (a DICOM series folder, a NIfTI file, a multi-frame file): two views in the
  modality's default window — a **coronal maximum-intensity projection** (the whole volume, patient
  right on the image left as on a radiograph: every finding's side is visible in it) and one
  **axial slice**: at inference the middle slice (a fixed choice, nothing about the report may
  pick it), at training time the slice holding most finding voxels when the truth's boxes are
  given (``focus_slices``), so the model learns what a finding looks like where it is.

At most ``max_views`` images are returned (default 1: the tiny models of the synthetic recipe
read one image; a real checkpoint can take 2). :func:`blank_like` is the ``--blind`` control: a
black image of the same size, so the prompt, its image tokens and every other input stay the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from PIL import Image

from medmm.errors import InputError

FRONTAL = ("PA", "AP", "")
_PICTURE = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class View:
    """One chosen view: the image and what it is (for logs, the app and provenance)."""

    image: Image.Image
    source: str  # the path it was made from
    kind: str  # picture | radiograph | coronal-mip | axial-slice

    def describe(self) -> str:
        return f"{self.kind} of {os.path.basename(self.source.rstrip('/')) or self.source}"


def resolve(path: str, root: str | None) -> str:
    """A row's image path: absolute as given, else relative to ``root`` (the dataset file's folder)."""
    return path if os.path.isabs(path) or root is None else os.path.normpath(os.path.join(root, path))


def _view_position(path: str) -> str:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ViewPosition", "NumberOfFrames"])
    except Exception:  # not DICOM (pydicom raises several types): no view to read
        return ""
    return str(getattr(ds, "ViewPosition", "") or "").strip().upper()


def _is_volume(vol: Any) -> bool:
    return int(vol.data.shape[2] if vol.data.ndim >= 3 else 1) > 1


def _volume_views(path: str, focus_slice: int | None) -> list[View]:
    from medmm.imaging.io import load_volume
    from medmm.models.base import ImageView

    vol = load_volume(path)
    if not _is_volume(vol):
        return [View(ImageView(vol).to_pil(), path, "radiograph")]
    window = "lung" if (vol.modality or "").upper() == "CT" else "file"
    mip = View(ImageView(vol, window=window, axis="coronal", mip=True).to_pil(), path, "coronal-mip")
    axial = View(ImageView(vol, window=window, index=focus_slice, axis="axial").to_pil(), path, "axial-slice")
    return [mip, axial]


def choose_paths(paths: Sequence[str], root: str | None = None) -> list[str]:
    """The images of a study in the order the checker takes them: frontal radiographs (and volumes and
    pictures) first, laterals only when nothing else exists."""
    resolved = [resolve(p, root) for p in paths]
    missing = [p for p in resolved if not os.path.exists(p)]
    if missing:
        raise InputError(f"{missing[0]}: image not found (paths are relative to the dataset file's folder "
                         "or absolute)")
    main: list[str] = []
    lateral: list[str] = []
    for p in resolved:
        if os.path.isfile(p) and not p.lower().endswith(_PICTURE + (".nii", ".nii.gz")):
            (main if _view_position(p) in FRONTAL else lateral).append(p)
        else:
            main.append(p)
    return main or lateral


def checker_views(paths: Sequence[str], root: str | None = None, *, max_views: int = 1,
                  focus_slices: Sequence[int | None] | None = None) -> list[View]:
    """The views the checker's VLM is given for a study (see the module docstring).

    ``paths``: the study's images (files or series folders), relative to ``root`` or absolute;
    ``focus_slices``: per path, the acquired slice to show (training with truth boxes), else None."""
    if max_views < 1:
        raise InputError("max_views must be at least 1")
    chosen = choose_paths(paths, root)
    focus = {resolve(p, root): s for p, s in zip(paths, focus_slices or [])}
    out: list[View] = []
    for p in chosen:
        if p.lower().endswith(_PICTURE):
            try:
                with Image.open(p) as img:
                    out.append(View(img.convert("RGB"), p, "picture"))
            except OSError as exc:
                raise InputError(f"{p}: cannot read the image ({exc})") from None
        else:
            out.extend(_volume_views(p, focus.get(p)))
        if len(out) >= max_views:
            break
    return out[:max_views]


def checker_images(paths: Sequence[str], root: str | None = None, *, max_views: int = 1, blind: bool = False,
                   focus_slices: Sequence[int | None] | None = None) -> list[Image.Image]:
    """The PIL images of :func:`checker_views` (blank ones of the same size with ``blind``)."""
    views = [v.image for v in checker_views(paths, root, max_views=max_views, focus_slices=focus_slices)]
    return [blank_like(v) for v in views] if blind else views


def blank_like(image: Image.Image) -> Image.Image:
    """A black RGB image of the same size (the blind control: nothing of the study is left in it)."""
    return Image.new("RGB", image.size, (0, 0, 0))

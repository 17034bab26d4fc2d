"""Boxes from label maps: connected components per label per slice (the region source for CT/MR).

A label map (NIfTI, or an array indexed ``[i, j, k]`` like medmm volumes: ``i`` = acquisition
column, ``j`` = row, ``k`` = slice in position order) becomes one :class:`AnnotatedImage` per
sampled slice, with one :class:`LabeledRegion` per label holding **every** connected component
of that label on the slice as its own box (two lungs, a bilateral effusion: several boxes of one
object). Components smaller than ``min_pixels`` or narrower than ``min_side`` are dropped;
``max_slices`` keeps evenly spaced slices among those with a label, ``slice_step`` every n-th.
Boxes are acquisition pixels, ``x2``/``y2`` exclusive, as the synth manifest writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy import ndimage

from medmm.errors import InputError
from medmm.regions.box import Box
from medmm.regions.readers import AnnotatedImage, LabeledRegion


@dataclass(frozen=True)
class LabelMapOptions:
    """How components become boxes and which slices are kept."""

    min_pixels: int = 4  # components with fewer pixels are dropped
    min_side: int = 2  # ... and those narrower than this in x or y
    connectivity: int = 2  # 1 = 4-neighbourhood, 2 = 8-neighbourhood in the slice
    slice_step: int = 1  # keep every n-th slice (of those with a kept label)
    max_slices: int | None = None  # then at most this many, evenly spaced
    labels: tuple[int, ...] | None = None  # only these values (default: every non-zero value)

    def __post_init__(self) -> None:
        if self.min_pixels < 1 or self.min_side < 1 or self.slice_step < 1 or self.connectivity not in (1, 2):
            raise InputError("label-map options: min_pixels, min_side, slice_step >= 1 and connectivity 1 or 2")
        if self.max_slices is not None and self.max_slices < 1:
            raise InputError("label-map options: max_slices must be at least 1")


def read_label_map(path: str | os.PathLike[str]) -> np.ndarray:
    """Integer label array ``[i, j, k]`` of a NIfTI label map (2-D maps get ``k`` = 1)."""
    import nibabel as nib

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: label map not found")
    try:
        data = np.asanyarray(nib.load(path).dataobj)
    except Exception as exc:  # nibabel raises several types for a broken file
        raise InputError(f"{path}: not a readable NIfTI label map ({type(exc).__name__})") from None
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim != 3:
        raise InputError(f"{path}: a label map must be 2-D or 3-D, this one has shape {data.shape}")
    if not np.issubdtype(data.dtype, np.integer):
        rounded = np.rint(data)
        if not np.array_equal(rounded, data):
            raise InputError(f"{path}: label values must be integers; is this an image rather than a label map?")
        data = rounded.astype(np.int32)
    return data


def component_boxes(mask: np.ndarray, options: LabelMapOptions = LabelMapOptions()) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x1, y1, x2, y2)`` (exclusive) of the connected components of a ``[row, col]`` mask."""
    structure = ndimage.generate_binary_structure(2, options.connectivity)
    lab, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return []
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    out = []
    for idx, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        rows, cols = sl
        if sizes[idx] < options.min_pixels:
            continue
        if rows.stop - rows.start < options.min_side or cols.stop - cols.start < options.min_side:
            continue
        out.append((int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)))
    out.sort(key=lambda b: (b[0], b[1]))
    return out


def _sample(slices: list[int], options: LabelMapOptions) -> list[int]:
    kept = slices[:: options.slice_step]
    if options.max_slices is not None and len(kept) > options.max_slices:
        idx = np.linspace(0, len(kept) - 1, options.max_slices).round().astype(int)
        kept = [kept[i] for i in sorted(set(idx.tolist()))]
    return kept


def label_map_regions(labels: np.ndarray | str | os.PathLike[str], names: Mapping[int, str] | None = None,
                      options: LabelMapOptions = LabelMapOptions(), image_id: str = "image", image: int = 0,
                      image_path: str | None = None, source: str = "label-map") -> list[AnnotatedImage]:
    """One :class:`AnnotatedImage` per sampled slice, a region per label with a box per component.

    ``names`` maps label values to names (values without a name are called ``"label N"``); with
    ``options.labels`` unset, every value in ``names`` (or every non-zero value when ``names`` is
    empty) is used.
    """
    data = read_label_map(labels) if not isinstance(labels, np.ndarray) else labels
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    wanted = options.labels if options.labels is not None else (tuple(names) if names else None)
    per_slice: dict[int, list[LabeledRegion]] = {}
    n_slices = data.shape[2]
    for k in range(n_slices):
        plane = data[:, :, k].T  # [row, col]
        values = np.unique(plane)
        regions = []
        for v in values.tolist():
            if v == 0 or (wanted is not None and v not in wanted):
                continue
            boxes = component_boxes(plane == v, options)
            if not boxes:
                continue
            name = (names or {}).get(v, f"label {v}")
            regions.append(LabeledRegion(name, tuple(Box(*b, image=image, slice=k if n_slices > 1 else None, label=name)
                                                      for b in boxes)))
        if regions:
            per_slice[k] = regions
    height, width = data.shape[1], data.shape[0]
    return [AnnotatedImage(image_id, source, tuple(per_slice[k]), image_path=image_path, width=width, height=height,
                           slice=k if n_slices > 1 else None, meta={"image": image})
            for k in _sample(sorted(per_slice), options)]

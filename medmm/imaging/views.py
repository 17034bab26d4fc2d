"""Volumes to 2-D images for models and the UI: windows, slices, MIPs, three-window RGB, PNG.

Display orientation is radiological: every volume is first reoriented (axis permutations and
flips only, no resampling) so that ``i`` points to the patient's left, ``j`` posterior and
``k`` superior; an axial view then shows the patient's right on the image's left and
anterior at the top, as a DICOM viewer does.

VOI follows DICOM PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT, SIGMOID); pydicom's
``apply_voi_lut`` needs the dataset, which a Volume (from NIfTI, or after stacking) no
longer has — hence these few lines here, tested against the standard's formula.
"""

from __future__ import annotations

import os
from typing import Literal

import nibabel.orientations as nio
import numpy as np
from PIL import Image

from medmm.errors import InputError
from medmm.imaging.volume import VoiLut, Volume, Window

PRESETS: dict[str, Window] = {
    "lung": Window(center=-600.0, width=1500.0, name="lung"),
    "mediastinum": Window(center=50.0, width=350.0, name="mediastinum"),
    "bone": Window(center=400.0, width=1800.0, name="bone"),
    "brain": Window(center=40.0, width=80.0, name="brain"),
    "abdomen": Window(center=50.0, width=400.0, name="abdomen"),
}
WINDOW_CHOICES = tuple(PRESETS) + ("file", "auto")
Axis = Literal["axial", "coronal", "sagittal"]
AXES: tuple[str, ...] = ("axial", "coronal", "sagittal")


def resolve_window(volume: Volume, window: str | Window | VoiLut | tuple[float, float] | None) -> Window | VoiLut:
    """Turn a window spec into a :class:`Window` or :class:`VoiLut`.

    ``"file"`` is the file's first window, else its first VOI LUT, else ``"auto"``;
    ``"auto"`` spans the 0.5–99.5th percentiles; a preset name; ``"C,W"``; or ``(C, W)``.
    """
    if isinstance(window, (Window, VoiLut)):
        return window
    if isinstance(window, tuple):
        return Window(center=float(window[0]), width=float(window[1]))
    spec = (window or "file").strip().lower()
    if spec == "file":
        if volume.windows:
            return volume.windows[0]
        if volume.voi_luts:
            return volume.voi_luts[0]
        spec = "auto"
    if spec == "auto":
        finite = volume.data[np.isfinite(volume.data)] if volume.data.dtype.kind == "f" else volume.data
        if finite.size == 0:
            return Window(center=0.0, width=1.0, name="auto")
        lo, hi = np.percentile(finite, [0.5, 99.5])
        return Window(center=float(lo + hi) / 2, width=max(float(hi - lo), 1e-6), name="auto")
    if spec in PRESETS:
        return PRESETS[spec]
    if "," in spec:
        try:
            c, w = (float(v) for v in spec.split(","))
        except ValueError:
            pass
        else:
            if w > 0:
                return Window(center=c, width=w, name="custom")
    raise InputError(f"unknown window {window!r}: use one of {', '.join(WINDOW_CHOICES)} or 'CENTER,WIDTH'")


def apply_window(values: np.ndarray, window: Window | VoiLut) -> np.ndarray:
    """Map modality-LUT values to display intensities in [0, 1] (float32)."""
    x = np.asarray(values, dtype=np.float64)
    if isinstance(window, VoiLut):
        idx = np.clip(np.rint(x - window.first_mapped), 0, len(window.lut) - 1).astype(np.int64)
        top = max(window.max_output, 1)
        return (window.lut[idx] / top).astype(np.float32)
    c, w = window.center, window.width
    fn = window.function.upper()
    if fn == "SIGMOID":
        out = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    elif fn == "LINEAR_EXACT":
        out = (x - c) / w + 0.5
    else:  # LINEAR (PS3.3 C.11.2.1.2.1)
        if w <= 1:
            out = (x > c - 0.5).astype(np.float64)
        else:
            out = (x - (c - 0.5)) / (w - 1) + 0.5
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def canonical_display(volume: Volume) -> np.ndarray:
    """Data permuted/flipped so that i→Left, j→Posterior, k→Superior (DICOM LPS axes)."""
    current = nio.io_orientation(volume.affine)
    target = nio.axcodes2ornt(("L", "P", "S"))
    transform = nio.ornt_transform(current, target)
    return nio.apply_orientation(volume.data, transform)


def _frame0(data: np.ndarray, rgb: bool, frame: int) -> np.ndarray:
    """Drop a trailing time axis (4-D NIfTI), keeping an RGB channel axis."""
    spatial = data.ndim - (1 if rgb else 0)
    if spatial == 4:
        if not 0 <= frame < data.shape[3]:
            raise InputError(f"frame {frame} out of range (0..{data.shape[3] - 1})")
        return data[:, :, :, frame]
    return data


def plane(volume: Volume, index: int | None = None, axis: Axis = "axial", mip: bool = False, frame: int = 0) -> np.ndarray:
    """A 2-D plane (rows, cols[, 3]) in display orientation, values as in the volume.

    ``index`` is the slice along ``axis`` in display order (default: the middle); with
    ``mip`` the maximum intensity projection along ``axis`` is returned instead.
    """
    if axis not in AXES:
        raise InputError(f"unknown axis {axis!r}: use one of {', '.join(AXES)}")
    data = _frame0(canonical_display(volume), volume.rgb, frame)
    ax = AXES.index(axis)
    ax = {0: 2, 1: 1, 2: 0}[ax]  # axial slices along k, coronal along j, sagittal along i
    n = data.shape[ax]
    if mip:
        if volume.rgb:
            raise InputError("a MIP of an RGB image is not meaningful")
        img = data.max(axis=ax)
    else:
        if index is None:
            index = n // 2
        if not -n <= index < n:
            raise InputError(f"slice {index} out of range: the {axis} axis has {n} slice(s) (0..{n - 1})")
        img = np.take(data, index, axis=ax)
    img = np.swapaxes(img, 0, 1)  # (i, x) -> (x, i): rows first
    if axis != "axial":
        img = img[::-1]  # superior at the top
    return np.ascontiguousarray(img)


def to_uint8(values: np.ndarray, volume: Volume, window: str | Window | VoiLut | tuple[float, float] | None = "file") -> np.ndarray:
    """Window (or scale RGB) values to uint8, inverting MONOCHROME1 for display."""
    if volume.rgb:
        if values.dtype == np.uint8:
            return values
        top = float(np.iinfo(values.dtype).max) if values.dtype.kind in "ui" else float(values.max() or 1)
        return np.clip(np.rint(values.astype(np.float64) / top * 255.0), 0, 255).astype(np.uint8)
    shown = apply_window(values, resolve_window(volume, window))
    if volume.display_inverted:
        shown = 1.0 - shown
    return np.rint(shown * 255.0).astype(np.uint8)


def render(
    volume: Volume,
    window: str | Window | VoiLut | tuple[float, float] | None = "file",
    index: int | None = None,
    axis: Axis = "axial",
    mip: bool = False,
    frame: int = 0,
) -> np.ndarray:
    """One slice or MIP, windowed to uint8 (rows, cols) — or (rows, cols, 3) for RGB data."""
    return to_uint8(plane(volume, index=index, axis=axis, mip=mip, frame=frame), volume, window)


def three_windows(
    volume: Volume,
    windows: tuple[str, str, str] = ("lung", "mediastinum", "bone"),
    index: int | None = None,
    axis: Axis = "axial",
    mip: bool = False,
) -> np.ndarray:
    """One slice shown through three windows stacked as the R, G and B channels (uint8)."""
    if volume.rgb:
        raise InputError("three-window RGB needs a grayscale volume")
    values = plane(volume, index=index, axis=axis, mip=mip)
    return np.stack([to_uint8(values, volume, w) for w in windows], axis=-1)


def save_png(image: np.ndarray, path: str) -> str:
    """Write a uint8 (rows, cols) or (rows, cols, 3) image as PNG."""
    if image.dtype != np.uint8:
        raise InputError("save_png expects a uint8 image; window it first with render()")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")
    return path


def to_pil(image: np.ndarray) -> Image.Image:
    """A PIL image for vision-language model processors."""
    return Image.fromarray(image).convert("RGB")

"""NIfTI through nibabel, to and from the same :class:`Volume`."""

from __future__ import annotations

import math
import os

import nibabel as nib
import numpy as np

from medmm.errors import InputError
from medmm.imaging.dicom import check_budget
from medmm.imaging.volume import HeaderFacts, Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str) -> bool:
    return path.lower().endswith(NIFTI_SUFFIXES)


def _open(path: str) -> nib.Nifti1Image:
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        return nib.load(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from exc


def nifti_geometry(path: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and RAS affine from the header only (no voxel data read)."""
    img = _open(path)
    return tuple(int(s) for s in img.shape), np.asarray(img.affine, dtype=np.float64)


def load_nifti(path: str, max_voxels: int | None = None) -> Volume:
    """Load a NIfTI-1/2 file. The affine is nibabel's ``img.affine``: sform when its code is
    set, else qform, else the pixdim fallback — nibabel's precedence, kept on purpose so medmm,
    nibabel and MONAI agree. Data are float32 after scl_slope/scl_inter."""
    img = _open(path)
    shape = img.shape
    if len(shape) < 2 or len(shape) > 4:
        raise InputError(f"{path}: {len(shape)}-D NIfTI is not supported (2-D to 4-D only)")
    check_budget(math.prod(int(s) for s in shape), path, max_voxels)  # Python ints: no overflow
    try:
        data = img.get_fdata(dtype=np.float32)
    except Exception as exc:
        raise InputError(f"{path}: NIfTI voxel data cannot be read ({type(exc).__name__}: {exc}); the file may be truncated") from exc
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    return Volume(data=data, affine=np.asarray(img.affine, dtype=np.float64),
                  facts=HeaderFacts(n_frames=int(data.shape[3]) if data.ndim == 4 else 1), source=path)


def save_nifti(volume: Volume, path: str, dtype: np.dtype | type | None = None) -> str:
    """Write a volume as NIfTI-1 with its RAS affine as both sform and qform (code 1, scanner).

    A sheared affine (gantry tilt) cannot be a qform; it is then written as sform only.
    RGB volumes are refused: NIfTI has no standard for them that readers agree on.
    """
    if volume.rgb:
        raise InputError("RGB volumes cannot be saved as NIfTI; render them to PNG instead")
    if not path.lower().endswith(NIFTI_SUFFIXES):
        raise InputError(f"{path}: output must end in .nii or .nii.gz")
    data = volume.data if dtype is None else volume.data.astype(dtype)
    img = nib.Nifti1Image(np.asarray(data), volume.affine)
    img.set_sform(volume.affine, code=1)
    cols = volume.affine[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    if np.allclose(cols.T @ cols, np.eye(3), atol=1e-4):
        img.set_qform(volume.affine, code=1)
    else:
        img.set_qform(None, code=0)
    img.header.set_xyzt_units("mm", "sec")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    nib.save(img, path)
    return path

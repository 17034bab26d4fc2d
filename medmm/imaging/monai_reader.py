"""A MONAI ``ImageReader`` backed by medmm, so MONAI pipelines get medmm's geometry.

Usage::

    from monai.transforms import LoadImage
    from medmm.imaging.monai_reader import MedmmReader
    img = LoadImage(reader=MedmmReader(), image_only=True)("path/to/series_or_file")

The MetaTensor's ``affine`` is medmm's RAS affine (series sorted by position, gaps refused,
per-frame Enhanced geometry), not MONAI's PydicomReader geometry.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from monai.data.image_reader import ImageReader
from monai.utils import MetaKeys, SpaceKeys

from medmm.imaging.io import load_volume
from medmm.imaging.volume import Volume


class MedmmReader(ImageReader):
    """Read DICOM files, DICOM series folders and NIfTI files through :mod:`medmm.imaging`.

    Args:
        force: apply the documented fallbacks for error-policy series problems.
        max_voxels: pixel budget override.
    """

    def __init__(self, force: bool = False, max_voxels: int | None = None) -> None:
        super().__init__()
        self.force = force
        self.max_voxels = max_voxels

    def verify_suffix(self, filename: Sequence[os.PathLike | str] | os.PathLike | str) -> bool:
        names = [filename] if isinstance(filename, (str, os.PathLike)) else list(filename)
        for name in names:
            name = str(name)
            low = name.lower()
            if not (os.path.isdir(name) or low.endswith((".dcm", ".dicom", ".nii", ".nii.gz")) or "." not in os.path.basename(name)):
                return False
        return True

    def read(self, data: Sequence[os.PathLike | str] | os.PathLike | str, **kwargs: Any) -> Volume | list[Volume]:
        names = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        vols = [load_volume(str(n), force=self.force, max_voxels=self.max_voxels) for n in names]
        return vols[0] if len(vols) == 1 else vols

    def get_data(self, img: Volume | list[Volume]) -> tuple[np.ndarray, dict]:
        vols = img if isinstance(img, list) else [img]
        arrays = []
        meta: dict[str, Any] = {}
        for vol in vols:
            arrays.append(vol.data)
            if not meta:
                meta = {
                    MetaKeys.AFFINE: vol.affine.copy(),
                    MetaKeys.ORIGINAL_AFFINE: vol.affine.copy(),
                    MetaKeys.SPATIAL_SHAPE: np.asarray(vol.shape),
                    MetaKeys.SPACE: SpaceKeys.RAS,
                    MetaKeys.ORIGINAL_CHANNEL_DIM: -1 if vol.data.ndim == 4 else float("nan"),
                    "modality": vol.modality or "",
                    "photometric": vol.photometric or "",
                    "problems": ";".join(p.code for p in vol.problems),
                }
            elif not np.allclose(meta[MetaKeys.AFFINE], vol.affine):
                raise ValueError("images stacked as channels must share one affine")
        if len(arrays) == 1:
            return arrays[0], meta
        if arrays[0].ndim == 4:
            return np.concatenate(arrays, axis=-1), meta
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
        return np.stack(arrays, axis=0), meta

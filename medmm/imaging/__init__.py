"""medmm.imaging: DICOM and NIfTI to :class:`Volume` with correct geometry and pixels.

Main entry points: :func:`load`, :func:`load_volume`, :func:`describe`, :func:`scan`,
:func:`save_nifti`, :func:`render`. Problem codes and their policies:
:mod:`medmm.imaging.problems`. This layer imports nothing from higher medmm layers.

Names are imported lazily, so ``medmm.imaging.volume`` (used by every layer for the type)
does not pull in pydicom, nibabel or pandas.
"""

from __future__ import annotations

from medmm._lazy import lazy_exports

_EXPORTS = {
    "Description": "medmm.imaging.io", "describe": "medmm.imaging.io", "load": "medmm.imaging.io",
    "load_volume": "medmm.imaging.io", "load_nifti": "medmm.imaging.nifti", "save_nifti": "medmm.imaging.nifti",
    "POLICIES": "medmm.imaging.problems", "Problem": "medmm.imaging.problems", "PRESETS": "medmm.imaging.views",
    "render": "medmm.imaging.views", "save_png": "medmm.imaging.views", "three_windows": "medmm.imaging.views",
    "HeaderFacts": "medmm.imaging.volume", "Volume": "medmm.imaging.volume", "VoiLut": "medmm.imaging.volume",
    "Window": "medmm.imaging.volume", "scan": "medmm.imaging.index", "header_facts": "medmm.imaging.io",
    "REPORT_FACTS": "medmm.imaging.volume",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports("medmm.imaging", _EXPORTS, globals())

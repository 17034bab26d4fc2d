"""medmm.imaging: DICOM and NIfTI to :class:`Volume` with correct geometry and pixels.

Main entry points: :func:`load`, :func:`load_volume`, :func:`describe`, :func:`scan`,
:func:`save_nifti`, :func:`render`. Problem codes and their policies:
:mod:`medmm.imaging.problems`. This layer imports nothing from higher medmm layers.
"""

from medmm.imaging.io import Description, describe, load, load_volume
from medmm.imaging.nifti import load_nifti, save_nifti
from medmm.imaging.problems import POLICIES, Problem
from medmm.imaging.views import PRESETS, render, save_png, three_windows
from medmm.imaging.volume import HeaderFacts, Volume, VoiLut, Window

__all__ = [
    "Description", "HeaderFacts", "POLICIES", "PRESETS", "Problem", "Volume", "VoiLut", "Window",
    "describe", "load", "load_nifti", "load_volume", "render", "save_nifti", "save_png", "three_windows",
]


def scan(root: str, workers: int | None = None):  # noqa: ANN201 - re-export with lazy pandas import
    """Header index of a folder tree; see :func:`medmm.imaging.index.scan`."""
    from medmm.imaging.index import scan as _scan

    return _scan(root, workers=workers)

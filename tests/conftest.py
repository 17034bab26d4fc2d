"""Shared fixtures: paths to real files shipped with pydicom, pydicom-data and nibabel, and
small synthetic DICOM series with known geometry (written by medmm.imaging.dicom_write)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

import data_store
from medmm.imaging.dicom_write import SeriesSpec, axial_positions, write_series

PYDICOM_FILES = Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files"
PYDICOM_DATA = Path(os.path.dirname(data_store.__file__)) / "data"
DICOMDIR_TESTS = PYDICOM_FILES / "dicomdirtests"


def shipped_file(name: str) -> str:
    """A file from pydicom's wheel or from pydicom-data (never get_testdata_files('*'))."""
    for root in (PYDICOM_FILES, PYDICOM_DATA):
        path = root / name
        if path.exists():
            return str(path)
    raise FileNotFoundError(name)


@pytest.fixture
def make_series(tmp_path):
    """Write a synthetic series: stored values are k*100 + row + col so every slice is known."""

    def _make(n: int = 5, rows: int = 8, cols: int = 6, name: str = "series", positions=None, **spec_kwargs):
        stored = np.zeros((n, rows, cols), dtype=np.int16)
        for k in range(n):
            stored[k] = k * 100 + np.add.outer(np.arange(rows), np.arange(cols) * 10)
        if positions is None:
            positions = axial_positions(n, spec_kwargs.pop("spacing", 2.0), (-10.0, -20.0, 30.0))
        spec = SeriesSpec(positions=np.asarray(positions, dtype=float), seed=spec_kwargs.pop("seed", name), **spec_kwargs)
        out = tmp_path / name
        paths = write_series(str(out), stored, spec)
        return str(out), stored, paths

    return _make


@pytest.fixture(autouse=True, scope="session")
def _deid_key_file(tmp_path_factory):
    """medmm.deid keeps its key file in the user's home by default: tests use a temporary one."""
    path = tmp_path_factory.mktemp("deid-key") / "deid.key"
    old = os.environ.get("MEDMM_DEID_KEY_FILE")
    os.environ["MEDMM_DEID_KEY_FILE"] = str(path)
    yield str(path)
    if old is None:
        os.environ.pop("MEDMM_DEID_KEY_FILE", None)
    else:
        os.environ["MEDMM_DEID_KEY_FILE"] = old

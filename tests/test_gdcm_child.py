"""The gdcm child's pipe protocol (issue 20 N12's child, verifier's probe): one request, one answer.

A path was sent as raw bytes + newline, so a file name holding a newline (a zip member of an upload,
a study folder) became two requests; the stray answer then came back for the *next* decode, which got
another file's pixels (or its error): one study's image shown for another."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pydicom
import pytest

from tests.conftest import shipped_file

gdcm = pytest.importorskip("gdcm", reason="python-gdcm is not installed")


def test_a_newline_in_a_path_does_not_shift_later_answers(tmp_path, monkeypatch):
    from medmm.imaging import gdcm_child

    src = shipped_file("JPGLosslessP14SV1_1s_1f_8b.dcm")
    ref = pydicom.dcmread(src).pixel_array
    other = shipped_file("JPGExtended.dcm")
    monkeypatch.chdir(tmp_path)
    shutil.copy(other, tmp_path / "other.dcm")  # what the stray second line names, relative to the cwd
    weird = tmp_path / "x\nother.dcm"
    shutil.copy(src, weird)
    got = gdcm_child.decode(str(weird))  # the file itself, decoded
    assert np.array_equal(got, ref)
    again = gdcm_child.decode(src)  # was: the stray answer (other.dcm's pixels or 'x: no such file')
    assert np.array_equal(again, ref)
    assert os.path.exists(weird)

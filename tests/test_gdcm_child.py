"""The gdcm child never runs the caller's script again (issue 20, N12): a ``forkserver`` worker imported
``__main__`` by path, so decoding a JPEG-LS file from the report-checking app (whose script is
``__main__``) ran the app's script a second time in the worker. The child is now ``python -m
medmm.imaging.gdcm_child``. The script below counts its own runs in a file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pydicom

from medmm.imaging.dicom import _decode_gdcm_isolated
from tests.conftest import shipped_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gdcm_decode_from_a_script_does_not_run_the_script_again(tmp_path):
    runs = tmp_path / "runs.txt"
    script = tmp_path / "app_script.py"
    script.write_text(textwrap.dedent(f"""
        with open({str(runs)!r}, "a") as fh:  # a side effect at import: what an app script does
            fh.write("ran\\n")
        from medmm.imaging import load
        vol = load({shipped_file("MR_small_jpeg_ls_lossless.dcm")!r})[0]  # JPEG-LS: decoded by gdcm
        print(vol.shape)
    """))
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(64, 64, 1)" in done.stdout
    assert runs.read_text().count("ran") == 1


def test_child_decodes_like_pydicom_and_reports_errors(tmp_path):
    path = shipped_file("MR_small_jpeg_ls_lossless.dcm")
    ds = pydicom.dcmread(path)
    ds.pixel_array_options(decoding_plugin="gdcm")
    assert np.array_equal(_decode_gdcm_isolated(path), ds.pixel_array)
    missing = tmp_path / "gone.dcm"
    import pytest

    from medmm.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        _decode_gdcm_isolated(str(missing))

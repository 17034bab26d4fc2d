"""The README's demo: medmm's imaging layer on built-in data, offline.

Writes a small synthetic CT series, then runs the CLI on it and on real files shipped with
pydicom and pydicom-data (a series with a gap, a series with mixed orientations, a
MONOCHROME1 radiograph): ``info``, ``convert``, ``render`` and ``scan``. Everything lands in
``demo-out/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from medmm.cli import main as cli
from medmm.imaging.dicom_write import SeriesSpec, axial_positions, write_series


def synthetic_ct(n: int = 48, size: int = 128, spacing: float = 2.5) -> np.ndarray:
    """Stored values (int16, intercept -1024) of a simple chest-like phantom: body, lungs, spine."""
    z, y, x = np.mgrid[0:n, 0:size, 0:size].astype(np.float32)
    cy, cx = size / 2, size / 2
    hu = np.full((n, size, size), -1000.0, dtype=np.float32)
    body = ((x - cx) / (0.42 * size)) ** 2 + ((y - cy) / (0.32 * size)) ** 2 <= 1
    hu[body] = 40.0
    for side in (-1, 1):
        lung = ((x - cx - side * 0.2 * size) / (0.14 * size)) ** 2 + ((y - cy + 0.02 * size) / (0.2 * size)) ** 2 <= 1
        hu[lung & (z > 4)] = -850.0
    spine = ((x - cx) / (0.06 * size)) ** 2 + ((y - cy - 0.22 * size) / (0.06 * size)) ** 2 <= 1
    hu[spine] = 700.0
    nodule = ((x - cx - 0.2 * size) ** 2 + (y - cy) ** 2 + ((z - n / 2) * spacing / 0.8) ** 2) <= (0.04 * size) ** 2
    hu[nodule] = 30.0
    return np.clip(hu + 1024.0, 0, 4095).astype(np.int16)


def run(out: str) -> int:
    import pydicom
    import data_store

    os.makedirs(out, exist_ok=True)
    series = os.path.join(out, "synthetic-ct")
    stored = synthetic_ct()
    spec = SeriesSpec(positions=axial_positions(len(stored), 2.5, (-160.0, -160.0, -60.0)),
                      pixel_spacing=(2.5, 2.5), slice_thickness=2.5, intercept=-1024.0,
                      body_part="CHEST", patient_sex="F", seed="medmm-demo")
    write_series(series, stored, spec)
    tests = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    store = os.path.join(os.path.dirname(data_store.__file__), "data")
    steps: list[tuple[str, list[str], bool]] = [
        ("describe the synthetic CT series", ["info", series], True),
        ("convert it to NIfTI", ["convert", series, os.path.join(out, "synthetic-ct.nii.gz")], True),
        ("render a lung-window slice", ["render", series, "--window", "lung", "--out", os.path.join(out, "ct-lung.png")], True),
        ("render three windows as RGB", ["render", series, "--three-windows", "lung,mediastinum,bone",
                                         "--out", os.path.join(out, "ct-3windows.png")], True),
        ("render a coronal MIP", ["render", series, "--mip", "--axis", "coronal", "--window", "bone",
                                  "--out", os.path.join(out, "ct-mip.png")], True),
        ("a real series with a gap (pydicom dicomdirtests CT2): reported, not averaged",
         ["info", os.path.join(tests, "dicomdirtests", "77654033", "CT2")], True),
        ("...and converting it is refused", ["convert", os.path.join(tests, "dicomdirtests", "77654033", "CT2"),
                                            os.path.join(out, "ct2.nii.gz")], False),
        ("a real series with two orientations (CT2N): split", ["info", os.path.join(tests, "dicomdirtests", "98892001", "CT2N")], True),
        ("a MONOCHROME1 radiograph, displayed inverted", ["render", os.path.join(store, "RG1_UNCI.dcm"),
                                                         "--out", os.path.join(out, "cr-monochrome1.png")], True),
        ("index pydicom's test files (bad files listed with reasons)",
         ["scan", tests, "--out", os.path.join(out, "index.csv"), "--workers", "2"], True),
    ]
    failures = 0
    for title, argv, should_pass in steps:
        print(f"\n$ medmm {' '.join(argv)}    # {title}", flush=True)
        rc = cli(argv)
        if (rc == 0) != should_pass:
            failures += 1
            print(f"!! unexpected exit code {rc}", file=sys.stderr)
    print(f"\nDemo outputs are in {out}/ ({'all steps behaved as expected' if not failures else f'{failures} unexpected'}).")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medmm.demo")
    parser.add_argument("--out", default="demo-out")
    args = parser.parse_args(argv)
    return run(args.out)


if __name__ == "__main__":
    sys.exit(main())

"""Correctness beside speed: medmm and its peers on real and synthetic broken series.

For every input slice, the truth is taken straight from its DICOM header with pydicom
(ImagePositionPatient / ImageOrientationPatient / PixelSpacing, or the Enhanced per-frame
groups) — independently of medmm's geometry code. A reader's output is **correct** when every
input slice appears, with its own pixel values, at its true world position in one of the
returned volumes; **refused** when it raised an error (that is the honest answer for a series
that is not one regular grid); **WRONG** otherwise (slices misplaced, dropped or merged).
Peers: SimpleITK ImageSeriesReader, MONAI LoadImage(PydicomReader), dicom2nifti — each
optional; missing ones are reported as not installed.
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pydicom

from medmm.imaging.dicom_write import SeriesSpec, write_series

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class TruthSlice:
    pixels: np.ndarray  # (rows, cols), rescaled
    origin: np.ndarray  # LPS of pixel (0, 0)
    row_dir: np.ndarray  # direction of increasing column index
    col_dir: np.ndarray  # direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns)


def _f(v) -> np.ndarray:
    return np.array([float(x) for x in v])


def truth(path: str) -> list[TruthSlice]:
    files = [path] if os.path.isfile(path) else sorted(
        f for f in glob.glob(os.path.join(path, "*")) if os.path.isfile(f)
    )
    out = []
    for f in files:
        ds = pydicom.dcmread(f)
        arr = ds.pixel_array.astype(np.float64)
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.SharedFunctionalGroupsSequence[0]
            for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
                def grp(name):
                    return item[name][0] if name in item else shared[name][0]
                iop = _f(grp("PlaneOrientationSequence").ImageOrientationPatient)
                pvt = grp("PixelValueTransformationSequence")
                px = arr[k] * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
                out.append(TruthSlice(px, _f(grp("PlanePositionSequence").ImagePositionPatient), iop[:3], iop[3:],
                                      tuple(_f(grp("PixelMeasuresSequence").PixelSpacing))))
            continue
        iop = _f(ds.ImageOrientationPatient)
        px = arr * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
        out.append(TruthSlice(px, _f(ds.ImagePositionPatient), iop[:3], iop[3:], tuple(_f(ds.PixelSpacing))))
    return out


def verdict(volumes: list[tuple[np.ndarray, np.ndarray]], slices: list[TruthSlice]) -> str:
    """Check every truth slice against the (data[i,j,k], RAS affine) volumes."""
    for s in slices:
        rows, cols = s.pixels.shape
        rr, cc = np.meshgrid(np.arange(0, rows, max(1, rows // 8)), np.arange(0, cols, max(1, cols // 8)), indexing="ij")
        lps = s.origin + cc[..., None] * s.spacing[1] * s.row_dir + rr[..., None] * s.spacing[0] * s.col_dir
        ras = np.concatenate([lps, np.ones(lps.shape[:-1] + (1,))], axis=-1) @ LPS_TO_RAS.T
        found = False
        for data, affine in volumes:
            ijk = ras @ np.linalg.inv(affine).T
            idx = np.rint(ijk[..., :3]).astype(int)
            # the voxel that holds this pixel must sit where the pixel truly is (within 0.1 mm)
            back = np.concatenate([idx, np.ones(idx.shape[:-1] + (1,))], axis=-1) @ affine.T
            if np.linalg.norm(back[..., :3] - ras[..., :3], axis=-1).max() > 0.1:
                continue
            if (idx < 0).any() or (idx >= np.array(data.shape[:3])).any():
                continue
            got = data[idx[..., 0], idx[..., 1], idx[..., 2]]
            if np.allclose(got, s.pixels[rr, cc], rtol=1e-4, atol=1e-3):
                found = True
                break
        if not found:
            return "WRONG (a slice is not at its true position)"
    return "correct" + (f" (split into {len(volumes)})" if len(volumes) > 1 else "")


# ---------------------------------------------------------------- readers
def read_medmm(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from medmm.imaging import load

    return [(v.data, v.affine) for v in load(path)]


def read_sitk(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    import SimpleITK as sitk

    if os.path.isfile(path):
        img = sitk.ReadImage(path, sitk.sitkFloat64)
    else:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(path))
        reader.SetOutputPixelType(sitk.sitkFloat64)
        img = reader.Execute()
    data = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    direction = np.array(img.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    return [(data, LPS_TO_RAS @ lps)]


def read_monai(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from monai.transforms import LoadImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = LoadImage(reader="PydicomReader", image_only=True, dtype=np.float64)(path)
    data = np.asarray(img)
    if data.ndim == 2:
        data = data[..., None]
    return [(data, np.asarray(img.affine, dtype=np.float64))]


def read_dicom2nifti(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    import logging

    import dicom2nifti
    import nibabel as nib

    logging.getLogger("dicom2nifti").setLevel(logging.CRITICAL)

    folder = path if os.path.isdir(path) else os.path.dirname(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.nii.gz")
        dicom2nifti.dicom_series_to_nifti(folder, out, reorient_nifti=False)
        img = nib.load(out)
        data = img.get_fdata()
        if data.ndim == 2:
            data = data[..., None]
        return [(data, img.affine)]


READERS: dict[str, Callable[[str], list]] = {
    "medmm": read_medmm,
    "SimpleITK": read_sitk,
    "MONAI PydicomReader": read_monai,
    "dicom2nifti": read_dicom2nifti,
}


def _available(name: str) -> bool:
    import importlib.util

    mod = {"SimpleITK": "SimpleITK", "dicom2nifti": "dicom2nifti", "MONAI PydicomReader": "monai"}.get(name)
    return mod is None or importlib.util.find_spec(mod) is not None


def synthetic_cases(root: str) -> dict[str, str]:
    rng = np.random.default_rng(1)

    def write(name: str, positions: np.ndarray, **kw) -> str:
        stored = rng.integers(0, 3000, size=(len(positions), 16, 16)).astype(np.int16)
        folder = os.path.join(root, name)
        write_series(folder, stored, SeriesSpec(positions=np.asarray(positions, float), seed=name, **kw))
        return folder

    dy = 2.0 * np.tan(np.radians(15))
    return {
        "synthetic gantry tilt 15°": write("tilt", [[0, k * dy, 2.0 * k] for k in range(6)], gantry_tilt=15.0),
        "synthetic uneven spacing": write("uneven", [[0, 0, z] for z in (0, 2, 4, 5.5, 7.5, 9.5)]),
        "synthetic duplicate position": write("dup", [[0, 0, z] for z in (0, 2, 2, 4, 6)]),
        "synthetic missing slice": write("gap", [[0, 0, z] for z in (0, 2, 4, 8, 10, 12)]),
    }


def run(readers: dict[str, Callable[[str], list]] | None = None) -> list[tuple[str, dict[str, str]]]:
    readers = readers or READERS
    tests = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "dicomdirtests")
    import data_store

    cases = {
        "CT2 (gap, pydicom)": os.path.join(tests, "77654033", "CT2"),
        "CT5N (reversed InstanceNumber)": os.path.join(tests, "98892001", "CT5N"),
        "CT2N (two orientations)": os.path.join(tests, "98892001", "CT2N"),
        "MR700 (7 radial slices)": os.path.join(tests, "98892003", "MR700"),
        "eCT_Supplemental (Enhanced CT)": os.path.join(os.path.dirname(data_store.__file__), "data", "eCT_Supplemental.dcm"),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="medmm-broken-") as tmp:
        cases.update(synthetic_cases(tmp))
        for label, path in cases.items():
            slices = truth(path)
            outcome = {}
            for name, reader in readers.items():
                if not _available(name):
                    outcome[name] = "not installed"
                    continue
                try:
                    outcome[name] = verdict(reader(path), slices)
                except Exception as exc:  # a refusal (or a crash) is the reader's answer
                    bug = isinstance(exc, (IndexError, KeyError, AttributeError, TypeError, ZeroDivisionError))
                    kind = "crash" if bug else "refused"
                    msg = " ".join(str(exc).replace(path + ": ", "").split())
                    msg = msg.replace("series cannot be loaded as one correct volume: ", "")[:60]
                    outcome[name] = f"{kind}: {type(exc).__name__}: {msg}"
            rows.append((label, outcome))
    return rows


def report(rows: list[tuple[str, dict[str, str]]]) -> str:
    names = list(rows[0][1]) if rows else list(READERS)
    lines = ["| series | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, outcome in rows:
        lines.append(f"| {label} | " + " | ".join(outcome[n] for n in names) + " |")
    wrong = [label for label, o in rows if o["medmm"].startswith("WRONG")]
    lines.append("")
    lines.append("medmm is right or refuses on every case" if not wrong else f"medmm WRONG on: {wrong}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    print(report(run()), flush=True)


if __name__ == "__main__":
    main()

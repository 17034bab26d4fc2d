"""``medmm synth``: synthetic CT, chest radiograph and brain MR studies with exact truth.

Each study gets real DICOM (series or single files), NIfTI copies with a label map of organs
and findings, a report consistent with the truth, and a manifest line (schema in
:mod:`medmm.synth.truth` and ``datasets/synthetic.md``). Study ``i`` is generated from
``numpy.random.default_rng([seed, i])`` alone, so the output is identical for a seed whatever
the number of worker processes.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from pydicom.uid import generate_uid
from scipy import ndimage

from medmm._pool import exit_with_parent, pool_context
from medmm.errors import InputError
from medmm.imaging.dicom_write import ProjectionSpec, SeriesSpec, StudyIdentity, write_projection, write_series
from medmm.imaging.io import load_volume
from medmm.imaging.nifti import save_nifti
from medmm.imaging.volume import Volume
from medmm.regions.frames import ACQUISITION
from medmm.synth import phantoms
from medmm.synth.reports import INDICATIONS, write_report
from medmm.synth.truth import Box, Finding, ImageEntry, Study

KINDS = ("ct", "cxr", "mr")


@dataclass(frozen=True)
class SynthConfig:
    """Sizes of generated studies (defaults as the issue asks; tests use smaller ones)."""

    ct_slices: tuple[int, int] = (64, 128)
    ct_sizes: tuple[int, ...] = (128, 160, 192, 224, 256)
    mr_slices: tuple[int, int] = (24, 48)
    mr_sizes: tuple[int, ...] = (128, 160, 192)
    cxr_zoom: float = 2.0  # radiograph pixels per phantom voxel (3 mm voxels -> 1.5 mm pixels)
    normal_fraction: float = 0.3
    localizer_fraction: float = 0.4
    mr_coronal_fraction: float = 0.3  # MR series acquired coronally (slices along y)
    ct_feet_first_fraction: float = 0.0  # CT written as a feet-first scan (columns R->L, slices S->I)


SMALL = SynthConfig(ct_slices=(24, 32), ct_sizes=(64, 80), mr_slices=(16, 20), mr_sizes=(64,), cxr_zoom=1.0)


def _boxes_from_labels(labels: np.ndarray, label: int, image: int, sliced: bool) -> list[Box]:
    """Tight acquisition-frame boxes (x2/y2 exclusive) of ``label`` in a [k, row, col] (or [row, col])
    array stored as the image is (k in position order)."""
    boxes = []
    planes = labels if sliced else labels[np.newaxis]
    for k in range(planes.shape[0]):
        mask = planes[k] == label
        if not mask.any():
            continue
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        boxes.append(Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1, frame=ACQUISITION,
                         image=image, slice=k if sliced else None))
    return boxes


def _choose_chest_findings(rng: np.random.Generator, ct: bool, normal: bool) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    if not normal:
        options = [("nodule", "left"), ("nodule", "right"), ("mass", "left"), ("mass", "right"),
                   ("effusion", "left"), ("effusion", "right"), ("effusion", "bilateral"),
                   ("pneumothorax", "left"), ("pneumothorax", "right"),
                   ("consolidation", "left"), ("consolidation", "right")]
        if ct:
            options += [("mass", None), ("cyst", None), ("cyst", "left"), ("cyst", "right"), ("fracture", "midline")]
        n = int(rng.integers(1, 4))
        used: set[str] = set()
        for idx in rng.permutation(len(options)):
            kind, side = options[idx]
            family = kind if kind in ("effusion", "pneumothorax", "fracture") else f"{kind}:{side}"
            # one finding per region keeps every finding visible (and the truth unambiguous)
            region = f"{side}-lung" if kind in ("nodule", "mass", "consolidation", "pneumothorax") and side else family
            if family in used or region in used or (kind == "effusion" and "effusion" in used):
                continue
            used.update({family, region})
            out.append((kind, side))
            if len(out) == n:
                break
    if rng.random() < 0.3:
        # every sided device on either side (a fixed side would let a text-only model tell a swapped report from
        # its prior: "right pacemaker" would always be an error, and the checker's blind control would not hold)
        line, pacer, tube = (str(x) for x in rng.choice(["left", "right"], size=3))
        devices = [("endotracheal_tube", "midline"), ("central_line", line), ("pacemaker", pacer), ("chest_tube", tube)]
        for idx in rng.permutation(len(devices))[: int(rng.integers(1, 3))]:
            out.append(devices[idx])
    return out


def _study_ids(seed: int, i: int) -> tuple[str, str]:
    return f"S{i + 1:04d}", f"medmm-synth-{seed}-{i}"


DESCRIPTIONS = {"ct": "CT CHEST", "cxr": "XR CHEST", "mr": "MR BRAIN"}


def study_identity(seed: int, i: int, kind: str) -> StudyIdentity:
    """How a hospital would name study ``i`` of a run: an accession number (12 characters, unique within a
    seed), the study ID, an exam date and time in 2025, a birth date 20-90 years earlier and an empty
    referring physician. Drawn from their own generator (``[seed, i, 19]``), so the images, truth and
    report of a seed are unchanged."""
    import datetime as dt

    rng = np.random.default_rng([seed, i, 19])
    day = dt.date(2025, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365)))
    seconds = int(rng.integers(7 * 3600, 20 * 3600))
    birth = day - dt.timedelta(days=int(rng.integers(20 * 365, 90 * 365)))
    return StudyIdentity(accession_number=f"A{seed % 1000:03d}{i + 1:08d}", study_id=_study_ids(seed, i)[0],
                         study_date=day.strftime("%Y%m%d"),
                         study_time=f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}",
                         patient_birth_date=birth.strftime("%Y%m%d"), referring_physician_name="",
                         study_description=DESCRIPTIONS[kind])


def _chest_with_findings(grid: phantoms.Grid, rng: np.random.Generator, cfg: SynthConfig,
                         ct: bool) -> tuple[phantoms.Phantom, list[Finding]]:
    """A chest phantom with its (randomly chosen) findings drawn in."""
    ph = phantoms.chest(grid, rng)
    normal = rng.random() < cfg.normal_fraction
    findings: list[Finding] = []
    for kind, side in _choose_chest_findings(rng, ct=ct, normal=normal):
        f = phantoms.add_chest_lesion(ph, rng, kind, side, len(findings) + 1)
        if f is not None:
            findings.append(f)
    return ph, findings


def _ct_study(out: str, rel: str, sid: str, uid_seed: str, rng: np.random.Generator, cfg: SynthConfig,
              ident: StudyIdentity = StudyIdentity()) -> Study:
    n = int(rng.integers(cfg.ct_slices[0], cfg.ct_slices[1] + 1))
    size = int(rng.choice(cfg.ct_sizes))
    dx = round(380.0 / size, 3)
    dz = min((2.5, 3.0, 4.0, 5.0), key=lambda v: abs(v - 300.0 / n))
    grid = phantoms.Grid((n, size, size), (dz, dx, dx))
    ph, findings = _chest_with_findings(grid, rng, cfg, ct=True)
    phantoms.add_noise(ph, rng, 12.0)
    sex = str(rng.choice(["M", "F"]))
    stored = np.clip(np.rint(ph.values) + 1024, 0, 4095).astype(np.int16)
    labels = ph.labels
    o = grid.origin
    orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    positions = np.array([[o[0], o[1], z] for z in grid.axes()[0]])
    if cfg.ct_feet_first_fraction and rng.random() < cfg.ct_feet_first_fraction:
        # feet first supine: columns run toward the patient's right, the slice normal points to the
        # feet, so position order (what a reader sorts by) goes from superior to inferior
        stored, labels = stored[::-1, :, ::-1], labels[::-1, :, ::-1]
        orientation = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        leftmost = o[0] + dx * (grid.shape[2] - 1)  # LPS: +x is the patient's left
        positions = np.array([[leftmost, o[1], z] for z in grid.axes()[0][::-1]])
    series_dir = os.path.join(out, rel, "ct")
    study_uid = generate_uid(entropy_srcs=[uid_seed, "study"])
    write_series(series_dir, stored, SeriesSpec(
        positions=positions, orientation=orientation, pixel_spacing=(dx, dx), slice_thickness=dz, modality="CT",
        intercept=-1024.0,
        window=(40.0, 400.0), body_part="CHEST", patient_sex=sex, series_description="CT CHEST",
        seed=uid_seed, study_uid=study_uid, identity=ident))
    images = [ImageEntry(f"{rel}/ct", "dicom-series", f"{rel}/ct_labels.nii.gz"),
              ImageEntry(f"{rel}/ct.nii.gz", "nifti", f"{rel}/ct_labels.nii.gz")]
    vol = load_volume(series_dir)
    save_nifti(vol, os.path.join(out, rel, "ct.nii.gz"), dtype=np.int16)
    save_nifti(Volume(labels.transpose(2, 1, 0), vol.affine), os.path.join(out, rel, "ct_labels.nii.gz"), dtype=np.int16)
    if rng.random() < cfg.localizer_fraction:
        mu = np.clip(1.0 + ph.values / 1000.0, 0, None)
        proj = mu.sum(axis=1)[::-1]  # coronal projection, rows from superior to inferior
        proj = np.rint(proj / max(float(proj.max()), 1e-6) * 2000).astype(np.int16)[np.newaxis]
        top = grid.axes()[0][-1]
        write_series(os.path.join(out, rel, "localizer"), proj, SeriesSpec(
            positions=np.array([[o[0], 0.0, top]]), orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
            pixel_spacing=(dz, dx), modality="CT", window=(1000.0, 2000.0), body_part="CHEST", patient_sex=sex,
            series_description="LOCALIZER", seed=uid_seed, study_uid=study_uid, series_number=2,
            image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), identity=ident))
        images.append(ImageEntry(f"{rel}/localizer", "dicom-series", None))
    for f in findings:
        f.boxes = _boxes_from_labels(labels, f.label, 0, sliced=True)
    comparison = bool(rng.random() < 0.4)
    indication = str(rng.choice(INDICATIONS["CT"])) if rng.random() < 0.7 else None
    report = write_report(rng, findings, "CT", comparison, indication)
    return Study(sid, "CT", "CHEST", sex, images, report, findings, comparison, indication)


def _cxr_study(out: str, rel: str, sid: str, uid_seed: str, rng: np.random.Generator, cfg: SynthConfig,
              ident: StudyIdentity = StudyIdentity()) -> Study:
    grid = phantoms.Grid((100, 90, 120), (3.0, 3.0, 3.0))
    ap = bool(rng.random() < 0.35)
    ph, findings = _chest_with_findings(grid, rng, cfg, ct=False)
    sex = str(rng.choice(["M", "F"]))
    modality = str(rng.choice(["DX", "CR"]))
    mono1 = bool(rng.random() < 0.3)
    mu = 0.019 * np.clip(1.0 + ph.values / 1000.0, 0, None)
    study_uid = generate_uid(entropy_srcs=[uid_seed, "study"])
    views = [("AP" if ap else "PA", 1)] + ([("LATERAL", 2)] if rng.random() < 0.5 else [])
    images: list[ImageEntry] = []
    per_view_labels = []
    spacing = round(3.0 / cfg.cxr_zoom, 4)
    for view, axis in views:
        proj = (mu.sum(axis=axis) * 3.0)[::-1]  # rows: superior at the top
        proj = ndimage.zoom(proj, cfg.cxr_zoom, order=1) if cfg.cxr_zoom != 1 else proj
        v = (proj / max(float(proj.max()), 1e-6)) ** 0.8
        v = v + rng.normal(0, 0.01, size=v.shape)
        stored = np.clip(np.rint(v * 3800) + 100, 0, 4095).astype(np.uint16)
        if mono1:
            stored = (4095 - stored).astype(np.uint16)
        lab = np.zeros(stored.shape, dtype=np.int16)
        for f in findings:
            m = (ph.labels == f.label).any(axis=axis)[::-1]
            if cfg.cxr_zoom != 1:
                m = ndimage.zoom(m.astype(np.uint8), cfg.cxr_zoom, order=0).astype(bool)
            lab[m[: lab.shape[0], : lab.shape[1]]] = f.label
        name = f"cxr_{view.lower()}"
        write_projection(os.path.join(out, rel, f"{name}.dcm"), stored, ProjectionSpec(
            modality=modality, pixel_spacing=(spacing, spacing), photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
            view_position=view, laterality="U", body_part="CHEST", patient_sex=sex,
            window=(2048.0, 4000.0), series_description=f"CHEST {view}", seed=uid_seed, study_uid=study_uid,
            series_number=len(images) + 1, identity=ident))
        lps = np.diag([spacing, spacing, 1.0, 1.0])
        save_nifti(Volume(lab.T[:, :, np.newaxis], phantoms_affine(lps)), os.path.join(out, rel, f"{name}_labels.nii.gz"),
                   dtype=np.int16)
        images.append(ImageEntry(f"{rel}/{name}.dcm", "dicom-file", f"{rel}/{name}_labels.nii.gz", view=view))
        per_view_labels.append(lab)
    for f in findings:
        f.boxes = [b for i, lab in enumerate(per_view_labels) for b in _boxes_from_labels(lab, f.label, i, sliced=False)]
    findings = [f for f in findings if f.boxes]
    comparison = bool(rng.random() < 0.4)
    indication = str(rng.choice(INDICATIONS["CXR"])) if rng.random() < 0.7 else None
    report = write_report(rng, findings, modality, comparison, indication)
    return Study(sid, modality, "CHEST", sex, images, report, findings, comparison, indication)


def phantoms_affine(lps: np.ndarray) -> np.ndarray:
    """RAS affine of an LPS-aligned grid (what medmm gives a radiograph without geometry)."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _mr_study(out: str, rel: str, sid: str, uid_seed: str, rng: np.random.Generator, cfg: SynthConfig,
              ident: StudyIdentity = StudyIdentity()) -> Study:
    n = int(rng.integers(cfg.mr_slices[0], cfg.mr_slices[1] + 1))
    size = int(rng.choice(cfg.mr_sizes))
    dx = round(230.0 / size, 3)
    dz = round(150.0 / n * 2) / 2
    grid = phantoms.Grid((n, size, size), (dz, dx, dx))
    ph = phantoms.brain(grid, rng)
    findings: list[Finding] = []
    if rng.random() >= cfg.normal_fraction:
        sides = list(rng.permutation(["left", "right"]))
        for k in range(int(rng.integers(1, 3))):
            f = phantoms.add_brain_lesion(ph, rng, str(rng.choice(["mass", "cyst"])), str(sides[k]), len(findings) + 1)
            if f is not None:
                findings.append(f)
    phantoms.add_noise(ph, rng, 15.0)
    sex = str(rng.choice(["M", "F"]))
    values = np.clip(np.rint(ph.values), 0, 4095).astype(np.uint16)
    labels = ph.labels
    o = grid.origin
    coronal = bool(rng.random() < cfg.mr_coronal_fraction)
    if coronal:  # slices along y; rows from superior to inferior; columns along x
        values = values[::-1].transpose(1, 0, 2)
        labels = labels[::-1].transpose(1, 0, 2)
        top = grid.axes()[0][-1]
        positions = np.array([[o[0], y, top] for y in grid.axes()[1]])
        orientation, pixel_spacing, thickness = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0), (dz, dx), dx
    else:
        positions = np.array([[o[0], o[1], z] for z in grid.axes()[0]])
        orientation, pixel_spacing, thickness = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (dx, dx), dz
    series_dir = os.path.join(out, rel, "mr")
    write_series(series_dir, values, SeriesSpec(
        positions=positions, orientation=orientation, pixel_spacing=pixel_spacing, slice_thickness=thickness,
        modality="MR", window=(500.0, 1000.0), body_part="HEAD", patient_sex=sex,
        series_description="MR BRAIN T2 " + ("COR" if coronal else "AX"), seed=uid_seed,
        study_uid=generate_uid(entropy_srcs=[uid_seed, "study"]), identity=ident))
    vol = load_volume(series_dir)
    save_nifti(vol, os.path.join(out, rel, "mr.nii.gz"), dtype=np.int16)
    save_nifti(Volume(labels.transpose(2, 1, 0), vol.affine), os.path.join(out, rel, "mr_labels.nii.gz"), dtype=np.int16)
    for f in findings:
        f.boxes = _boxes_from_labels(labels, f.label, 0, sliced=True)
    images = [ImageEntry(f"{rel}/mr", "dicom-series", f"{rel}/mr_labels.nii.gz"),
              ImageEntry(f"{rel}/mr.nii.gz", "nifti", f"{rel}/mr_labels.nii.gz")]
    comparison = bool(rng.random() < 0.4)
    indication = str(rng.choice(INDICATIONS["MR"])) if rng.random() < 0.7 else None
    report = write_report(rng, findings, "MR", comparison, indication)
    return Study(sid, "MR", "HEAD", sex, images, report, findings, comparison, indication)


_MAKERS = {"ct": _ct_study, "cxr": _cxr_study, "mr": _mr_study}


def make_study(out: str, seed: int, i: int, kind: str, cfg: SynthConfig = SynthConfig()) -> dict:
    """Generate study ``i`` of a run and return its manifest record."""
    sid, uid_seed = _study_ids(seed, i)
    rng = np.random.default_rng([seed, i])
    rel = f"studies/{sid}"
    os.makedirs(os.path.join(out, rel), exist_ok=True)
    ident = study_identity(seed, i, kind)
    study = _MAKERS[kind](out, rel, sid, uid_seed, rng, cfg, ident)
    with open(os.path.join(out, rel, "report.txt"), "w", encoding="utf-8") as fh:
        fh.write(study.report)
    d, date, time = study.as_dict(), ident.study_date, ident.study_time
    # how a hospital names the study (medmm.studies.Study's identity fields): reports are matched by these
    d.update(accession_number=ident.accession_number, study_instance_uid=generate_uid(entropy_srcs=[uid_seed, "study"]),
             patient_key=uid_seed[:64], exam_date=f"{date[:4]}-{date[4:6]}-{date[6:]}",
             exam_time=f"{time[:2]}:{time[2:4]}:{time[4:]}", exam_description=ident.study_description)
    return d


def _make(args: tuple[str, int, int, str, SynthConfig]) -> dict:
    return make_study(*args)


def synthesize(out: str, n: int, seed: int = 0, kinds: tuple[str, ...] = KINDS, workers: int | None = None,
               config: SynthConfig = SynthConfig()) -> str:
    """Write ``n`` studies and ``out/manifest.jsonl``; returns the manifest path."""
    kinds = tuple(k.strip().lower() for k in kinds if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise InputError(f"unknown study kind(s) {unknown or kinds}: use any of {', '.join(KINDS)}")
    if n < 1:
        raise InputError("--n must be at least 1")
    os.makedirs(out, exist_ok=True)
    jobs = [(out, seed, i, kinds[i % len(kinds)], config) for i in range(n)]
    workers = workers if workers is not None else min(os.cpu_count() or 1, n)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(preload=["medmm.synth.generate"]),
                                 initializer=exit_with_parent) as pool:
            records = list(pool.map(_make, jobs))
    else:
        records = [_make(j) for j in jobs]
    path = os.path.join(out, "manifest.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path

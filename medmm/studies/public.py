"""Readers of the public chest radiograph corpora the seed paper used, as :class:`~medmm.studies.record.Study` records.

**MIMIC-CXR** (PhysioNet, credentialed access; the DICOM release ``mimic-cxr`` or the JPEG release
``mimic-cxr-jpg``), in the folder layout PhysioNet distributes::

    ROOT/files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.dcm   (or .jpg)
    ROOT/files/p10/p10000032/s50414267.txt          # the report (mimic-cxr-reports.zip: the same layout)
    ROOT/mimic-cxr-2.0.0-metadata.csv[.gz]          # optional (JPEG release): dicom_id, ViewPosition, StudyDate, ...

``ROOT`` may also be the ``files`` folder itself; the reports may live in another tree
(``reports=``: the unpacked ``mimic-cxr-reports`` folder, with or without its ``files`` level). One
study per ``sNNNNNNNN`` folder or report; the patient is the ``pNNNNNNNN`` folder (``patient_key``, so
splits keep a patient's studies together). Views come from the metadata CSV when given (the JPEG
files carry none); for DICOM files the checker reads ``ViewPosition`` itself
(:mod:`medmm.reports.checker_views`).

**IU-Xray** (Open-i Indiana University chest X-rays, as redistributed on Kaggle with PNG images)::

    ROOT/indiana_reports.csv        # uid, MeSH, Problems, image, indication, comparison, findings, impression
    ROOT/indiana_projections.csv    # uid, filename, projection (Frontal | Lateral)
    ROOT/images/images_normalized/1_IM-0001-4001.dcm.png   (or ROOT/images_normalized/, ROOT/images/)

One study per ``uid``; its report is the findings and impression (``FINDINGS: ...`` / ``IMPRESSION: ...``,
as :func:`medmm.reports.corpus.read_corpus` reads that CSV; indication and comparison are kept in
``extra``); the corpus names no patient, so splits are by study. "XXXX" is the corpus's own
de-identification mark and is kept.

Both readers never raise on one bad study: a missing report, no image, a path that leaves the corpus folder
(a symlink) or a report file the file policy refuses is the study's ``problem``, and the next study is read.
A missing corpus (no ``files`` folder, no ``indiana_reports.csv``) raises :class:`~medmm.errors.InputError`
at once, saying what was expected.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import sys
from typing import IO, Any, Callable, Iterator

from medmm.errors import InputError
from medmm.studies.readers import confined, report_file_problem
from medmm.studies.record import ImageRef, Study

__all__ = ["FRONTAL_VIEWS", "IU_PROJECTIONS", "IU_REPORTS", "MIMIC_METADATA", "detect_corpus", "iter_iu_xray",
           "iter_mimic_cxr"]

MIMIC_METADATA = ("mimic-cxr-2.0.0-metadata.csv", "mimic-cxr-2.0.0-metadata.csv.gz")
IU_REPORTS, IU_PROJECTIONS = "indiana_reports.csv", "indiana_projections.csv"
IU_IMAGE_DIRS = (os.path.join("images", "images_normalized"), "images_normalized", "images", "")
FRONTAL_VIEWS = ("PA", "AP", "FRONTAL", "")  # what the checker takes first (medmm.reports.checker_views)
_IMAGE_SUFFIXES = (".dcm", ".jpg", ".jpeg", ".png")
_MIMIC_KEPT = ("ViewPosition", "StudyDate", "PerformedProcedureStepDescription")  # metadata columns medmm reads
_GROUP, _PATIENT, _STUDY = re.compile(r"p\d\d"), re.compile(r"p\d+"), re.compile(r"s\d+")


def _read_text(path: str) -> tuple[str | None, str | None]:
    """A report file's text and None, or None and why it was not read (the one report-file policy)."""
    from medmm.imaging.files import REPORT_MAX_BYTES, read_limited

    why = report_file_problem(path)
    if why:
        return None, f"report not read: {why}"
    try:
        return read_limited(path, REPORT_MAX_BYTES).decode("utf-8", "replace"), None
    except InputError as exc:
        return None, f"report not read: {str(exc).rsplit(': ', 1)[-1]}"


def _csv_rows(path: str) -> Iterator[dict[str, str]]:
    fh: IO[str] = (gzip.open(path, "rt", newline="", encoding="utf-8", errors="replace") if path.endswith(".gz")
                   else open(path, newline="", encoding="utf-8", errors="replace"))
    with fh:
        for row in csv.DictReader(fh):
            yield {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}


def _files_dir(root: str) -> str:
    sub = os.path.join(root, "files")
    return sub if os.path.isdir(sub) else root


def _listdir(folder: str, pattern: re.Pattern[str]) -> list[str]:
    try:
        return sorted(n for n in os.listdir(folder) if pattern.fullmatch(n.removesuffix(".txt")))
    except OSError:
        return []


def _mimic_metadata(path: str | None, root: str) -> dict[str, tuple[str, ...]]:
    if path is None:
        path = next((os.path.join(root, n) for n in MIMIC_METADATA if os.path.isfile(os.path.join(root, n))), None)
        if path is None:
            return {}
    if not os.path.isfile(path):
        raise InputError(f"{path}: MIMIC-CXR metadata CSV not found (mimic-cxr-2.0.0-metadata.csv[.gz] of the "
                         "JPEG release), or leave it out")
    out: dict[str, tuple[str, ...]] = {}
    for row in _csv_rows(path):  # ~377k rows for the whole release: the three columns used, repeated values shared
        if row.get("dicom_id"):
            out[row["dicom_id"]] = tuple(sys.intern(row.get(k, "")) for k in _MIMIC_KEPT)
    if not out:
        raise InputError(f"{path}: no 'dicom_id' rows; expected MIMIC-CXR's metadata CSV (dicom_id, ViewPosition, ...)")
    return out


def _date(value: str | None) -> str | None:
    v = (value or "").strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) >= 8 and v[:8].isdigit() else None


def iter_mimic_cxr(root: str, reports: str | None = None, metadata: str | None = None,
                   order: Callable[[str], Any] | None = None) -> Iterator[Study]:
    """MIMIC-CXR studies under ``root`` (module docstring), in patient then study order, or sorted by
    ``order(study_id)`` (the folders are listed first, then each study is read in that order: a caller that wants
    a sample stops early without reading every report of the release)."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: not a folder; give the MIMIC-CXR root (holding files/p10/...)")
    root, reports = os.path.abspath(root), (os.path.abspath(reports) if reports else None)
    files = _files_dir(root)
    report_root = _files_dir(reports) if reports else files
    if reports and not os.path.isdir(reports):
        raise InputError(f"{reports}: not a folder; give the unpacked mimic-cxr-reports folder")
    groups = sorted(set(_listdir(files, _GROUP)) | set(_listdir(report_root, _GROUP)))
    if not groups:
        raise InputError(f"{root}: no MIMIC-CXR patient groups (files/p10 ... files/p19) found; give the folder "
                         "that holds 'files' (or 'files' itself)")
    meta = _mimic_metadata(metadata, root)
    real_root, real_reports = os.path.realpath(files), os.path.realpath(report_root)
    entries: list[tuple[str, str, str, str]] = []
    for group in groups:
        patients = sorted(set(_listdir(os.path.join(files, group), _PATIENT)) |
                          set(_listdir(os.path.join(report_root, group), _PATIENT)))
        for patient in patients:
            image_dir, text_dir = os.path.join(files, group, patient), os.path.join(report_root, group, patient)
            studies = sorted({n.removesuffix(".txt") for n in _listdir(image_dir, _STUDY) + _listdir(text_dir, _STUDY)})
            entries += [(sid, patient, image_dir, text_dir) for sid in studies]
    if order is not None:
        entries.sort(key=lambda e: order(e[0]))
    for sid, patient, image_dir, text_dir in entries:
        yield _mimic_study(sid, patient, os.path.join(image_dir, sid), os.path.join(text_dir, sid + ".txt"),
                           real_root, real_reports, meta)


def _mimic_study(sid: str, patient: str, folder: str, report_path: str, real_root: str, real_reports: str,
                 meta: dict[str, tuple[str, ...]]) -> Study:
    from medmm.imaging.files import walk

    problems: list[str] = []
    images: list[ImageRef] = []
    rows: list[dict[str, str]] = []
    if os.path.isdir(folder):
        _, why = confined(folder, folder, real_root)
        if why:
            problems.append(f"study folder: {why}")
        else:
            for path, reason in walk(folder, suffixes=_IMAGE_SUFFIXES):
                if reason:
                    problems.append(f"an image was not read: {reason}")
                    continue
                stem = os.path.basename(path).rsplit(".", 1)[0]
                row = dict(zip(_MIMIC_KEPT, meta.get(stem, ())))
                rows.append(row)
                fmt = "dicom-file" if path.lower().endswith(".dcm") else path.rsplit(".", 1)[-1].lower()
                images.append(ImageRef(path, view=(row.get("ViewPosition") or None), format=fmt))
    if not images and not problems:
        problems.append("no image (.dcm/.jpg) in the study folder")
    report = None
    if os.path.lexists(report_path):
        _, why = confined(report_path, report_path, real_reports)
        if why:
            problems.append(f"report: {why}")
        else:
            report, why = _read_text(report_path)
            if why:
                problems.append(why)
    else:
        problems.append("no report (expected sNNNNNNNN.txt beside the study folder, the mimic-cxr-reports layout)")
    if report is not None and not report.strip():
        problems.append("empty report")
    first = next((r for r in rows if r), {})
    return Study(sid, source="mimic-cxr", source_path=folder, images=tuple(_frontal_first(images)), report=report,
                 patient_key=patient, exam_date=_date(first.get("StudyDate")),
                 exam_description=first.get("PerformedProcedureStepDescription") or None,
                 problem="; ".join(problems) if problems else None)


def _frontal_first(images: list[ImageRef]) -> list[ImageRef]:
    """Frontal views (or unnamed ones) first, laterals after, each in file order (stable)."""
    return sorted(images, key=lambda i: (i.view or "").upper() not in FRONTAL_VIEWS)


def _iu_image_dir(root: str, images: str | None) -> str:
    if images:
        if not os.path.isdir(images):
            raise InputError(f"{images}: not a folder; give the IU-Xray image folder (images_normalized)")
        return images
    for sub in IU_IMAGE_DIRS:
        folder = os.path.join(root, sub)
        if os.path.isdir(folder) and any(n.lower().endswith(".png") for n in os.listdir(folder)):
            return folder
    return root


def iu_report_text(row: dict[str, str]) -> str:
    """An IU-Xray report as medmm reads it: ``FINDINGS: ...`` and ``IMPRESSION: ...`` (the parts present)."""
    parts = [f"{name}: {row[col].strip()}" for name, col in (("FINDINGS", "findings"), ("IMPRESSION", "impression"))
             if (row.get(col) or "").strip()]
    return "\n\n".join(parts)


def iter_iu_xray(root: str, images: str | None = None, order: Callable[[str], Any] | None = None) -> Iterator[Study]:
    """IU-Xray studies of ``root`` (module docstring), in the reports CSV's order or sorted by ``order(uid)``."""
    root = os.path.abspath(root)
    reports_csv, projections_csv = os.path.join(root, IU_REPORTS), os.path.join(root, IU_PROJECTIONS)
    for path in (reports_csv, projections_csv):
        if not os.path.isfile(path):
            raise InputError(f"{path}: not found; an IU-Xray folder holds {IU_REPORTS}, {IU_PROJECTIONS} and the "
                             "PNG images (Kaggle's chest-xrays-indiana-university layout)")
    folder = os.path.abspath(_iu_image_dir(root, images))
    real_folder = os.path.realpath(folder)
    views: dict[str, list[tuple[str, str]]] = {}
    for row in _csv_rows(projections_csv):
        if row.get("uid") and row.get("filename"):
            views.setdefault(row["uid"], []).append((row["filename"], row.get("projection", "")))
    header = next(_csv_rows(reports_csv), None)
    if header is not None and not {"uid", "findings", "impression"} <= set(header):
        raise InputError(f"{reports_csv}: expected the columns uid, findings, impression (IU-Xray's reports CSV); "
                         f"found {sorted(header)}")
    rows = [(row.get("uid") or f"{IU_REPORTS}:{n}", row) for n, row in enumerate(_csv_rows(reports_csv), start=2)]
    if order is not None:
        rows.sort(key=lambda r: order(r[0]))
    for uid, row in rows:
        problems: list[str] = []
        refs: list[ImageRef] = []
        for k, (name, projection) in enumerate(views.get(uid, [])):
            full, why = confined(name, folder, real_folder)
            if why:
                problems.append(f"image {k + 1}: {why}")
            elif not os.path.isfile(full):
                problems.append(f"image {k + 1}: not found in the image folder")
            else:
                view = {"frontal": "FRONTAL", "lateral": "LATERAL"}.get(projection.lower(), projection.upper() or None)
                refs.append(ImageRef(full, view=view, format=name.rsplit(".", 1)[-1].lower()))
        if not views.get(uid):
            problems.append(f"no image listed in {IU_PROJECTIONS}")
        text = iu_report_text(row)
        if not text:
            problems.append("empty report (no findings or impression)")
        extra = {k: row[k] for k in ("indication", "comparison", "MeSH", "Problems", "image") if row.get(k)}
        yield Study(uid, source="iu-xray", source_path=reports_csv, images=tuple(_frontal_first(refs)),
                    report=text or None, exam_description=row.get("image") or None, extra=extra,
                    problem="; ".join(problems) if problems else None)


def detect_corpus(path: str) -> str | None:
    """``"iu-xray"``, ``"mimic-cxr"`` or None for a folder (what ``medmm checker-data --format auto`` reads)."""
    if not os.path.isdir(path):
        return None
    if os.path.isfile(os.path.join(path, IU_REPORTS)):
        return "iu-xray"
    if _listdir(_files_dir(path), _GROUP):
        return "mimic-cxr"
    return None

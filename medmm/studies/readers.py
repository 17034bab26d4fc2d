"""Readers that turn a folder or a manifest into :class:`~medmm.studies.record.Study` records.

Three inputs, one output type:

- a **folder** with one sub-folder per study (images + one report ``.txt``), walked with the
  imaging file policy (:func:`medmm.imaging.files.walk`);
- an **audit manifest** (``.jsonl`` / ``.json`` / ``.csv``): ``study_id`` (or ``id``), ``report`` text or
  ``report_path``, ``images`` (paths or ``{"path", "view", ...}``) or ``image_paths`` (``;``-separated
  in a CSV), optional ``header``, ``regions``, ``accession_number``, ``study_instance_uid``,
  ``patient_key``, ``exam_date``, ``exam_description``, and ``medmm inject``'s ``errors`` /
  ``has_error`` / ``original_report``;
- the **synthetic manifest** (``medmm synth``'s ``manifest.jsonl``, schema in
  :mod:`medmm.synth.truth`): header facts, truth findings and boxes, views and image roles.

**Confinement (security finding N3 of issue 20).** A manifest is data from whoever exported it:
every ``report_path`` and image path it names must resolve (symlinks followed, ``..`` collapsed)
inside the audited folder — the manifest's own folder unless the caller names another ``root``.
An absolute path elsewhere, a ``../`` escape or a symlink inside the folder pointing out makes the
study's ``problem`` ("... outside the audited folder; not read"): the batch records it as a
failure and goes on, and the outside file is never opened. The refusal names the field, never the
path (which may carry a patient's name).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from medmm.errors import InputError
from medmm.imaging.volume import HeaderFacts
from medmm.regions.box import Box, record_regions
from medmm.studies.record import ImageRef, InjectedError, Study, StudyTruth, TruthFinding, image_role

__all__ = ["ManifestSlice", "confined", "folder_names", "folder_study", "input_kind", "iter_folder", "iter_manifest",
           "iter_manifest_slice", "iter_studies", "manifest_header", "manifest_slices", "study_from_record"]

# Fields of a manifest record that become Study fields of the same name.
_IDENTITY = ("accession_number", "study_instance_uid", "patient_key", "exam_date", "exam_time", "exam_description",
             "report_status", "report_id")


def _inside(target: str, real_root: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def confined(path: str, base: str, real_root: str) -> tuple[str, str | None]:
    """``path`` (relative to ``base`` or absolute) and why it must not be opened: None when it resolves
    inside ``real_root`` (an already ``realpath``-ed folder), else the reason."""
    full = path if os.path.isabs(path) else os.path.join(base, path)
    if _inside(os.path.realpath(full), real_root):
        return full, None
    if os.path.isabs(path):
        why = "an absolute path"
    elif ".." in path.replace("\\", "/").split("/"):
        why = "a '..' path"
    else:
        why = "a symlink"
    return full, f"{why} outside the audited folder; not read"


def manifest_header(rec: Mapping[str, Any]) -> HeaderFacts | None:
    """The header facts a manifest record carries: its ``header`` object, else (synthetic manifests)
    ``modality``, ``body_part``, ``sex`` and the first image ``view``, through the one header type."""
    if isinstance(rec.get("header"), Mapping):
        return HeaderFacts.from_mapping(rec["header"])
    if "modality" not in rec:
        return None
    view = next((i.get("view") for i in rec.get("images") or [] if isinstance(i, Mapping) and i.get("view")), None)
    return HeaderFacts.from_mapping({"modality": rec.get("modality"), "body_part": rec.get("body_part"),
                                     "patient_sex": rec.get("sex"), "view_position": view})


def _truth(rec: Mapping[str, Any]) -> StudyTruth | None:
    findings = rec.get("findings")
    errors = rec.get("errors")
    if not isinstance(findings, list) and not isinstance(errors, list) and "has_error" not in rec:
        return None
    return StudyTruth(
        findings=tuple(TruthFinding.from_dict(f) for f in findings or () if isinstance(f, Mapping) and f.get("type")),
        errors=tuple(InjectedError.from_dict(e) for e in errors or () if isinstance(e, Mapping) and e.get("type")),
        has_error=rec.get("has_error"), original_report=rec.get("original_report"),
        comparison=rec.get("comparison"), indication=rec.get("indication"), attributes=rec.get("attributes"))


def study_from_record(rec: Mapping[str, Any], base: str, where: str, root: str | None = None,
                      source: str = "manifest", source_path: str | None = None, truth: bool = True) -> Study:
    """One manifest record (audit or synthetic manifest) as a Study; paths relative to ``base`` and
    confined to ``root`` (default ``base``). Never raises on bad content: the study's ``problem`` says it.
    ``truth=False`` leaves the evaluation truth out (an audit never stores it; building it cost more than a
    study's other fields)."""
    sid = rec.get("study_id") or rec.get("id")
    if not sid:
        return Study(where, source=source, source_path=source_path, problem="no study_id")
    sid = str(sid)
    real_root = os.path.realpath(root or base)
    problems: list[str] = []
    images: list[ImageRef] = []
    raw_images = rec.get("images") or []
    if isinstance(raw_images, str):
        raw_images = [p for p in raw_images.split(";") if p]
    for n, im in enumerate(raw_images if isinstance(raw_images, list) else []):
        try:
            ref = ImageRef.from_dict(im)
        except InputError:
            continue
        full, why = confined(ref.path, base, real_root)
        if why:
            problems.append(f"image {n + 1}: {why}")
            continue
        label = None
        if ref.label_map:
            label, lwhy = confined(ref.label_map, base, real_root)
            if lwhy:
                problems.append(f"label map of image {n + 1}: {lwhy}")
                label = None
        role = ref.role if isinstance(im, Mapping) and im.get("role") else image_role(ref.format)
        images.append(ImageRef(full, role, ref.view, ref.format, label, ref.series_instance_uid, ref.description))
    report_path = rec.get("report_path")
    if report_path:
        report_path, why = confined(str(report_path), base, real_root)
        if why:
            problems.append(f"report_path: {why}")
            report_path = None
    try:  # region boxes as regions.Box (synthetic manifests: the truth boxes, labelled with the finding type)
        regions = tuple(Box.from_dict(b) for b in record_regions(dict(rec)))
        found = _truth(rec) if truth else None
    except (InputError, TypeError, ValueError) as exc:
        return Study(sid, source=source, source_path=source_path or base,
                     problem=f"a region box cannot be read: {exc}")
    ident = {k: (str(rec[k]) if rec.get(k) not in (None, "") else None) for k in _IDENTITY}
    if ident["patient_key"] is None and rec.get("patient_id") not in (None, ""):  # the name checker-data rows use
        ident["patient_key"] = str(rec["patient_id"])
    report = rec.get("report")
    return Study(sid, source=source, source_path=source_path or base, images=tuple(images),
                 report=str(report) if report is not None else None, report_path=report_path,
                 header=manifest_header(rec), regions=regions, truth=found,
                 problem="; ".join(problems) if problems else None, **ident)


def _checked_report(study: Study) -> Study:
    """A report path that must not be opened (FIFO, device, too large) becomes the study's problem; a
    missing file is left to the check, which names it."""
    from dataclasses import replace

    if study.problem or not study.report_path or not os.path.lexists(study.report_path):
        return study
    reason = report_file_problem(study.report_path)
    return replace(study, problem=f"report not read: {reason}") if reason else study


def report_file_problem(path: str) -> str | None:
    """Why a report file must not be read (the imaging file policy with the report size limit, then
    :func:`_hard_link_problem`), or None. One check for folder and manifest inputs."""
    from medmm.imaging.files import REPORT_MAX_BYTES, file_problem

    return file_problem(path, max_bytes=REPORT_MAX_BYTES) or _hard_link_problem(path)


def _hard_link_problem(path: str) -> str | None:
    """Why a report file with other hard links is not read (None for a file with one link).

    A hard link inside the audited folder can name a file anywhere on the same file system (another
    patient's report, the app's ``users.yaml``) and, unlike a symlink, cannot be told apart from a file
    that belongs there. Reports are the PHI text that reaches the store and exports, so a report with
    more than one link is refused; export reports as copies. (Linux's ``fs.protected_hardlinks``
    already stops users from linking files they cannot read; a service running as root is not stopped.)
    """
    try:
        n = os.stat(path).st_nlink
    except OSError:
        return None
    if n > 1:
        return f"has {n} hard links (a hard link can point at a file outside the audited folder); export reports as copies"
    return None


def iter_manifest(path: str, root: str | None = None) -> Iterator[Study]:
    """Studies of a manifest ``.jsonl`` / ``.json`` / ``.csv``, in file order; a bad line is a study with
    its problem. Paths are confined to ``root`` (default: the manifest's folder)."""
    base = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    low = path.lower()
    if low.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from _jsonl_studies(fh, 1, path, root)
        return
    if low.endswith(".csv"):
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                rec: dict[str, Any] = {k: v for k, v in row.items() if k is not None}
                if rec.get("image_paths"):
                    rec["images"] = [p for p in rec["image_paths"].split(";") if p]
                if isinstance(rec.get("header"), str) and rec["header"].strip().startswith("{"):
                    try:
                        rec["header"] = json.loads(rec["header"])
                    except json.JSONDecodeError:
                        rec["header"] = None
                yield _checked_report(study_from_record(rec, base, f"{name}:{n}", root))
        return
    raise InputError(f"{path}: a manifest is a .jsonl, .json or .csv file")


def _jsonl_studies(lines: Iterable[str], first_line: int, path: str, root: str | None,
                   truth: bool = True) -> Iterator[Study]:
    """Studies of JSONL ``lines`` of the manifest ``path`` (numbered from ``first_line``; blank lines skipped)."""
    base = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    for n, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Study(f"{name}:{n}", source="manifest", source_path=path, problem=f"not JSON ({exc.msg})")
            continue
        if not isinstance(rec, dict):
            yield Study(f"{name}:{n}", source="manifest", source_path=path, problem="not a JSON object")
            continue
        kind = "synthetic" if "modality" in rec and "findings" in rec else "manifest"
        yield _checked_report(study_from_record(rec, base, f"{name}:{n}", root, source=kind, truth=truth))


@dataclass(frozen=True)
class ManifestSlice:
    """Consecutive lines of a JSONL manifest, by byte range: a worker reads its own slice, so the process that
    plans the work never parses the manifest (:func:`manifest_slices`, :func:`iter_manifest_slice`)."""

    path: str
    start: int  # byte offset of the slice's first line
    end: int  # byte offset just past its last line
    first_line: int  # the line number of its first line (1-based, as :func:`iter_manifest` numbers them)
    lines: int  # how many lines (blank ones included)
    root: str | None = None  # the folder paths are confined to (default: the manifest's folder)


def manifest_slices(path: str, lines: int, root: str | None = None) -> list[ManifestSlice]:
    """A JSONL manifest cut into slices of ``lines`` lines at line ends (a slice boundary never splits a line
    or a UTF-8 character). Reads the bytes once without parsing them."""
    if lines < 1:
        raise InputError("a manifest slice needs at least one line")
    out: list[ManifestSlice] = []
    start = pos = n = 0
    line = 1
    with open(path, "rb") as fh:
        for raw in fh:
            pos += len(raw)
            n += 1
            if n == lines:
                out.append(ManifestSlice(path, start, pos, line, n, root))
                start, line, n = pos, line + n, 0
    if n:
        out.append(ManifestSlice(path, start, pos, line, n, root))
    return out


def iter_manifest_slice(s: ManifestSlice, truth: bool = True) -> Iterator[Study]:
    """The studies of one slice, exactly as :func:`iter_manifest` reads those lines (same ids, problems,
    confinement); ``truth=False`` as in :func:`study_from_record`."""
    import io

    with open(s.path, "rb") as fh:
        fh.seek(s.start)
        data = fh.read(s.end - s.start)
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")  # the lines as text mode reads them
    yield from _jsonl_studies(text, s.first_line, s.path, s.root, truth=truth)


def folder_names(path: str) -> list[str]:
    """The study sub-folders of a folder input, in :func:`iter_folder`'s order (hidden entries and files left out)."""
    return [name for name in sorted(os.listdir(path))
            if not name.startswith(".") and os.path.isdir(os.path.join(path, name))]


def iter_folder(path: str) -> Iterator[Study]:
    """Studies of a folder with one sub-folder per study (images + exactly one report ``.txt``).

    Each study folder is walked with the imaging file policy, rooted at the study folder: a symlink
    out of it (another patient's report), a FIFO, a device, an over-deep folder or a report over
    :data:`~medmm.imaging.files.REPORT_MAX_BYTES` is never opened; a skipped report file or a
    symlinked study folder is the study's problem.
    """
    for name in folder_names(path):
        yield folder_study(path, name)


def folder_study(path: str, name: str) -> Study:
    """The study of one sub-folder ``name`` of the folder input ``path`` (:func:`iter_folder`)."""
    from medmm.imaging.files import walk

    folder = os.path.join(path, name)
    if os.path.islink(folder):
        return Study(name, source="folder", source_path=folder, problem="symlinked study folder not followed")
    files, unread = [], []
    for f, reason in walk(folder):
        (unread if reason else files).append((f, reason))
    reports = [f for f, _ in files if f.lower().endswith(".txt")]
    report_reasons = [r for f, r in unread if f.lower().endswith(".txt")]
    for f in reports:
        reason = report_file_problem(f)
        if reason:
            report_reasons.append(reason)
    images = tuple(ImageRef(f) for f, _ in files if not f.lower().endswith(".txt"))
    problem = None
    if report_reasons:
        problem = f"report .txt not read: {report_reasons[0]}"
    elif not reports:
        problem = "no report .txt in the study folder"
    elif len(reports) > 1:
        problem = f"{len(reports)} report .txt files in the study folder; expected one"
    return Study(name, source="folder", source_path=folder, images=images,
                 report_path=reports[0] if len(reports) == 1 and not problem else None, problem=problem)


def iter_studies(path: str) -> Iterator[Study]:
    """Studies of an audit input, in a stable order: a folder holding ``manifest.jsonl`` (read as that
    manifest, confined to the folder), a folder of study folders, or a manifest file. A missing or unknown
    input raises :class:`InputError` at once (before anything is iterated)."""
    kind, where, root = input_kind(path)
    return iter_folder(where) if kind == "folder" else iter_manifest(where, root=root)


def input_kind(path: str) -> tuple[str, str, str | None]:
    """What an audit input is: ``("jsonl" | "csv", manifest, root)`` for a manifest (a folder holding
    ``manifest.jsonl`` is that manifest, confined to the folder) or ``("folder", path, None)``. A missing or
    unknown input raises :class:`InputError`."""
    from medmm.imaging.files import file_problem

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        manifest = os.path.join(path, "manifest.jsonl")
        if os.path.isfile(manifest) and not file_problem(manifest, real_root=os.path.realpath(path)):
            return "jsonl", manifest, path
        return "folder", path, None
    low = path.lower()
    if low.endswith((".jsonl", ".json")):
        return "jsonl", path, None
    if low.endswith(".csv"):
        return "csv", path, None
    raise InputError(f"{path}: use a folder (one sub-folder per study), a manifest .csv/.jsonl or a synthetic manifest")

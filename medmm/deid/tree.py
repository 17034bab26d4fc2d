"""De-identifying files and whole trees: DICOM through the profile, report text through the scrubber.

The input tree is walked with the imaging file policy (:func:`medmm.imaging.files.walk`: no symlink
out of the root, no FIFO or device). Outputs are named only by new values — DICOM as
``OUT/<new study UID>/<new series UID>/<new SOP UID>.dcm``, report text as
``OUT/text/<keyed hash of the relative path>.txt`` — so no original file or folder name (often a
patient's name or MRN) reaches the output. Anything else is not copied. A bad or refused file is
recorded with its reason; it never ends the run.

Never two inputs on one output (issue 20, D1: two files with one SOPInstanceUID were "2 de-identified",
1 written): every output is written to a temporary name and then linked to its final name without
replacing anything. A name already taken by another input of this run, or by a different file from an
earlier run, is a *collision*: the second file is kept under ``<name>.<n>.dcm`` and the pair is reported.
An earlier run's identical output (the same input, key and options) is left as it is and counted as
such. The count printed is the number of files written.
"""

from __future__ import annotations

import filecmp
import os
import tempfile
from dataclasses import dataclass, field

from medmm.deid.core import BurnedInAnnotationError, DeidOptions, deid_dataset, output_name, read_for_deid, write_deid
from medmm.deid.keys import DeidKey
from medmm.deid.text import scrub_text
from medmm.errors import InputError, MedmmError

TEXT_SUFFIXES = (".txt",)


@dataclass
class DeidSummary:
    """What a run did; paths are relative to the input (they are the user's own) or to the output."""

    written: list[str] = field(default_factory=list)  # DICOM outputs written by this run, relative to OUT
    texts: list[str] = field(default_factory=list)  # scrubbed text outputs written by this run, relative to OUT
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input path relative to IN, reason)
    burned_in: list[tuple[str, str]] = field(default_factory=list)  # refused or allowed with --allow-burned-in
    collisions: list[tuple[str, str, str]] = field(default_factory=list)  # (input, what held the name, kept as)
    unchanged: list[str] = field(default_factory=list)  # identical outputs already in OUT from an earlier run
    sources: dict[str, str] = field(default_factory=dict)  # output -> input, for this run's collisions

    @property
    def duplicates(self) -> int:
        return len(self.collisions)

    def line(self) -> str:
        out = (f"{len(self.written)} DICOM file(s) and {len(self.texts)} text file(s) written, "
               f"{len(self.burned_in)} with possible burned-in text, {len(self.skipped)} skipped")
        if self.collisions:
            out += f", {len(self.collisions)} name collision(s) kept under new names"
        if self.unchanged:
            out += f", {len(self.unchanged)} identical to files already in the output"
        return out


def _link_new(src: str, target: str) -> bool:
    """Give ``src`` the name ``target`` unless ``target`` exists (never replaced); False when it exists."""
    try:
        os.link(src, target)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: an exclusive create and a copy
        try:
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as dst, open(src, "rb") as fh:
            while chunk := fh.read(1 << 20):
                dst.write(chunk)
    os.unlink(src)
    return True


def place_output(tmp: str, out_root: str, rel: str, where: str, summary: DeidSummary) -> str | None:
    """Move the finished output ``tmp`` to ``rel`` (relative to ``out_root``) without replacing anything.
    Returns the name it was kept under, or None when an identical earlier output already holds ``rel``."""
    target = os.path.join(out_root, rel)
    if _link_new(tmp, target):
        summary.sources[rel] = where
        return rel
    holder = summary.sources.get(rel)
    if holder is None and filecmp.cmp(tmp, target, shallow=False):
        os.unlink(tmp)
        summary.unchanged.append(rel)
        return None
    stem, ext = os.path.splitext(rel)
    n = 1
    while not _link_new(tmp, os.path.join(out_root, f"{stem}.{n}{ext}")):
        other = f"{stem}.{n}{ext}"  # an earlier run's collision copy, identical: a rerun adds no copy
        if other not in summary.sources and filecmp.cmp(tmp, os.path.join(out_root, other), shallow=False):
            os.unlink(tmp)
            summary.unchanged.append(other)
            return None
        n += 1
    kept = f"{stem}.{n}{ext}"
    summary.sources[kept] = where
    summary.collisions.append((where, holder or "an earlier run's output", kept))
    return kept


def _temp_beside(target: str) -> str:
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=folder)
    os.close(fd)
    return tmp


def deid_file(path: str, out_root: str, key: DeidKey, options: DeidOptions = DeidOptions(),
              summary: DeidSummary | None = None, where: str | None = None) -> str | None:
    """De-identify one DICOM file into ``out_root``; returns the output path (relative to ``out_root``),
    or None when an identical output from an earlier run is already there."""
    summary = summary if summary is not None else DeidSummary()
    where = where or os.path.basename(path)
    from medmm.imaging.dicom import read_header

    read_header(path)  # the frame and pixel budgets, from the header, before the whole file is read
    ds = read_for_deid(path)
    try:
        notes = deid_dataset(ds, key, options, where=where)
    except BurnedInAnnotationError as exc:
        summary.burned_in.append((where, str(exc).removeprefix(f"{where}: ")))
        raise
    if notes.burned_in:
        summary.burned_in.append((where, f"{notes.burned_in}; allowed by --allow-burned-in"))
    rel = output_name(ds, key, where)
    tmp = _temp_beside(os.path.join(out_root, rel))
    try:
        write_deid(ds, tmp, where)
        kept = place_output(tmp, out_root, rel, where, summary)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if kept is not None:
        summary.written.append(kept)
    return kept


def deid_text_file(path: str, out_root: str, key: DeidKey, rel_in: str, max_bytes: int,
                   summary: DeidSummary | None = None) -> str | None:
    from medmm.imaging.files import read_limited

    summary = summary if summary is not None else DeidSummary()
    raw = read_limited(path, max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    rel = os.path.join("text", key.name("text-file", rel_in, 24) + ".txt")
    tmp = _temp_beside(os.path.join(out_root, rel))
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(scrub_text(text).text)
        kept = place_output(tmp, out_root, rel, rel_in, summary)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if kept is not None:
        summary.texts.append(kept)
    return kept


def deid_tree(in_path: str, out_root: str, seed: str | int | None = None, options: DeidOptions = DeidOptions(),
              key: DeidKey | None = None, key_file: str | None = None) -> DeidSummary:
    """De-identify a DICOM file, a text report, or every DICOM and ``.txt`` file of a folder tree.

    ``seed`` and/or ``key_file`` (or an explicit ``key``) make the UIDs, date offsets and file names
    reproducible: the key file's secret stretched with the seed (:meth:`DeidKey.from_seed`).
    The output folder must not be inside the input (it would be walked).
    """
    from medmm.imaging.files import REPORT_MAX_BYTES, walk

    key = key or DeidKey.from_seed(seed, key_file=key_file)
    if not os.path.exists(in_path):
        raise InputError(f"{in_path}: no such file or folder")
    real_in, real_out = os.path.realpath(in_path), os.path.realpath(out_root)
    if os.path.isdir(in_path) and (real_out == real_in or real_out.startswith(real_in + os.sep)):
        raise InputError(f"{out_root}: the output folder must not be inside the input folder")
    summary = DeidSummary()
    if os.path.isdir(in_path):
        items = list(walk(in_path, max_bytes=None))
    else:
        items = [(in_path, None)]
    base = in_path if os.path.isdir(in_path) else os.path.dirname(in_path)
    for path, reason in items:
        rel_in = os.path.relpath(path, base)
        if reason:
            summary.skipped.append((rel_in, reason))
            continue
        try:
            if path.lower().endswith(TEXT_SUFFIXES):
                deid_text_file(path, out_root, key, rel_in, REPORT_MAX_BYTES, summary)
            else:
                deid_file(path, out_root, key, options, summary, where=rel_in)
        except BurnedInAnnotationError:
            continue  # recorded in summary.burned_in
        except MedmmError as exc:
            msg = str(exc)
            for prefix in (path + ": ", rel_in + ": "):
                msg = msg.removeprefix(prefix)
            summary.skipped.append((rel_in, msg))
        except Exception as exc:  # a bug on one file must not end the run; recorded for the user
            summary.skipped.append((rel_in, f"unexpected error: {type(exc).__name__}"))
    return summary

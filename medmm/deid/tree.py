"""De-identifying files and whole trees: DICOM through the profile, report text through the scrubber.

The input tree is walked with the imaging file policy (:func:`medmm.imaging.files.walk`: no symlink
out of the root, no FIFO or device). Outputs are named only by new values — DICOM as
``OUT/<new study UID>/<new series UID>/<new SOP UID>.dcm``, report text as
``OUT/text/<keyed hash of the relative path>.txt`` — so no original file or folder name (often a
patient's name or MRN) reaches the output. Anything else is not copied. A bad or refused file is
recorded with its reason; it never ends the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from medmm.deid.core import BurnedInAnnotationError, DeidOptions, deid_dataset, output_name, read_for_deid, write_deid
from medmm.deid.keys import DeidKey
from medmm.deid.text import scrub_text
from medmm.errors import InputError, MedmmError

TEXT_SUFFIXES = (".txt",)


@dataclass
class DeidSummary:
    """What a run did; paths are relative to the input (they are the user's own) or to the output."""

    written: list[str] = field(default_factory=list)  # output paths, relative to OUT
    texts: list[str] = field(default_factory=list)  # scrubbed text outputs, relative to OUT
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input path relative to IN, reason)
    burned_in: list[tuple[str, str]] = field(default_factory=list)  # refused or allowed with --allow-burned-in
    duplicates: int = 0

    def line(self) -> str:
        return (f"{len(self.written)} DICOM file(s) and {len(self.texts)} text file(s) de-identified, "
                f"{len(self.burned_in)} with possible burned-in text, {len(self.skipped)} skipped")


def deid_file(path: str, out_root: str, key: DeidKey, options: DeidOptions = DeidOptions(),
              summary: DeidSummary | None = None, where: str | None = None) -> str:
    """De-identify one DICOM file into ``out_root``; returns the output path (relative to ``out_root``)."""
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
    target = os.path.join(out_root, rel)
    if os.path.exists(target) and rel in summary.written:
        summary.duplicates += 1
    write_deid(ds, target, where)
    summary.written.append(rel)
    return rel


def deid_text_file(path: str, out_root: str, key: DeidKey, rel_in: str, max_bytes: int) -> str:
    from medmm.imaging.files import read_limited

    raw = read_limited(path, max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    rel = os.path.join("text", key.name("text-file", rel_in, 24) + ".txt")
    target = os.path.join(out_root, rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(scrub_text(text).text)
    return rel


def deid_tree(in_path: str, out_root: str, seed: str | int | None = None, options: DeidOptions = DeidOptions(),
              key: DeidKey | None = None) -> DeidSummary:
    """De-identify a DICOM file, a text report, or every DICOM and ``.txt`` file of a folder tree.

    ``seed`` (or an explicit ``key``) makes the UIDs, date offsets and file names reproducible.
    The output folder must not be inside the input (it would be walked).
    """
    from medmm.imaging.files import REPORT_MAX_BYTES, walk

    key = key or DeidKey.from_seed(seed)
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
                summary.texts.append(deid_text_file(path, out_root, key, rel_in, REPORT_MAX_BYTES))
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

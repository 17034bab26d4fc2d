"""Header index: scan a folder tree (headers only) into a table, one row per series.

Pixel data are never read (``defer_size``), files are parsed in a process pool, and a bad
file — non-DICOM, zero bytes, corrupt, truncated, a symlink out of the tree — becomes a row
with its reason instead of ending the scan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medmm.errors import InputError
from medmm.imaging.geometry import StackPlan
from medmm.imaging.series import discover

COLUMNS = [
    "status", "series_uid", "study_uid", "modality", "body_part", "series_description", "n_files", "n_stacks",
    "orientation", "shape", "spacing", "problems", "problem_messages", "usable", "folder", "path", "reason",
]


def orientation_label(orientation: tuple[float, ...] | None) -> str:
    """AXIAL / CORONAL / SAGITTAL when the slice normal is within ~10° of an axis, else OBLIQUE."""
    if orientation is None:
        return "NONE"
    normal = np.cross(orientation[:3], orientation[3:])
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < 0.985:
        return "OBLIQUE"
    return ("SAGITTAL", "CORONAL", "AXIAL")[axis]


def _fmt(values: tuple[float, ...] | list[float]) -> str:
    return "x".join(f"{v:.6g}" for v in values)


@dataclass(frozen=True)
class ScanResult:
    table: pd.DataFrame
    n_files: int
    n_series: int
    n_skipped: int


def scan(root: str, workers: int | None = None) -> ScanResult:
    """Scan ``root`` into a DataFrame with :data:`COLUMNS`; ``status`` is ``ok`` or ``skipped``."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: not a folder")
    workers = workers if workers is not None else (os.cpu_count() or 1)
    found = discover(root, workers=workers)
    rows = []
    n_files = len(found.skipped)
    for group in found.series:
        n_files += len(group.headers)
        plans: tuple[StackPlan, ...] = group.plans
        codes: list[str] = []
        messages: list[str] = []
        for plan in plans:
            for p in plan.problems:
                if p.code not in codes:
                    codes.append(p.code)
                if p.message not in messages:
                    messages.append(p.message)
        first = group.first
        folder = os.path.commonpath([h.path for h in group.headers])
        if not os.path.isdir(folder):
            folder = os.path.dirname(folder)
        rows.append({
            "status": "ok",
            "series_uid": group.series_uid,
            "study_uid": first.study_uid,
            "modality": first.modality,
            "body_part": first.facts.body_part,
            "series_description": first.series_description,
            "n_files": len(group.headers),
            "n_stacks": len(plans),
            "orientation": "|".join(orientation_label(p.orientation) for p in plans),
            "shape": "|".join(_fmt(p.shape) for p in plans),
            "spacing": "|".join(_fmt(p.spacing) for p in plans),
            "problems": ";".join(codes),
            "problem_messages": " | ".join(messages),
            "usable": all(p.usable for p in plans),
            "folder": folder,
            "path": None,
            "reason": None,
        })
    for s in found.skipped:
        rows.append({**{c: None for c in COLUMNS}, "status": "skipped", "path": s.path, "reason": s.reason})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["n_files"] = table["n_files"].astype("Int64")
    table["n_stacks"] = table["n_stacks"].astype("Int64")
    table["usable"] = table["usable"].astype("boolean")
    return ScanResult(table, n_files, len(found.series), len(found.skipped))


def write_table(table: pd.DataFrame, out: str) -> str:
    """Write the index as Parquet (.parquet) or CSV (.csv)."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if out.lower().endswith(".parquet"):
        table.to_parquet(out, index=False)
    elif out.lower().endswith(".csv"):
        table.to_csv(out, index=False)
    else:
        raise InputError(f"{out}: the index must be written as .parquet or .csv")
    return out

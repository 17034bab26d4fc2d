"""DICOM folders: finding files safely, grouping into series, and loading volumes.

Series are grouped by SeriesInstanceUID; within a series, single-frame files are pooled and
each multi-frame file is its own pool; every pool is planned by
:func:`medmm.imaging.geometry.plan_stacks` (sorted along the normal, problems detected).
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Iterable, Iterator

import numpy as np
from pydicom.dataset import Dataset

from medmm._pool import exit_with_parent, pool_context
from medmm.errors import InputError, MedmmError, SeriesGeometryError
from medmm.imaging.dicom import (
    FileHeader,
    check_budget,
    decode_planes,
    read_dataset,
    read_header,
    require_pixels,
    voi_luts_from,
)
from medmm.imaging.files import walk
from medmm.imaging.geometry import StackPlan, plan_stacks
from medmm.imaging.volume import Volume


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why (never fatal for a folder scan)."""

    path: str
    reason: str


@dataclass(frozen=True)
class SeriesGroup:
    """All headers of one series and the stacks planned from them."""

    series_uid: str | None
    headers: tuple[FileHeader, ...]
    plans: tuple[StackPlan, ...]

    @property
    def first(self) -> FileHeader:
        return self.headers[0]


@dataclass
class Discovery:
    series: list[SeriesGroup] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def iter_files(root: str) -> Iterator[tuple[str, str | None]]:
    """Yield ``(path, None)`` for each file of a DICOM tree, or ``(path, reason)`` to skip.

    The file policy is :func:`medmm.imaging.files.walk` (symlinks out of the root, symlinked
    folders, FIFOs, devices and over-deep folders skipped with a reason); hidden files and
    DICOMDIR are passed over.
    """
    for path, reason in walk(root):
        if reason is None and os.path.basename(path).upper() == "DICOMDIR":
            continue
        yield path, reason


def _header_or_skip(path: str, max_voxels: int | None = None) -> FileHeader | Skipped:
    try:
        header = read_header(path, max_voxels=max_voxels)
    except MedmmError as exc:
        return Skipped(path, _reason(exc, path))
    except Exception as exc:  # never let one file end a scan
        return Skipped(path, f"unexpected error: {type(exc).__name__}: {exc}")
    reason = unusable_reason(header)
    return Skipped(path, reason) if reason else header


def unusable_reason(header: FileHeader) -> str | None:
    """Why a readable DICOM file cannot contribute an image, or None."""
    if header.truncated:
        return "truncated: the file ends inside an element (pixel data or header cut short)"
    if not header.has_pixels:
        if header.sop_class is None:
            return "no SOP Class UID and no pixel data: corrupt, or not a DICOM object"
        return "DICOM without pixel data (not an image)"
    return None


def _reason(exc: Exception, path: str) -> str:
    msg = str(exc)
    prefix = path + ": "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


POOL_MIN_FILES = 2000  # below this a process pool costs more than it saves (bench/header_index.py)


def read_headers(paths: Iterable[str], workers: int = 1, chunksize: int = 256,
                 max_voxels: int | None = None) -> list[FileHeader | Skipped]:
    """Read headers of many files, in a process pool when ``workers > 1`` and the tree is large
    enough for the pool to pay off (pydicom and the header scanner hold the GIL). A file declaring
    more than the frame or pixel budget (``max_voxels``) is skipped with the reason."""
    paths = list(paths)
    if workers <= 1 or len(paths) < max(2 * chunksize, POOL_MIN_FILES):
        return [_header_or_skip(p, max_voxels) for p in paths]
    ctx = pool_context(preload=["medmm.imaging.series"])  # forkserver, never fork (see medmm/_pool.py)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=exit_with_parent) as pool:
        return list(pool.map(partial(_header_or_skip, max_voxels=max_voxels), paths, chunksize=chunksize))


def group_headers(headers: Iterable[FileHeader], force: bool = False) -> list[SeriesGroup]:
    """Group headers by SeriesInstanceUID (files without one: by folder) and plan their stacks."""
    pools: dict[tuple, list[FileHeader]] = defaultdict(list)
    for h in headers:
        key = h.series_uid or f"no-series-uid:{os.path.dirname(h.path)}"
        pools[(key,)].append(h)
    groups = []
    for (key,), members in pools.items():
        members.sort(key=lambda h: h.path)
        plans: list[StackPlan] = []
        single = [p for h in members if not h.multi_frame for p in h.planes]
        if single:
            plans.extend(plan_stacks(single, force=force))
        for h in members:
            if h.multi_frame:
                plans.extend(plan_stacks(list(h.planes), force=force))
        uid = None if key.startswith("no-series-uid:") else key
        groups.append(SeriesGroup(uid, tuple(members), tuple(plans)))
    return groups


def discover(root: str, workers: int = 1, force: bool = False, max_voxels: int | None = None) -> Discovery:
    """Headers-only survey of a folder tree: series with their planned stacks, and skipped files."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: not a folder")
    out = Discovery()
    paths = []
    for path, reason in iter_files(root):
        if reason:
            out.skipped.append(Skipped(path, reason))
        else:
            paths.append(path)
    headers = []
    for item in read_headers(paths, workers=workers, max_voxels=max_voxels):
        if isinstance(item, Skipped):
            out.skipped.append(item)
        else:
            headers.append(item)
    out.series = group_headers(headers, force=force)
    return out


# --------------------------------------------------------------------------------------
# Loading pixels
# --------------------------------------------------------------------------------------
def _refuse(plan: StackPlan, series_uid: str | None, where: str) -> SeriesGeometryError:
    codes = ", ".join(f"{p.code} ({p.message})" for p in plan.errors)
    return SeriesGeometryError(
        f"{where}: series cannot be loaded as one correct volume: {codes}. "
        "Use force (--force) to apply the documented fallback (see medmm.imaging.problems)."
    )


def volume_from_plan(
    plan: StackPlan,
    headers: dict[str, FileHeader],
    datasets: dict[str, Dataset] | None = None,
    max_voxels: int | None = None,
) -> Volume:
    """Decode the planes of a usable plan into a :class:`Volume`.

    ``datasets`` may hold already-read pydicom datasets; files that need pydicom to decode
    are read on demand otherwise (uncompressed grayscale never needs them).
    """
    datasets = datasets or {}
    first_header = headers[plan.planes[0].path]
    for path in {p.path for p in plan.planes}:
        require_pixels(headers[path])
    rows, cols, n = first_header.rows, first_header.cols, len(plan.planes)
    photometric = (first_header.photometric or "").upper()
    rgb = first_header.samples == 3 or photometric == "PALETTE COLOR"
    check_budget(n * rows * cols * (3 if rgb else 1), first_header.path, max_voxels)

    by_path: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for k, p in enumerate(plan.planes):
        by_path[p.path].append((k, p.frame))
    out: np.ndarray | None = None
    for path, items in by_path.items():
        ks = [k for k, _ in items]
        frames = [f for _, f in items]
        header, ds = headers[path], datasets.get(path)
        if out is None:
            decoded = decode_planes(header, frames, ds=ds)
            if len(by_path) == 1 and ks == list(range(n)):
                out = decoded
                continue
            out = np.empty((n,) + decoded.shape[1:], dtype=decoded.dtype)
            out[ks] = decoded
        elif len(items) == 1:
            decode_planes(header, frames, out=out[ks[0]: ks[0] + 1], ds=ds)
        else:
            out[ks] = decode_planes(header, frames, ds=ds)
    assert out is not None
    data = out.transpose(2, 1, 0, 3) if out.ndim == 4 else out.transpose(2, 1, 0)
    voi_luts = ()
    if first_header.has_voi_lut_sequence:
        ds0 = datasets.get(first_header.path) or read_dataset(first_header.path, headers_only=True)
        voi_luts = voi_luts_from(ds0)
    return Volume(
        data=data,
        affine=plan.affine,
        modality=first_header.modality,
        photometric=first_header.photometric,
        rgb=out.ndim == 4,
        facts=first_header.facts,
        windows=first_header.windows,
        voi_luts=voi_luts,
        display_inverted=first_header.display_inverted,
        problems=plan.problems,
        series_uid=first_header.series_uid,
        source=first_header.path if len(by_path) == 1 else os.path.dirname(first_header.path),
    )


def load_dicom_file(path: str, force: bool = False, max_voxels: int | None = None) -> list[Volume]:
    """Load one DICOM file (single- or multi-frame) as one or more volumes."""
    header = read_header(path, max_voxels=max_voxels)
    require_pixels(header)
    volumes = []
    for plan in plan_stacks(list(header.planes), force=force):
        if not plan.usable:
            raise _refuse(plan, header.series_uid, path)
        volumes.append(volume_from_plan(plan, {path: header}, max_voxels=max_voxels))
    return volumes


def load_dicom_folder(
    root: str,
    force: bool = False,
    series_uid: str | None = None,
    max_voxels: int | None = None,
    strict: bool = True,
) -> tuple[list[Volume], list[Skipped]]:
    """Load every series under ``root`` (or only ``series_uid``) as volumes.

    Headers are scanned first (pixels stay on disk); then each stack's pixels are read,
    uncompressed frames straight into the output array. ``series_uid`` restricts decoding
    to one series. With ``strict`` a plan with an error-policy problem raises; otherwise it is reported in
    the returned skipped list and the other series still load.
    """
    found = discover(root, force=force, max_voxels=max_voxels)
    skipped = list(found.skipped)
    if not found.series:
        raise InputError(f"{root}: no DICOM images found ({len(skipped)} file(s) skipped)")
    groups = found.series
    headers = {h.path: h for g in groups for h in g.headers}
    if series_uid is not None:
        groups = [g for g in groups if g.series_uid == series_uid]
        if not groups:
            raise InputError(f"{root}: no series with SeriesInstanceUID {series_uid}")
    volumes: list[Volume] = []
    for group in groups:
        for plan in group.plans:
            if not plan.usable:
                err = _refuse(plan, group.series_uid, root)
                if strict:
                    raise err
                skipped.append(Skipped(plan.planes[0].path, str(err)))
                continue
            volumes.append(volume_from_plan(plan, headers, max_voxels=max_voxels))
    return volumes, skipped

"""Check-now uploads: written owner-only, zips expanded within limits, unsaved ones deleted.

A zip is checked before anything is written (member count, declared expanded size, per-member
compression ratio) and again while it is expanded (a member that expands beyond what its header
declared is cut off and the upload refused), so a small zip cannot fill the disk. Member names
cannot leave the upload folder (absolute paths, ``..``, drive letters), links and special files are
skipped, files are created 0600 in 0700 folders with ``O_EXCL | O_NOFOLLOW``. An upload lives in a
*pending* folder until an admin saves the checked study (then it moves under ``uploads/``);
otherwise it is deleted when the check ends, on logout, or by :func:`sweep_pending`.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass

from medmm.errors import InputError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class UploadLimits:
    max_expanded_bytes: int = 1 << 30
    max_members: int = 5000
    max_ratio: float = 200.0


@dataclass(frozen=True)
class Upload:
    folder: str            # the pending folder holding this upload (delete or keep as a whole)
    images: tuple[str, ...]  # what the checker reads: the file, or the folder of the expanded zip


def _safe_member(name: str) -> str | None:
    """A relative path inside the upload folder for a zip member name, or None to skip it."""
    name = name.replace("\\", "/")
    if not name or name.endswith("/") or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or any("\x00" in p for p in parts):
        return None
    return os.path.join(*parts)


def _write_new(path: str, chunks, limit: int) -> int:  # noqa: ANN001 - an iterable of bytes
    """Write chunks to a new owner-only file; stop (and raise) past ``limit`` bytes."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
    n = 0
    with os.fdopen(fd, "wb") as fh:
        for chunk in chunks:
            n += len(chunk)
            if n > limit:
                raise InputError("the upload expands beyond the allowed size; upload the series in parts or ask an "
                                 "administrator to raise upload_max_expanded_mb")
            fh.write(chunk)
    return n


def _expand_zip(path: str, dest: str, limits: UploadLimits) -> None:
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError("the uploaded zip cannot be read (corrupt or not a zip)") from exc
    with z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) > limits.max_members:
            raise InputError(f"the zip holds {len(infos)} files; at most {limits.max_members} are accepted")
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_expanded_bytes:
            raise InputError(f"the zip expands to {declared / 2**20:.0f} MiB; at most "
                             f"{limits.max_expanded_bytes / 2**20:.0f} MiB are accepted")
        for i in infos:  # every member, whatever its size (issue 20, N13: members under 1 MiB went unchecked)
            if i.file_size > max(i.compress_size, 1) * limits.max_ratio:
                raise InputError("the zip has a member compressed beyond any image's ratio (a zip bomb?); refused")
        if declared > max(sum(i.compress_size for i in infos), 1) * limits.max_ratio:
            raise InputError("the zip as a whole is compressed beyond any image's ratio (a zip bomb?); refused")
        budget = limits.max_expanded_bytes
        for i in infos:
            kind = stat.S_IFMT(i.external_attr >> 16)
            if kind and kind != stat.S_IFREG:
                continue  # links, devices, fifos
            rel = _safe_member(i.filename)
            if rel is None:
                continue
            target = os.path.join(dest, rel)
            if os.path.lexists(target):
                continue
            try:
                with z.open(i) as src:
                    n = _write_new(target, iter(lambda: src.read(_CHUNK), b""), min(budget, i.file_size))
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
                raise InputError("a file in the uploaded zip cannot be expanded (corrupt or encrypted)") from exc
            budget -= n


def save_upload(data: bytes, name: str, root: str, limits: UploadLimits = UploadLimits()) -> Upload:
    """Write an upload into a new pending folder under ``root`` (0700); expand zips within ``limits``."""
    pending = os.path.join(root, "pending")
    os.makedirs(pending, mode=0o700, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="u", dir=pending)  # 0700
    try:
        base = os.path.basename(name.replace("\\", "/")) or "upload"
        if base.lower().endswith(".zip"):
            zpath = os.path.join(folder, "upload.zip")
            _write_new(zpath, [data], len(data))
            series = os.path.join(folder, "series")
            os.makedirs(series, mode=0o700)
            _expand_zip(zpath, series, limits)
            os.unlink(zpath)
            return Upload(folder, (series,))
        suffix = "".join(s for s in os.path.splitext(base)[1][:8] if s.isalnum() or s == ".")
        if base.lower().endswith(".nii.gz"):
            suffix = ".nii.gz"
        path = os.path.join(folder, "image" + suffix)  # never the uploaded name (it may carry a patient's name)
        _write_new(path, [data], len(data))
        return Upload(folder, (path,))
    except BaseException:
        discard(folder)
        raise


def keep(upload: Upload, root: str, name: str) -> Upload:
    """Move a pending upload to ``root/name`` (a saved study's images); returns the new paths."""
    final = os.path.join(root, name)
    if os.path.exists(final):
        discard(upload.folder)
        return Upload(final, tuple(p.replace(upload.folder, final, 1) for p in upload.images))
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.replace(upload.folder, final)
    return Upload(final, tuple(p.replace(upload.folder, final, 1) for p in upload.images))


def discard(folder: str | None) -> None:
    if folder and os.path.isdir(folder):
        shutil.rmtree(folder, ignore_errors=True)


def sweep_pending(root: str, max_age_s: float = 3600.0, now: float | None = None) -> int:
    """Delete pending uploads older than ``max_age_s`` (a closed tab, a crash); returns how many."""
    pending = os.path.join(root, "pending")
    if not os.path.isdir(pending):
        return 0
    now = now or time.time()
    n = 0
    for entry in os.scandir(pending):
        try:
            if entry.is_dir(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > max_age_s:
                discard(entry.path)
                n += 1
        except OSError:
            continue
    return n


def deidentify_upload(upload: Upload, root: str, seed: str) -> Upload:
    """The upload's DICOM files de-identified (PS3.15 basic profile, patient characteristics kept so the
    report's sex-specific checks still work) into a new pending folder; the original is deleted.

    ``seed`` keys the replacement UIDs and file names (the app passes the store's secret salt, so
    pseudonyms are stable within one store). An upload without DICOM files (NIfTI, PNG) has no header
    to clean and is returned unchanged. An image that may carry burned-in patient text, an encapsulated
    document, or any DICOM file that cannot be de-identified (a corrupt header, a decompression bomb)
    refuses the whole upload: nothing identifiable is kept or checked.
    """
    from medmm.deid.core import DeidOptions
    from medmm.deid.keys import DeidKey
    from medmm.deid.tree import deid_tree

    pending = os.path.join(root, "pending")
    out = tempfile.mkdtemp(prefix="d", dir=pending)
    try:
        summary = deid_tree(upload.folder, out, key=DeidKey.from_secret(seed, "check-now"),
                            options=DeidOptions(keep_patient_characteristics=True))
    except BaseException:
        discard(out)
        raise
    if summary.burned_in:
        discard(out)
        discard(upload.folder)
        raise InputError("the image may carry burned-in patient text (BurnedInAnnotation is YES, or absent on a "
                         "radiograph/ultrasound/secondary capture), so de-identification refused it; check it outside "
                         "the app or ask an administrator")
    failed = [why for _, why in summary.skipped if "not a DICOM file" not in why]
    if failed:  # before, such an upload was returned unchanged: identifiable, and checked as it was
        discard(out)
        discard(upload.folder)
        raise InputError(f"a file of the upload cannot be de-identified ({failed[0]}), so the upload was refused "
                         "and deleted; check it outside the app or ask an administrator")
    if not summary.written:
        discard(out)
        return upload
    discard(upload.folder)
    return Upload(out, (out,))

"""The one file policy for walking a folder tree given by a user.

Every place in medmm that lists the files of a tree — the imaging scan, audit folder inputs,
report corpora, de-identification of a tree — walks it with :func:`walk`, so the rules are the
same everywhere:

- symlinks that resolve outside the walked root are not followed (a study folder must not pull
  in another patient's report); symlinked folders are never followed (no loops, no escape);
- FIFOs, sockets and devices are never opened (a FIFO blocks forever, ``/dev/zero`` never ends);
- files over a size limit (``max_bytes``) are skipped with a reason (a report is a few KB);
- folders nested deeper than ``max_depth`` are skipped with a reason: the walk is iterative, so a
  tree 1,200 levels deep cannot end it with ``RecursionError``;
- a folder that cannot be listed is reported, never fatal.

Files are yielded as ``(path, None)``; everything not used is yielded as ``(path, reason)`` so
callers can record why. Reasons never contain file contents, only what kind of thing was skipped.
"""

from __future__ import annotations

import os
import stat
from typing import Iterator

MAX_DEPTH = 64  # folder levels below the root; real study trees are < 10 deep
REPORT_MAX_BYTES = 1 << 20  # a report text file over 1 MiB is not a radiology report


def _inside(target: str, real_root: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def file_problem(path: str, max_bytes: int | None = None, real_root: str | None = None) -> str | None:
    """Why ``path`` must not be opened as an input file, or None when it is a regular file.

    Follows a symlink only when it resolves inside ``real_root`` (when given). Never opens the file.
    """
    if os.path.islink(path):
        target = os.path.realpath(path)
        if real_root is not None and not _inside(target, real_root):
            return "symlink points outside the scanned root; not followed"
        if not os.path.exists(target):
            return "broken symlink"
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (FIFO, socket or device); not opened"
    if max_bytes is not None and st.st_size > max_bytes:
        return f"larger than the {max_bytes:,}-byte limit for this kind of file ({st.st_size:,} bytes); not read"
    return None


def walk(
    root: str,
    *,
    max_depth: int = MAX_DEPTH,
    skip_hidden: bool = True,
    suffixes: tuple[str, ...] | None = None,
    max_bytes: int | None = None,
) -> Iterator[tuple[str, str | None]]:
    """Yield ``(path, None)`` for each usable regular file under ``root`` and ``(path, reason)`` for
    each thing skipped, depth first in sorted name order (a folder's files before its sub-folders).

    ``suffixes`` (lower case, e.g. ``(".txt",)``) limits the walk to files with those endings;
    other files are passed over silently, before anything about them is checked. Hidden files
    (``.name``) are passed over silently unless ``skip_hidden`` is False.
    """
    real_root = os.path.realpath(root)
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        if depth > max_depth:
            yield folder, f"folder nested more than {max_depth} levels below the root; not scanned"
            continue
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield folder, f"folder cannot be listed ({exc.strerror})"
            continue
        subfolders = []
        for entry in entries:
            full = os.path.join(folder, entry.name)
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError as exc:
                yield full, f"cannot be read ({exc.strerror})"
                continue
            if is_dir:
                subfolders.append(full)
                continue
            if is_link and os.path.isdir(full):
                yield full, "symlinked folder not followed"
                continue
            if skip_hidden and entry.name.startswith("."):
                continue
            if suffixes is not None and not entry.name.lower().endswith(suffixes):
                continue
            yield full, file_problem(full, max_bytes=max_bytes, real_root=real_root)
        stack.extend((sub, depth + 1) for sub in reversed(subfolders))


def read_limited(path: str, max_bytes: int) -> bytes:
    """Read a whole regular file of at most ``max_bytes``; refuse FIFOs, devices and larger files.

    The file is opened non-blocking (a FIFO cannot hang the open) and checked with ``fstat`` on the
    open descriptor, so a file swapped after it was listed is still checked.
    """
    from medmm.errors import InputError

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file (FIFO, socket or device); not read")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{path}: larger than the {max_bytes:,}-byte limit for this kind of file; not read")
    return data

"""The gdcm decoder in its own process: ``python -m medmm.imaging.gdcm_child``, spoken to over pipes.

Why a child at all: gdcm reports some corrupt streams by throwing a C++ exception nothing catches,
and the whole process aborts; in a child only the child dies and the caller gets a DecodeError.

Why not a ``multiprocessing`` pool (as before): a ``forkserver``/``spawn`` worker imports the parent's
``__main__`` by path before it runs anything, so a worker started from the report-checking app ran
the app's script again (issue 20, N12) — and from any user's script, that script. This child is a
fresh interpreter started with ``-m`` on this module: it imports medmm, pydicom and gdcm and nothing
of the caller's. One child is kept warm per process (a JPEG Lossless or JPEG-LS archive decodes
through gdcm file after file) and restarted after a crash.

Protocol (one request at a time, under a lock): the parent writes a file path and a newline; the child
answers one JSON line — ``{"ok": true, "dtype", "shape", "nbytes"}`` followed by the array's bytes,
or ``{"ok": false, "kind", "message"}`` — on a dedicated descriptor (the child's C-level stdout is
sent to stderr, so nothing gdcm prints can corrupt the answer).
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
import threading
import warnings
from typing import IO, Any

import numpy as np

_LOCK = threading.Lock()
_child: subprocess.Popen[bytes] | None = None
_RAISABLE = ("ValueError", "RuntimeError", "NotImplementedError", "AttributeError", "KeyError", "TypeError")


def _start() -> subprocess.Popen[bytes]:
    import medmm

    root = os.path.dirname(os.path.dirname(os.path.abspath(medmm.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.Popen([sys.executable, "-m", "medmm.imaging.gdcm_child"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, cwd=root, close_fds=True)


def _error(kind: str, message: str) -> Exception:
    from medmm import errors

    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.MedmmError):
        return cls(message)
    if kind in _RAISABLE:
        return getattr(builtins, kind)(message)  # type: ignore[no-any-return]
    return RuntimeError(f"{kind}: {message}")


def decode(path: str) -> np.ndarray:
    """Decode ``path``'s pixel data with gdcm in the child; raises :class:`ChildCrashed` when it dies."""
    global _child
    with _LOCK:
        if _child is None or _child.poll() is not None:
            _child = _start()
        child = _child
        try:
            assert child.stdin is not None and child.stdout is not None
            # one JSON line per request: a newline (or any byte) in a file name never splits it in two
            child.stdin.write(json.dumps(os.fsencode(path).decode("latin-1")).encode("ascii") + b"\n")
            child.stdin.flush()
            line = child.stdout.readline()
            answer = json.loads(line) if line else None
            data = _read_exact(child.stdout, int(answer["nbytes"])) if answer and answer.get("ok") else b""
        except (OSError, ValueError):  # a broken pipe or a garbled answer: the child is gone or lost
            answer, data = None, None
        if answer is None or data is None:
            _child = None
            child.kill()
            child.wait()
            raise ChildCrashed(path)
        if not answer.get("ok"):
            raise _error(str(answer.get("kind")), str(answer.get("message")))
    return np.frombuffer(data, dtype=np.dtype(answer["dtype"])).reshape(answer["shape"]).copy()


class ChildCrashed(RuntimeError):
    """The gdcm child died (a C++ abort on a corrupt stream)."""


def _read_exact(fh: IO[bytes], n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = fh.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _decode_here(path: str) -> np.ndarray:
    from medmm.imaging.dicom import read_dataset

    ds = read_dataset(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.pixel_array_options(decoding_plugin="gdcm")
        return np.ascontiguousarray(ds.pixel_array)


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    for raw in inp:
        try:
            path = os.fsdecode(json.loads(raw).encode("latin-1"))
        except (ValueError, TypeError, UnicodeError) as exc:
            out.write(json.dumps({"ok": False, "kind": "DecodeError", "message": f"bad request ({exc})"}).encode() + b"\n")
            out.flush()
            continue
        try:
            arr = _decode_here(path)
            head: dict[str, Any] = {"ok": True, "dtype": arr.dtype.str, "shape": list(arr.shape), "nbytes": arr.nbytes}
            out.write(json.dumps(head).encode() + b"\n")
            out.write(memoryview(arr).cast("B"))
        except Exception as exc:  # sent to the parent, which raises it there
            out.write(json.dumps({"ok": False, "kind": type(exc).__name__, "message": str(exc)}).encode() + b"\n")
        out.flush()


def main() -> None:
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the decoder prints goes to stderr, never into the answers
    sys.stdout = sys.stderr
    _serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()

"""The multiprocessing context for medmm's process pools.

Never ``fork``: a process that runs threads (torch/BLAS pools, a Streamlit server, Ray) can
leave a forked child deadlocked or dead. ``forkserver`` children start from a clean server
process. Children still import ``__main__`` by path when they start (that is how
multiprocessing works outside ``fork``): do not start medmm pools from inside a Streamlit
script, and guard scripts with ``if __name__ == "__main__":``.

What the server imports before it forks workers (its *preload*) is the caller's choice:
``pool_context(preload=["medmm.imaging.series"])`` for the header scan,
``pool_context(preload=["medmm.audit.runner", "medmm._warm"])`` for an audit. This module
names no module of its own, so a low layer's pool never loads a higher layer. Never the
default ``["__main__"]``: re-importing the caller's main module in the server would run a
script — or a Streamlit app — again.

The forkserver is one per process, and multiprocessing reads the preload list when the server
*starts* (the first worker of the first pool), not when a context is requested. So the first
pool that starts workers in a process decides what is preloaded; a later pool asking for other
modules gets workers that import them on their first task — the same results, warmed per
worker instead of once. :func:`forkserver_preload` says which list a pool will actually get.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.context import BaseContext
from typing import Sequence

_LOCK = threading.Lock()
_requested: tuple[str, ...] = ()


def pool_context(preload: Sequence[str] = ()) -> BaseContext:
    """The forkserver context, with ``preload`` (module names) for a server not started yet."""
    global _requested
    modules = [str(m) for m in preload]
    if "__main__" in modules:
        raise ValueError("pool_context(preload=...) must not name '__main__' (it would re-run the caller's script)")
    ctx = multiprocessing.get_context("forkserver")
    with _LOCK:
        if not _server_running():
            ctx.set_forkserver_preload(modules)
            _requested = tuple(modules)
    return ctx


def forkserver_preload() -> tuple[str, ...]:
    """The modules the (running or next) forkserver of this process preloads."""
    return _requested


def _server_running() -> bool:
    # multiprocessing keeps the server's pid on its module-level ForkServer; no public accessor.
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    return getattr(server, "_forkserver_pid", None) is not None

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

A pool's workers do not notice on their own when the process that started the pool dies: a
``ProcessPoolExecutor`` worker waits for its next task on a queue whose write end every worker
also holds, and each worker holds the forkserver's "alive" pipe, so a killed audit left its
workers (with the review store open) and the server asleep for good. Pools start their workers
with :func:`exit_with_parent` as (or inside) the initializer.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
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


def exit_with_parent(poll_seconds: float = 1.0, pidfd: bool = True) -> None:
    """In a pool worker: end this process when the process that started the pool ends (killed or not).

    A daemon thread waits on a pidfd of the pool's parent (Linux 5.3+: no pid-reuse race), or polls its pid
    every ``poll_seconds`` where pidfds are missing (then the owner's start time, read now, tells a pid reused
    by another process from the owner, and a zombie owner counts as gone). ``os.getppid()`` is no help here: a
    forkserver worker's parent is the server, not the pool's owner; and
    ``multiprocessing.parent_process().sentinel`` is the pipe the owner closes right after handing over the
    task, so it cannot tell either. Ending with ``os._exit`` is what a kill of the whole group would do: a
    unit left half-written is rolled back by the store and checked again on resume. Does nothing outside a
    child process, and starts one watch per process however often it is called. ``pidfd=False`` polls even
    where pidfds exist (the path of systems without them, for tests)."""
    global _watching
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None else None
    if pid is None:
        return
    with _LOCK:
        if _watching:
            return
        _watching = True
    started = _start_time(pid)
    fd: int | None = None
    try:
        fd = os.pidfd_open(pid) if pidfd else None
    except ProcessLookupError:
        os._exit(1)  # the owner died before this worker started
    except (AttributeError, OSError):
        fd = None  # no pidfd on this system: poll the pid

    def watch() -> None:
        try:
            if fd is not None:
                poller = select.poll()  # not select.select: it refuses descriptors >= 1024
                poller.register(fd, select.POLLIN)
                poller.poll()
                os._exit(1)
        except Exception:  # noqa: BLE001 - the watch must not die silently: poll the pid instead
            pass
        while _owner_alive(pid, started):
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name=WATCH_THREAD, daemon=True).start()


WATCH_THREAD = "medmm-exit-with-parent"
_watching = False


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat), or None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(pid: int, started: str | None) -> bool:
    """Is the process that was ``pid`` (started at ``started``) still running? A zombie is not; nor is another
    process that got the same pid since."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process has that pid now (ours would accept the signal): the start time tells
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return started is None  # no /proc: the signal test above is all there is
    if fields[0] == "Z":
        return False
    return started is None or fields[19] == started

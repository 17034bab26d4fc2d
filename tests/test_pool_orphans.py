"""A pool's workers end when the process that started the pool is killed (medmm._pool.exit_with_parent).

Before: a SIGKILLed audit left its ProcessPoolExecutor workers (with the review store open) and the forkserver
asleep for good — each worker holds its task queue's write end and the server's "alive" pipe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_OWNER = r"""
import json, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from medmm._pool import exit_with_parent, pool_context

import functools
init = {"watch": exit_with_parent, "poll": functools.partial(exit_with_parent, 0.2, False), "none": None}[sys.argv[1]]
pool = ProcessPoolExecutor(2, mp_context=pool_context(preload=["medmm._pool"]), initializer=init)
for f in [pool.submit(time.sleep, 0.5) for _ in range(2)]:  # both workers busy at once, so both start
    f.result()
pids = sorted(pool._processes)  # noqa: SLF001 (a test reads the executor's worker pids)
print(json.dumps({"workers": pids, "server": forkserver._forkserver._forkserver_pid}), flush=True)
time.sleep(120)  # killed by the test
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (only its parent, gone, would reap it)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _kill_owner(mode: str) -> list[int]:
    """Start a pool owner, SIGKILL it once its workers run; the pids of its workers and forkserver."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-c", _OWNER, mode], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, "the pool owner printed nothing"
        info = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    return [*info["workers"], info["server"]]


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def _kill(pids: list[int]) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver pools and /proc: Linux")
@pytest.mark.parametrize("mode", ["watch", "poll"])  # a pidfd of the owner; polling its pid (no pidfds)
def test_workers_and_forkserver_end_when_the_pool_owner_is_killed(mode: str) -> None:
    pids = _kill_owner(mode)
    try:
        left = _gone_within(pids, 20)
        assert not left, f"still running 20 s after their pool's owner was killed: {left}"
    finally:
        _kill(pids)  # never leave them behind, even when the test fails


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver pools and /proc: Linux")
def test_without_the_watch_the_workers_outlive_their_owner() -> None:
    """The control: the same pool without exit_with_parent leaves its processes behind (what the fix is for)."""
    pids = _kill_owner("none")
    try:
        assert _gone_within(pids, 3), "the workers ended without the watch: the test above proves nothing"
    finally:
        _kill(pids)


def test_exit_with_parent_starts_no_watch_in_the_main_process() -> None:
    import threading

    from medmm._pool import WATCH_THREAD, exit_with_parent

    exit_with_parent()  # no parent_process(): returns, no watch on anything
    assert WATCH_THREAD not in {t.name for t in threading.enumerate()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: Linux")
def test_the_poll_tells_a_zombie_and_a_reused_pid_from_the_owner() -> None:
    from medmm._pool import _owner_alive, _start_time

    me = os.getpid()
    assert _owner_alive(me, _start_time(me))
    assert not _owner_alive(me, "0")  # the pid now belongs to a process started at another time
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
        time.sleep(0.05)  # exited, not reaped yet: a zombie
    try:
        assert not _owner_alive(child.pid, _start_time(child.pid))
    finally:
        child.wait()

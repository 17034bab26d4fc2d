"""The multiprocessing context for medmm's process pools.

Never ``fork``: a process that runs threads (torch/BLAS pools, a Streamlit server, Ray) can
leave a forked child deadlocked or dead. ``forkserver`` children start from a clean server
process; its preload list names medmm's worker modules instead of the default ``__main__``
(re-importing the caller's main module in every worker would run a script — or a Streamlit
app — again). Children still import ``__main__`` by path when they start (that is how
multiprocessing works outside ``fork``): do not start medmm pools from inside a Streamlit
script, and guard scripts with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

_PRELOAD = ["medmm.imaging.series", "medmm.audit.runner", "medmm.synth.generate", "medmm._warm"]


def pool_context() -> BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx

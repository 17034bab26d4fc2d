"""Instructions of one cold pass of the rule checker over the IU dev reports, counted by callgrind: the steady figure
for a speed change on a shared machine (CPU time there swings by 20 % with the other jobs' load; the instruction
count of a pass moves by 0.3 %).

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        python bench/checker_instructions.py [check|analyze|negspacy]
    # prints nothing itself: valgrind's "Collected : N" line is the pass's instruction count

``negspacy`` counts one pass of ``bench/report_checker.py``'s peer instead (spaCy sentencizer + EntityRuler with
medmm's finding vocabulary + negspacy's NegEx, ``nlp(report)`` per report, after a warm-up pass; needs
``requirements-bench.txt``): the two counts side by side are a speed ratio that the machine's load does not move.
Instructions are not time (the peer runs mostly compiled Cython, the checker mostly the Python interpreter), so the
bench's CPU-time ratio stays the figure the issue asks for; on a machine whose CPU time swings by a third between
passes of the same code, this one is the steady companion.

Run with ``PYTHONHASHSEED=0`` to compare two versions (string hashes move set and dict layouts). The checker is built
and warmed up (one pass) without instrumentation; then the sentence caches are cleared as ``bench/report_checker.py
speed`` does, and only the pass is counted (callgrind's client requests, through a three-line C helper compiled here
with the system's compiler and valgrind headers: Python has no binding for them).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.join(HERE, "..", "..", "shared", "data", "real_reports", "iu_dev.jsonl")
_HELPER = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("pass"); }
"""


def _helper(folder: str) -> ctypes.CDLL:
    src, lib = os.path.join(folder, "cg.c"), os.path.join(folder, "libcg.so")
    with open(src, "w") as fh:
        fh.write(_HELPER)
    try:
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", lib, src], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"cannot build the callgrind helper ({exc}): install a C compiler and valgrind's headers "
                 "(Debian: gcc, valgrind)")
    return ctypes.CDLL(lib)


def main(what: str = "check") -> None:
    from medmm.reports import build_checker
    from medmm.reports.analysis import analyze, clear_caches
    from medmm.reports.checker import clean_text
    from medmm.reports.corpus import read_corpus

    if not os.path.isfile(REAL):
        sys.exit(f"{REAL}: the IU dev reports are absent (see ../shared/data/real_reports/README.md)")
    reports = [r["report"] for r in read_corpus(REAL).rows]
    if what == "negspacy":
        sys.path.insert(0, os.path.dirname(HERE))
        from bench.report_checker import build_baseline

        nlp = build_baseline()
        for r in reports:  # vocabulary, spaCy's word-level caches: not part of the pass (as in bench/report_checker.py;
            # its tokenizer cache is keyed by chunk, i.e. word, like medmm's word tables, which stay loaded too)
            nlp(r)
        with tempfile.TemporaryDirectory() as folder:
            lib = _helper(folder)
            lib.cg_start()
            for r in reports:
                nlp(r)
            lib.cg_stop()
        return
    checker = build_checker("rules")
    for r in reports:  # vocabularies and models loaded, lazy tables built: not part of the pass
        checker.check(r)
    texts = [clean_text(r, []) for r in reports]
    with tempfile.TemporaryDirectory() as folder:
        lib = _helper(folder)
        clear_caches()
        lib.cg_start()
        if what == "analyze":
            for t in texts:
                analyze(t)
        else:
            for r in reports:
                checker.check(r)
        lib.cg_stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "check")

"""A measured 100,000-study rules audit, and a hospital-year (1,000,000 studies) on paper.

The 400 studies ``medmm synth`` generates (SMALL config: real DICOM files, headers read for every
study) are listed ``--copies`` times under different study ids (100,000 studies by default) and
audited with the rules checker the way a quality team runs it (``medmm audit``'s code: a process
pool, the single batched writer) with the result cache off (the copies share report and header: the
cache would answer all but 400 of them). Measured: wall and CPU time, studies/s, the
store's and the cache's size per study, and a resumed run (everything already done: the nightly
rerun). The hospital-year figures are these, scaled by 10 (time and size grow linearly: the
writer's per-study work does not depend on the store's size — results are keyed by an indexed
primary key), next to the worklist latency measured on a 1,000,000-study store by
``bench/worklist_scale.py``.

``python -m bench.hospital_year [--studies 400] [--copies 250] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time


def _cpu() -> float:
    """CPU seconds of this process: the listing and the single writer (workers come from a forkserver and
    are not our children, so their CPU is not counted here)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _size(path: str) -> int:
    return sum(os.path.getsize(path + s) for s in ("", "-wal", "-shm") if os.path.exists(path + s))


def run(n_studies: int = 400, copies: int = 250, workers: int = 2, root: str | None = None) -> dict[str, float]:
    from bench.audit_speed import _manifest
    from medmm.audit.runner import audit
    from medmm.synth import SMALL, synthesize

    with tempfile.TemporaryDirectory(prefix="medmm-year-", dir=root) as d:
        synthesize(d, n_studies, seed=7, config=SMALL)
        manifest = _manifest(d, copies)
        db = os.path.join(d, "audit.sqlite")
        t0, c0 = time.perf_counter(), _cpu()
        # result cache off: the copies share their report and header, the cache would answer all but 400
        s = audit(manifest, db, workers=workers, progress=False, batch_size=32, cache=False)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        t1 = time.perf_counter()
        again = audit(manifest, db, workers=workers, progress=False, batch_size=32, cache=False)
        rerun = time.perf_counter() - t1
        import sqlite3

        sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
        return {"studies": float(s.studies + s.failures), "checked": float(s.studies), "failures": float(s.failures),
                "flagged": float(s.flagged), "wall_s": wall, "cpu_s": cpu, "audit_s": s.seconds,
                "rate": (s.studies + s.failures) / wall, "store_bytes": float(_size(db)),
                "rerun_s": rerun,
                "rerun_skipped": float(again.skipped_done), "workers": float(workers)}


def report(r: dict[str, float]) -> str:
    n = r["studies"]
    scale = 1_000_000 / n
    per = r["store_bytes"] / n
    return "\n".join([
        f"## A {n:,.0f}-study rules audit ({r['workers']:.0f} workers; synthetic studies, DICOM headers read)",
        f"- {r['wall_s']:.0f} s wall ({r['rate']:,.0f} studies/s); the parent (listing + single writer) "
        f"{1000 * r['cpu_s'] / n:.2f} ms CPU per study; "
        f"{r['checked']:,.0f} checked, {r['flagged']:,.0f} flagged, {r['failures']:,.0f} failed",
        f"- store {r['store_bytes'] / 2**20:,.0f} MiB ({per / 1024:.1f} KiB per study; result cache off: every "
        "study checked)",
        f"- the same command again (nightly rerun, nothing new): {r['rerun_s']:.1f} s, "
        f"{r['rerun_skipped']:,.0f} studies already done",
        f"## A hospital-year on paper (1,000,000 studies = {scale:.0f}x this run)",
        f"- audit: {r['wall_s'] * scale / 3600:.1f} h on this machine with {r['workers']:.0f} workers, or "
        f"{r['wall_s'] * scale / 365 / 60:.1f} min a night for a day's 2,740 studies",
        f"- store: about {per * 1_000_000 / 2**30:.1f} GiB",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hospital_year")
    p.add_argument("--studies", type=int, default=400)
    p.add_argument("--copies", type=int, default=250)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tmp", default=None, help="where the temporary studies and store go (default: the system's)")
    a = p.parse_args(argv)
    print(report(run(a.studies, a.copies, a.workers, a.tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

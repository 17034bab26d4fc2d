"""The review worklist at hospital-year scale: a store of 1,000,000 studies with 1 % reviewed.

Builds the store through the audit's own batched writer (:meth:`Store.record_batch`, with the
integrity triggers and the hash chain a real store has; check results are stand-ins with realistic
flag counts, confidences and types: the store is what is under test), adds reviews to 1 % of the
studies through :meth:`Store.add_review`, then times what the review app asks the store for on
each rerun (a fresh :class:`Store` per rerun, as the app opens one): the configurations, the
counts and ONE page of 50 rows (:class:`medmm.audit.worklist.Worklist`), deep pages by keyset,
filters, Next / Previous / "next unreviewed flag" and the position on the study page, and a rerun
right after a saved decision (the review-dependent counts are recomputed).

Peer, in the same run on the same store: the worklist as the app built it before (every study's
row with its flag and review counts, sorted, turned into dicts: the previous ``Store.worklist``),
stopped after ``--peer-limit`` seconds.

``python -m bench.worklist_scale [--studies 1000000] [--reviewed 0.01] [--keep DB]``
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

TYPES = ("laterality", "negation", "measurement", "severity", "location", "finding", "insertion", "omission",
         "contradiction", "device", "interval", "transcription", "metadata")
MODALITIES = (("CR", 0.35), ("CT", 0.3), ("MR", 0.15), ("DX", 0.12), ("US", 0.08))
DESCRIPTIONS = {"CR": "XR CHEST PA AND LATERAL", "CT": "CT CHEST WITH CONTRAST", "MR": "MR BRAIN WITHOUT CONTRAST",
                "DX": "XR CHEST PORTABLE", "US": "US ABDOMEN COMPLETE"}
REPORT = ("INDICATION: {ind}.\n\nCOMPARISON: None.\n\nFINDINGS: {find} The cardiomediastinal silhouette is within "
          "normal limits. There is no pneumothorax. No acute osseous abnormality. Study {i}.\n\nIMPRESSION: {imp}\n")
FINDINGS = ("Small left pleural effusion.", "No focal consolidation.", "Mild cardiomegaly.", "A 6 mm nodule in the "
            "right upper lobe.", "Endotracheal tube 4 cm above the carina.", "No pleural effusion.")


@dataclass(frozen=True)
class Flag:
    """What the store reads from a checker's flag (a stand-in: the store is under test)."""

    type: str
    start: int
    end: int
    text: str
    explanation: str
    confidence: float
    evidence: str = "text"
    rule: str = ""


@dataclass(frozen=True)
class Result:
    has_error: bool
    score: float
    flags: tuple = ()
    notes: list = field(default_factory=list)


def _entries(rng: random.Random, start: int, n: int) -> list[tuple]:
    from medmm.audit.store import StudyRecord

    out = []
    for i in range(start, start + n):
        mod = rng.choices([m for m, _ in MODALITIES], [w for _, w in MODALITIES])[0]
        find = rng.choice(FINDINGS)
        text = REPORT.format(ind="Cough", find=find, i=i, imp=find)
        day = 1 + (i * 365) // 1_000_000 % 365
        rec = StudyRecord(f"bench-{i}", None, {"modality": mod, "body_part": "CHEST"}, text,
                          accession_number=f"A{i:010d}", exam_date=time.strftime("%Y-%m-%d",
                                                                                 time.gmtime(1735689600 + day * 86400)),
                          exam_description=DESCRIPTIONS[mod], source="bench")
        u = rng.random()
        if u < 0.01:
            out.append((rec, None, ("header", "stand-in failure")))
            continue
        flags: tuple = ()
        if u < 0.31:  # about 30 % of studies flagged, 1-3 flags each
            flags = tuple(Flag(rng.choice(TYPES), 60, 80, text[60:80], "stand-in explanation",
                               round(rng.uniform(0.3, 0.99), 3)) for _ in range(rng.choice((1, 1, 1, 2, 3))))
        score = max((f.confidence for f in flags), default=round(rng.uniform(0, 0.3), 3))
        out.append((rec, Result(bool(flags), score, flags), None))
    return out


def build(db: str, n: int, reviewed: float = 0.01, seed: int = 0, batch: int = 2000,
          progress: bool = True) -> dict[str, Any]:
    """A store of ``n`` studies under one configuration, ``reviewed`` of them with decisions."""
    from medmm.audit.store import DECISIONS, Store
    from medmm.runs import RunConfig

    rng = random.Random(seed)
    out: dict[str, Any] = {"studies": n}
    t0, c0 = time.perf_counter(), time.process_time()
    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("report-check", checker="rules", bench="worklist_scale"))
        for start in range(0, n, batch):
            s.record_batch(run_id, key, _entries(rng, start, min(batch, n - start)))
            if progress and start % 100_000 == 0:
                print(f"  built {start:,} studies ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        s.finish_run(run_id)
        out["build_s"], out["build_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        t1 = time.perf_counter()
        keys = [k for (k,) in s.conn.execute("SELECT study_key FROM results WHERE config_key=? ORDER BY random() "
                                             "LIMIT ?", (key, int(n * reviewed)))]
        n_reviews = 0
        for i, k in enumerate(keys):
            flags = [f for (f,) in s.conn.execute("SELECT id FROM flags WHERE study_key=?", (k,))]
            if flags and i % 3:  # some studies decided flag by flag (some of their flags only)
                for f in flags[: max(1, len(flags) - (i % 2))]:
                    s.add_review(f"dr_{i % 7}", rng.choice(DECISIONS), flag_id=f)
                    n_reviews += 1
            else:  # a study verdict
                s.add_review(f"dr_{i % 7}", rng.choice(DECISIONS), study_key=k)
                n_reviews += 1
        out["reviews"], out["reviewed_studies"], out["review_s"] = n_reviews, len(keys), time.perf_counter() - t1
        out["config_key"] = key
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out["store_bytes"] = sum(os.path.getsize(db + side) for side in ("", "-wal", "-shm") if os.path.exists(db + side))
    return out


def _median(fn: Callable[[], Any], repeat: int = 7) -> float:
    fn()  # warm (page cache, memo of the review-independent counts)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(db: str, peer_limit: float = 120.0) -> dict[str, float]:
    """Seconds per app request (medians), on a fresh Store each time as the app opens one per rerun."""
    from medmm.audit.store import Store
    from medmm.audit.worklist import STATES, WorklistFilter

    out: dict[str, float] = {}
    with Store(db) as s:
        wl = s.worklist_view()
        deep_after = s.conn.execute("SELECT sort_key FROM results WHERE config_key=? ORDER BY sort_key LIMIT 1 "
                                    "OFFSET ?", (wl.config_key, wl.counts().total // 2)).fetchone()[0]
        mid_key = deep_after.rsplit("|", 1)[1]
        reviewed_key = s.conn.execute("SELECT study_key FROM reviews ORDER BY id LIMIT 1").fetchone()[0]

    def rerun(flt: WorklistFilter = WorklistFilter(), after: str | None = None, last: bool = False) -> None:
        with Store(db) as s:  # what the app does on every rerun: configurations, counts, one page
            s.configurations()
            w = s.worklist_view()
            w.counts(flt)
            w.modalities()
            w.run_ids()
            if last:
                w.last_page(flt)
            else:
                w.page(flt, after=after)

    def study_rerun(key: str) -> None:
        with Store(db) as s:  # the study page: Previous / Next / next unreviewed flag, its row, the study
            s.configurations()
            w = s.worklist_view()
            w.counts()
            w.neighbour(key, step=1)
            w.neighbour(key, step=-1)
            w.neighbour(key, unreviewed_flag=True, wrap=True)
            w.row(key)
            s.study(key, w.config_key)
            s.history(key)

    def position(key: str) -> None:  # "k of N" when the app does not know k (it counts as it moves)
        with Store(db) as s:
            s.worklist_view().position(key)

    out["rerun_first_page"] = _median(rerun)
    out["rerun_deep_page"] = _median(lambda: rerun(after=deep_after))
    out["rerun_last_page"] = _median(lambda: rerun(last=True))
    out["rerun_filter_type"] = _median(lambda: rerun(WorklistFilter(types=("laterality",))))
    out["rerun_filter_conf"] = _median(lambda: rerun(WorklistFilter(min_confidence=0.9)))
    out["rerun_filter_modality"] = _median(lambda: rerun(WorklistFilter(modalities=("US",))))
    out["rerun_filter_unreviewed"] = _median(lambda: rerun(WorklistFilter(states=(STATES[0],))))
    out["rerun_filter_reviewed"] = _median(lambda: rerun(WorklistFilter(states=("reviewed", "partly reviewed"))))
    out["rerun_study_page"] = _median(lambda: study_rerun(mid_key))
    out["rerun_study_page_reviewed"] = _median(lambda: study_rerun(reviewed_key))
    out["position_mid"] = _median(lambda: position(mid_key), repeat=3)

    with Store(db) as s:  # flags to decide, picked before the clock runs
        some_flags = [f for (f,) in s.conn.execute("SELECT id FROM flags WHERE id % 101 = 7 LIMIT 20")]

    def after_save() -> None:  # a decision is saved, then the worklist reruns (review counts brought up to date)
        with Store(db) as s:
            s.add_review("dr_bench", "uncertain", flag_id=some_flags.pop())
        rerun()
    out["rerun_after_save"] = _median(after_save, repeat=5)
    for name in ("rerun_filter_type", "rerun_filter_modality"):  # a filter's first use (nothing cached yet)
        from medmm.audit.worklist import MEMO

        MEMO.clear()
        t0 = time.perf_counter()
        rerun(WorklistFilter(types=("laterality",)) if name == "rerun_filter_type" else WorklistFilter(modalities=("US",)))
        out[name + "_first"] = time.perf_counter() - t0
    out.update(peer(db, peer_limit))
    return out


# The worklist query of the review app before paging (Store.worklist before issue 19), for the peer.
PEER_SQL = """
SELECT s.key, s.modality, s.body_part, s.patient_sex, r.score, r.has_error, r.status, r.run_id,
       (SELECT COUNT(*) FROM flags f WHERE f.study_key = s.key AND f.config_key = r.config_key) AS n_flags,
       (SELECT GROUP_CONCAT(DISTINCT f.type) FROM flags f WHERE f.study_key = s.key AND f.config_key = r.config_key),
       (SELECT MAX(f.confidence) FROM flags f WHERE f.study_key = s.key AND f.config_key = r.config_key) AS top,
       (SELECT COUNT(*) FROM reviews v WHERE v.study_key = s.key) AS n_reviews
FROM studies s JOIN results r ON r.study_key = s.key
WHERE r.config_key = ?
ORDER BY COALESCE(top, -1) DESC, COALESCE(r.score, -1) DESC, s.key
"""


def peer(db: str, limit: float) -> dict[str, float]:
    """The full-list worklist (one rerun of the app before), with the reviews_study index this store has
    (without it the review counts scan the reviews table per study); stopped after ``limit`` seconds."""
    from medmm.audit.store import Store

    with Store(db) as s:
        key = s.latest_config_key()
        deadline = time.perf_counter() + limit
        s.conn.set_progress_handler(lambda: 1 if time.perf_counter() > deadline else 0, 100_000)
        t0 = time.perf_counter()
        try:
            rows = s.conn.execute(PEER_SQL, (key,)).fetchall()
            cols = ["study_key", "modality", "body_part", "patient_sex", "score", "has_error", "status", "run_id",
                    "n_flags", "flag_types", "max_confidence", "n_reviews"]
            items = [dict(zip(cols, r)) for r in rows]
            for d in items:
                d["flag_types"] = sorted(set((d["flag_types"] or "").split(",")) - {""})
            return {"peer_full_list": time.perf_counter() - t0, "peer_stopped": 0.0}
        except sqlite3.OperationalError:  # interrupted by the progress handler
            return {"peer_full_list": time.perf_counter() - t0, "peer_stopped": 1.0}
        finally:
            s.conn.set_progress_handler(None, 0)


def report(b: dict[str, Any], m: dict[str, float]) -> str:
    ms = {k: v * 1000 for k, v in m.items() if k.startswith("rerun")}
    worst = max(v for k, v in ms.items() if not k.endswith("_first"))
    peer_s = m["peer_full_list"]
    peer_txt = (f"> {peer_s:.0f} s (stopped)" if m["peer_stopped"] else f"{peer_s:.1f} s")
    lines = [
        f"## Worklist at {b['studies']:,} studies, {b['reviewed_studies']:,} reviewed ({b['reviews']:,} reviews)",
        f"- store built through the batched writer in {b['build_s']:.0f} s ({b['studies'] / b['build_s']:,.0f} "
        f"studies/s, {b['build_cpu_s']:.0f} s CPU); store size {b['store_bytes'] / 2**30:.2f} GiB",
        "- per app rerun (fresh Store, configurations + counts + one page of 50), median ms: " +
        ", ".join(f"{k.removeprefix('rerun_')} {v:.1f}" for k, v in ms.items() if not k.endswith("_first")),
        f"- a filter's first use (nothing cached): type {ms['rerun_filter_type_first']:.0f} ms, modality "
        f"{ms['rerun_filter_modality_first']:.0f} ms; the position of a study half-way down, counted (the app "
        f"counts as it moves instead): {m['position_mid'] * 1000:.0f} ms",
        f"- slowest rerun {worst:.1f} ms (goal < 200 ms); peer: the full worklist as the app built it before, "
        f"{peer_txt} per rerun: **{peer_s * 1000 / ms['rerun_first_page']:,.0f}x** the first-page rerun"
        + (" (at least)" if m["peer_stopped"] else ""),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.worklist_scale")
    p.add_argument("--studies", type=int, default=1_000_000)
    p.add_argument("--reviewed", type=float, default=0.01)
    p.add_argument("--peer-limit", type=float, default=120.0)
    p.add_argument("--keep", help="build (or reuse) the store at this path instead of a temporary one")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medmm-worklist-") as d:
        db = a.keep or os.path.join(d, "worklist.sqlite")
        if a.keep and os.path.exists(db):
            from medmm.audit.store import Store

            with Store(db) as s:
                c = s.counts()
                b = {"studies": c["results"], "reviews": c["reviews"], "build_s": float("nan"),
                     "build_cpu_s": float("nan"), "store_bytes": os.path.getsize(db),
                     "reviewed_studies": s.conn.execute("SELECT COUNT(DISTINCT study_key) FROM reviews").fetchone()[0]}
        else:
            b = build(db, a.studies, a.reviewed)
        m = measure(db, a.peer_limit)
    print(report(b, m))
    print(f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    return 0 if max(v for k, v in m.items() if k.startswith("rerun") and not k.endswith("_first")) < 0.2 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Review-store load: 8 simulated reviewers (processes: open the worklist, open a study, save a
decision) while an audit process writes results and flags into the same store, for 60 s.

Checks what a hospital deployment needs: no lost or duplicated review (every decision a reviewer
was told was saved is in the store exactly once), no lost result, the review hash chain intact
afterwards, and no "database is locked" (or any other error) reaching a reviewer. Prints decision
latencies (p50/p99) and write rates. ``python -m bench.store_load [--seconds 60] [--reviewers 8]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

REPORT = "FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small right pleural effusion. Study {i}."


@dataclass(frozen=True)
class FakeFlag:
    """What the store reads from a checker's flag (a stand-in: the store is what is under test)."""

    type: str = "laterality"
    start: int = 52
    end: int = 57
    text: str = "right"
    explanation: str = "impression side differs from findings"
    confidence: float = 0.9
    evidence: str = "rule"
    rule: str = "laterality.impression"


@dataclass(frozen=True)
class FakeResult:
    """What the store reads from a check result."""

    has_error: bool = True
    score: float = 0.9
    flags: tuple = (FakeFlag(),)
    notes: list = field(default_factory=list)


def _seed(db: str, n: int) -> str:
    from medmm.audit.store import Store, StudyRecord
    from medmm.runs import RunConfig

    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.5, bench="seed"))
        for i in range(n):
            s.record_result(run_id, key, StudyRecord(f"seed-{i}", None, {"modality": "CT"}, REPORT.format(i=i)),
                            FakeResult())
        s.finish_run(run_id)
        return key


def _reviewer(db: str, name: str, config_key: str, until: float, q: Any) -> None:
    """One reviewer: worklist → study → decision, as fast as the store allows; every error is reported."""
    import random

    from medmm.audit.store import DECISIONS, Store

    rng = random.Random(name)
    saved: list[str] = []
    errors: list[str] = []
    latencies: list[float] = []
    try:
        store = Store(db)
    except Exception as exc:  # noqa: BLE001 - what a user would see
        q.put({"name": name, "saved": [], "errors": [f"open: {type(exc).__name__}: {exc}"], "latencies": []})
        return
    i = 0
    while time.time() < until:
        comment = f"{name}-{i}"
        try:
            items = store.worklist(config_key)
            study = store.study(rng.choice(items)["study_key"], config_key)
            t0 = time.perf_counter()
            store.add_review(name, rng.choice(DECISIONS), flag_id=study["flags"][0]["id"], comment=comment)
            latencies.append(time.perf_counter() - t0)
            saved.append(comment)
        except Exception as exc:  # noqa: BLE001 - anything here would reach the reviewer's screen
            errors.append(f"{type(exc).__name__}: {exc}")
        i += 1
    store.close()
    q.put({"name": name, "saved": saved, "errors": errors, "latencies": latencies})


def _auditor(db: str, until: float, q: Any) -> None:
    """An audit writing new studies (result + flag per study) into the same store."""
    from medmm.audit.store import Store, StudyRecord
    from medmm.runs import RunConfig

    written, errors = 0, []
    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.5, bench="load"))
        i = 0
        while time.time() < until:
            try:
                if s.record_result(run_id, key, StudyRecord(f"load-{i}", None, {"modality": "CT"},
                                                            REPORT.format(i=i)), FakeResult()):
                    written += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{type(exc).__name__}: {exc}")
            i += 1
        s.finish_run(run_id)
    q.put({"name": "audit", "written": written, "errors": errors, "config_key": key})


def run_load(db: str, seconds: float = 60.0, reviewers: int = 8, seed_studies: int = 50) -> dict[str, Any]:
    """Run the load and check the store afterwards; a dict of figures and problems."""
    from medmm.audit.store import Store

    config_key = _seed(db, seed_studies)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start = time.time() + 3.0  # every process is up before the clock starts
    until = start + seconds
    procs = [ctx.Process(target=_reviewer, args=(db, f"dr_{k}", config_key, until, q)) for k in range(reviewers)]
    procs.append(ctx.Process(target=_auditor, args=(db, until, q)))
    for p in procs:
        p.start()
    outs = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    audit_out = next(o for o in outs if o["name"] == "audit")
    revs = [o for o in outs if o["name"] != "audit"]
    saved = [c for o in revs for c in o["saved"]]
    latencies = sorted(x for o in revs for x in o["latencies"])
    with Store(db) as s:
        comments = [r[0] for r in s.conn.execute("SELECT comment FROM reviews")]
        results = s.conn.execute("SELECT COUNT(*) FROM results WHERE config_key=?",
                                 (audit_out["config_key"],)).fetchone()[0]
        verify = s.verify()
    return {
        "seconds": seconds, "reviewers": reviewers,
        "reviews_written": len(saved), "reviews_in_store": len(comments),
        "lost_reviews": len(set(saved) - set(comments)), "duplicate_reviews": len(comments) - len(set(comments)),
        "results_written": audit_out["written"], "results_in_store": int(results),
        "errors": [e for o in outs for e in o["errors"]],
        "verify_ok": verify.ok,
        "decision_p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "decision_p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "reviews_per_s": len(saved) / seconds, "results_per_s": audit_out["written"] / seconds,
    }


def report(r: dict[str, Any]) -> str:
    return (f"## Review store under load ({r['reviewers']} reviewers + 1 audit writer, {r['seconds']:.0f} s)\n"
            f"- decisions saved: {r['reviews_written']} ({r['reviews_per_s']:.0f}/s), in the store: "
            f"{r['reviews_in_store']}, lost: {r['lost_reviews']}, duplicated: {r['duplicate_reviews']}\n"
            f"- audit results written: {r['results_written']} ({r['results_per_s']:.0f}/s), in the store: "
            f"{r['results_in_store']}\n"
            f"- decision latency p50 {r['decision_p50_ms']:.1f} ms, p99 {r['decision_p99_ms']:.1f} ms\n"
            f"- errors reaching a reviewer (incl. 'database is locked'): {len(r['errors'])}; "
            f"hash chain and triggers after the run: {'ok' if r['verify_ok'] else 'BROKEN'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store_load")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--reviewers", type=int, default=8)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medmm-load-") as d:
        r = run_load(os.path.join(d, "load.sqlite"), a.seconds, a.reviewers)
    print(report(r))
    ok = not r["errors"] and not r["lost_reviews"] and not r["duplicate_reviews"] and r["verify_ok"] \
        and r["results_in_store"] == r["results_written"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

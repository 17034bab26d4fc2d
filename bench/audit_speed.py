"""Audit throughput: studies/s with the rules checker on synthetic studies (real DICOM headers are
read for every study), 1 vs 2 worker processes (target >= 1.7x), and the Ray engine vs local,
in the same run. The 400 generated studies are listed 25 times under different study ids (10,000 studies:
worker start-up, about 0.3 s with forkserver, is amortised as in a real audit)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def _manifest(root: str, copies: int, errors: float = 0.0) -> str:
    """The synthetic manifest listed ``copies`` times under new study ids; with ``errors``, that share of the
    copies' reports get one injected error (``medmm inject``'s text and header types), so runs write flags."""
    import numpy as np

    from medmm.reports.inject import inject_one
    from medmm.reports.taxonomy import TEXT_HEADER_TYPES

    src = os.path.join(root, "manifest.jsonl")
    out = os.path.join(root, "bench-manifest.jsonl")
    with open(src, encoding="utf-8") as fh:
        recs = [json.loads(line) for line in fh]
    with open(out, "w", encoding="utf-8") as fh:
        for c in range(copies):
            rng = np.random.default_rng(c)
            for r in recs:
                rec = {**r, "study_id": f"{r['study_id']}-{c}"}
                if errors and rng.random() < errors:
                    header = {"modality": r.get("modality"), "body_part": r.get("body_part"),
                              "patient_sex": r.get("sex")}
                    edit = inject_one(r["report"], header, rng, TEXT_HEADER_TYPES)
                    if edit is not None:
                        rec["report"] = edit[0]
                fh.write(json.dumps(rec) + "\n")
    return out


def run(n_studies: int = 400, copies: int = 25) -> dict[str, float]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from medmm.audit.runner import audit
    from medmm.synth import SMALL, synthesize

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medmm-audit-") as d:
        synthesize(d, n_studies, seed=7, config=SMALL)
        manifest = _manifest(d, copies)
        total = n_studies * copies
        for label, kw in (("local_1", {"workers": 1}), ("local_2", {"workers": 2})):
            db = os.path.join(d, f"{label}.sqlite")
            s = audit(manifest, db, progress=False, batch_size=32, cache=False, **kw)  # copies: no cache hits
            assert s.studies == total, (label, s.studies)
            out[label] = s.studies / s.seconds
        import time

        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        out["ray_startup_s"] = time.perf_counter() - t0
        try:
            s = audit(manifest, os.path.join(d, "ray.sqlite"), workers=2, engine="ray", progress=False, batch_size=32,
                      cache=False)
            assert s.studies == total
            out["ray_2"] = s.studies / s.seconds
        finally:
            ray.shutdown()
        out["studies"] = float(total)
    return out


# The code before audit workers wrote their own units (issue 19): the single writing parent. The scaling
# benchmark runs it beside the working tree's code on the same input, in the same session, as its peer.
PEER_REV = "a16958e"

_HARNESS = r"""
import json, os, resource, sys, time
from medmm.audit.runner import audit
manifest, warm, out, order, batch = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
# warm-up on 10 studies: this process's imports and checker (1 worker) and the forkserver with its preloads
# (2 workers, two units of 5), so that the timed runs measure the per-study work, not a process's start; so few
# that the checker's sentence caches stay about as cold for the 1-worker run as for each of the 2 workers
audit(warm, os.path.join(out, "warm1.sqlite"), workers=1, progress=False, cache=False)
audit(warm, os.path.join(out, "warm2.sqlite"), workers=2, progress=False, cache=False, batch_size=5)
for w in [int(x) for x in order.split(",")]:
    load = os.getloadavg()[0]
    c0, t0 = cpu(), time.perf_counter()
    s = audit(manifest, os.path.join(out, f"w{w}.sqlite"), workers=w, progress=False, cache=False,
              batch_size=int(batch) or None)
    wall, c = time.perf_counter() - t0, cpu() - c0
    print(json.dumps({"workers": w, "studies": s.studies, "seconds": s.seconds, "wall": wall, "parent_cpu": c,
                      "worker_cpu": getattr(s, "worker_cpu", None), "load": load}), flush=True)
"""


# The files of the audit's listing and writing path taken from PEER_REV; the rest of the peer is this tree's
# medmm (rules and everything else the same, so the two differ only in how the audit lists and writes).
PEER_FILES = ("medmm/audit/runner.py", "medmm/studies/readers.py", "medmm/audit/store.py", "medmm/audit/chain.py")


def _peer_code(rev: str, into: str) -> str | None:
    """This tree's ``medmm`` copied into ``into`` with :data:`PEER_FILES` as they were at ``rev`` (None where git
    or the revision is missing)."""
    import shutil
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = {}
    try:
        for f in PEER_FILES:
            files[f] = subprocess.run(["git", "-C", root, "show", f"{rev}:{f}"], capture_output=True,
                                      check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    shutil.copytree(os.path.join(root, "medmm"), os.path.join(into, "medmm"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f, data in files.items():
        with open(os.path.join(into, f), "wb") as fh:
            fh.write(data)
    return into


def _harness(code: str, manifest: str, warm: str, out: str, order: tuple[int, ...], batch: int) -> list[dict]:
    """Audits of ``manifest`` with the medmm found at ``code``, in a fresh process (as a user runs them), after a
    small audit that starts the forkserver: per run its workers, studies, check seconds, wall seconds of the
    whole call (listing included), this process's CPU, the workers' CPU (when the code reports it), load."""
    import subprocess
    import sys

    os.makedirs(out, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": code}
    res = subprocess.run([sys.executable, "-c", _HARNESS, manifest, warm, out, ",".join(map(str, order)), str(batch)],
                         capture_output=True, text=True, env=env, cwd=out)
    if res.returncode != 0:
        raise RuntimeError(f"audit harness failed ({code}): {res.stderr[-2000:]}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


_SPIN = r"""
import json, sys, time
t = time.perf_counter()
d, s = {}, 0
for i in range(int(sys.argv[1])):
    s += hash((i, "x")) & 7
    if i % 1000 == 0:
        d[i] = json.dumps([i, s])
print(time.perf_counter() - t)
"""


def ceiling(n: int = 2_000_000) -> float:
    """What this machine gives two CPU-bound processes at this moment, as a multiple of one: the same
    pure-Python loop alone, then twice at once (2 x alone / together). On two idle cores about 2; other jobs
    (or two vCPUs sharing a core) lower it, and no audit can scale past it."""
    import subprocess
    import sys
    import time

    def spin() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _SPIN, str(n)], stdout=subprocess.PIPE, text=True)

    t = time.perf_counter()
    spin().communicate()
    alone = time.perf_counter() - t
    t = time.perf_counter()
    a, b = spin(), spin()
    a.communicate(), b.communicate()
    return 2 * alone / (time.perf_counter() - t)


def _flag_set(db: str) -> set[tuple]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return set(con.execute('SELECT r.text, f.type, f.start, f."end", f.confidence FROM flags f '
                               "JOIN reports r ON r.study_key = f.study_key").fetchall())
    finally:
        con.close()


def scaling(n_studies: int = 400, copies: int = 25, pairs: int = 4, peer: str | None = PEER_REV) -> dict[str, Any]:
    """Paired runs (1 worker, 2 workers; the order alternates per pair) of this working tree's code and, as the
    peer, of the code at ``peer`` (the single writing parent), each in a fresh process per pair, interleaved,
    on the same manifest; result cache off (every study checked). Per run: studies/s over the whole audit call
    (planning/listing included) and over the check phase, the parent's CPU per study and the workers' CPU per
    study. Also: whether the flags of every run are the same set."""
    import statistics

    from medmm.synth import SMALL, synthesize

    out: dict[str, Any] = {"runs": [], "studies": n_studies * copies}
    with tempfile.TemporaryDirectory(prefix="medmm-audit-") as d:
        synthesize(d, n_studies, seed=7, config=SMALL)
        manifest = _manifest(d, copies, errors=0.5)  # half the reports with an error: flags are written
        warm = os.path.join(d, "warm.jsonl")
        with open(manifest, encoding="utf-8") as fh, open(warm, "w", encoding="utf-8") as w:
            w.writelines(line for _, line in zip(range(10), fh))
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        codes = {"now": here}
        if peer:
            old = _peer_code(peer, os.path.join(d, "peer"))
            if old:
                codes["peer"] = old
        flags: dict[str, set] = {}
        for k in range(pairs):
            order = (1, 2) if k % 2 == 0 else (2, 1)
            out.setdefault("ceiling", []).append(ceiling())
            for label, code in list(codes.items()):
                try:
                    runs = _harness(code, manifest, warm, os.path.join(d, f"{label}-{k}"), order,
                                    0 if label == "now" else 32)
                except RuntimeError as exc:  # the peer's old files no longer fit the tree: say so, go on
                    if label == "now":
                        raise
                    out["peer_failed"] = str(exc)[-600:]
                    del codes[label]
                    continue
                for r in runs:
                    out["runs"].append({**r, "code": label, "pair": k})
                    if k == 0:
                        flags[f"{label}-{r['workers']}"] = _flag_set(os.path.join(d, f"{label}-{k}", f"w{r['workers']}.sqlite"))
        first = flags.get("now-1", set())
        out["flags_identical"] = all(x == first for x in flags.values())
        out["flags_differing"] = sorted(k for k, x in flags.items() if x != first)
        out["flag_runs"] = sorted(flags)
        out["flags"] = len(first)
    for label in codes:
        for basis in ("wall", "seconds"):
            ratios = []
            for k in range(pairs):
                by = {r["workers"]: r for r in out["runs"] if r["code"] == label and r["pair"] == k}
                ratios.append(by[1][basis] / by[2][basis])
            out[f"{label}_{basis}_ratio"] = ratios
            out[f"{label}_{basis}_median"] = statistics.median(ratios)
        for w in (1, 2):
            rs = [r for r in out["runs"] if r["code"] == label and r["workers"] == w]
            n = out["studies"]
            out[f"{label}_{w}_rate"] = [n / r["wall"] for r in rs]
            out[f"{label}_{w}_parent_ms"] = statistics.median(1e3 * r["parent_cpu"] / n for r in rs)
            wc = [r["worker_cpu"] for r in rs if r["worker_cpu"] is not None]
            out[f"{label}_{w}_worker_ms"] = statistics.median(1e3 * x / n for x in wc) if wc else None
        c1, p2, w2 = out[f"{label}_1_parent_ms"], out[f"{label}_2_parent_ms"], out[f"{label}_2_worker_ms"]
        # two idle cores: 1 worker runs everything in one process (c1 per study); 2 workers need p2 + w2 of CPU
        # per study spread over two cores, and the parent's serial p2 alone
        out[f"{label}_model"] = c1 / max((p2 + (w2 or 0)) / 2, p2) if w2 is not None else None
    out["load"] = [r["load"] for r in out["runs"]]
    return out


def scaling_report(r: dict[str, Any]) -> str:
    def f(xs: list[float], fmt: str = "{:.2f}") -> str:
        return " / ".join(fmt.format(x) for x in xs)

    lines = [f"audit scaling, rules checker, {r['studies']} synthetic studies (DICOM headers read), result cache off, "
             f"{len(r['now_wall_ratio'])} paired runs (1 vs 2 workers), each code in a fresh process per pair, "
             f"load average at the runs' starts {min(r['load']):.1f}-{max(r['load']):.1f}; two CPU-bound processes "
             f"got {f(r['ceiling'])}x one (the machine's ceiling before each pair, bench.audit_speed.ceiling):"]
    for label, name in (("now", "this code (workers list, check and write their own units)"),
                        ("peer", f"peer: the same tree with {', '.join(os.path.basename(f) for f in PEER_FILES)} as at {PEER_REV} (before "
                         "issue 19's units: the parent lists the input and is the single writer)")):
        if f"{label}_wall_ratio" not in r:
            continue
        model = r[f"{label}_model"]
        wms = r[f"{label}_2_worker_ms"]
        lines.append(
            f"- {name}: 2 workers / 1 worker = {f(r[label + '_wall_ratio'])}x over the whole audit call, median "
            f"**{r[label + '_wall_median']:.2f}x** (target >= 1.85x); check phase only {f(r[label + '_seconds_ratio'])}x, "
            f"median {r[label + '_seconds_median']:.2f}x; studies/s 1 worker {f(r[label + '_1_rate'], '{:.0f}')}, "
            f"2 workers {f(r[label + '_2_rate'], '{:.0f}')}; CPU per study: 1 worker (one process does everything) "
            f"{r[label + '_1_parent_ms']:.3f} ms, 2 workers parent {r[label + '_2_parent_ms']:.3f} ms"
            + (f" + workers {wms:.3f} ms; CPU model on two idle cores {model:.2f}x" if wms is not None else
               " (workers' CPU not reported by this code)"))
    if r.get("peer_failed"):
        lines.append(f"- peer not run (its files at {PEER_REV} no longer fit this tree): {r['peer_failed']}")
    lines.append(f"- flags of the first pair's runs ({', '.join(r['flag_runs'])}): "
                 + (f"identical ({r['flags']} flags)" if r["flags_identical"] else
                    f"DIFFERENT from now-1 ({r['flags']} flags): {', '.join(r['flags_differing'])}"))
    return "\n".join(lines)


def components(n_studies: int = 200, copies: int = 10) -> dict[str, float]:
    """CPU per study of each part of an audit, measured in ONE process (CPU time, not wall time: a fairer
    figure on a shared machine): listing, checking, pickling between parent and worker (as the pool sends
    work and answers: the full study and answer vs what the runner sends now), and the writer committing
    each study vs per 256. With these, 2 workers on two otherwise idle cores can reach at most
    2 (c + w) / (c + w + ipc) times one worker (c check, w write, ipc pickling both ways)."""
    import pickle
    import resource

    from medmm.audit import runner
    from medmm.audit.store import Store
    from medmm.synth import SMALL, synthesize

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medmm-audit-") as d:
        synthesize(d, n_studies, seed=7, config=SMALL, workers=1)
        manifest = _manifest(d, copies)
        c0 = cpu()
        items = list(runner.iter_inputs(manifest))
        n = len(items)
        out["list_ms"] = 1e3 * (cpu() - c0) / n
        run = runner.run_config()
        c0 = cpu()
        answers = [runner.process(i, run) for i in items]
        out["check_ms"] = 1e3 * (cpu() - c0) / n
        for label, slim in (("ipc_full_ms", False), ("ipc_now_ms", True)):
            c0 = cpu()
            for k in range(0, n, 32):
                batch = items[k:k + 32]
                pickle.loads(pickle.dumps((runner._for_worker(batch) if slim else batch, run), protocol=5))
                back = [runner._slim(dict(a)) for a in answers[k:k + 32]] if slim else answers[k:k + 32]
                back = pickle.loads(pickle.dumps(back, protocol=5))
                if slim:
                    back = [runner._attach(a, i) for a, i in zip(back, batch)]
            out[label] = 1e3 * (cpu() - c0) / n
        for label, per in (("write_per_study_ms", 1), ("write_batched_ms", 256)):
            with Store(os.path.join(d, f"{label}.sqlite")) as store:
                run_id, key = store.start_run(run)
                writer = runner.BatchWriter(store, run_id, key, runner.AuditSummary(run_id), max_items=per,
                                            max_seconds=1e9)
                c0 = cpu()
                for a in answers:
                    writer.add(dict(a))
                writer.flush()
                out[label] = 1e3 * (cpu() - c0) / n
        out["studies"] = float(n)
    c, before, now = out["check_ms"], out["write_per_study_ms"] + out["ipc_full_ms"], out["write_batched_ms"] + \
        out["ipc_now_ms"]
    out["bound_before"] = 2 * (c + out["write_per_study_ms"]) / (c + before)
    out["bound_now"] = 2 * (c + out["write_batched_ms"]) / (c + now)
    return out


def components_report(r: dict[str, float]) -> str:
    return (f"audit CPU per study, one process, {int(r['studies'])} synthetic studies: listing {r['list_ms']:.2f} ms "
            f"(before the clock), check {r['check_ms']:.2f} ms, parent<->worker pickling {r['ipc_full_ms']:.3f} ms "
            f"(study and answer in full) vs {r['ipc_now_ms']:.3f} ms (slim answers, as Ray tasks send them now), writer "
            f"{r['write_per_study_ms']:.3f} ms (a commit per study) vs {r['write_batched_ms']:.3f} ms (per 256); for "
            f"a single writing parent (the Ray path; a local pool's workers write their own units), the bound on 2 "
            f"idle cores for 2 workers / 1 worker: {r['bound_before']:.2f}x committing each study, "
            f"{r['bound_now']:.2f}x batched (a model from CPU times, not a wall-clock measurement)")


def report(r: dict[str, float]) -> str:
    return (f"audit, rules checker, {int(r['studies'])} synthetic studies (DICOM headers read), studies/s: "
            f"1 worker {r['local_1']:.0f}, 2 workers {r['local_2']:.0f} ({r['local_2'] / r['local_1']:.2f}x, target "
            f">= 1.7x); Ray on a local 2-CPU instance {r['ray_2']:.0f} ({r['ray_2'] / r['local_2']:.2f}x local 2 workers; "
            f"Ray's own start-up, {r['ray_startup_s']:.1f} s, not counted)")


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.audit_speed")
    p.add_argument("--pairs", type=int, default=0, help="paired 1-vs-2-worker runs of this code and of the peer "
                                                          "commits (the scaling figure); 0: the full benchmark")
    p.add_argument("--studies", type=int, default=400)
    p.add_argument("--copies", type=int, default=25)
    p.add_argument("--components", action="store_true", help="CPU per study of each part, in one process")
    a = p.parse_args()
    if a.components:
        print(components_report(components(a.studies, a.copies)))
    elif a.pairs:
        print(scaling_report(scaling(a.studies, a.copies, a.pairs)))
    else:
        print(report(run(a.studies, a.copies)))

"""Audit throughput: studies/s with the rules checker on synthetic studies (real DICOM headers are
read for every study), 1 vs 2 worker processes (target >= 1.7x), and the Ray engine vs local,
in the same run. The 400 generated studies are listed 25 times under different study ids (10,000 studies:
worker start-up, about 0.3 s with forkserver, is amortised as in a real audit)."""

from __future__ import annotations

import json
import os
import tempfile


def _manifest(root: str, copies: int) -> str:
    src = os.path.join(root, "manifest.jsonl")
    out = os.path.join(root, "bench-manifest.jsonl")
    with open(src, encoding="utf-8") as fh:
        recs = [json.loads(line) for line in fh]
    with open(out, "w", encoding="utf-8") as fh:
        for c in range(copies):
            for r in recs:
                fh.write(json.dumps({**r, "study_id": f"{r['study_id']}-{c}"}) + "\n")
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


def _one(manifest: str, db: str, workers: int, write_batch: int) -> tuple[float, float]:
    """(studies/s, parent CPU ms per study) of one audit; ``write_batch`` studies per commit."""
    import resource

    from medmm.audit import runner

    saved = runner.WRITE_BATCH
    runner.WRITE_BATCH = write_batch
    try:
        c0 = resource.getrusage(resource.RUSAGE_SELF)
        s = runner.audit(manifest, db, workers=workers, progress=False, batch_size=32, cache=False)
        c1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        runner.WRITE_BATCH = saved
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    return s.studies / s.seconds, 1000 * cpu / max(1, s.studies)


def scaling(n_studies: int = 400, copies: int = 25, pairs: int = 4) -> dict[str, list[float]]:
    """Paired runs (1 worker, 2 workers; the order alternates per pair) of the batched writer and of the
    writer that commits each study (WRITE_BATCH = 1) in the same run. Result cache off (every study
    checked). Returns per-pair ratios, rates and the parent's CPU per study with 2 workers."""
    import statistics

    from medmm.synth import SMALL, synthesize

    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="medmm-audit-") as d:
        synthesize(d, n_studies, seed=7, config=SMALL)
        manifest = _manifest(d, copies)
        for k in range(pairs):
            for label, wb in (("batched", 256), ("per_study", 1)):
                order = (1, 2) if k % 2 == 0 else (2, 1)
                got = {}
                for w in order:
                    got[w] = _one(manifest, os.path.join(d, f"{label}-{k}-{w}.sqlite"), w, wb)
                out.setdefault(f"{label}_ratio", []).append(got[2][0] / got[1][0])
                out.setdefault(f"{label}_1", []).append(got[1][0])
                out.setdefault(f"{label}_2", []).append(got[2][0])
                out.setdefault(f"{label}_parent_cpu_ms", []).append(got[2][1])
    out["median"] = [statistics.median(out["batched_ratio"]), statistics.median(out["per_study_ratio"])]
    out["studies"] = [float(n_studies * copies)]
    return out


def scaling_report(r: dict[str, list[float]]) -> str:
    import statistics

    def f(xs: list[float], fmt: str = "{:.2f}") -> str:
        return " / ".join(fmt.format(x) for x in xs)

    return (f"audit scaling, rules checker, {int(r['studies'][0])} synthetic studies, result cache off, "
            f"{len(r['batched_ratio'])} paired runs (1 vs 2 workers):\n"
            f"- batched writer (one transaction per 256 studies or 0.5 s): 2 workers / 1 worker = "
            f"{f(r['batched_ratio'])}x, median **{r['median'][0]:.2f}x** (target >= 1.85x); studies/s 1 worker "
            f"{f(r['batched_1'], '{:.0f}')}, 2 workers {f(r['batched_2'], '{:.0f}')}; parent (writer) CPU "
            f"{statistics.median(r['batched_parent_cpu_ms']):.2f} ms per study (2 workers)\n"
            f"- peer, the writer committing each study (WRITE_BATCH = 1), same run: {f(r['per_study_ratio'])}x, "
            f"median {r['median'][1]:.2f}x; studies/s 1 worker {f(r['per_study_1'], '{:.0f}')}, 2 workers "
            f"{f(r['per_study_2'], '{:.0f}')}; parent CPU {statistics.median(r['per_study_parent_cpu_ms']):.2f} "
            "ms per study (2 workers)")


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
            f"(study and answer in full) vs {r['ipc_now_ms']:.3f} ms (now), writer {r['write_per_study_ms']:.3f} ms "
            f"(a commit per study) vs {r['write_batched_ms']:.3f} ms (per 256); bound on 2 idle cores for 2 workers "
            f"/ 1 worker: {r['bound_before']:.2f}x before, **{r['bound_now']:.2f}x now** (a model from CPU times, "
            "not a wall-clock measurement)")


def report(r: dict[str, float]) -> str:
    return (f"audit, rules checker, {int(r['studies'])} synthetic studies (DICOM headers read), studies/s: "
            f"1 worker {r['local_1']:.0f}, 2 workers {r['local_2']:.0f} ({r['local_2'] / r['local_1']:.2f}x, target "
            f">= 1.7x); Ray on a local 2-CPU instance {r['ray_2']:.0f} ({r['ray_2'] / r['local_2']:.2f}x local 2 workers; "
            f"Ray's own start-up, {r['ray_startup_s']:.1f} s, not counted)")


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.audit_speed")
    p.add_argument("--pairs", type=int, default=0, help="paired 1-vs-2-worker runs, batched writer vs per-study "
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

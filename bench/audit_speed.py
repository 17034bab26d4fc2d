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
            s = audit(manifest, db, progress=False, batch_size=32, **kw)
            assert s.studies == total, (label, s.studies)
            out[label] = s.studies / s.seconds
        import time

        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        out["ray_startup_s"] = time.perf_counter() - t0
        try:
            s = audit(manifest, os.path.join(d, "ray.sqlite"), workers=2, engine="ray", progress=False, batch_size=32)
            assert s.studies == total
            out["ray_2"] = s.studies / s.seconds
        finally:
            ray.shutdown()
        out["studies"] = float(total)
    return out


def report(r: dict[str, float]) -> str:
    return (f"audit, rules checker, {int(r['studies'])} synthetic studies (DICOM headers read), studies/s: "
            f"1 worker {r['local_1']:.0f}, 2 workers {r['local_2']:.0f} ({r['local_2'] / r['local_1']:.2f}x, target "
            f">= 1.7x); Ray on a local 2-CPU instance {r['ray_2']:.0f} ({r['ray_2'] / r['local_2']:.2f}x local 2 workers; "
            f"Ray's own start-up, {r['ray_startup_s']:.1f} s, not counted)")


if __name__ == "__main__":
    print(report(run()))

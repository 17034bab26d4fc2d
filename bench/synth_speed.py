"""Synthetic-study generation time: 50 mixed studies (CT, CXR, MR; default sizes), 1 vs 2 processes.

No peer exists for this generator; the target from the issue is < 30 s for 50 studies on 2 cores.
"""

from __future__ import annotations

import tempfile
import time


def run(n: int = 50, seed: int = 0) -> dict[str, float]:
    from medmm.synth import synthesize

    out = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="medmm-synth-") as d:
            t0 = time.perf_counter()
            synthesize(d, n, seed=seed, workers=workers)
            out[f"{workers}proc"] = time.perf_counter() - t0
    out["n"] = float(n)
    return out


def report(r: dict[str, float]) -> str:
    return (f"synthetic studies, {int(r['n'])} mixed (default sizes): 1 process {r['1proc']:.1f} s, "
            f"2 processes {r['2proc']:.1f} s ({r['1proc'] / r['2proc']:.2f}x; target < 30 s)")


if __name__ == "__main__":
    print(report(run()))

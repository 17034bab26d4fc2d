"""Header index throughput: medmm scan (1 and 2 processes) vs a plain pydicom header loop.

Writes a tree of synthetic series (default 200 series x 100 slices = 20,000 files of 64x64)
and times, warm cache, medians: ``medmm.imaging.index.scan`` with 1 and 2 workers and the
peer ``pydicom.dcmread(f, stop_before_pixels=True)`` over every file (one process).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import pydicom

from bench.common import median_time, write_ct


def make_tree(root: str, n_series: int, per_series: int, size: int = 64) -> int:
    for s in range(n_series):
        write_ct(os.path.join(root, f"patient{s // 4:03d}", f"series{s:03d}"), per_series, size, seed=s)
    return n_series * per_series


def run(n_series: int = 200, per_series: int = 100, repeat: int = 3) -> dict[str, float]:
    from medmm.imaging.index import scan

    with tempfile.TemporaryDirectory(prefix="medmm-index-") as root:
        n = make_tree(root, n_series, per_series)
        files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        result = scan(root, workers=1)
        assert result.n_series == n_series and result.n_files == n, (result.n_series, result.n_files)
        out = {"files": float(n)}
        out["pydicom_loop"] = n / median_time(lambda: [pydicom.dcmread(f, stop_before_pixels=True) for f in files], repeat)
        out["medmm_1proc"] = n / median_time(lambda: scan(root, workers=1), repeat)
        out["medmm_2proc"] = n / median_time(lambda: scan(root, workers=2), repeat)
    return out


def report(r: dict[str, float]) -> str:
    return "\n".join([
        f"header index, {int(r['files'])} files (synthetic CT series), files/s (median, warm cache)",
        f"  pydicom dcmread(stop_before_pixels) loop  {r['pydicom_loop']:8.0f}",
        f"  medmm scan, 1 process                     {r['medmm_1proc']:8.0f}  (target >= 3,000; "
        f"{r['medmm_1proc'] / r['pydicom_loop']:.2f}x the pydicom loop)",
        f"  medmm scan, 2 processes                   {r['medmm_2proc']:8.0f}  ({r['medmm_2proc'] / r['medmm_1proc']:.2f}x one process)",
    ])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--series", type=int, default=200)
    p.add_argument("--per-series", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    print(report(run(a.series, a.per_series, a.repeat)), flush=True)


if __name__ == "__main__":
    main()

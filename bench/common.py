"""Helpers shared by the benchmarks: synthetic data on disk and robust timing."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from medmm.imaging.dicom_write import SeriesSpec, axial_positions, write_series


def write_ct(folder: str, n: int = 300, size: int = 512, seed: int = 0) -> list[str]:
    """A synthetic CT series: int16 stored values, intercept -1024, one file per slice."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2000, size=(size, size), dtype=np.int16)
    stored = np.empty((n, size, size), dtype=np.int16)
    for k in range(n):
        stored[k] = np.roll(base, k, axis=0)
    spec = SeriesSpec(positions=axial_positions(n, 1.25, (-250.0, -250.0, -200.0)), pixel_spacing=(0.98, 0.98),
                      slice_thickness=1.25, intercept=-1024.0, body_part="CHEST", seed=f"bench-{seed}")
    return write_series(folder, stored, spec)


def median_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs after ``warmup`` runs (warm cache)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

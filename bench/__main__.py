"""Run every benchmark and print the numbers the README quotes: `python -m bench [--quick]`."""

from __future__ import annotations

import argparse
import platform
import os
import sys
import tempfile
import time

from bench import (audit_speed, broken_series, finetune_speed, fuzz_dicom, header_index, models_speed, probe_speed,
                   report_checker, series_load, store_load, synth_speed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, not the README numbers)")
    a = p.parse_args(argv)

    print(f"# medmm benchmarks — {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPU(s), {platform.machine()}\n", flush=True)
    n, size = (60, 256) if a.quick else (300, 512)
    print(series_load.report(series_load.run(n, size, 3 if a.quick else 5), n, size), "\n", flush=True)
    ns, per = (20, 50) if a.quick else (200, 100)
    print(header_index.report(header_index.run(ns, per, 1 if a.quick else 3)), "\n", flush=True)
    print(broken_series.report(broken_series.run()), "\n", flush=True)
    print(synth_speed.report(synth_speed.run(12 if a.quick else 50)), "\n", flush=True)
    print(models_speed.report(models_speed.run(1 if a.quick else 3)), "\n", flush=True)
    print(report_checker.report(report_checker.run(2 if a.quick else 5)), "\n", flush=True)
    print(audit_speed.report(audit_speed.run(100 if a.quick else 400, 2 if a.quick else 25)), "\n", flush=True)
    print(probe_speed.report(probe_speed.run(quick=a.quick)), "\n", flush=True)
    print(finetune_speed.report(finetune_speed.run(*((20, 16, 1) if a.quick else (60, 16, 3)))), "\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(store_load.report(store_load.run_load(os.path.join(tmp, "load.sqlite"), 10.0 if a.quick else 60.0)),
              "\n", flush=True)
    print(fuzz_dicom.report(fuzz_dicom.run(200 if a.quick else 5000)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

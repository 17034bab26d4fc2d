"""``medmm info``, ``medmm scan``, ``medmm convert``: argparse wiring and thin handlers (the work is medmm.imaging)."""

from __future__ import annotations

import argparse
import json
import sys
import time


def loading(p: argparse.ArgumentParser) -> None:
    """Options of commands that load a volume (``convert``, ``render``)."""
    p.add_argument("--force", action="store_true",
                   help="apply the documented fallback for series problems instead of refusing")
    p.add_argument("--max-voxels", type=float, default=None,
                   help="pixel budget (default 1e9 or MEDMM_MAX_VOXELS)")


def _cmd_info(args: argparse.Namespace) -> int:
    from medmm.imaging.io import describe

    desc = describe(args.path, workers=args.workers)
    if args.json:
        print(json.dumps(desc.as_dict()))
        return 0
    print(f"{args.path}: {desc.kind}, {len(desc.series)} stack(s)")
    for s in desc.series:
        shape = "x".join(str(v) for v in s.shape)
        spacing = " x ".join(f"{v:.4g}" for v in s.spacing)
        print(f"  series {s.series_uid or '-'}  {s.modality or '-'}  {shape}  spacing {spacing} mm  "
              f"{s.n_files} file(s)  {s.photometric or ''}  {'ok' if s.usable else 'REFUSED (see problems)'}")
        for p in s.problems:
            print(f"    [{p['code']}] {p['message']}")
    if desc.skipped:
        print(f"  {len(desc.skipped)} file(s) skipped:")
        for sk in desc.skipped[:20]:
            print(f"    {sk.path}: {sk.reason}")
        if len(desc.skipped) > 20:
            print(f"    ... and {len(desc.skipped) - 20} more")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from medmm.imaging.index import scan, write_table

    t0 = time.perf_counter()
    result = scan(args.dir, workers=args.workers)
    write_table(result.table, args.out)
    dt = time.perf_counter() - t0
    print(
        f"scanned {result.n_files} file(s) in {dt:.1f} s ({result.n_files / max(dt, 1e-9):.0f} files/s): "
        f"{result.n_series} series, {result.n_skipped} skipped; wrote {args.out}",
        file=sys.stderr,
    )
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from medmm.imaging.io import load_volume
    from medmm.imaging.nifti import save_nifti

    vol = load_volume(args.series, force=args.force, max_voxels=args.max_voxels)
    save_nifti(vol, args.out)
    for p in vol.problems:
        print(f"warning [{p.code}] {p.message}", file=sys.stderr)
    print(f"wrote {args.out}: shape {list(vol.shape)}, spacing {[round(s, 4) for s in vol.spacing]} mm", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="describe a DICOM file, DICOM folder or NIfTI file (headers only)")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--workers", type=int, default=1, help="processes for reading headers of a folder")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("scan", help="index a folder tree of DICOM files, one row per series")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="index.parquet or index.csv")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser("convert", help="DICOM series folder (or file) to NIfTI")
    p.add_argument("series")
    p.add_argument("out", help="output .nii or .nii.gz")
    loading(p)
    p.set_defaults(func=_cmd_convert)

"""``medmm synth``: argparse wiring and a thin handler (the work is :func:`medmm.synth.synthesize`)."""

from __future__ import annotations

import argparse
import sys
import time


def _cmd_synth(args: argparse.Namespace) -> int:
    from medmm.synth import SMALL, SynthConfig, synthesize

    t0 = time.perf_counter()
    kinds = tuple(k for k in args.kinds.split(","))
    path = synthesize(args.out, args.n, seed=args.seed, kinds=kinds, workers=args.workers,
                      config=SMALL if args.small else SynthConfig())
    print(f"wrote {args.n} studies and {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("synth", help="write synthetic studies with known truth (DICOM, NIfTI, label maps, reports)")
    p.add_argument("--out", required=True, help="output folder (manifest.jsonl + studies/)")
    p.add_argument("--n", type=int, default=12, help="number of studies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", default="ct,cxr,mr", help="comma-separated: ct, cxr, mr")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--small", action="store_true", help="small images (fast; for tests and smoke runs)")
    p.set_defaults(func=_cmd_synth)

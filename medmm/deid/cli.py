"""``medmm deid IN OUT``: argparse wiring and a thin handler (the work is :func:`medmm.deid.deid_tree`)."""

from __future__ import annotations

import argparse
import sys


def _cmd_deid(args: argparse.Namespace) -> int:
    from medmm.deid.core import DeidOptions
    from medmm.deid.keys import DeidKey
    from medmm.deid.tree import deid_tree

    options = DeidOptions(keep_dates_shifted=args.keep_dates_shifted, keep_private=tuple(args.keep_private or ()),
                          allow_burned_in=args.allow_burned_in,
                          keep_patient_characteristics=args.keep_patient_characteristics)
    key = DeidKey.from_seed(args.seed, key_file=args.key_file)
    if key.created_key_file:
        print(f"medmm deid: created the key file {key.created_key_file} (mode 0600): back it up with the data it "
              "keys and never ship it with the output", file=sys.stderr)
    summary = deid_tree(args.input, args.output, options=options, key=key)
    print(f"medmm deid: {summary.line()}; wrote {args.output}", file=sys.stderr)
    for where, why in summary.burned_in:
        print(f"  burned-in: {where}: {why}", file=sys.stderr)
    for where, why in summary.skipped:
        print(f"  skipped: {where}: {why}", file=sys.stderr)
    for where, holder, kept in summary.collisions:
        print(f"  collision: {where} has the output name of {holder}; both kept ({kept})", file=sys.stderr)
    if args.seed is None and args.key_file is None:
        print("  note: no --seed or --key-file: new UIDs and date shifts are random for this run only", file=sys.stderr)
    refused = bool(summary.burned_in) and not args.allow_burned_in
    return 2 if refused or not (summary.written or summary.texts or summary.unchanged) else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("deid", help="de-identify DICOM (PS3.15 Annex E basic profile) and report text")
    p.add_argument("input", help="a DICOM file, a report .txt or a folder tree")
    p.add_argument("output", help="output folder (outside the input); files are named by new UIDs / keyed hashes")
    p.add_argument("--seed", default=None,
                   help="project seed: with the key file, the same seed gives the same new UIDs and date shifts; "
                        "without --seed and --key-file a random key is used for this run only")
    p.add_argument("--key-file", default=None,
                   help="the secret key file (created 0600 at first use; default $MEDMM_DEID_KEY_FILE or "
                        "~/.medmm/deid.key); the seed alone never determines the pseudonyms")
    p.add_argument("--keep-dates-shifted", action="store_true",
                   help="shift dates by one offset per patient instead of removing them (113107)")
    p.add_argument("--keep-private", nargs="+", metavar="TAG", default=[],
                   help="private attributes to keep: GGGG,EEEE or CREATOR:EE (113111); all others are removed")
    p.add_argument("--keep-patient-characteristics", action="store_true",
                   help="keep sex, age, size and weight (113108)")
    p.add_argument("--allow-burned-in", action="store_true",
                   help="de-identify headers of images that may show text in their pixels (reported)")
    p.set_defaults(func=_cmd_deid)

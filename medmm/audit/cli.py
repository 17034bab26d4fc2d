"""``medmm audit|export|store verify``: argparse wiring and thin handlers (the work is medmm.audit)."""

from __future__ import annotations

import argparse
import os
import sys

from medmm._cli import RegistryChoices
from medmm.errors import InputError

# the checker kinds medmm.reports.build_checker knows (its registry), read when the command is parsed or its
# help shown (metavar set: argparse would otherwise read the choices while the parser is built)
CHECKER_KINDS = RegistryChoices("medmm.reports.api:CHECKERS")


def _cmd_audit(args: argparse.Namespace) -> int:
    from medmm.audit.runner import audit

    if args.pacs or args.reports:  # a hospital's PACS + report feed (medmm.audit.hospital)
        from medmm.audit.hospital import audit_from_args

        summary = audit_from_args(args)
        print(summary.line(), file=sys.stderr)
        return 0
    if not args.input:
        raise InputError("give an input (folder or manifest), or --pacs SPEC with --reports FEED")
    summary = audit(args.input, args.db, checker=args.checker, model=args.model, workers=args.workers,
                    engine=args.engine, ray_address=args.ray_address, limit=args.limit, progress=not args.quiet,
                    threshold=args.threshold, cache=False if args.no_cache else (args.cache or True))
    print(summary.line(), file=sys.stderr)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from medmm.audit.runner import export

    n = export(args.db, args.out, reviewed_only=args.reviewed_only, redact=args.redact, with_paths=args.with_paths,
               config_key=args.config_key, deid_text=args.deid_text)
    print(f"wrote {args.out}: {n} flag(s)", file=sys.stderr)
    import getpass

    from medmm.audit.store import Store

    with Store(args.db) as store:  # the access log: who exported what (issue 20)
        store.record_access("export", f"cli:{getpass.getuser()}", detail={
            "rows": n, "redacted": bool(args.redact), "with_paths": bool(args.with_paths),
            "reviewed_only": bool(args.reviewed_only), "deid_text": bool(args.deid_text)})
    return 0


def _cmd_store_verify(args: argparse.Namespace) -> int:
    from medmm.audit.store import Store

    if not os.path.isfile(args.db):
        raise InputError(f"{args.db}: no review store there")
    with Store(args.db, check_triggers=False) as store:
        if args.restore_triggers:
            fixed = store.restore_triggers()
            print(f"re-created trigger(s): {', '.join(fixed) or 'none needed'}", file=sys.stderr)
        report = store.verify()
    for problem in report.trigger_problems:
        print(f"BROKEN: {problem}")
    if report.broken_review is not None:
        print(f"BROKEN: review {report.broken_review}: {report.reason}")
    for problem in report.chain_problems:
        print(f"BROKEN: {problem}")
    for warning in report.warnings:
        print(f"WARNING: {warning}")
    if not report.ok:
        print(f"{args.db}: the store was changed outside medmm; restore it from a backup before reviewing from it")
        return 1
    print(f"ok: {report.reviews} reviews chained, head {report.head}, all integrity triggers present "
          "(record the head elsewhere to detect a recomputed chain)")
    print(f"ok: {report.chain_entries} entries in the store chain (runs, results, flags, failures, reviews, access "
          f"log), head {report.chain_head}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("audit", help="check many (study, report) pairs into a review store; resumable")
    p.add_argument("input", nargs="?", default=None,
                   help="folder with one sub-folder per study, manifest .csv/.jsonl, or synthetic manifest "
                        "(or --pacs with --reports instead)")
    p.add_argument("--db", required=True, help="the review store (SQLite file; created if missing)")
    p.add_argument("--checker", choices=CHECKER_KINDS, default="rules", metavar="KIND",
                   help="checker: %(choices)s (default %(default)s)")
    p.add_argument("--model", default=None)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", default=None, help="a running Ray cluster (e.g. auto or ray://head:10001)")
    p.add_argument("--limit", type=int, default=None, help="check at most N not-yet-done studies")
    p.add_argument("--threshold", type=float, default=None,
                   help="decision threshold on the report score (default: the checker's calibrated default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--cache", default=None, metavar="FILE",
                   help="the shared result cache (default: AUDIT.cache.sqlite beside the store); an unchanged "
                        "(report, header, configuration) is not checked again")
    p.add_argument("--no-cache", action="store_true", help="check every study, use no result cache")
    from medmm.hospital.cli import add_audit_arguments

    add_audit_arguments(p)  # --pacs, --reports, credentials, --since/--until (issue 19)
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("export", help="export flags (with the latest review decision) from a review store")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True, help="FILE.csv, FILE.parquet or FILE.jsonl")
    p.add_argument("--reviewed-only", action="store_true")
    p.add_argument("--redact", action="store_true",
                   help="also drop the flagged report text, explanations and reviewer names "
                        "(column selection only; DICOM de-identification is a separate command)")
    p.add_argument("--with-paths", action="store_true",
                   help="include the study's source path (off by default: folder names often carry patient names)")
    p.add_argument("--config-key", default=None, help="only the flags of this configuration (default: all)")
    p.add_argument("--deid-text", action="store_true",
                   help="scrub names, dates, IDs, phones, addresses and ages > 89 from the report-derived columns")
    p.set_defaults(func=_cmd_export)

    store = sub.add_parser("store", help="review-store maintenance").add_subparsers(dest="store_command", required=True)
    p = store.add_parser("verify", help="check the integrity triggers and the review hash chain (exit 1 if broken)")
    p.add_argument("--db", required=True)
    p.add_argument("--restore-triggers", action="store_true",
                   help="re-create missing or altered triggers first (after a deliberate repair)")
    p.set_defaults(func=_cmd_store_verify)
    from medmm.audit.access_cli import add_store_parsers

    add_store_parsers(store)  # store access-log (issue 20)

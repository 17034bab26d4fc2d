"""``medmm listen --mllp HOST:PORT`` and the PACS options that ``medmm audit`` and ``medmm publish`` share.

Passwords are never options: ``--pacs-password-env VAR`` names an environment variable and
``--pacs-password-file FILE`` a file readable by its owner only (a command line is visible to every
user of the machine in ``ps``).
"""

from __future__ import annotations

import argparse
import sys

from medmm.errors import InputError


def add_pacs_arguments(p: argparse.ArgumentParser, *, spec: bool = True) -> None:
    """``--pacs`` (with ``spec``) and the credentials, TLS, timeout and retry options."""
    if spec:
        p.add_argument("--pacs", default=None, metavar="SPEC",
                       help="dicomweb:URL (QIDO/WADO/STOW-RS) or dimse:AET@HOST:PORT (C-FIND/C-GET/C-STORE)")
    p.add_argument("--pacs-user", default=None, help="user name for the PACS (HTTP basic)")
    p.add_argument("--pacs-password-env", default=None, metavar="VAR",
                   help="environment variable holding the PACS password (never give the password itself)")
    p.add_argument("--pacs-password-file", default=None, metavar="FILE",
                   help="file (mode 600) whose first line is the PACS password")
    p.add_argument("--pacs-ca-bundle", default=None, metavar="PEM",
                   help="CA certificates to verify the PACS's TLS certificate (default: the system's; never off)")
    p.add_argument("--pacs-timeout", type=float, default=30.0, help="seconds per request (default %(default)s)")
    p.add_argument("--pacs-retries", type=int, default=5,
                   help="attempts per request on an outage, with exponential backoff (default %(default)s)")
    p.add_argument("--ae-title", default="MEDMM", help="medmm's own AE title for DIMSE (default %(default)s)")


def credentials_from(args: argparse.Namespace):  # noqa: ANN201 - Credentials | None
    from medmm.hospital.net import Credentials

    return Credentials.from_options(args.pacs_user, args.pacs_password_env, args.pacs_password_file)


def policy_from(args: argparse.Namespace):  # noqa: ANN201 - RetryPolicy
    from medmm.hospital.net import RetryPolicy

    if args.pacs_retries < 1:
        raise InputError("--pacs-retries must be at least 1")
    return RetryPolicy(attempts=args.pacs_retries, timeout=args.pacs_timeout)


def _cmd_listen(args: argparse.Namespace) -> int:
    from medmm.hospital.mllp import serve

    host, _, port = args.mllp.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--mllp {args.mllp}: use HOST:PORT (e.g. 127.0.0.1:2575)")
    print(f"listening for HL7 v2 over MLLP on {host}:{port}; reports spooled to {args.spool} "
          f"(audit them with --reports hl7:{args.spool}); Ctrl-C stops", file=sys.stderr)
    serve(host, int(port), args.spool, max_messages=args.max_messages)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("listen", help="receive HL7 v2 report messages over MLLP (ACK/NAK each) into a spool folder")
    p.add_argument("--mllp", required=True, metavar="HOST:PORT", help="address to listen on (e.g. 127.0.0.1:2575)")
    p.add_argument("--spool", required=True, help="folder the accepted messages are written to (one .hl7 file each)")
    p.add_argument("--max-messages", type=int, default=None, help="stop after N accepted messages (tests, batches)")
    p.set_defaults(func=_cmd_listen)


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    """What ``medmm audit`` takes to read a hospital's PACS and report feed instead of a folder."""
    add_pacs_arguments(p)
    p.add_argument("--reports", default=None, metavar="FEED",
                   help="hl7:FILE_OR_DIR (ORU^R01; an MLLP spool folder too), fhir:BUNDLE.json or fhir:URL (R4/R5), or "
                        "pacs-sr (report SR documents stored in the --pacs itself)")
    p.add_argument("--reports-user", default=None, help="user for a FHIR server given as --reports fhir:URL")
    p.add_argument("--reports-password-env", default=None, metavar="VAR", help="its password's environment variable")
    p.add_argument("--reports-password-file", default=None, metavar="FILE", help="or a file (mode 600) holding it")
    p.add_argument("--since", default=None, metavar="YYYY-MM-DD",
                   help="only reports written and studies acquired from this date (default: since the last run)")
    p.add_argument("--until", default=None, metavar="YYYY-MM-DD", help="only up to this date")
    p.add_argument("--image-cache", default=None, metavar="DIR",
                   help="where instances are fetched when the checker reads images (default: STORE.images beside the "
                        "store, mode 700; the review app shows them from there)")

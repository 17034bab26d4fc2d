"""``medmm store access-log``: export the store's access log (logins, failed logins, study views,
exports, decisions) as JSONL or CSV, filtered by user, date and event (issue 20 item 4)."""

from __future__ import annotations

import argparse
import os
import sys

from medmm.errors import InputError


def _cmd_store_access_log(args: argparse.Namespace) -> int:
    from medmm.audit import access_log
    from medmm.audit.store import Store

    if not os.path.isfile(args.db):
        raise InputError(f"{args.db}: no review store there")
    since, until = access_log.parse_time(args.since), access_log.parse_time(args.until)
    if until is not None and args.until and len(args.until) == 10:
        until += 86400  # --until 2026-12-06 includes that day
    with Store(args.db) as store:
        rows = access_log.query(store.conn, user=args.user, since=since, until=until, events=args.event,
                                study_key=args.study)
        import getpass

        # reading the access log out is an export too: who did it, what was asked for, how many rows
        store.record_access("export", f"cli:{getpass.getuser()}", detail={
            "what": "access_log", "rows": len(rows), "to": "file" if args.out else "stdout",
            "filters": {k: v for k, v in (("user", args.user), ("since", args.since), ("until", args.until),
                                          ("event", args.event), ("study", args.study)) if v}})
    if args.out:
        n = access_log.write(rows, args.out)
        print(f"wrote {args.out}: {n} event(s)", file=sys.stderr)
        return 0
    import json

    for r in rows:
        print(json.dumps({**r, "time": access_log._utc(r["at"])}, sort_keys=True))
    return 0


def add_store_parsers(store: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from medmm.audit.access_log import EVENTS

    p = store.add_parser("access-log", help="who logged in, opened which study, exported or decided what, when "
                                            "(JSONL on stdout, or --out FILE.jsonl/.csv written 0600)")
    p.add_argument("--db", required=True)
    p.add_argument("--out", default=None, help="FILE.jsonl or FILE.csv (default: JSONL on stdout)")
    p.add_argument("--user", default=None, help="only this user")
    p.add_argument("--since", default=None, help="UTC date or time: YYYY-MM-DD[THH:MM[:SS]]")
    p.add_argument("--until", default=None, help="UTC date (that whole day included) or time (excluded)")
    p.add_argument("--event", action="append", choices=EVENTS, help="only these events (repeatable)")
    p.add_argument("--study", default=None, help="only this study key")
    p.set_defaults(func=_cmd_store_access_log)

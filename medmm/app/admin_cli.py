"""``medmm users unlock`` (lift a login back-off / lock-out: N15, the lock-out is by design, so an
administrator can lift it) and ``medmm users logout`` (end a user's logins now): the administrator's
side of issue 20. Both act on the review store and are written to its access log."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from medmm.errors import InputError


def _store_path(args: argparse.Namespace) -> str:
    from medmm.app.auth import AppConfig

    db = args.db or AppConfig.load(args.config).db
    if not os.path.isfile(db):
        raise InputError(f"{db}: no review store there (give --db or --config)")
    return db


def _cmd_users_unlock(args: argparse.Namespace) -> int:
    from medmm.app.sessions import Registry

    db = _store_path(args)
    reg = Registry(db)
    keys = [f"user:{args.name}"] + [f"client:{c}" for c in args.client or []]
    reg.throttle.success(keys)  # clears the counters (the store's login_failures rows)
    reg.log("unlock", f"cli:{getpass.getuser()}", detail={"user": args.name, "clients": list(args.client or [])})
    print(f"{args.name}: login back-off cleared in {db}" + (f" (and for {', '.join(args.client)})" if args.client
                                                            else ""), file=sys.stderr)
    return 0


def _cmd_users_logout(args: argparse.Namespace) -> int:
    from medmm.app.sessions import Registry

    db = _store_path(args)
    reg = Registry(db)
    n = reg.revoke_user(args.name, f"ended by an administrator (cli:{getpass.getuser()})")
    reg.log("session_ended", args.name, detail={"reason": "administrator", "by": f"cli:{getpass.getuser()}",
                                                "logins": n})
    print(f"{args.name}: {n} login(s) ended in {db} (their pages show the login form at the next action)",
          file=sys.stderr)
    return 0


def add_users_parsers(users: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = users.add_parser("unlock", help="lift a user's login back-off / lock-out (failed logins lock a name for up "
                                        "to 15 minutes: anyone can lock a colleague out by guessing)")
    p.add_argument("name")
    p.add_argument("--db", default=None, help="the review store (default: the app config's)")
    p.add_argument("--config", default=None, help="app config YAML")
    p.add_argument("--client", action="append", help="also clear this client address's back-off (repeatable)")
    p.set_defaults(func=_cmd_users_unlock)
    p = users.add_parser("logout", help="end every app login of a user now (e.g. a lost badge or a shared password)")
    p.add_argument("name")
    p.add_argument("--db", default=None, help="the review store (default: the app config's)")
    p.add_argument("--config", default=None, help="app config YAML")
    p.set_defaults(func=_cmd_users_logout)

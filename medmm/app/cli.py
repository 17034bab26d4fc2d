"""``medmm users add|remove`` and ``medmm app``: argparse wiring and thin handlers (the work is medmm.app)."""

from __future__ import annotations

import argparse
import os
import sys

from medmm.errors import InputError


def _cmd_users_add(args: argparse.Namespace) -> int:
    import getpass

    from medmm.app.auth import add_user

    if getattr(args, "sso", False):  # sign-on only (sso_header mode): no password at all
        password = None
    elif args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise InputError("the two passwords differ")
    add_user(args.users_file, args.name, args.role, password)
    print(f"user {args.name} ({args.role}) saved in {args.users_file} (scrypt hash, no plaintext)", file=sys.stderr)
    return 0


def _cmd_users_remove(args: argparse.Namespace) -> int:
    from medmm.app.auth import remove_user

    if not remove_user(args.users_file, args.name):
        raise InputError(f"no user {args.name!r} in {args.users_file}")
    print(f"user {args.name} removed from {args.users_file}; their app sessions end at their next action",
          file=sys.stderr)
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    from importlib.resources import as_file

    from medmm.app.auth import AppConfig
    from medmm.config import files
    from medmm.errors import ConfigError

    cfg = AppConfig.load(args.config)
    db = args.db or cfg.db
    if not os.path.isfile(db):
        raise InputError(f"{db}: no review store; run `medmm audit ... --db {db}` first")
    # The Streamlit script ships as package data (medmm/_apps/report_checker.py, the one copy of
    # apps/report_checker.py): found the same way in a wheel, an editable install or a checkout.
    script = files("_apps/report_checker.py")
    if not script.is_file():
        raise ConfigError("the review app (medmm/_apps/report_checker.py) is missing from this medmm installation; "
                          "reinstall medmm")
    env = dict(os.environ, MEDMM_APP_DB=os.path.abspath(db))
    if args.config:
        env["MEDMM_APP_CONFIG"] = os.path.abspath(args.config)
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        print(f"medmm app: warning: listening on {args.address} exposes the review app (patient data) to the network "
              "without TLS; serve it behind the hospital's TLS reverse proxy and bind to 127.0.0.1 (SECURITY.md)",
              file=sys.stderr)
    print(f"medmm review app on http://{args.address}:{args.port} (store {db}); Ctrl-C to stop", file=sys.stderr)
    with as_file(script) as app:
        # medmm's server: Streamlit's (st.App) behind medmm's session-cookie and security-header middleware,
        # with production settings (medmm.app.server.STREAMLIT_SETTINGS: no tracebacks, no file watcher, ...)
        cmd = [sys.executable, "-m", "medmm.app.server", str(app), "--port", str(args.port), "--address", args.address,
               "--max-upload-mb", str(cfg.upload_max_mb)]
        return _run_forwarding_signals(cmd, env)


def _run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd``; SIGTERM/SIGHUP sent to this process reach it too (a stopped ``medmm app`` leaves no server)."""
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, env=env)
    forwarded = {sig: signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
                 for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the server too (same process group): wait for it
                continue
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            proc.kill()


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = sub.add_parser("users", help="review-app users").add_subparsers(dest="users_command", required=True)
    p = users.add_parser("add", help="add or update a user (prompts for the password: 12-256 characters, "
                                     "not containing the user name)")
    p.add_argument("name")
    p.add_argument("--role", choices=("reviewer", "admin"), default="reviewer")
    p.add_argument("--users-file", default="configs/users.yaml")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (for scripts)")
    p.add_argument("--sso", action="store_true", help="a sign-on-only user (app config sso_header): no password")
    p.set_defaults(func=_cmd_users_add)
    p = users.add_parser("remove", help="remove a user (their live app sessions end at once)")
    p.add_argument("name")
    p.add_argument("--users-file", default="configs/users.yaml")
    p.set_defaults(func=_cmd_users_remove)
    from medmm.app.admin_cli import add_users_parsers

    add_users_parsers(users)  # users unlock (issue 20 N15)

    p = sub.add_parser("app", help="start the report review app (Streamlit)")
    p.add_argument("--db", default=None, help="the review store (default: from the config)")
    p.add_argument("--config", default=None, help="app config YAML (e.g. configs/app.yaml)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=_cmd_app)

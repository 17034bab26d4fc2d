"""The ``medmm`` command line: it only assembles the commands its packages declare.

Each command is declared next to its package, in that package's ``cli`` module: ``add_parsers(sub)``
adds its parser (name, help, arguments) and ``set_defaults(func=handler)`` names its handler, a thin
function that calls one library function. :data:`COMMANDS` is the registry: command name -> the
module that declares it. ``medmm CMD ...`` imports only CMD's module (the others are not loaded);
``medmm --help`` and an unknown command load them all.

Bad input ends with exit code 2 and one line on stderr (no traceback); ``--debug`` shows the
traceback. Unexpected errors exit with 3.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from medmm import __version__
from medmm.errors import MedmmError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

# The registry: command -> the module whose add_parsers(sub) declares it (help order: this order).
# A new command goes in its package's cli module and gets one line here.
COMMANDS: dict[str, str] = {
    "info": "medmm.imaging.cli",
    "scan": "medmm.imaging.cli",
    "convert": "medmm.imaging.cli",
    "render": "medmm.regions.cli",
    "synth": "medmm.synth.cli",
    "models": "medmm.models.cli",
    "ask": "medmm.models.cli",
    "finetune": "medmm.checkertrain.cli",  # medmm.finetune.cli's commands, with the checker's task plugin loaded
    "grounding-eval": "medmm.checkertrain.cli",
    "region-tasks": "medmm.checkertrain.cli",
    "inject": "medmm.reports.cli",
    "check": "medmm.reports.cli",
    "check-eval": "medmm.reports.cli",
    "check-calibrate": "medmm.reports.cli",
    "checker-data": "medmm.reports.checker_cli",
    "audit": "medmm.audit.cli",
    "export": "medmm.audit.cli",
    "store": "medmm.audit.cli",
    "publish": "medmm.audit.publish",
    "listen": "medmm.hospital.cli",
    "users": "medmm.app.cli",
    "app": "medmm.app.cli",
    "probe": "medmm.probe.cli",
    "deid": "medmm.deid.cli",
}


def command_modules(command: str | None = None) -> list[str]:
    """The modules to load for ``command`` (all of them, in registry order, for None or an unknown name)."""
    if command in COMMANDS:
        return [COMMANDS[command]]
    return list(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: every registered command, or only the module declaring ``command`` (lazy)."""
    parser = argparse.ArgumentParser(prog="medmm", description="medmm: medical images for multimodal LLMs")
    parser.add_argument("--version", action="version", version=f"medmm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in command_modules(command):
        importlib.import_module(module).add_parsers(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if getattr(args, "max_voxels", None) is not None:
        args.max_voxels = int(args.max_voxels)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except MedmmError as exc:
        if args.debug:
            raise
        print(f"medmm {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"medmm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: say so, briefly
        if args.debug:
            raise
        print(
            f"medmm {args.command}: internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

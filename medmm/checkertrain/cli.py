"""``medmm finetune`` (and the other recipe commands) with the report checker's tasks registered.

The recipe's commands are declared by :mod:`medmm.finetune.cli`; this module registers the SIMPLE / COMPLEX
task plugin first, so ``data.tasks: [simple, complex]`` works from the command line (the CLI registry
points the recipe's commands here).
"""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    import medmm.checkertrain  # noqa: F401  (registers the checker task plugin with the recipe)
    from medmm.finetune.cli import add_parsers as recipe_parsers

    recipe_parsers(sub)

"""medmm.checkertrain (layer L5.6): the report checker's VLM trained and evaluated with the fine-tuning recipe.

It joins two packages that stand beside each other in L5 — :mod:`medmm.finetune` (the recipe) and
:mod:`medmm.reports` (checker data, views, prompts, rules, ensemble) — so it sits above both. Importing it
registers the SIMPLE / COMPLEX tasks with the recipe (:mod:`medmm.finetune.plugins`); ``medmm finetune``
does so (its command is declared through :mod:`medmm.checkertrain.cli`).
"""

from __future__ import annotations

from medmm.checkertrain.plugin import PLUGIN

__all__ = ["PLUGIN"]

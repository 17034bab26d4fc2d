"""medmm.finetune (layer L5): region tasks → the training recipe → grounding evaluation.

``load_finetune_config(path, overrides)`` → :class:`FinetuneConfig`; ``FinetuneRecipe(cfg)`` with
``setup`` / ``train`` / ``cleanup`` (or ``run(cfg)``); ``grounding.evaluate`` for ``medmm grounding-eval``.
Names are imported lazily (torch and transformers load only when used).
"""

from __future__ import annotations

from medmm._lazy import lazy_exports

_EXPORTS = {
    "FinetuneConfig": "medmm.finetune.config", "load_finetune_config": "medmm.finetune.config",
    "build_config": "medmm.finetune.config",
    "FinetuneRecipe": "medmm.finetune.recipe", "run": "medmm.finetune.recipe", "TrainResult": "medmm.finetune.recipe",
    "evaluate": "medmm.finetune.grounding", "box_stats": "medmm.finetune.grounding",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports("medmm.finetune", _EXPORTS, globals())

"""``data.checker`` of a recipe config: synthetic studies generated for the report checker's tasks.

Only the section's settings live here (the recipe validates their shape); the tasks themselves — the
samples, their encoding and the evaluation at the end — are brought by ``medmm.checkertrain``, a task
plugin (:mod:`medmm.finetune.plugins`): this package does not read ``medmm.reports``.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKER_TASKS = ("simple", "complex")


@dataclass(frozen=True)
class CheckerSynthSection:
    """Synthetic studies generated for the checker tasks (``data.checker`` of a recipe config)."""

    seeds: tuple[int, ...] = (1, 2, 3)  # training studies: n_per_seed of each seed
    n_per_seed: int = 200
    eval_seed: int = 2000  # held-out studies (another seed): calibration and evaluation parts
    n_eval: int = 200
    calib_share: float = 0.5  # share of the held-out studies (by study) used for calibration
    kinds: tuple[str, ...] = ("cxr",)
    small: bool = True
    error_models: dict[str, float] | None = None  # medmm.reports.checker_data error models -> weight
    clean_per_error: float = 1.0
    complex: bool = True
    only_with_error: bool = False  # keep only studies that could be given an error (balanced SIMPLE data)
    excerpts: int = 0  # per training study: SIMPLE samples on its sided sentences alone, clean and side-swapped
    side_questions: int = 0  # copies of "which side is the <finding>?" per visible finding (+ one "which side does the report name?")
    vision_warmup: int = 0  # steps of the vision warm-up (medmm.checkertrain.warmup) before the language model trains
    vision_warmup_lr: float = 1e-3

    def problems(self) -> list[str]:
        from medmm.synth.generate import KINDS

        p = []
        if not self.seeds or self.eval_seed in self.seeds:
            p.append("data.checker: give training seeds, and an eval_seed that is not one of them")
        if self.excerpts < 0 or self.side_questions < 0 or self.vision_warmup < 0:
            p.append("data.checker.excerpts, side_questions and vision_warmup must be 0 (none) or more")
        if self.vision_warmup_lr <= 0:
            p.append("data.checker.vision_warmup_lr must be positive")
        if min(self.n_per_seed, self.n_eval) < 1:
            p.append("data.checker: n_per_seed and n_eval must be at least 1")
        if not 0 < self.calib_share < 1:
            p.append("data.checker.calib_share must be between 0 and 1")
        bad = sorted(set(self.kinds) - set(KINDS))
        if bad or not self.kinds:
            p.append(f"data.checker.kinds: {bad or 'empty'}; use some of {list(KINDS)}")
        return p

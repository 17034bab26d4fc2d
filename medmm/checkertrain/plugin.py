"""The checker tasks as a recipe task plugin (see :mod:`medmm.finetune.plugins`)."""

from __future__ import annotations

import os
from typing import Any

from medmm.errors import InputError
from medmm.finetune.plugins import register


class CheckerTasks:
    """SIMPLE and COMPLEX: samples from ``data.checker`` / checker-data files, encoding, end-of-run evaluation."""

    tasks: tuple[str, ...] = ("simple", "complex")

    def problems(self, cfg: Any) -> list[str]:
        from medmm.config import problems
        from medmm.reports.checker_data import IMAGE_ONLY_MODELS, TEXT_MODEL
        from medmm.reports.vlm_checker import VLMCheckerConfig

        p = [f"data.checker_prompt.{x}" for x in problems(dict(cfg.data.checker_prompt), VLMCheckerConfig)]
        if cfg.data.checker is not None:
            unknown = sorted(set(cfg.data.checker.get("error_models") or {}) - set(IMAGE_ONLY_MODELS) - {TEXT_MODEL})
            if unknown:
                p.append(f"data.checker.error_models: unknown {unknown}; use {list(IMAGE_ONLY_MODELS) + [TEXT_MODEL]}")
        return p

    def read(self, path: str, tasks: Any) -> tuple[list[Any], set[int]]:
        from medmm.checkertrain.tasks import read_checker_samples

        return read_checker_samples(path, tasks, with_lines=True)  # type: ignore[no-any-return]

    def owns(self, sample: Any) -> bool:
        from medmm.checkertrain.tasks import SideQuestion
        from medmm.reports.checker_data import CheckerSample

        return isinstance(sample, (CheckerSample, SideQuestion))

    def load(self, recipe: Any, data_dir: str) -> None:
        """Calibration samples (``data.checker_calib``) and, with ``data.checker``, the generated samples."""
        from medmm.checkertrain.tasks import (checker_config, prepare_checker_data, read_checker_samples,
                                              read_side_questions, side_path)

        cfg = recipe.cfg
        recipe.checker_config = checker_config(cfg)
        recipe.calib_samples = read_checker_samples(cfg.resolve(cfg.data.checker_calib)) if cfg.data.checker_calib else []
        if cfg.checker is None:
            return
        dist = recipe.world > 1
        if dist and not recipe.is_main:
            import torch

            torch.distributed.barrier()  # rank 0 generates the data first
        train, calib, ev = prepare_checker_data(cfg.checker, data_dir)
        if dist and recipe.is_main:
            import torch

            torch.distributed.barrier()
        recipe.train_samples = list(recipe.train_samples) + read_checker_samples(train, cfg.data.tasks)
        if cfg.checker.side_questions and os.path.isfile(side_path(data_dir)):
            recipe.train_samples += read_side_questions(side_path(data_dir))  # the curriculum's auxiliary questions
        recipe.eval_samples = list(recipe.eval_samples) + read_checker_samples(ev)
        recipe.calib_samples = recipe.calib_samples + read_checker_samples(calib)
        recipe.checker_paths = (train, calib, ev)

    def prepare_model(self, recipe: Any) -> None:
        """The vision warm-up (``data.checker.vision_warmup`` steps, :mod:`medmm.checkertrain.warmup`)."""
        s = recipe.cfg.checker
        if s is None or not s.vision_warmup:
            return
        from medmm.checkertrain.tasks import vision_path
        from medmm.checkertrain.warmup import warm_up_vision

        warm_up_vision(recipe, vision_path(os.path.join(recipe.out, "data")), s.vision_warmup, s.vision_warmup_lr)

    def encode(self, recipe: Any, sample: Any) -> Any:
        from medmm.checkertrain.tasks import SideQuestion, encode_checker_example, encode_side_question

        if isinstance(sample, SideQuestion):
            return encode_side_question(recipe.vlm, sample, recipe.checker_config)

        return encode_checker_example(recipe.vlm, sample, recipe.codec, None, recipe.checker_config)

    def finish(self, recipe: Any, tuned: Any, paths: dict[str, Any]) -> dict[str, Any]:
        from medmm.checkertrain.evaluate import finish_checker

        if not recipe.cfg.eval.checker or not getattr(recipe, "calib_samples", None):
            return {}
        from medmm.reports.checker_data import CheckerSample

        ev = [s for s in recipe.eval_samples if isinstance(s, CheckerSample)]
        if not ev:
            raise InputError("eval.checker: no held-out checker samples (data.eval or data.checker)")
        return {"checker": finish_checker(recipe.cfg, recipe.out, recipe.checker_config, recipe.calib_samples, ev,
                                          tuned, paths, getattr(recipe, "checker_paths", None))}


PLUGIN = register(CheckerTasks())

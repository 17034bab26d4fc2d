"""``train.stages``: a curriculum whose first steps draw only some tasks, then every task; a pure function of the step."""

from __future__ import annotations

import pytest

from medmm.errors import ConfigError
from medmm.finetune.config import stage_spans
from medmm.finetune.recipe import FinetuneRecipe
from tests.finetune.conftest import recipe_config


def test_stage_problems_are_reported_with_the_others(region_data, tmp_path):
    bad = [{"steps": 0, "tasks": ["region_to_text"]}, {"steps": 4, "tasks": []}, {"steps": 2, "tasks": ["x"], "lr": 1}]
    with pytest.raises(ConfigError) as err:
        recipe_config(region_data, tmp_path / "a", train={"stages": bad})
    msg = str(err.value)
    for needle in ("train.stages[0].steps", "train.stages[1].tasks", "train.stages[2]: unknown key(s) ['lr']"):
        assert needle in msg, needle
    with pytest.raises(ConfigError, match="more than train.max_steps 10"):
        recipe_config(region_data, tmp_path / "b", train={"stages": [{"steps": 11, "tasks": ["region_to_text"]}]})


def test_a_stage_draws_only_its_tasks_then_every_task(region_data, tmp_path):
    cfg = recipe_config(region_data, tmp_path / "run", train={"stages": [{"steps": 4, "tasks": ["region_to_text"]}]})
    assert stage_spans(cfg.train) == [(0, 4, ("region_to_text",))]
    recipe = FinetuneRecipe(cfg).setup()
    tasks = [e.task for e in recipe.train_examples]
    assert set(tasks) == {"text_to_region", "region_to_text"}
    drawn = {s: [tasks[i] for b in recipe.batches_for_step(s) for i in b] for s in range(10)}
    for s in range(4):
        assert set(drawn[s]) == {"region_to_text"}, (s, drawn[s])
    assert "text_to_region" in {t for s in range(4, 10) for t in drawn[s]}
    again = FinetuneRecipe(cfg).setup()  # the same order in another process (resume relies on it)
    assert all(again.batches_for_step(s) == recipe.batches_for_step(s) for s in range(10))
    result = recipe.train()
    assert result.end_step == 10


def test_a_stage_whose_tasks_have_no_examples_is_one_clear_error(region_data, tmp_path):
    cfg = recipe_config(region_data, tmp_path / "run", train={"stages": [{"steps": 2, "tasks": ["simple"]}]})
    with pytest.raises(ConfigError, match=r"train.stages\[0\] \(tasks \['simple'\]\): 0 training examples"):
        FinetuneRecipe(cfg).setup()

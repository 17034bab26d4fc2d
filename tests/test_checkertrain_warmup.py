"""The checker curriculum's vision warm-up (``data.checker.vision_warmup``) and its stages in the recipe."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def test_vision_labels_score_only_one_sided_findings():
    from medmm.checkertrain.warmup import IGNORE, vision_labels

    study = {"findings": [{"type": "effusion", "side": "right"}, {"type": "mass", "side": "left"},
                          {"type": "mass", "side": "right"}, {"type": "nodule", "side": "left"},
                          {"type": "pneumothorax", "side": "bilateral"}]}
    assert vision_labels(study, ("effusion", "mass", "consolidation", "pneumothorax")) == [1, IGNORE, IGNORE, IGNORE]
    assert vision_labels({"findings": [{"type": "consolidation", "side": "left"}]}, ("consolidation",)) == [0]


def _cfg(tmp_path, **train):
    from medmm.finetune.config import build_config

    import medmm.checkertrain  # noqa: F401  (registers the checker tasks)

    return build_config({
        "model": {"spec": "tiny:llava", "codec": {"name": "medrega", "scale": 99}, "system_prompt": False},
        "data": {"tasks": ["simple"], "max_length": 320,
                 "checker": {"seeds": [1], "n_per_seed": 24, "eval_seed": 2, "n_eval": 6, "kinds": ["cxr"],
                             "small": True, "complex": False, "side_questions": 1, "vision_warmup": 30},
                 "checker_prompt": {"image_after_text": True}},
        "peft": {"method": "full", "train_vision": False},
        "optim": {"lr": 1e-3, "warmup_steps": 0},
        "train": {"max_steps": 3, "batch_size": 4, "log_every": 1, "progress": False, "threads": 1,
                  "stages": [{"steps": 2, "tasks": ["side"]}], **train},
        "checkpoint": {"every": 0},
        "eval": {"every": 0, "grounding": False, "checker": False},
        "output_dir": str(tmp_path / "run"),
    }, label="test")


def _events(recipe):
    return [r for r in recipe.read_log() if r.get("event") == "vision_warmup"]


def test_the_warm_up_trains_the_tower_before_the_lm_and_a_second_run_reuses_it(tmp_path):
    from medmm.finetune.recipe import FinetuneRecipe
    from medmm.models import load

    base = load("tiny:llava").model.model.vision_tower.state_dict()
    recipe = FinetuneRecipe(_cfg(tmp_path)).setup()
    (ev,) = _events(recipe)
    assert ev["steps"] == 30 and ev["studies"] >= 8 and 0.0 <= ev["held_out_side_accuracy"] <= 1.0
    labels = [json.loads(x) for x in (tmp_path / "run/data/checker/vision.jsonl").read_text().splitlines()]
    assert labels and all(x["study_id"].startswith("seed1/") for x in labels)  # training seeds only
    tower = recipe.model.model.vision_tower
    assert any(not torch.equal(v, base[k]) for k, v in tower.state_dict().items())  # the warm-up changed it
    assert not any(p.requires_grad for p in tower.parameters())  # train_vision: false freezes it afterwards
    for s in range(2):  # the first stage draws only the side questions
        assert {recipe.train_examples[i].task for b in recipe.batches_for_step(s) for i in b} == {"side"}
    recipe.train()
    warmed = {k: v.clone() for k, v in tower.state_dict().items()}

    again = FinetuneRecipe(_cfg(tmp_path)).setup()  # same identity: the saved warm-up is loaded, not retrained
    events = _events(again)
    assert events[-1].get("loaded", "").endswith("vision-warmup.safetensors")
    assert all(torch.equal(v, warmed[k]) for k, v in again.model.model.vision_tower.state_dict().items())


def test_the_warm_up_refuses_a_model_without_a_llava_vision_path():
    from medmm.checkertrain.warmup import vision_modules
    from medmm.errors import ConfigError

    with pytest.raises(ConfigError, match="set it to 0 for this model"):
        vision_modules(torch.nn.Linear(2, 2))

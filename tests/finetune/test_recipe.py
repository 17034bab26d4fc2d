"""The recipe: config errors gathered at construction, loss goes down, exact resume, LoRA outputs that load."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from medmm.errors import ConfigError
from medmm.finetune.config import apply_overrides, build_config
from medmm.finetune.recipe import FinetuneRecipe, lr_factor
from tests.finetune.conftest import recipe_config


def test_every_config_problem_is_reported_at_once(region_data, tmp_path):
    bad = {
        "model": {"spec": "tiny:llava", "codec": {"name": "medrega", "scale": 0}, "colour": "red"},
        "data": {"train": str(tmp_path / "missing.jsonl")},
        "peft": {"method": "qlora"},
        "optim": {"lr": -1.0, "schedule": "linear"},
        "train": {"max_steps": 5, "batch_size": "eight", "device": "tpu"},
        "eval": {"grounding": True},
        "output": "x",
    }
    with pytest.raises(ConfigError) as err:
        build_config(bad, label="bad.yaml")
    msg = str(err.value)
    for needle in ("unknown section 'output'", "model.unknown key(s) ['colour']", "train.batch_size: expected an integer",
                   "peft.method", "optim.lr must be positive", "optim.schedule", "train.device", "missing.jsonl not found",
                   "eval.grounding need data.eval", "model.codec"):
        assert needle in msg, needle
    assert msg.startswith("bad.yaml: 11 problems")  # + warm-up (20) longer than max_steps (5)


def test_overrides_are_yaml_values():
    data = apply_overrides({"train": {"max_steps": 5}}, ["train.max_steps=50", "optim.lr=1e-3", "peft.modules_to_save=[a, b]"])
    assert data == {"train": {"max_steps": 50}, "optim": {"lr": 1e-3}, "peft": {"modules_to_save": ["a", "b"]}}
    with pytest.raises(ConfigError):
        apply_overrides({}, ["train.max_steps"])


def test_schedule_warmup_then_cosine():
    assert lr_factor(0, 4, 20, "cosine", 0.0) == pytest.approx(0.25)
    assert lr_factor(3, 4, 20, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20, "cosine", 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(20, 4, 20, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(15, 4, 20, "constant", 0.0) == 1.0


def _losses(out):
    with open(os.path.join(out, "log.jsonl")) as fh:
        return {r["step"]: r["loss"] for r in map(json.loads, fh) if "loss" in r}


def test_loss_goes_down_and_resume_is_exact(region_data, tmp_path):
    full = tmp_path / "full"
    recipe = FinetuneRecipe(recipe_config(region_data, full)).setup()
    # the loss is only on the assistant's tokens: the prompt (with its image placeholders) is masked
    ex = recipe.train_examples[0]
    image_id = recipe.vlm.model.config.image_token_id
    assert (ex.labels[ex.input_ids == image_id] == -100).all()
    answer = recipe.vlm.tokenizer.decode(ex.labels[ex.labels != -100].tolist(), skip_special_tokens=True)
    assert answer.startswith("<ref>") or answer in {"right lung", "left lung", "heart", "liver", "spine"}
    result = recipe.train()
    recipe.cleanup()
    losses = list(result.losses)
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3  # it learns

    part = tmp_path / "part"
    stopped = FinetuneRecipe(recipe_config(region_data, part)).setup()
    stopped.train(until=7)  # as if killed after step 7: the newest checkpoint is step 5
    del stopped
    assert os.path.isdir(part / "checkpoints" / "step_000005")
    resumed = FinetuneRecipe(recipe_config(region_data, part)).setup()
    assert resumed.step == 5
    assert resumed.batches_for_step(5) == recipe.batches_for_step(5)  # same data order
    again = resumed.train()
    assert again.start_step == 5 and again.end_step == 10
    assert list(again.losses) == pytest.approx(losses[5:], rel=1e-5, abs=1e-6)
    assert _losses(part) == pytest.approx(_losses(full), rel=1e-5, abs=1e-6)  # the log was continued, not duplicated


def test_resume_refuses_another_configuration(region_data, tmp_path):
    out = tmp_path / "run"
    FinetuneRecipe(recipe_config(region_data, out)).train(until=5)
    with pytest.raises(ConfigError, match="another configuration"):
        FinetuneRecipe(recipe_config(region_data, out, optim={"lr": 5e-4})).setup()


def test_lora_adapter_and_merged_model_load_and_agree(region_data, tmp_path):
    from medmm.models import Request, load

    out = tmp_path / "lora"
    cfg = recipe_config(region_data, out, peft={"method": "lora", "r": 4, "alpha": 8,
                                                "modules_to_save": ["multi_modal_projector"]},
                        train={"max_steps": 4}, checkpoint={"every": 0, "save_merged": True},
                        eval={"grounding": True, "max_samples": 3, "max_new_tokens": 8})
    recipe = FinetuneRecipe(cfg).setup()
    trainable = [n for n, p in recipe.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "multi_modal_projector" in n for n in trainable)
    assert not any("vision_tower" in n for n in trainable)
    recipe.train()
    info = recipe.cleanup()
    assert os.path.isfile(os.path.join(info["adapter"], "adapter_model.safetensors"))
    assert not any(f.endswith((".bin", ".pt")) for f in os.listdir(info["adapter"]))
    metrics = json.loads(open(info["grounding"]).read())
    assert metrics["n"] == 3 and {"miou", "baseline_miou", "parse_rate", "multi_box", "region_to_text"} <= set(metrics)
    with_adapter = load("hf:" + info["base"], adapter=info["adapter"])
    merged = load("hf:" + info["merged"])
    from PIL import Image

    img = Image.new("RGB", (64, 64), (90, 20, 20))
    req = [Request(images=[img], prompt="Please locate <ref>heart</ref> in this CT scan.")]
    a = with_adapter.model(**with_adapter.encode(req)).logits
    b = merged.model(**merged.encode(req)).logits
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl"])
def test_qwen_families_train_with_their_own_codec(region_data, tmp_path, family):
    """Qwen2-VL / Qwen2.5-VL: image grid tensors and M-RoPE token types in the batch, the family's codec
    (0-1000 grid / JSON pixels of the smart_resize input) in the answers; the loss goes down."""
    cfg = recipe_config(region_data, tmp_path / family, model={"spec": f"tiny:{family}", "codec": {}},
                        train={"max_steps": 8}, checkpoint={"every": 0})
    recipe = FinetuneRecipe(cfg).setup()
    assert recipe.codec.name == family
    ex = next(e for e in recipe.train_examples if "/t2r/" in e.sample_id)
    answer = recipe.vlm.tokenizer.decode(ex.labels[ex.labels != -100].tolist(), skip_special_tokens=False)
    assert ("<|box_start|>(" in answer) if family == "qwen2-vl" else ('"bbox_2d"' in answer)
    assert "image_grid_thw" in recipe._batch([ex])
    losses = list(recipe.train().losses)
    assert sum(losses[-3:]) < 0.9 * sum(losses[:3])


def test_shipped_configs_are_valid(region_data, tmp_path):
    from pathlib import Path

    from medmm.finetune.config import load_finetune_config

    folder = Path(__file__).resolve().parents[2] / "configs" / "finetune"
    names = sorted(p.name for p in folder.glob("*.yaml"))
    assert "synth-grounding.yaml" in names and "lora-hf.yaml" in names
    import medmm.checkertrain  # noqa: F401  (brings the report checker's SIMPLE/COMPLEX tasks, as `medmm finetune` does)

    for name in names:
        if name == "checker-lora.yaml":  # a template for a local checkpoint and data made by `medmm checker-data`:
            continue  # validated with --dry-run by tests/finetune/test_checker_tasks.py
        over = [f"output_dir={tmp_path / name}"]
        if name == "lora-hf.yaml":  # a template: point it at data and a model that exist here
            over += [f"data.train={region_data['train']}", f"data.eval={region_data['eval']}", "model.spec=tiny:llava",
                     "model.options={}"]
        cfg = load_finetune_config(str(folder / name), over)
        assert cfg.train.max_steps > 0


def test_unreadable_training_images_are_skipped_and_logged(region_data, tmp_path):
    from dataclasses import replace

    from medmm.regions.tasks import read_jsonl, write_jsonl

    samples, _ = read_jsonl(region_data["train"])
    broken = [replace(s, id=f"broken{i}", image="images/missing.png") for i, s in enumerate(samples[:3])]
    path = os.path.join(os.path.dirname(region_data["train"]), "with_broken.jsonl")
    write_jsonl(samples + broken, path)
    recipe = FinetuneRecipe(recipe_config(region_data, tmp_path / "r", data={"train": path})).setup()
    assert len(recipe.train_examples) == len([s for s in samples if s.task in ("text_to_region", "region_to_text")])
    events = [r for r in recipe.read_log() if r.get("event") == "unreadable_samples"]
    assert events and events[0]["n"] == 3 and events[0]["first"][0].startswith("broken0")


@pytest.mark.parametrize("method", ["lora", "full"])
def test_gradient_checkpointing_gives_the_same_losses(region_data, tmp_path, method):
    peft = {"method": method, "r": 4, "alpha": 8}
    plain = FinetuneRecipe(recipe_config(region_data, tmp_path / "a", peft=peft, train={"max_steps": 3},
                                         checkpoint={"every": 0})).setup().train().losses
    ckpt = FinetuneRecipe(recipe_config(region_data, tmp_path / "b", peft=peft, checkpoint={"every": 0},
                                        train={"max_steps": 3, "gradient_checkpointing": True})).setup()
    base = ckpt.model.get_base_model() if hasattr(ckpt.model, "get_base_model") else ckpt.model
    assert getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing
    assert list(ckpt.train().losses) == pytest.approx(list(plain), rel=1e-5)

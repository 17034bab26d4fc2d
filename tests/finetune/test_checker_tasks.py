"""The checker tasks in the recipe: checker-lora validates with --dry-run, a tiny model learns SIMPLE on a few
dozen samples, and a run with checker tasks leaves its calibrated config, stacker and checker.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_checker_lora_config_validates_with_dry_run(tmp_path):
    for name in ("train", "eval", "calib"):
        (tmp_path / f"{name}.jsonl").write_text("", encoding="utf-8")
    cmd = [sys.executable, "-m", "medmm.cli", "finetune", "--config", os.path.join(REPO, "configs/finetune/checker-lora.yaml"),
           "--dry-run", "--set", f"data.train={tmp_path / 'train.jsonl'}", "--set", f"data.eval={tmp_path / 'eval.jsonl'}",
           "--set", f"data.checker_calib={tmp_path / 'calib.jsonl'}"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert cfg["data"]["tasks"] == ["simple", "complex"] and cfg["peft"]["method"] == "lora"
    assert cfg["eval"]["checker"] is True and cfg["data"]["checker_prompt"]["max_views"] == 1
    # a wrong setting is reported (and the run refused) before anything loads
    bad = subprocess.run(cmd + ["--set", "data.checker_prompt.max_view=2", "--set", "data.tasks=[simple, cheking]"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode != 0 and "max_view" in bad.stderr and "cheking" in bad.stderr


def test_synth_checker_config_validates():
    import medmm.checkertrain  # noqa: F401  (registers the checker tasks, as `medmm finetune` does)
    from medmm.finetune.config import load_finetune_config

    cfg = load_finetune_config(os.path.join(REPO, "configs/finetune/synth-checker.yaml"))
    assert cfg.checker is not None and set(cfg.data.tasks) == {"simple", "complex"}
    # the curriculum: a warmed-up, then frozen, tower; the side questions alone last; claim verification
    assert cfg.checker.vision_warmup > 0 and cfg.checker.side_questions > 0 and not cfg.peft.train_vision
    assert cfg.train.stages[-1]["tasks"] == ["side"] and sum(s["steps"] for s in cfg.train.stages) <= cfg.train.max_steps
    assert set(cfg.data.checker_prompt["verify_sides"]) >= {"effusion", "pneumothorax"}


@pytest.mark.slow  # ~1.5-3 min on a busy 2-core machine
def test_a_tiny_model_learns_simple_on_a_few_dozen_samples(tmp_path):
    """Memorising a few dozen SIMPLE samples (text-detectable errors of medmm inject): the margin
    logp(yes) - logp(no) separates the erroneous reports from the clean ones after training, not before."""
    import torch

    from medmm.checkertrain.tasks import encode_checker_example
    from medmm.finetune.inputs import collate
    from medmm.models.tiny import build_tiny
    from medmm.reports.checker_data import CheckerDataConfig, build_samples, studies_from_synth_manifest
    from medmm.reports.vlm_checker import VLMCheckerConfig, judge

    out = tmp_path / "s"
    subprocess.run([sys.executable, "-m", "medmm.cli", "synth", "--out", str(out), "--n", "20", "--seed", "5",
                    "--small", "--kinds", "cxr", "--workers", "1"], check=True, capture_output=True)
    studies = studies_from_synth_manifest(str(out / "manifest.jsonl"))
    samples = [s for s in build_samples(studies, CheckerDataConfig(error_models={"medmm inject": 1.0}, complex=False),
                                        split="train") if s.task == "simple"]
    assert 24 <= len(samples) <= 40 and 0.3 < np.mean([s.has_error for s in samples]) < 0.7
    torch.manual_seed(0)
    vlm = build_tiny("llava")
    cfg = VLMCheckerConfig()
    examples = [encode_checker_example(vlm, s, None, str(out), cfg) for s in samples]

    def separation() -> float:
        vlm.model.eval()
        from medmm.reports.checker_views import checker_images

        js = judge(vlm, [s.report for s in samples], [checker_images(list(s.images), str(out)) for s in samples], cfg,
                   complex_=False)
        from medmm.metrics import auroc

        return auroc([s.has_error for s in samples], [j.margin for j in js])

    before = separation()
    model = vlm.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(600):
        idx = rng.choice(len(examples), 8, replace=False)
        batch = collate([examples[i] for i in idx], vlm.tokenizer.pad_token_id)
        labels = batch.pop("labels")
        logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                 ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = separation()
    print(f"SIMPLE AUROC on the training samples: before {before:.2f}, after {after:.2f}")
    # measured: 0.50 before, 0.86 after 600 steps (300 gave 0.75 on the generator before devices took either side,
    # 0.59 after: tiny models learn slowly; a broken loop or a frozen model stays at ~0.5)
    assert after >= 0.68 and after >= before + 0.15, (before, after)

"""Shared data for the recipe tests: a few small synthetic CT studies as region-task samples."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from medmm.regions.labelmaps import LabelMapOptions
from medmm.regions.tasks import synthetic_samples, write_jsonl
from medmm.studies import iter_manifest

ORGANS = {"lung_right": 2, "lung_left": 3, "heart": 4, "liver": 5, "spine": 8}


def _samples(root, name, seed, n):
    out = root / name
    subprocess.run([sys.executable, "-m", "medmm.cli", "synth", "--out", str(out), "--n", str(n), "--seed", str(seed),
                    "--small", "--kinds", "ct", "--workers", "1"], check=True, capture_output=True)
    samples = synthetic_samples(iter_manifest(str(out / "manifest.jsonl")), out, ORGANS,
                                tasks=["text_to_region", "region_to_text"],
                                options=LabelMapOptions(max_slices=3, min_pixels=9))
    path = out / "samples.jsonl"
    write_jsonl(samples, path)
    return str(path), samples


@pytest.fixture(scope="session")
def region_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("region-data")
    train, train_samples = _samples(root, "train", 0, 2)
    evals, eval_samples = _samples(root, "eval", 99, 1)
    return {"train": train, "eval": evals, "train_samples": train_samples, "eval_samples": eval_samples}


def recipe_config(region_data, out, **sections):
    """A tiny full-fine-tuning config over the shared data (sections override keys)."""
    from medmm.finetune.config import build_config

    base = {
        "model": {"spec": "tiny:llava", "codec": {"name": "medrega", "scale": 99}, "system_prompt": False},
        "data": {"train": region_data["train"], "eval": region_data["eval"], "eval_max_samples": 8},
        "peft": {"method": "full"},
        "optim": {"lr": 3e-3, "warmup_steps": 2},
        "train": {"max_steps": 10, "batch_size": 4, "log_every": 1, "progress": False, "threads": 1},
        "checkpoint": {"every": 5, "keep": 3},
        "eval": {"every": 0, "grounding": False},
        "output_dir": str(out),
    }
    for name, values in sections.items():
        if name == "output_dir":
            base[name] = values
        else:
            base.setdefault(name, {}).update(values)
    return build_config(base, label="test")


os.environ.setdefault("OMP_NUM_THREADS", "1")

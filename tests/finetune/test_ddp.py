"""The same recipe under torchrun with 2 CPU processes (gloo): no code changes, same losses as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.finetune.conftest import recipe_config


def _write(cfg, path):
    data = cfg.to_dict()
    with open(path, "w") as fh:
        yaml.safe_dump(json.loads(json.dumps(data)), fh)
    return str(path)


def _losses(out):
    with open(os.path.join(out, "log.jsonl")) as fh:
        return [r["loss"] for r in map(json.loads, fh) if "loss" in r]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_process_ddp_matches_one_process(region_data, tmp_path):
    ddp_out = tmp_path / "ddp"
    one_out = tmp_path / "one"
    common = {"max_steps": 4, "log_every": 1, "progress": False, "threads": 1}
    ddp_cfg = _write(recipe_config(region_data, ddp_out, train={**common, "batch_size": 2},
                                   checkpoint={"every": 2}), tmp_path / "ddp.yaml")
    one_cfg = _write(recipe_config(region_data, one_out, train={**common, "batch_size": 4},
                                   checkpoint={"every": 2}), tmp_path / "one.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "medmm.cli", "finetune", "--config", ddp_cfg]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    subprocess.run([sys.executable, "-m", "medmm.cli", "finetune", "--config", one_cfg], check=True,
                   capture_output=True, env=env, timeout=300)
    ddp, one = _losses(ddp_out), _losses(one_out)
    assert len(ddp) == len(one) == 4
    # global batch 2 x 2 processes = 4 examples, the same ones in the same order, token-mean loss
    assert ddp == pytest.approx(one, rel=1e-4)
    assert sorted(os.listdir(ddp_out / "checkpoints")) == ["step_000002", "step_000004"]
    run = json.loads((ddp_out / "run.json").read_text())
    assert run["steps"] == 4 and os.path.isfile(os.path.join(run["model"], "model.safetensors"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_process_fsdp_matches_one_process_and_resumes(region_data, tmp_path):
    """FSDP2 (train.fsdp): parameters, gradients and AdamW state sharded over 2 gloo processes; same
    losses as one process; a checkpoint (gathered whole) resumes into the shards exactly."""
    import shutil

    common = {"max_steps": 4, "log_every": 1, "progress": False, "threads": 1}
    fsdp_out, one_out = tmp_path / "fsdp", tmp_path / "one"
    cfg = _write(recipe_config(region_data, fsdp_out, train={**common, "batch_size": 2, "fsdp": True},
                               checkpoint={"every": 2, "keep": 3}), tmp_path / "fsdp.yaml")
    one = _write(recipe_config(region_data, one_out, train={**common, "batch_size": 4}, checkpoint={"every": 2}),
                 tmp_path / "one.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "medmm.cli",
              "finetune", "--config"]
    proc = subprocess.run(launch + [cfg], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    subprocess.run([sys.executable, "-m", "medmm.cli", "finetune", "--config", one], check=True, capture_output=True,
                   env=env, timeout=300)
    assert _losses(fsdp_out) == pytest.approx(_losses(one_out), rel=1e-4)
    # resume: a copy of the run without its last checkpoint continues from step 2
    again = tmp_path / "again"
    shutil.copytree(fsdp_out, again)
    shutil.rmtree(again / "checkpoints" / "step_000004")
    cfg2 = _write(recipe_config(region_data, again, train={**common, "batch_size": 2, "fsdp": True},
                                checkpoint={"every": 2, "keep": 3}), tmp_path / "again.yaml")
    proc = subprocess.run(launch + [cfg2], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _losses(again) == pytest.approx(_losses(fsdp_out), rel=1e-5)
    events = [json.loads(x) for x in (again / "log.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "step": 2} in [{k: v for k, v in e.items() if k != "time"} for e in events]
    from medmm.models import load

    load("hf:" + str(fsdp_out / "model"))  # the gathered model loads


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_lora_under_fsdp_saves_an_adapter_that_loads(region_data, tmp_path):
    from safetensors.torch import load_file

    from medmm.models import load

    out = tmp_path / "fsdp-lora"
    cfg = _write(recipe_config(region_data, out, peft={"method": "lora", "r": 4, "alpha": 8},
                               train={"max_steps": 2, "batch_size": 2, "fsdp": True, "progress": False, "threads": 1},
                               checkpoint={"every": 0}), tmp_path / "c.yaml")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "medmm.cli", "finetune", "--config", cfg], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert weights and all("lora_" in k for k in weights)
    assert any("lora_B" in k and float(v.abs().sum()) > 0 for k, v in weights.items())  # trained (B starts at 0)
    load("hf:" + str(out / "base"), adapter=str(out / "adapter"))

"""Fine-tuning speed: the medmm recipe's training loop vs a plain Hugging Face ``Trainer``.

Same tiny model (``tiny:llava``, full fine-tuning, vision tower frozen), same encoded examples
(Text→Region and Region→Text on synthetic CT studies), same batch size, optimizer settings and
schedule; each side runs in its own process so peak memory is its own. Reported: training
samples/s after warm-up steps, peak resident memory of the process (CPU) or peak CUDA memory
(GPU), and the final loss (both must learn). The sides alternate ``--repeat`` times (recipe,
Trainer, recipe, ...) and each side's best run is reported: on a CPU shared with other jobs the
best run is the least disturbed one. Both sides use ``--threads`` torch threads.
Run: ``python -m bench.finetune_speed [--steps N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

WARMUP = 5


def _config(data_dir: str, out: str, batch: int, steps: int) -> Any:
    from medmm.finetune.config import build_config

    return build_config({
        "model": {"spec": "tiny:llava", "codec": {"name": "medrega", "scale": 99}, "system_prompt": False},
        "data": {"train": os.path.join(data_dir, "train", "samples.jsonl")},
        "peft": {"method": "full"},
        "optim": {"lr": 1e-3, "warmup_steps": 2, "schedule": "cosine"},
        "train": {"max_steps": steps + WARMUP, "batch_size": batch, "progress": False, "log_every": 10 ** 6},
        "checkpoint": {"every": 0}, "eval": {"every": 0, "grounding": False}, "output_dir": out,
    }, label="bench")


def _peak(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB


def side_recipe(cfg: Any) -> dict[str, float]:
    from medmm.finetune.recipe import FinetuneRecipe

    r = FinetuneRecipe(cfg).setup()
    for _ in range(WARMUP):
        r.train_step()
    t0 = time.perf_counter()
    loss = 0.0
    while r.step < cfg.train.max_steps:
        loss = r.train_step()
    dt = time.perf_counter() - t0
    n = (cfg.train.max_steps - WARMUP) * cfg.train.batch_size
    return {"samples_per_s": n / dt, "peak_mib": _peak(r.device), "loss": loss}


def side_trainer(cfg: Any, tmp: str) -> dict[str, float]:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from medmm.finetune.inputs import collate
    from medmm.finetune.recipe import FinetuneRecipe

    r = FinetuneRecipe(cfg).setup()  # the same model, trainable parameters and encoded examples
    examples = r.train_examples
    pad = r.vlm.tokenizer.pad_token_id

    class Data(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(examples)

        def __getitem__(self, i: int) -> Any:
            return examples[i]

    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == WARMUP:
                marks["start"] = time.perf_counter()
            marks["end"] = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                marks["loss"] = float(logs["loss"])

    cuda = r.device.type == "cuda"
    args = TrainingArguments(
        output_dir=tmp, per_device_train_batch_size=cfg.train.batch_size, max_steps=cfg.train.max_steps,
        learning_rate=cfg.optim.lr, lr_scheduler_type="cosine", warmup_steps=cfg.optim.warmup_steps,
        weight_decay=0.0, max_grad_norm=cfg.optim.max_grad_norm, logging_steps=1, save_strategy="no",
        report_to=[], dataloader_num_workers=0, use_cpu=not cuda, bf16=cuda, remove_unused_columns=False,
        seed=cfg.train.seed, disable_tqdm=True)
    trainer = Trainer(model=r.model, args=args, train_dataset=Data(), data_collator=lambda xs: collate(xs, pad))
    trainer.add_callback(Clock())
    trainer.train()
    n = (cfg.train.max_steps - WARMUP) * cfg.train.batch_size
    return {"samples_per_s": n / (marks["end"] - marks["start"]), "peak_mib": _peak(r.device),
            "loss": marks.get("loss", float("nan"))}


def run(steps: int = 60, batch: int = 16, repeat: int = 3, threads: int = 1) -> dict[str, Any]:
    from medmm.finetune.config import build_config
    from medmm.finetune.data import prepare_data

    with tempfile.TemporaryDirectory(prefix="medmm-bench-ft-") as tmp:
        data_dir = os.path.join(tmp, "data")
        cfg = build_config({"data": {"synth": {"n_train": 8, "n_eval": 1, "max_slices": 6}},
                            "eval": {"grounding": False}, "output_dir": tmp}, label="bench")
        prepare_data(cfg, data_dir)
        out: dict[str, Any] = {"steps": steps, "batch": batch, "repeat": repeat, "threads": threads,
                               "runs": {"recipe": [], "trainer": []}}
        for _ in range(repeat):
            for side in ("recipe", "trainer"):
                # run as a script from a temporary folder: from the repository root, the dataset cards'
                # folder datasets/ would pass for the Hugging Face `datasets` library and break Trainer
                cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--data", data_dir,
                       "--steps", str(steps), "--batch", str(batch), "--threads", str(threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
                if proc.returncode:
                    raise RuntimeError(f"{side} side failed:\n{proc.stderr[-3000:]}")
                out["runs"][side].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        for side, runs in out["runs"].items():
            out[side] = max(runs, key=lambda r: r["samples_per_s"])
        return out


def report(r: dict[str, Any]) -> str:
    a, b = r["recipe"], r["trainer"]
    return "\n".join([
        f"fine-tuning loop, tiny:llava full FT, batch {r['batch']}, {r['steps']} timed steps after {WARMUP} warm-up, "
        f"{r['threads']} torch thread(s), best of {r['repeat']} alternating runs per side",
        f"  medmm recipe: {a['samples_per_s']:.1f} samples/s, peak {a['peak_mib']:.0f} MiB, final loss {a['loss']:.3f}",
        f"  HF Trainer:   {b['samples_per_s']:.1f} samples/s, peak {b['peak_mib']:.0f} MiB, final loss {b['loss']:.3f}",
        f"  -> {a['samples_per_s'] / b['samples_per_s']:.2f}x the Trainer's throughput at "
        f"{a['peak_mib'] / b['peak_mib']:.2f}x its peak memory (target >= 1.0x at equal memory)",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.finetune_speed")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--side", choices=("recipe", "trainer"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.side is None:
        print(report(run(a.steps, a.batch, a.repeat, a.threads)))
        return 0
    import torch

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="medmm-bench-side-") as tmp:
        cfg = _config(a.data, tmp, a.batch, a.steps)
        res = side_recipe(cfg) if a.side == "recipe" else side_trainer(cfg, tmp)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

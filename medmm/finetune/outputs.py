"""What a finished run leaves in ``output_dir`` (written by rank 0 in :meth:`FinetuneRecipe.cleanup`).

```
output_dir/
  base/            the base model, when it was built in memory (tiny:...): the adapter loads against it
  adapter/         LoRA adapter (peft, safetensors)              -> load("hf:base", adapter="adapter")
  model/           full fine-tuning: the whole model             -> load("hf:model")
  merged/          LoRA merged into the base (checkpoint.save_merged)
  checkpoints/     step_NNNNNN/ for exact resume (the newest checkpoint.keep)
  data/            generated samples (data.synth), train/ and eval/
  log.jsonl        one line per logged step / eval / event
  loss_curve.png   training (and eval) loss per step
  train_stats.json mean training box, overall and per label (the grounding baselines)
  run.json         paths, config, steps, final loss
  grounding.json   the grounding evaluation of the final weights on the eval samples
```
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from medmm.finetune.grounding import GroundingSettings, box_stats, evaluate, write_metrics
from medmm.runs import write_json

if TYPE_CHECKING:
    from medmm.finetune.recipe import FinetuneRecipe


def save_weights(recipe: "FinetuneRecipe", state: dict[str, Any] | None = None) -> dict[str, str | None]:
    """The final adapter (LoRA) or model (full fine-tuning), and the merged model if asked. ``state``: the
    gathered state dict of an FSDP-sharded model."""
    from medmm.models.hf import HFVLM

    out = recipe.out
    model = recipe.model
    model.eval()
    if recipe.cfg.peft.method == "lora":
        adapter = os.path.join(out, "adapter")
        if state is not None:
            from peft import get_peft_model_state_dict

            model.save_pretrained(adapter, safe_serialization=True,
                                  state_dict=get_peft_model_state_dict(model, state_dict=state))
        else:
            model.save_pretrained(adapter, safe_serialization=True)
        merged = None
        if recipe.cfg.checkpoint.save_merged:
            merged = os.path.join(out, "merged")
            HFVLM(model.merge_and_unload(), recipe.vlm.processor).save(merged)
        return {"base": recipe.base_dir, "adapter": adapter, "model": None, "merged": merged}
    path = os.path.join(out, "model")
    HFVLM(model, recipe.vlm.processor).save(path, state_dict=state)
    return {"base": recipe.base_dir, "adapter": None, "model": path, "merged": None}


def loss_curve(records: list[dict[str, Any]], path: str) -> str | None:
    """PNG of the logged training loss (and eval loss) per step."""
    train = [(r["step"], r["loss"]) for r in records if "loss" in r and "step" in r]
    ev = [(r["step"], r["eval_loss"]) for r in records if r.get("eval_loss") is not None]
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(*zip(*train), label="train")
    if ev:
        ax.plot(*zip(*ev), marker="o", label="eval")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def finish(recipe: "FinetuneRecipe", state: dict[str, Any] | None = None) -> dict[str, Any]:
    from medmm.models import load

    cfg = recipe.cfg
    out = recipe.out
    paths = save_weights(recipe, state)
    stats = box_stats([s for s in recipe.train_samples if s.task == "text_to_region"]) \
        if any(s.task == "text_to_region" for s in recipe.train_samples) else None
    if stats:
        write_json(os.path.join(out, "train_stats.json"), stats, indent=2)  # the one atomic writer
    records = recipe.read_log()
    curve = loss_curve(records, os.path.join(out, "loss_curve.png"))
    losses = [r["loss"] for r in records if "loss" in r]
    info: dict[str, Any] = {**paths, "loss_curve": curve, "steps": recipe.step, "final_loss": losses[-1] if losses else None,
                            "train_examples": len(recipe.train_examples), "train_data": recipe.train_path,
                            "eval_data": recipe.eval_path, "codec": recipe.codec.config(),
                            "system_prompt": cfg.model.system_prompt, "config": cfg.to_dict()}
    from medmm.finetune.plugins import task_plugins
    from medmm.regions.tasks import Sample

    region_eval = [s for s in recipe.eval_samples if isinstance(s, Sample)]  # plugin tasks evaluate their own
    spec = "hf:" + (paths["model"] or paths["base"])  # type: ignore[operator]
    for plugin in task_plugins():  # e.g. the report checker: calibration, stacker, checker.json
        if any(plugin.owns(s) for s in recipe.eval_samples):
            tuned = load(spec, adapter=paths["adapter"]) if paths["adapter"] else load(spec)
            info.update(plugin.finish(recipe, tuned, paths))
    if cfg.eval.grounding and region_eval:
        vlm = load(spec, adapter=paths["adapter"]) if paths["adapter"] else load(spec)
        settings = GroundingSettings(max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size,
                                     system_prompt=cfg.model.system_prompt, max_samples=cfg.eval.max_samples)
        metrics = evaluate(vlm, region_eval, recipe.codec, os.path.dirname(os.path.abspath(recipe.eval_path)),
                           os.path.join(out, "grounding-cache.sqlite"), settings, stats, progress=cfg.train.progress)
        info["grounding"] = write_metrics(metrics, os.path.join(out, "grounding.json"))
        info["metrics"] = {k: metrics[k] for k in ("n", "miou", "baseline_miou", "class_prior_miou", "parse_rate",
                                                   "acc@0.5")}
    write_json(os.path.join(out, "run.json"), json.loads(json.dumps(info, default=str)), indent=2)
    return info

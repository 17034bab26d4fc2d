"""``medmm finetune`` and ``medmm grounding-eval``: argparse wiring and thin handlers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from medmm.errors import InputError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("finetune", help="region-aware fine-tuning (LoRA or full) with the medmm recipe")
    p.add_argument("--config", required=True, help="recipe YAML (e.g. configs/finetune/synth-grounding.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override a config value, e.g. --set train.max_steps=50 (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="validate the config and print it, then stop")
    p.set_defaults(func=_cmd_finetune)

    p = sub.add_parser("grounding-eval", help="score Text->Region boxes and Region->Text answers of a model")
    p.add_argument("--model", required=True, help="hf:PATH, tiny:FAMILY or a YAML model config")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder")
    p.add_argument("--data", required=True, help="samples JSONL (medmm region tasks)")
    p.add_argument("--out", required=True, help="metrics.json")
    p.add_argument("--codec", default=None, help="box codec (default: the training run's, else the family's)")
    p.add_argument("--codec-option", action="append", default=[], metavar="KEY=VALUE", help="e.g. scale=99")
    p.add_argument("--train-data", default=None, help="training samples JSONL (for baseline_miou)")
    p.add_argument("--train-stats", default=None, help="train_stats.json of a run (for baseline_miou)")
    p.add_argument("--max-samples", type=int, default=None, help="per task, the first N samples")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--system-prompt", choices=("auto", "on", "off"), default="auto",
                   help="MedRegA system prompts (auto: as the training run)")
    p.add_argument("--cache", default=None, help="result cache (default: OUT.cache.sqlite); a rerun resumes")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_grounding_eval)


def _cmd_finetune(args: argparse.Namespace) -> int:
    from medmm.finetune.config import load_finetune_config

    cfg = load_finetune_config(args.config, args.overrides)
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2, default=list))
        return 0
    from medmm.finetune.recipe import run

    info = run(cfg)
    if info:
        print(json.dumps({k: info.get(k) for k in ("adapter", "model", "merged", "base", "steps", "final_loss",
                                                    "grounding", "metrics") if info.get(k) is not None}, indent=2))
    return 0


def run_info(model: str, adapter: str | None) -> dict[str, Any]:
    """The ``run.json`` of the training run that wrote the adapter (or model), if any."""
    for folder in (adapter, model.split(":", 1)[-1] if model.startswith("hf:") else None):
        if folder:
            path = os.path.join(os.path.dirname(os.path.abspath(folder.rstrip("/"))), "run.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    return json.load(fh)
    return {}


def _codec_options(items: list[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--codec-option {item!r}: use KEY=VALUE, e.g. scale=99")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def _cmd_grounding_eval(args: argparse.Namespace) -> int:
    from medmm.finetune.grounding import GroundingSettings, box_stats, evaluate, write_metrics
    from medmm.finetune.inputs import default_codec
    from medmm.models import load
    from medmm.regions.tasks import read_jsonl

    info = run_info(args.model, args.adapter)
    vlm = load(args.model, adapter=args.adapter, device=args.device)
    codec_spec = {"name": args.codec, **_codec_options(args.codec_option)} if args.codec else info.get("codec")
    codec = default_codec(vlm, codec_spec)
    samples, problems = read_jsonl(args.data)
    stats = None
    if args.train_stats or (not args.train_data and info.get("train_data")):
        path = args.train_stats or os.path.join(os.path.dirname(os.path.abspath((args.adapter or args.model.split(":", 1)[-1]).rstrip("/"))),
                                                "train_stats.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                stats = json.load(fh)
    if args.train_data:
        stats = box_stats(read_jsonl(args.train_data)[0])
    system = {"on": True, "off": False}.get(args.system_prompt, info.get("system_prompt", True))
    settings = GroundingSettings(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, system_prompt=system,
                                 max_samples=args.max_samples)
    cache = args.cache or args.out + ".cache.sqlite"
    metrics = evaluate(vlm, samples, codec, os.path.dirname(os.path.abspath(args.data)), cache, settings, stats,
                       progress=sys.stderr.isatty())
    metrics["unreadable_lines"] = len(problems)
    write_metrics(metrics, args.out)
    print(json.dumps({k: metrics[k] for k in ("n", "miou", "baseline_miou", "parse_rate", "acc@0.5")}))
    if stats is None:
        print("note: no training statistics (--train-data or --train-stats): baseline_miou is 0", file=sys.stderr)
    return 0

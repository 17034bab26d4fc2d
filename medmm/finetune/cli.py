"""``medmm finetune`` and ``medmm grounding-eval``: argparse wiring and thin handlers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from medmm._cli import RegistryChoices


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

    p = sub.add_parser("region-tasks", help="build region-task samples (Region->Text, Text->Region, grounded report) "
                                            "from annotations and export them")
    p.add_argument("--format", required=True, choices=("vindr-cxr", "chestxray14", "rsna-pneumonia", "ms-cxr", "synth"))
    p.add_argument("--input", required=True, help="the annotation CSV as distributed, or a synth manifest.jsonl")
    p.add_argument("--images", default=None, help="folder of the images (VinDr-CXR train/, ChestX-ray14 images/, ...)")
    p.add_argument("--out", required=True, help="medmm samples JSONL")
    p.add_argument("--tasks", default=None,
                   help="comma-separated region tasks of the task registry, medmm.tasks (default: all of them)")
    p.add_argument("--window", default="file", help="display window for DICOM images")
    p.add_argument("--sharegpt", default=None, help="also export LLaMA-Factory ShareGPT JSON here")
    p.add_argument("--codec", default=None, choices=RegistryChoices("medmm.regions.codecs:CODECS"),
                   help="box codec of the ShareGPT export (default: the Qwen2-VL codec)")
    p.add_argument("--internvl", default=None, help="also export InternVL/MedRegA JSONL here")
    p.set_defaults(func=_cmd_region_tasks)


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
    from medmm.runs import parse_key_values  # the one KEY=VALUE reader

    return parse_key_values(items, "--codec-option", "scale=99")


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
    from medmm.runs import json_clean  # nan (an empty denominator) printed as null

    print(json.dumps(json_clean({k: metrics[k] for k in ("n", "miou", "baseline_miou", "parse_rate", "acc@0.5")})))
    if stats is None:
        print("note: no training statistics (--train-data or --train-stats): baseline_miou is 0", file=sys.stderr)
    return 0


def _cmd_region_tasks(args: argparse.Namespace) -> int:
    from medmm.regions.readers import read_annotations
    from medmm.regions.tasks import export_internvl, export_sharegpt, samples_from_annotations, write_jsonl

    from medmm.regions.tasks import region_task_names

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else list(region_task_names())
    problems: list[str] = []
    if args.format == "synth":
        from medmm.regions.tasks import synthetic_samples
        from medmm.synth.truth import ORGAN_LABELS

        organs = {k: v for k, v in ORGAN_LABELS.items() if k != "body"}
        from medmm.studies import iter_manifest

        samples = synthetic_samples(iter_manifest(args.input), os.path.dirname(os.path.abspath(args.out)), organs,
                                    tasks=tasks)
    else:
        ann = read_annotations(args.format, args.input, images_root=os.path.abspath(args.images) if args.images else None)
        problems.extend(ann.problems)
        samples = samples_from_annotations(ann, tasks=tasks, window=args.window, problems=problems)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    n = write_jsonl(samples, args.out)
    root = os.path.dirname(os.path.abspath(args.out))
    if args.sharegpt:
        chosen = {"codec": args.codec} if args.codec else {}  # else export_sharegpt's default codec
        export_sharegpt(samples, args.sharegpt, root=root, problems=problems, **chosen)
    if args.internvl:
        export_internvl(samples, args.internvl, root=root, problems=problems)
    print(f"wrote {n} samples to {args.out}; {len(problems)} problem(s)", file=sys.stderr)
    for p in problems[:10]:
        print(f"  {p}", file=sys.stderr)
    return 0

"""``medmm checker-data``: error-checking instruction data (SIMPLE and COMPLEX) from studies with images."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Any

from medmm.errors import InputError

PAPER_REPORTS = 1000  # the seed paper's protocol: 1,000 reports per corpus


def _read_studies(path: str, fmt: str) -> list[dict[str, Any]]:
    from medmm.reports.checker_data import studies_from_rows, studies_from_synth_manifest

    if fmt == "auto":
        with open(path, encoding="utf-8") as fh:
            first = next((ln for ln in fh if ln.strip()), "{}")
        try:
            fmt = "synth" if "findings" in json.loads(first) and "attributes" in json.loads(first) else "rows"
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not a JSONL file ({exc.msg})") from None
    return studies_from_synth_manifest(path) if fmt == "synth" else studies_from_rows(path)


def _cmd_checker_data(args: argparse.Namespace) -> int:
    from medmm.reports.checker_data import (CheckerDataConfig, build_samples, export_internvl, export_sharegpt,
                                            to_eval_rows, write_jsonl)

    if not os.path.isfile(args.input):
        raise InputError(f"{args.input}: no such file (a medmm synth manifest.jsonl or rows with report + images)")
    studies = _read_studies(args.input, args.format)
    limit = PAPER_REPORTS if args.paper_protocol and not args.n_reports else args.n_reports
    if limit:  # a fixed sample of the corpus, by a hash of the study id (the same for every run)
        studies = sorted(studies, key=lambda s: hashlib.sha256(str(s["study_id"]).encode()).hexdigest())[:limit]
    src = os.path.dirname(os.path.abspath(args.input))
    out = os.path.abspath(args.out)
    for st in studies:  # image paths relative to the output folder (the samples files live there)
        st["images"] = [os.path.relpath(p if os.path.isabs(p) else os.path.join(src, p), out) for p in st["images"]]
    weights = None
    if args.error_models:
        weights = {}
        for item in args.error_models.split(","):
            name, _, w = item.partition("=")
            weights[name.strip()] = float(w) if w else 1.0
    cfg = CheckerDataConfig(**({"error_models": weights} if weights else {}), clean_per_error=args.clean_per_error,
                            complex=not args.no_complex, seed=args.seed)
    samples = build_samples(studies, cfg, source=os.path.basename(args.input))
    os.makedirs(out, exist_ok=True)
    counts: dict[str, Any] = {}
    for split in ("train", "calib", "eval"):
        part = [s for s in samples if s.split == split]
        write_jsonl(part, os.path.join(out, f"{split}.jsonl"))
        counts[split] = {"samples": len(part), "studies": len({s.study_id for s in part}),
                         "simple_with_error": sum(1 for s in part if s.task == "simple" and s.has_error),
                         "simple_clean": sum(1 for s in part if s.task == "simple" and not s.has_error),
                         "complex": sum(1 for s in part if s.task == "complex")}
    with open(os.path.join(out, "eval-rows.jsonl"), "w", encoding="utf-8") as fh:
        for r in to_eval_rows([s for s in samples if s.split == "eval"]):
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    codec = None
    if args.codec:
        from medmm.regions.codecs import get_codec

        codec = get_codec(args.codec)
    train = [s for s in samples if s.split == "train"]
    export_sharegpt(train, os.path.join(out, "sharegpt-train.json"), codec, out)
    export_internvl(train, os.path.join(out, "internvl-train.jsonl"), codec, out)
    models: dict[str, int] = {}
    for s in samples:
        if s.task == "simple" and s.error:
            models[s.error.model] = models.get(s.error.model, 0) + 1
    summary = {"input": os.path.basename(args.input), "studies": len(studies), "splits": counts, "error_models": models,
               "config": {"error_models": cfg.error_models, "clean_per_error": cfg.clean_per_error,
                          "complex": cfg.complex, "seed": cfg.seed, "paper_protocol": bool(args.paper_protocol)}}
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}: train/calib/eval.jsonl (medmm), sharegpt-train.json, internvl-train.jsonl, eval-rows.jsonl "
          "(for medmm check-eval)", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("checker-data", help="error-checking instruction data (SIMPLE/COMPLEX) from studies with images")
    p.add_argument("--input", required=True, help="a medmm synth manifest.jsonl, or rows (JSONL) with id/study_id, "
                                                   "report, images (paths relative to the file), optional patient_id")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=("auto", "synth", "rows"), default="auto")
    p.add_argument("--paper-protocol", action="store_true",
                   help="the seed paper's protocol: 1,000 reports of the corpus, errors in half, SIMPLE and COMPLEX")
    p.add_argument("--n-reports", type=int, default=None, help="use this many studies (a fixed hash sample)")
    p.add_argument("--error-models", default=None,
                   help='comma-separated NAME=WEIGHT, e.g. "side swap (every mention)=4,medmm inject=1" '
                        "(default: every model, weight 1)")
    p.add_argument("--clean-per-error", type=float, default=1.0, help="clean : error SIMPLE samples (default 1:1)")
    p.add_argument("--no-complex", action="store_true", help="SIMPLE samples only")
    p.add_argument("--codec", default="medrega", help="box codec of the exports' COMPLEX regions (default medrega)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_checker_data)

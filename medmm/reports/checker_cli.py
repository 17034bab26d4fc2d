"""``medmm checker-data``: error-checking instruction data (SIMPLE and COMPLEX) from studies with images."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from medmm.errors import InputError

PAPER_REPORTS = 1000  # the seed paper's protocol: 1,000 reports per corpus


def _read_studies(path: str, fmt: str, args: argparse.Namespace | None = None,
                  problems: list[str] | None = None) -> list[dict[str, Any]]:
    """The studies of ``--input`` through :mod:`medmm.studies`: a synthetic manifest, audit-style rows, or a public
    corpus folder (MIMIC-CXR, IU-Xray: :mod:`medmm.studies.public`); ``auto`` tells them apart."""
    from medmm.reports.checker_data import studies_from_corpus, studies_from_rows, studies_from_synth_manifest
    from medmm.studies.public import detect_corpus

    if fmt == "auto" and os.path.isdir(path):
        fmt = detect_corpus(path) or ""
        if not fmt:
            raise InputError(f"{path}: a folder that is neither MIMIC-CXR (files/p10/...) nor IU-Xray "
                             "(indiana_reports.csv); give a manifest file or --format")
    if fmt in ("mimic-cxr", "iu-xray"):
        return studies_from_corpus(path, fmt, reports=getattr(args, "reports", None),
                                   metadata=getattr(args, "metadata", None), images=getattr(args, "images", None),
                                   problems=problems, limit=_limit(args) if args is not None else None)
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file (a medmm synth manifest.jsonl, rows with report + images, or a "
                         "MIMIC-CXR / IU-Xray folder)")
    if fmt == "auto" and path.lower().endswith(".csv"):
        fmt = "rows"
    if fmt == "auto":
        with open(path, encoding="utf-8") as fh:
            first = next((ln for ln in fh if ln.strip()), "{}")
        try:
            fmt = "synth" if "findings" in json.loads(first) and "attributes" in json.loads(first) else "rows"
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not a JSONL file ({exc.msg})") from None
    return studies_from_synth_manifest(path) if fmt == "synth" else studies_from_rows(path, problems)


def _limit(args: argparse.Namespace) -> int | None:
    """How many studies to use: ``--n-reports``, else the paper's 1,000 with ``--paper-protocol``, else all."""
    return PAPER_REPORTS if args.paper_protocol and not args.n_reports else args.n_reports


def _cmd_checker_data(args: argparse.Namespace) -> int:
    from medmm.reports.checker_data import (
        CheckerDataConfig,
        build_samples,
        export_internvl,
        export_sharegpt,
        sample_key,
        to_eval_rows,
        write_jsonl,
    )

    if not os.path.exists(args.input):
        raise InputError(f"{args.input}: no such file or folder (a medmm synth manifest.jsonl, rows with report + "
                         "images, or a MIMIC-CXR / IU-Xray folder)")
    skipped: list[str] = []
    studies = _read_studies(args.input, args.format, args, skipped)
    if not studies:
        raise InputError(f"{args.input}: no study with a report and an image"
                         + (f" ({len(skipped)} left out; first: {skipped[0]})" if skipped else ""))
    limit = _limit(args)
    if limit:  # a fixed sample of the corpus, by a hash of the study id (the same for every run)
        studies = sorted(studies, key=lambda s: sample_key(s["study_id"]))[:limit]
    src = os.path.abspath(args.input) if os.path.isdir(args.input) else os.path.dirname(os.path.abspath(args.input))
    out = os.path.abspath(args.out)
    for st in studies:  # image paths relative to the output folder (the samples files live there)
        st["images"] = [os.path.relpath(p if os.path.isabs(p) else os.path.join(src, p), out) for p in st["images"]]
    weights: dict[str, float] | None = None
    if args.error_models:
        from medmm.runs import parse_key_values

        items = [i if "=" in i else f"{i}=1" for i in args.error_models.split(",") if i.strip()]  # a bare NAME: 1
        weights = {}
        for name, w in parse_key_values(items, "--error-models", "side swap (every mention)=4").items():
            if w is None:
                w = 1.0
            if isinstance(w, bool) or not isinstance(w, (int, float)):
                raise InputError(f"--error-models {name}={w!r}: the weight must be a number, e.g. {name}=2")
            weights[name] = float(w)
    options: dict[str, Any] = {"clean_per_error": args.clean_per_error, "complex": not args.no_complex,
                               "seed": args.seed}
    if weights:
        options["error_models"] = weights
    cfg = CheckerDataConfig(**options)
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
    summary = {"input": os.path.basename(os.path.normpath(args.input)), "format": args.format,
               "studies": len(studies), "left_out": {"studies": len(skipped), "first": skipped[:5]},
               "splits": counts, "error_models": models,
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
    p.add_argument("--input", required=True, help="a medmm synth manifest.jsonl; rows (JSONL/CSV) with id/study_id, "
                                                   "report, images (paths relative to the file), optional patient_id; "
                                                   "or a MIMIC-CXR or IU-Xray folder (datasets/mimic-cxr.md, "
                                                   "datasets/iu-xray.md)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=("auto", "synth", "rows", "mimic-cxr", "iu-xray"), default="auto")
    p.add_argument("--reports", default=None, help="MIMIC-CXR: the unpacked mimic-cxr-reports folder when the "
                                                   "reports are not beside the images")
    p.add_argument("--metadata", default=None, help="MIMIC-CXR: mimic-cxr-2.0.0-metadata.csv[.gz] (views of the "
                                                    "JPEG release; found in the root when left out)")
    p.add_argument("--images", default=None, help="IU-Xray: the PNG folder (default: images/images_normalized, "
                                                  "images_normalized or images under the input)")
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

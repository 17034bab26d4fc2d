"""``medmm probe build|run|score|report|compare``: argparse wiring and thin handlers."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from medmm._cli import RegistryChoices
from medmm.errors import InputError

# choices from the probe task registry (medmm.probe.tasks), never literals
BENCHES = RegistryChoices("medmm.probe.tasks:task_names")
PARSERS = RegistryChoices("medmm.probe.tasks:parser_names")
PREPARED = RegistryChoices("medmm.probe.tasks:prepare_names")
MODES = RegistryChoices("medmm.probe.tasks:mode_names")
NEGATION_PARSERS = RegistryChoices(lambda: __import__("medmm.probe.tasks", fromlist=["get_task"]).get_task("negation").parsers)


def _write_json(path: str, obj: Any) -> None:
    from medmm.probe._io import write_json

    write_json(path, obj)


def _cmd_build(args: argparse.Namespace) -> int:
    if args.kind == "negation":
        from medmm.probe.build import build_negation

        r = build_negation(args.source, args.out, seed=args.seed, vocabulary=args.vocabulary)
        print(f"wrote {r.out}: {r.n_questions} questions on {r.n_images} images", file=sys.stderr)
        return 0
    from medmm.probe.mine import mine_confusion

    m = mine_confusion(args.source, args.out, semantic=args.semantic_encoder, visual=args.visual_encoder, seed=args.seed,
                       min_semantic=args.min_semantic, max_visual=args.max_visual, max_pairs=args.max_pairs,
                       vocabulary=args.vocabulary)
    print(f"wrote {m.out}: {m.n_pairs} pairs mined from {m.n_images} images "
          f"(semantic {m.semantic_encoder}, visual {m.visual_encoder})", file=sys.stderr)
    return 0


def _model_options(args: argparse.Namespace) -> dict[str, Any]:
    from medmm.runs import parse_key_values

    return parse_key_values(args.model_option or [], "--model-option", "concurrency=16")


def _shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: use K/N, e.g. 0/4") from None
    return k, n


def _cmd_run(args: argparse.Namespace) -> int:
    from medmm.models import load
    from medmm.probe.runner import GenerationOptions, ProbeOptions, run_probe
    from medmm.probe.samples import parse_controls

    controls = parse_controls(args.controls)
    generation = GenerationOptions(system=args.system_prompt, temperature=args.temperature, top_p=args.top_p,
                                   max_new_tokens=args.max_new_tokens, stop=tuple(args.stop), seed=args.gen_seed)
    model = load(args.model, **_model_options(args))
    judge = load(args.judge) if args.judge else None
    llm = load(args.llm) if args.llm else None
    options = ProbeOptions(images=args.images, mode=args.mode, controls=tuple(controls), parser=args.parser,
                           batch_size=args.batch_size, prefix_reduction=args.prefix_reduction, seed=args.seed,
                           cache=args.cache, limit=args.limit, progress=not args.quiet, shard=_shard(args.shard),
                           layout=args.layout, generation=generation)
    r = run_probe(args.bench, args.data, model, args.out, options, judge=judge, llm=llm, model_spec=args.model,
                  judge_spec=args.judge)
    if r.missing_pairs:
        from medmm.probe.confusion import Resolved

        print(Resolved([], r.missing_pairs).message(), file=sys.stderr)
    print(f"{r.n_samples} samples: {r.n_computed} answered now, {r.n_cached} from the cache, {r.n_failed} failed; "
          f"wrote {os.path.join(r.out, 'metrics.json')}", file=sys.stderr)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    if args.bench == "negation":
        from medmm.probe.negation import read_responses, score_negation

        parser = args.parser or "robust"
        s = score_negation(read_responses(args.predictions), parser=parser)
        metrics = s.to_dict()
        line = f"overall {metrics['overall']} (random {metrics['random_baseline']['overall']})"
    else:
        if not args.data:
            raise InputError("--bench confusion needs --data DATASET.json")
        from medmm.probe.confusion import RANDOM_BASELINE, confusion_metrics, outcomes, read_dataset, read_predictions

        pairs = read_dataset(args.data)
        preds = read_predictions(args.predictions)
        known = {(p.pair_id, s) for p in pairs for s in (1, 2)}
        unknown = sorted(set(preds) - known)
        if unknown:
            raise InputError(f"{len(unknown)} prediction(s) name pairs/images not in {args.data}, e.g. pair {unknown[0][0]} "
                             f"image {unknown[0][1]}")
        metrics = confusion_metrics(outcomes(pairs, preds))
        metrics["missing_predictions"] = len(known - set(preds))
        metrics["random_baseline"] = dict(RANDOM_BASELINE)
        line = f"set accuracy {metrics['set_accuracy']:.4f} on {metrics['n_pairs']} pairs"
    _write_json(args.out, metrics)
    print(f"{line}; wrote {args.out}", file=sys.stderr)
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from medmm.probe.prepare import prepare

    prepared, path = prepare(args.benchmark, args.root, out=args.out, layout=args.layout)
    for line in prepared.lines():
        print(line, file=sys.stderr)
    print(f"wrote {path}; run it with: medmm probe run --bench {prepared.bench} --data {path} --model ...",
          file=sys.stderr)
    return 0 if prepared.ok or not args.strict else 1


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from medmm.probe.leaderboard import leaderboard

    board = leaderboard(args.runs, args.out, n_boot=args.n_boot, seed=args.seed)
    print(board.markdown)
    print(f"wrote {', '.join(os.path.basename(f) for f in board.files)} in {args.out}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from medmm.probe.report import build_report

    r = build_report(args.dir, out=args.out, n_boot=args.n_boot, seed=args.seed)
    out = args.out or args.dir
    print(f"wrote {os.path.join(out, 'report.md')}, report.html and {len(r.figures)} plot(s)", file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from medmm.probe.report import compare_runs

    compare_runs(args.dir_a, args.dir_b, out=args.out, n_boot=args.n_boot, seed=args.seed)
    out = args.out or args.dir_b
    print(f"wrote {os.path.join(out, 'compare.md')} and compare.html", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``medmm probe ...`` to the top-level subparsers."""
    probe = sub.add_parser("probe", help="probing benchmarks: negation pairs (ProbMed) and confusion pairs (MediConfusion)")
    cmds = probe.add_subparsers(dest="probe_command", required=True)

    p = cmds.add_parser("build", help="build negation pairs or mine confusion pairs from an annotated collection")
    p.add_argument("kind", choices=BENCHES, metavar="KIND", help="%(choices)s")
    p.add_argument("--from", dest="source", required=True, metavar="MANIFEST_OR_CSV",
                   help="a synthetic manifest.jsonl, or a CSV/JSONL with image, modality, body_part, findings, positions")
    p.add_argument("--out", required=True, help="FILE.json (ProbMed question file / MediConfusion dataset.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocabulary", default=None, help="a copy of medmm/probe/vocabulary.yaml (default: the packaged one)")
    p.add_argument("--semantic-encoder", default="pixels:layout", help="confusion: pixels:layout, vlm:MODEL or hf:PATH")
    p.add_argument("--visual-encoder", default="pixels:texture", help="confusion: pixels:texture, vlm:MODEL or hf:PATH")
    p.add_argument("--min-semantic", type=float, default=None, help="confusion: keep pairs at or above this cosine")
    p.add_argument("--max-visual", type=float, default=None, help="confusion: keep pairs at or below this cosine")
    p.add_argument("--max-pairs", type=int, default=None)
    p.set_defaults(func=_cmd_build)

    p = cmds.add_parser("run", help="run a probe on a model (resumable; results cached per sample)")
    p.add_argument("--bench", choices=BENCHES, required=True, metavar="BENCH", help="probe task: %(choices)s")
    p.add_argument("--data", required=True, help="ProbMed question file or MediConfusion dataset.json")
    p.add_argument("--images", default=None, help="image root (default: the data file's folder)")
    p.add_argument("--layout", choices=("auto", "local", "roco"), default="auto",
                   help="confusion: images as <im_k_local>.jpg (MediConfusion's download script) or by ROCO path "
                        "(--images = roco-dataset/data); auto = local when the record has it")
    p.add_argument("--model", required=True, help="hf:PATH, tiny:llava, http:URL or a YAML config")
    p.add_argument("--model-option", action="append", default=None, metavar="KEY=VALUE",
                   help="a load option of the backend, e.g. concurrency=16 or model=NAME for http (repeatable)")
    p.add_argument("--mode", choices=MODES, default="mc", metavar="MODE", help="answering mode: %(choices)s")
    p.add_argument("--judge", default=None, help="judge model for --mode judge")
    p.add_argument("--llm", default=None, metavar="SPEC",
                   help="the language model alone, on text: llm:PATH (a local text-only checkpoint, e.g. the VLM's "
                        "base LLM; or a VLM checkpoint's own language model). Adds the none and llm variants and "
                        "MMStar's multimodal leakage ML = max(0, score without image - LLM score)")
    p.add_argument("--controls", default="", help="comma-separated: blind, text, region")
    p.add_argument("--parser", choices=PARSERS, default="robust", metavar="PARSER",
                   help="answer parser: %(choices)s (a task accepts robust and its reference's compat rule)")
    p.add_argument("--prefix-reduction", choices=("mean", "sum"), default="mean",
                   help="prefix mode: per-token mean (geometric mean, the reference) or sum of log-probabilities")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--system-prompt", default=None, help="system prompt of every question (every backend)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default; the references' setting)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling (with --temperature > 0)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)")
    p.add_argument("--gen-seed", type=int, default=None, help="sampling seed (hf/tiny: torch; http: the request's seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="result cache (default: OUT/cache.sqlite); share one across runs")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (negation) or pairs (confusion)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="answer only shard K of N (whole images/pairs); shards share --cache, then run once without")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_run)

    p = cmds.add_parser("score", help="score a predictions/response file as the benchmark does")
    p.add_argument("--bench", choices=BENCHES, required=True, metavar="BENCH", help="probe task: %(choices)s")
    p.add_argument("--data", default=None, help="confusion: DATASET.json")
    p.add_argument("--predictions", required=True, help="confusion: PREDS.jsonl; negation: RESPONSES.json (ProbMed)")
    p.add_argument("--parser", choices=NEGATION_PARSERS, default=None, metavar="PARSER",
                   help="negation answers: %(choices)s (probmed-compat: the reference's rule and aggregation)")
    p.add_argument("--out", required=True, help="metrics.json")
    p.set_defaults(func=_cmd_score)

    p = cmds.add_parser("prepare", help="check a downloaded ProbMed / MediConfusion copy (counts, missing images, "
                                        "checksums) and write the manifest `probe run --data` reads")
    p.add_argument("benchmark", choices=PREPARED, metavar="BENCHMARK", help="%(choices)s")
    p.add_argument("--root", required=True, help="the folder you downloaded the benchmark into")
    p.add_argument("--out", default=None, help="folder for manifest.json (default: --root)")
    p.add_argument("--layout", choices=("auto", "local", "roco"), default="auto",
                   help="mediconfusion: images as <im_k_local>.jpg (auto, local) or by ROCO path (roco)")
    p.add_argument("--strict", action="store_true", help="exit 1 unless the copy matches the published one")
    p.set_defaults(func=_cmd_prepare)

    p = cmds.add_parser("report", help="Markdown + HTML report with bootstrap intervals and plots of a run")
    p.add_argument("dir")
    p.add_argument("--out", default=None, help="folder (default: the run folder)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_report)

    p = cmds.add_parser("leaderboard", help="models x categories over many runs: bootstrap intervals, paired "
                                            "differences to the leader, Markdown/HTML/CSV/JSON and a PNG")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders written by medmm probe run (one benchmark)")
    p.add_argument("--out", required=True, help="folder for leaderboard.md/.html/.csv/.json and plots/")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_leaderboard)

    p = cmds.add_parser("compare", help="paired differences of two runs (B - A) with intervals")
    p.add_argument("dir_a")
    p.add_argument("dir_b")
    p.add_argument("--out", default=None, help="folder (default: DIR_B)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_compare)

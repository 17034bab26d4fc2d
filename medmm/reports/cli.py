"""``medmm inject|check|check-eval|check-calibrate``: argparse wiring and thin handlers (the work is medmm.reports)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from medmm._cli import RegistryChoices
from medmm.errors import InputError

# the checker kinds medmm.reports.build_checker knows (its registry), read when the command is parsed or its
# help shown (metavar set: argparse would otherwise read the choices while the parser is built)
CHECKER_KINDS = RegistryChoices("medmm.reports.api:CHECKERS")


def _cmd_inject(args: argparse.Namespace) -> int:
    from medmm.reports.corpus import read_corpus
    from medmm.reports.inject import inject_dataset
    from medmm.reports.taxonomy import TYPE_IDS

    corpus = read_corpus(args.corpus)
    types = tuple(t.strip() for t in args.types.split(",")) if args.types else TYPE_IDS
    rows = inject_dataset(corpus.rows, rate=args.rate, types=types, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    n_err = sum(r["has_error"] for r in rows)
    print(f"wrote {args.out}: {len(rows)} reports, {n_err} with an injected error, "
          f"{len(corpus.skipped)} skipped", file=sys.stderr)
    for where, why in corpus.skipped[:10]:
        print(f"  skipped {where}: {why}", file=sys.stderr)
    return 0


def _read_header_arg(args: argparse.Namespace) -> tuple[object, list[str]]:
    notes: list[str] = []
    header: object = None
    if args.dicom:
        from medmm.imaging.dicom import read_header
        from medmm.imaging.series import iter_files

        path = args.dicom
        if os.path.isdir(path):
            path = next((p for p, reason in iter_files(path) if reason is None), path)
        header = read_header(path).facts
    if args.header:
        try:
            with open(args.header, encoding="utf-8") as fh:
                header = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{args.header}: not a readable JSON object of header facts ({exc})") from exc
    return header, notes


def _cmd_check(args: argparse.Namespace) -> int:
    from medmm.reports import check

    if not os.path.isfile(args.report):
        raise InputError(f"{args.report}: no such report file")
    with open(args.report, "rb") as fh:
        raw = fh.read()
    header, _ = _read_header_arg(args)
    result = check(raw, header=header, checker=args.checker, model=args.model, images=args.image or None)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"{'ERROR SUSPECTED' if result.has_error else 'no error found'} (score {result.score:.2f}, "
              f"checker {result.checker})")
        for f in result.flags:
            print(f"  [{f.type}] {f.start}-{f.end} \"{f.text}\" ({f.evidence}, {f.confidence:.2f}): {f.explanation}")
            for r in f.related:  # the other side of a conflict
                print(f"      and {r.start}-{r.end} \"{r.text}\"")
            if f.model:  # a flag raised from the image (issue 18): which model, and where it looked
                where = (f"; region x {f.region['x1']}-{f.region['x2']}, y {f.region['y1']}-{f.region['y2']} of image "
                         f"{int(f.region.get('image') or 0) + 1}") if f.region else ""
                print(f"      read by {f.model}{where}")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _cmd_check_eval(args: argparse.Namespace) -> int:
    """Evaluate a checker: injected datasets, and/or a real clean corpus (clean + injected + hand edits)."""
    from medmm.reports import RulesConfig, build_checker
    from medmm.reports.evaluate import (
        evaluate,
        read_dataset,
        real_report_datasets,
        run_suite,
        suite_markdown,
        to_markdown,
    )

    if not args.dataset and not args.real:
        raise InputError("check-eval needs a DATASET.jsonl (from medmm inject) or --real CLEAN_REPORTS.jsonl")
    model = None
    if args.checker != "rules":
        from medmm.models import load

        if not args.model:
            raise InputError(f"--checker {args.checker} needs --model SPEC")
        model = load(args.model)
    checker = build_checker(args.checker, model=model, rules_config=RulesConfig(lm_path=args.lm))
    if args.checker != "rules" and not getattr(args, "explain", False):
        checker.explain = False  # type: ignore[attr-defined]  # a VLM flag's span: the impression (--explain: slow)
    if getattr(args, "blind", False):
        if args.checker == "rules":
            raise InputError("--blind is the image-ablated control of a VLM: use it with --checker vlm or ensemble")
        checker.blind = True  # type: ignore[attr-defined]
    datasets: dict[str, list[dict]] = {}
    clean = None
    bad: list = []
    if args.real:  # the real-report corpus comes first
        header = json.loads(args.real_header) if args.real_header else None
        sets, problems = real_report_datasets(args.real, args.split, range(args.seeds), args.hand_edits, header)
        for p in problems:
            print(f"hand edit skipped: {p}", file=sys.stderr)
        name = f"real {os.path.basename(args.real)} ({args.split})"
        clean = sets["clean"]
        datasets[f"{name} / clean"] = clean
        datasets[f"{name} / medmm injector"] = sets["injected"]
        if "hand" in sets:
            datasets[f"{name} / hand edits"] = sets["hand"]
    for path in args.dataset:
        rows, bad_lines = read_dataset(path)
        bad += [(path, n, why) for n, why in bad_lines]
        by_injector: dict[str, list[dict]] = {}
        root = os.path.dirname(os.path.abspath(path))
        for r in rows:
            if r.get("images"):  # paths relative to the dataset file, as audit manifests take them
                r["images"] = [p if os.path.isabs(p) or not os.path.exists(os.path.join(root, p)) and os.path.exists(p)
                               else os.path.join(root, p) for p in r["images"]]  # (else: relative to the current folder)
            by_injector.setdefault(str(r.get("injector") or "medmm"), []).append(r)
        for injector, sub in by_injector.items():
            datasets[f"{os.path.basename(path)} / {injector}"] = sub
    if len(args.dataset) == 1 and not args.real:  # one dataset file: the single-dataset report (+ per injector)
        from medmm.reports.vlm_eval import dataset_extras

        rows = [r for sub in datasets.values() for r in sub]
        seen: dict[int, object] = {}

        def run(r: dict) -> object:  # each row checked once (the per-injector tables reuse the result)
            if id(r) not in seen:
                seen[id(r)] = checker.check(r["report"], r.get("header"), images=r.get("images") or None)
            return seen[id(r)]

        result = evaluate(rows, run)  # type: ignore[arg-type]
        failed = [n for r in seen.values() for n in getattr(r, "notes", []) if n.startswith("VLM checker failed")]
        if failed:  # a row whose model call failed was scored by the rules alone: say so, loudly
            print(f"warning: the VLM failed on {len(failed)} of {len(rows)} rows (scored by the rules alone); "
                  f"first: {failed[0]}", file=sys.stderr)
        result.update(vlm_failures=len(failed), vlm_failure_examples=failed[:3])
        result.update(skipped_lines=bad, checker=args.checker, blind=bool(getattr(args, "blind", False)),
                      model=args.model, **dataset_extras(rows, [seen[id(r)] for r in rows]))
        if len(datasets) > 1:
            result["results"] = {name: evaluate(sub, run) for name, sub in datasets.items()}  # type: ignore[arg-type]
        md = to_markdown(result, f"Report checker evaluation: {args.checker} on {os.path.basename(args.dataset[0])}")
    else:
        result = {"checker": args.checker, "skipped_lines": bad, "results": {}}
        if clean is not None:
            real = {k: v for k, v in datasets.items() if k.startswith("real ")}
            result["results"].update(run_suite(checker, real, clean))
        rest = {k: v for k, v in datasets.items() if not k.startswith("real ")}
        result["results"].update(run_suite(checker, rest))
        md = suite_markdown(result["results"], f"Report checker evaluation: {args.checker}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "check-eval.json"), "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
        with open(os.path.join(args.out, "check-eval.md"), "w", encoding="utf-8") as fh:
            fh.write(md)
    print(md)
    return 0


def _cmd_check_calibrate(args: argparse.Namespace) -> int:
    from medmm.models import load
    from medmm.reports.checker import clean_text
    from medmm.reports.evaluate import read_dataset
    from medmm.reports.vlm_checker import VLMCheckerConfig, calibrate, judge

    rows, _ = read_dataset(args.dataset)
    cfg = VLMCheckerConfig.load(args.config)
    model = load(args.model)
    judgements = judge(model, [clean_text(r["report"], []) for r in rows], None, cfg, complex_=False)
    cfg = calibrate([j.margin for j in judgements], [bool(r["has_error"]) for r in rows], cfg,
                    source=os.path.basename(args.dataset))
    cfg.save(args.out)
    print(f"wrote {args.out}: threshold {cfg.threshold:+.3f}, temperature {cfg.temperature:.3f} ({cfg.calibrated_on})",
          file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("inject", help="inject synthetic errors into a report corpus (with provenance)")
    p.add_argument("corpus", help="folder of .txt, .csv (report column or IU-Xray), .jsonl or a synthetic manifest.jsonl")
    p.add_argument("--out", required=True, help="DATASET.jsonl")
    p.add_argument("--rate", type=float, default=0.5, help="share of reports that get an error")
    p.add_argument("--types", default=None, help="comma-separated taxonomy ids (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_inject)

    p = sub.add_parser("check", help="check one radiology report for errors")
    p.add_argument("report", help="a text file with the report")
    p.add_argument("--dicom", default=None, help="a DICOM file or series folder whose header the report must match")
    p.add_argument("--header", default=None, help="a JSON file of header facts (modality, body_part, laterality, "
                                                   "view_position, sex)")
    p.add_argument("--checker", choices=CHECKER_KINDS, default="rules", metavar="KIND",
                   help="checker: %(choices)s (default %(default)s)")
    p.add_argument("--model", default=None, help="model spec for vlm/ensemble")
    p.add_argument("--image", action="append", default=None, metavar="PATH",
                   help="an image of the study for vlm/ensemble (repeat for several; a DICOM file, series folder, "
                        "NIfTI or PNG/JPEG): the checker's views are chosen from them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("check-eval", help="evaluate a checker: attributable detection per corpus, injector and type")
    p.add_argument("dataset", nargs="*", help="datasets written by medmm inject (rows may name their injector)")
    p.add_argument("--real", default=None, help="a clean real-report corpus (.jsonl): evaluated first, clean + "
                                                 "medmm-injected + --hand-edits")
    p.add_argument("--split", choices=("heldout", "tune", "all"), default="heldout",
                   help="part of --real to use (hash of the report id; the rules were tuned on 'tune')")
    p.add_argument("--hand-edits", default=None, help="hand-made edits of --real (ids, sentence hashes, edits)")
    p.add_argument("--seeds", type=int, default=1, help="injected copies of each --real report")
    p.add_argument("--real-header", default=None, help='header facts of --real reports as JSON, e.g. '
                                                        '\'{"modality": "DX", "body_part": "CHEST"}\'')
    p.add_argument("--lm", default=None, help="plausibility model (scripts/build_report_lm.py; default: packaged)")
    p.add_argument("--checker", choices=CHECKER_KINDS, default="rules", metavar="KIND",
                   help="checker: %(choices)s (default %(default)s)")
    p.add_argument("--model", default=None)
    p.add_argument("--explain", action="store_true", help="a VLM flag names its sentence (one extra SIMPLE scoring "
                   "per sentence) and its region (a COMPLEX answer): slow; without it the flag spans the impression")
    p.add_argument("--blind", action="store_true", help="the image-ablated control: every image of a row is "
                                                         "replaced by a black one of the same size (vlm/ensemble)")
    p.add_argument("--out", default=None, help="folder for check-eval.md and check-eval.json")
    p.set_defaults(func=_cmd_check_eval)

    p = sub.add_parser("check-calibrate", help="calibrate the VLM checker's threshold on a dev dataset")
    p.add_argument("dataset")
    p.add_argument("--model", required=True)
    p.add_argument("--config", default=None, help="starting config (default: the packaged reports/vlm-checker.yaml)")
    p.add_argument("--out", required=True, help="where to write the calibrated config")
    p.set_defaults(func=_cmd_check_calibrate)

"""The ``medmm`` command line. Thin: each command calls one library function.

Bad input ends with exit code 2 and one line on stderr (no traceback); ``--debug`` shows the
traceback. Unexpected errors exit with 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Sequence

from medmm import __version__
from medmm.errors import InputError, MedmmError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


def _cmd_info(args: argparse.Namespace) -> int:
    from medmm.imaging.io import describe

    desc = describe(args.path, workers=args.workers)
    if args.json:
        print(json.dumps(desc.as_dict()))
        return 0
    print(f"{args.path}: {desc.kind}, {len(desc.series)} stack(s)")
    for s in desc.series:
        shape = "x".join(str(v) for v in s.shape)
        spacing = " x ".join(f"{v:.4g}" for v in s.spacing)
        print(f"  series {s.series_uid or '-'}  {s.modality or '-'}  {shape}  spacing {spacing} mm  "
              f"{s.n_files} file(s)  {s.photometric or ''}  {'ok' if s.usable else 'REFUSED (see problems)'}")
        for p in s.problems:
            print(f"    [{p['code']}] {p['message']}")
    if desc.skipped:
        print(f"  {len(desc.skipped)} file(s) skipped:")
        for sk in desc.skipped[:20]:
            print(f"    {sk.path}: {sk.reason}")
        if len(desc.skipped) > 20:
            print(f"    ... and {len(desc.skipped) - 20} more")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from medmm.imaging.index import scan, write_table

    t0 = time.perf_counter()
    result = scan(args.dir, workers=args.workers)
    write_table(result.table, args.out)
    dt = time.perf_counter() - t0
    print(
        f"scanned {result.n_files} file(s) in {dt:.1f} s ({result.n_files / max(dt, 1e-9):.0f} files/s): "
        f"{result.n_series} series, {result.n_skipped} skipped; wrote {args.out}",
        file=sys.stderr,
    )
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from medmm.imaging.io import load_volume
    from medmm.imaging.nifti import save_nifti

    vol = load_volume(args.series, force=args.force, max_voxels=args.max_voxels)
    save_nifti(vol, args.out)
    for p in vol.problems:
        print(f"warning [{p.code}] {p.message}", file=sys.stderr)
    print(f"wrote {args.out}: shape {list(vol.shape)}, spacing {[round(s, 4) for s in vol.spacing]} mm", file=sys.stderr)
    return 0


def _render_boxes(args: argparse.Namespace, vol: Any) -> tuple[str, int | None, list[Any]]:
    """View axis, display slice and display-frame boxes for ``--box-json`` / ``--acquired-slice``."""
    from medmm.regions import Box, Display, Geometry

    geom = Geometry.of(vol)
    if args.acquired_slice is not None:  # the plane as acquired: k in position order
        n = geom.shape[2]
        if not 0 <= args.acquired_slice < n:
            raise InputError(f"--acquired-slice {args.acquired_slice} out of range: the series has {n} slice(s)")
        d = Box(0, 0, 1, 1, slice=None if n == 1 else args.acquired_slice).to_display(geom, args.axis)
        return d.frame.axis, d.slice, []
    if not args.box_json:
        return args.axis or "axial", args.slice, []
    text = args.box_json
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--box-json is not JSON ({exc.msg}): give a box dict such as "
                         '\'{"frame": "acquisition", "slice": 12, "x1": 30, "y1": 40, "x2": 52, "y2": 61}\'') from exc
    boxes = [Box.from_dict(b) for b in (raw if isinstance(raw, list) else [raw])]
    axis = args.axis or next((b.frame.axis for b in boxes if isinstance(b.frame, Display)), None)
    shown = [b.to_display(geom, axis) for b in boxes]
    axis, index = shown[0].frame.axis, shown[0].slice
    if args.slice is not None and args.slice != index:
        raise InputError(f"--slice {args.slice} is not the box's {axis} display slice {index}: leave --slice out")
    return axis, index, [b for b in shown if b.slice == index or args.mip]


def _cmd_render(args: argparse.Namespace) -> int:
    from medmm.imaging.io import load_volume
    from medmm.imaging.views import render, save_png, three_windows
    from medmm.regions import draw

    vol = load_volume(args.path, force=args.force, max_voxels=args.max_voxels)
    axis, index, boxes = _render_boxes(args, vol)
    if args.three_windows:
        names = tuple(w.strip() for w in args.three_windows.split(","))
        if len(names) != 3:
            raise InputError("--three-windows takes three window names, e.g. lung,mediastinum,bone")
        img = three_windows(vol, windows=names, index=index, axis=axis, mip=args.mip)  # type: ignore[arg-type]
    else:
        img = render(vol, window=args.window, index=index, axis=axis, mip=args.mip, frame=args.frame)  # type: ignore[arg-type]
    if boxes:
        import numpy as np

        img = np.asarray(draw(img, boxes, shape=args.box_shape))
        print(json.dumps([b.to_dict() for b in boxes]))  # where the boxes were drawn (display frame)
    save_png(img, args.out)
    where = "" if args.mip else f" {axis} slice {index if index is not None else 'middle'}"
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]}){where}", file=sys.stderr)
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from medmm.synth import SMALL, SynthConfig, synthesize

    t0 = time.perf_counter()
    kinds = tuple(k for k in args.kinds.split(","))
    path = synthesize(args.out, args.n, seed=args.seed, kinds=kinds, workers=args.workers,
                      config=SMALL if args.small else SynthConfig())
    print(f"wrote {args.n} studies and {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _cmd_build_tiny(args: argparse.Namespace) -> int:
    from medmm.models.tiny import build_tiny

    vlm = build_tiny(args.family, seed=args.seed)
    vlm.save(args.out)
    n = sum(p.numel() for p in vlm.model.parameters())
    print(f"wrote {args.out}: tiny {args.family} ({n:,} parameters); load it with --model hf:{args.out}", file=sys.stderr)
    return 0


def _image_for_model(path: str, window: str, index: int | None):  # noqa: ANN202 - PIL image
    from PIL import Image, UnidentifiedImageError

    from medmm.imaging.io import load_volume
    from medmm.imaging.nifti import is_nifti
    from medmm.models.base import ImageView

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isfile(path) and not is_nifti(path) and path.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")):
        try:
            return Image.open(path).convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"{path}: not a readable image ({exc})") from exc
    return ImageView(load_volume(path), window=window, index=index)


def _parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--box {text!r}: give x1,y1,x2,y2 in pixels of the image as shown (x2/y2 exclusive)") from None
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"--box {text!r}: x2 must exceed x1 and y2 must exceed y1")
    return x1, y1, x2, y2


def _cmd_ask(args: argparse.Namespace) -> int:
    from medmm.models import Request, load

    options = {"adapter": args.adapter, "allow_pickle": args.allow_pickle or None,
               "trust_remote_code": args.trust_remote_code or None, "model": args.server_model,
               "device": args.device, "dtype": args.dtype}
    vlm = load(args.model, **options)
    images = [_image_for_model(p, args.window, args.slice) for p in args.image]
    box = _parse_box(args.box) if args.box else None
    if args.vicrop:
        return _ask_vicrop(args, vlm, images, box)
    prompt, boxes = args.prompt, None
    if box is not None:  # a visual prompt: the box drawn on the first image, referred to in the question
        from medmm.models.vicrop import visual_prompt

        prompt = visual_prompt(args.prompt, args.box_shape)
        boxes = [[box]] + [[] for _ in images[1:]]
    request = Request(images=images, prompt=prompt, boxes=boxes, box_shape=args.box_shape)
    out: dict[str, object] = {}
    gen = vlm.generate([request], max_new_tokens=args.max_new_tokens)[0]
    out["text"] = gen.text
    if box is not None:
        out["prompt"] = prompt
    if args.options:
        opts = [o for o in args.options.split("|") if o]
        scores = vlm.score_options([request], opts)[0]
        out["options"] = dict(zip(opts, scores))
    if args.json:
        print(json.dumps(out))
    else:
        print(gen.text)
        for k, v in (out.get("options") or {}).items():  # type: ignore[union-attr]
            print(f"  {k}: {v:.4f}")
    return 0


def _ask_vicrop(args: argparse.Namespace, vlm: object, images: list, box: tuple[float, ...] | None) -> int:
    from medmm.models.vicrop import vicrop

    if len(images) != 1:
        raise InputError("--vicrop works on one --image")
    res = vicrop(vlm, images[0], args.prompt, box=box, margin=args.margin, max_new_tokens=args.max_new_tokens)
    if args.json:
        print(json.dumps(res.to_dict()))
    else:
        print(res.answer)
        print(f"  (crop {res.crop} by {res.method}; full-image answer: {res.answer_full!r}; "
              f"{'changed' if res.changed else 'unchanged'})", file=sys.stderr)
    return 0


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
    result = check(raw, header=header, checker=args.checker, model=args.model)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"{'ERROR SUSPECTED' if result.has_error else 'no error found'} (score {result.score:.2f}, "
              f"checker {result.checker})")
        for f in result.flags:
            print(f"  [{f.type}] {f.start}-{f.end} \"{f.text}\" ({f.evidence}, {f.confidence:.2f}): {f.explanation}")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _cmd_check_eval(args: argparse.Namespace) -> int:
    """Evaluate a checker: injected datasets, and/or a real clean corpus (clean + injected + hand edits)."""
    from medmm.reports import RulesConfig, build_checker
    from medmm.reports.evaluate import (evaluate, read_dataset, real_report_datasets, run_suite, suite_markdown,
                                        to_markdown)

    if not args.dataset and not args.real:
        raise InputError("check-eval needs a DATASET.jsonl (from medmm inject) or --real CLEAN_REPORTS.jsonl")
    model = None
    if args.checker != "rules":
        from medmm.models import load

        if not args.model:
            raise InputError(f"--checker {args.checker} needs --model SPEC")
        model = load(args.model)
    checker = build_checker(args.checker, model=model, rules_config=RulesConfig(lm_path=args.lm))
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
        for r in rows:
            by_injector.setdefault(str(r.get("injector") or "medmm"), []).append(r)
        for injector, sub in by_injector.items():
            datasets[f"{os.path.basename(path)} / {injector}"] = sub
    if len(datasets) == 1 and not args.real:  # one injected dataset: the single-dataset report
        rows = next(iter(datasets.values()))
        result = evaluate(rows, lambda r: checker.check(r["report"], r.get("header")))
        result.update(skipped_lines=bad, checker=args.checker)
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


def _cmd_audit(args: argparse.Namespace) -> int:
    from medmm.audit.runner import audit

    summary = audit(args.input, args.db, checker=args.checker, model=args.model, workers=args.workers,
                    engine=args.engine, ray_address=args.ray_address, limit=args.limit, progress=not args.quiet,
                    threshold=args.threshold)
    print(summary.line(), file=sys.stderr)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from medmm.audit.runner import export

    n = export(args.db, args.out, reviewed_only=args.reviewed_only, redact=args.redact, with_paths=args.with_paths,
               config_key=args.config_key, deid_text=args.deid_text)
    print(f"wrote {args.out}: {n} flag(s)", file=sys.stderr)
    return 0


def _cmd_users_add(args: argparse.Namespace) -> int:
    import getpass

    from medmm.app.auth import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise InputError("the two passwords differ")
    add_user(args.users_file, args.name, args.role, password)
    print(f"user {args.name} ({args.role}) saved in {args.users_file} (scrypt hash, no plaintext)", file=sys.stderr)
    return 0


def _cmd_users_remove(args: argparse.Namespace) -> int:
    from medmm.app.auth import remove_user

    if not remove_user(args.users_file, args.name):
        raise InputError(f"no user {args.name!r} in {args.users_file}")
    print(f"user {args.name} removed from {args.users_file}; their app sessions end at their next action",
          file=sys.stderr)
    return 0


def _cmd_store_verify(args: argparse.Namespace) -> int:
    from medmm.audit.store import Store

    if not os.path.isfile(args.db):
        raise InputError(f"{args.db}: no review store there")
    with Store(args.db, check_triggers=False) as store:
        if args.restore_triggers:
            fixed = store.restore_triggers()
            print(f"re-created trigger(s): {', '.join(fixed) or 'none needed'}", file=sys.stderr)
        report = store.verify()
    for problem in report.trigger_problems:
        print(f"BROKEN: {problem}")
    if report.broken_review is not None:
        print(f"BROKEN: review {report.broken_review}: {report.reason}")
    if not report.ok:
        print(f"{args.db}: the store was changed outside medmm; restore it from a backup before reviewing from it")
        return 1
    print(f"ok: {report.reviews} reviews chained, head {report.head}, all integrity triggers present "
          "(record the head elsewhere to detect a recomputed chain)")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    from importlib.resources import as_file

    from medmm.app.auth import AppConfig
    from medmm.config import files
    from medmm.errors import ConfigError

    cfg = AppConfig.load(args.config)
    db = args.db or cfg.db
    if not os.path.isfile(db):
        raise InputError(f"{db}: no review store; run `medmm audit ... --db {db}` first")
    # The Streamlit script ships as package data (medmm/_apps/report_checker.py, the one copy of
    # apps/report_checker.py): found the same way in a wheel, an editable install or a checkout.
    script = files("_apps/report_checker.py")
    if not script.is_file():
        raise ConfigError("the review app (medmm/_apps/report_checker.py) is missing from this medmm installation; "
                          "reinstall medmm")
    env = dict(os.environ, MEDMM_APP_DB=os.path.abspath(db))
    if args.config:
        env["MEDMM_APP_CONFIG"] = os.path.abspath(args.config)
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        print(f"medmm app: warning: listening on {args.address} exposes the review app (patient data) to the network "
              "without TLS; serve it behind the hospital's TLS reverse proxy and bind to 127.0.0.1 (SECURITY.md)",
              file=sys.stderr)
    print(f"medmm review app on http://{args.address}:{args.port} (store {db}); Ctrl-C to stop", file=sys.stderr)
    with as_file(script) as app:
        # medmm's server: Streamlit's (st.App) behind medmm's session-cookie and security-header middleware,
        # with production settings (medmm.app.server.STREAMLIT_SETTINGS: no tracebacks, no file watcher, ...)
        cmd = [sys.executable, "-m", "medmm.app.server", str(app), "--port", str(args.port), "--address", args.address,
               "--max-upload-mb", str(cfg.upload_max_mb)]
        return _run_forwarding_signals(cmd, env)


def _run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd``; SIGTERM/SIGHUP sent to this process reach it too (a stopped ``medmm app`` leaves no server)."""
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, env=env)
    forwarded = {sig: signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
                 for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the server too (same process group): wait for it
                continue
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            proc.kill()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medmm", description="medmm: medical images for multimodal LLMs")
    parser.add_argument("--version", action="version", version=f"medmm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a DICOM file, DICOM folder or NIfTI file (headers only)")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--workers", type=int, default=1, help="processes for reading headers of a folder")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("scan", help="index a folder tree of DICOM files, one row per series")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="index.parquet or index.csv")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=_cmd_scan)

    def loading(p: argparse.ArgumentParser) -> None:
        p.add_argument("--force", action="store_true",
                       help="apply the documented fallback for series problems instead of refusing")
        p.add_argument("--max-voxels", type=float, default=None,
                       help="pixel budget (default 1e9 or MEDMM_MAX_VOXELS)")

    p = sub.add_parser("convert", help="DICOM series folder (or file) to NIfTI")
    p.add_argument("series")
    p.add_argument("out", help="output .nii or .nii.gz")
    loading(p)
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("render", help="render a slice, MIP or three-window view to PNG")
    p.add_argument("path")
    p.add_argument("--out", required=True)
    p.add_argument("--window", default="file", help="lung, mediastinum, bone, brain, abdomen, file, auto or C,W")
    p.add_argument("--three-windows", default=None, metavar="W1,W2,W3",
                   help="three windows as RGB channels, e.g. lung,mediastinum,bone")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--slice", type=int, default=None, help="display slice index of --axis (default: middle)")
    group.add_argument("--mip", action="store_true", help="maximum intensity projection")
    group.add_argument("--acquired-slice", type=int, default=None, metavar="K",
                       help="the acquired slice K (position order, as manifest boxes count) in the view of the "
                            "acquired planes (coronal for a coronal series)")
    p.add_argument("--axis", choices=("axial", "coronal", "sagittal"), default=None,
                   help="view (default: axial; with --box-json or --acquired-slice, the view of the acquired planes)")
    p.add_argument("--box-json", default=None, metavar="JSON",
                   help="a box dict (or a list, or @file) in any frame, e.g. a manifest box: the slice holding it "
                        "is rendered and the box drawn; its display-frame coordinates are printed")
    p.add_argument("--box-shape", choices=("rectangle", "ellipse", "arrow"), default="rectangle")
    p.add_argument("--frame", type=int, default=0, help="time frame of a 4-D volume")
    loading(p)
    p.set_defaults(func=_cmd_render)
    p = sub.add_parser("synth", help="write synthetic studies with known truth (DICOM, NIfTI, label maps, reports)")
    p.add_argument("--out", required=True, help="output folder (manifest.jsonl + studies/)")
    p.add_argument("--n", type=int, default=12, help="number of studies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", default="ct,cxr,mr", help="comma-separated: ct, cxr, mr")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--small", action="store_true", help="small images (fast; for tests and smoke runs)")
    p.set_defaults(func=_cmd_synth)

    models = sub.add_parser("models", help="model utilities").add_subparsers(dest="models_command", required=True)
    p = models.add_parser("build-tiny", help="write a tiny random model checkpoint (offline) that hf: loads")
    p.add_argument("--family", choices=("llava", "llava-next", "qwen2-vl", "qwen2.5-vl"), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=_cmd_build_tiny)

    __import__("medmm.finetune.cli", fromlist=["add_parsers"]).add_parsers(sub)  # finetune, grounding-eval

    p = sub.add_parser("ask", help="ask a vision-language model about images")
    p.add_argument("--model", required=True, help="hf:PATH, tiny:llava|qwen2-vl, http:URL or a YAML config")
    p.add_argument("--image", action="append", default=[], help="DICOM file/folder, NIfTI or PNG/JPEG (repeatable)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--options", default=None, help='candidate answers to score, e.g. "yes|no"')
    p.add_argument("--json", action="store_true", help='print {"text": ..., "options": {...}}')
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--window", default="file", help="display window for DICOM/NIfTI images")
    p.add_argument("--slice", type=int, default=None, help="slice of a volume (default: middle)")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (hf models)")
    p.add_argument("--allow-pickle", action="store_true", help="allow .bin/.pt weights (they can run code)")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--server-model", default=None, help="model name for http servers")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (hf models)")
    p.add_argument("--dtype", default=None, help="auto, float32, bfloat16, float16 (hf models)")
    p.add_argument("--box", default=None, metavar="X1,Y1,X2,Y2",
                   help="region in pixels of the (first) image as shown: drawn as a visual prompt, or cropped with --vicrop")
    p.add_argument("--box-shape", choices=("rectangle", "ellipse", "arrow"), default="rectangle",
                   help="how the visual prompt is drawn")
    p.add_argument("--vicrop", action="store_true",
                   help="ask again with [full image, crop of --box] (LLaVA-family without --box: attention crop)")
    p.add_argument("--margin", type=float, default=0.5, help="ViCrop context margin, a fraction of the box size")
    p.set_defaults(func=_cmd_ask)

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
    p.add_argument("--checker", choices=("rules", "vlm", "ensemble"), default="rules")
    p.add_argument("--model", default=None, help="model spec for vlm/ensemble")
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
    p.add_argument("--checker", choices=("rules", "vlm", "ensemble"), default="rules")
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None, help="folder for check-eval.md and check-eval.json")
    p.set_defaults(func=_cmd_check_eval)

    p = sub.add_parser("check-calibrate", help="calibrate the VLM checker's threshold on a dev dataset")
    p.add_argument("dataset")
    p.add_argument("--model", required=True)
    p.add_argument("--config", default=None, help="starting config (default: the packaged reports/vlm-checker.yaml)")
    p.add_argument("--out", required=True, help="where to write the calibrated config")
    p.set_defaults(func=_cmd_check_calibrate)

    p = sub.add_parser("audit", help="check many (study, report) pairs into a review store; resumable")
    p.add_argument("input", help="folder with one sub-folder per study, manifest .csv/.jsonl, or synthetic manifest")
    p.add_argument("--db", required=True, help="the review store (SQLite file; created if missing)")
    p.add_argument("--checker", choices=("rules", "vlm", "ensemble"), default="rules")
    p.add_argument("--model", default=None)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", default=None, help="a running Ray cluster (e.g. auto or ray://head:10001)")
    p.add_argument("--limit", type=int, default=None, help="check at most N not-yet-done studies")
    p.add_argument("--threshold", type=float, default=None,
                   help="decision threshold on the report score (default: the checker's calibrated default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("export", help="export flags (with the latest review decision) from a review store")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True, help="FILE.csv, FILE.parquet or FILE.jsonl")
    p.add_argument("--reviewed-only", action="store_true")
    p.add_argument("--redact", action="store_true",
                   help="also drop the flagged report text, explanations and reviewer names "
                        "(column selection only; DICOM de-identification is a separate command)")
    p.add_argument("--with-paths", action="store_true",
                   help="include the study's source path (off by default: folder names often carry patient names)")
    p.add_argument("--config-key", default=None, help="only the flags of this configuration (default: all)")
    p.add_argument("--deid-text", action="store_true",
                   help="scrub names, dates, IDs, phones, addresses and ages > 89 from the report-derived columns")
    p.set_defaults(func=_cmd_export)

    users = sub.add_parser("users", help="review-app users").add_subparsers(dest="users_command", required=True)
    p = users.add_parser("add", help="add or update a user (prompts for the password: 12-256 characters, "
                                     "not containing the user name)")
    p.add_argument("name")
    p.add_argument("--role", choices=("reviewer", "admin"), default="reviewer")
    p.add_argument("--users-file", default="configs/users.yaml")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (for scripts)")
    p.set_defaults(func=_cmd_users_add)
    p = users.add_parser("remove", help="remove a user (their live app sessions end at once)")
    p.add_argument("name")
    p.add_argument("--users-file", default="configs/users.yaml")
    p.set_defaults(func=_cmd_users_remove)

    store = sub.add_parser("store", help="review-store maintenance").add_subparsers(dest="store_command", required=True)
    p = store.add_parser("verify", help="check the integrity triggers and the review hash chain (exit 1 if broken)")
    p.add_argument("--db", required=True)
    p.add_argument("--restore-triggers", action="store_true",
                   help="re-create missing or altered triggers first (after a deliberate repair)")
    p.set_defaults(func=_cmd_store_verify)

    p = sub.add_parser("app", help="start the report review app (Streamlit)")
    p.add_argument("--db", default=None, help="the review store (default: from the config)")
    p.add_argument("--config", default=None, help="app config YAML (e.g. configs/app.yaml)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=_cmd_app)
    __import__("medmm.probe.cli", fromlist=["add_parsers"]).add_parsers(sub)  # medmm probe build|run|score|report|compare
    __import__("medmm.deid.cli", fromlist=["add_parsers"]).add_parsers(sub)  # medmm deid IN OUT
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "max_voxels", None) is not None:
        args.max_voxels = int(args.max_voxels)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except MedmmError as exc:
        if args.debug:
            raise
        print(f"medmm {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"medmm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: say so, briefly
        if args.debug:
            raise
        print(
            f"medmm {args.command}: internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The README's demo: the clinician workflow on built-in data, offline.

Writes synthetic studies with known truth (``medmm synth``), then runs the CLI on them and on
real files shipped with pydicom and pydicom-data (a series with a gap, a series with mixed
orientations, a MONOCHROME1 radiograph): ``info``, ``convert``, ``render`` and ``scan``.
Everything lands in ``demo-out/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from medmm.cli import main as cli


def _modality(study: Any) -> str | None:
    return study.header.modality if study.header is not None else None


def _findings(study: Any) -> tuple[Any, ...]:
    return study.truth.findings if study.truth is not None else ()


def _first(records: list[Any], modality: str) -> Any | None:
    """The first study (medmm.studies.Study) of a modality, one with findings if there is one."""
    return next((r for r in records if _modality(r) == modality and _findings(r)), None) or next(
        (r for r in records if _modality(r) == modality), None)


def finding_view_args(finding: Any) -> list[str]:
    """``medmm render`` arguments that show a finding's middle truth box, drawn, on the slice that
    holds it. Manifest boxes are acquisition pixels (slice in position order); render converts
    them to the display plane (``--box-json``), so coronal and feet-first series show the right slice.
    ``finding``: a :class:`medmm.studies.TruthFinding` or a manifest finding dict."""
    boxes = finding["boxes"] if isinstance(finding, dict) else finding.boxes
    box = boxes[len(boxes) // 2]
    return ["--box-json", json.dumps(box if isinstance(box, dict) else box.to_dict())]


def run(out: str, n: int = 9, seed: int = 0) -> int:
    import data_store
    import pydicom

    os.makedirs(out, exist_ok=True)
    synth = os.path.join(out, "synthetic")
    failures = 0
    print(f"$ medmm synth --out {synth} --n {n} --seed {seed}    # synthetic CT, chest X-ray and MR studies with truth",
          flush=True)
    if cli(["synth", "--out", synth, "--n", str(n), "--seed", str(seed)]) != 0:
        return 1
    from medmm.studies import iter_studies

    records = list(iter_studies(synth))  # the one study record (medmm.studies), not the manifest by hand
    ct = _first(records, "CT")
    tests = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    store = os.path.join(os.path.dirname(data_store.__file__), "data")
    steps: list[tuple[str, list[str], bool]] = []
    if ct is not None:
        series = ct.image_paths[0]
        first = _findings(ct)[0] if _findings(ct) else None
        where = finding_view_args(first) if first is not None else []
        what = f"{first.type} ({first.side or ''})" if first is not None else "normal study"
        steps += [
            (f"describe {ct.study_id} (CT)", ["info", series], True),
            ("convert it to NIfTI", ["convert", series, os.path.join(out, "ct.nii.gz")], True),
            (f"render the slice through its {what}", ["render", series, "--window", "lung", *where,
                                                      "--out", os.path.join(out, "ct-lung.png")], True),
            ("three windows as RGB", ["render", series, "--three-windows", "lung,mediastinum,bone", *where,
                                      "--out", os.path.join(out, "ct-3windows.png")], True),
            ("coronal MIP", ["render", series, "--mip", "--axis", "coronal", "--window", "bone",
                             "--out", os.path.join(out, "ct-mip.png")], True),
        ]
    cxr = next((r for r in records if _modality(r) in ("DX", "CR")), None)
    if cxr is not None:
        steps.append((f"a synthetic chest radiograph ({_modality(cxr)})",
                      ["render", cxr.image_paths[0], "--out", os.path.join(out, "cxr.png")], True))
    steps += [
        ("a real series with a gap (pydicom dicomdirtests CT2): reported, not averaged",
         ["info", os.path.join(tests, "dicomdirtests", "77654033", "CT2")], True),
        ("...and converting it is refused", ["convert", os.path.join(tests, "dicomdirtests", "77654033", "CT2"),
                                            os.path.join(out, "ct2.nii.gz")], False),
        ("a real series with two orientations (CT2N): split", ["info", os.path.join(tests, "dicomdirtests", "98892001", "CT2N")], True),
        ("a real MONOCHROME1 radiograph, displayed inverted", ["render", os.path.join(store, "RG1_UNCI.dcm"),
                                                              "--out", os.path.join(out, "cr-monochrome1.png")], True),
        ("index the synthetic studies (headers only)", ["scan", synth, "--out", os.path.join(out, "index.csv")], True),
        ("inject report errors into half of the synthetic reports",
         ["inject", os.path.join(synth, "manifest.jsonl"), "--out", os.path.join(out, "reports-with-errors.jsonl"),
          "--rate", "0.5", "--seed", str(seed)], True),
        ("evaluate the rule checker on them", ["check-eval", os.path.join(out, "reports-with-errors.jsonl"),
                                               "--out", os.path.join(out, "check-eval")], True),
        ("audit them into a review store (resumable; run it twice to see the resume)",
         ["audit", os.path.join(out, "reports-with-errors.jsonl"), "--db", os.path.join(out, "audit.sqlite"),
          "--quiet"], True),
        ("export the flags for review", ["export", "--db", os.path.join(out, "audit.sqlite"),
                                         "--out", os.path.join(out, "flags.csv")], True),
    ]
    if ct is not None:
        # one report with a left/right swap, checked against its own DICOM header
        head, _, impression = ct.report.partition("IMPRESSION:")
        bad = head + "IMPRESSION:" + impression.replace("right", "LEFT_").replace("left", "right").replace("LEFT_", "left")
        with open(os.path.join(out, "report-with-error.txt"), "w", encoding="utf-8") as fh:
            fh.write(bad.replace("FINDINGS:", "TECHNIQUE: MRI of the chest.\n\nFINDINGS:", 1))
        steps.append(("check a report (sides swapped in one section? MRI named for a CT)",
                      ["check", os.path.join(out, "report-with-error.txt"), "--dicom",
                       ct.image_paths[0]], True))
    for title, argv, should_pass in steps:
        print(f"\n$ medmm {' '.join(argv)}    # {title}", flush=True)
        rc = cli(argv)
        if (rc == 0) != should_pass:
            failures += 1
            print(f"!! unexpected exit code {rc}", file=sys.stderr)
    if ct is not None:
        print(f"\nReport of {ct.study_id} (truth: {[(f.type, f.side) for f in _findings(ct)]}):\n")
        print(ct.report)
    print(f"Demo outputs are in {out}/ ({'all steps behaved as expected' if not failures else f'{failures} unexpected'}); "
          f"the studies and manifest.jsonl are in {synth}/.")
    from medmm.app.auth import add_user

    users = os.path.join(out, "users.yaml")
    add_user(users, DEMO_USER, "admin", DEMO_PASSWORD)
    with open(os.path.join(out, "app.yaml"), "w", encoding="utf-8") as fh:
        fh.write("db: audit.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 30\n")
    return 1 if failures else 0


DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medmm.demo")
    parser.add_argument("--out", default="demo-out")
    parser.add_argument("--n", type=int, default=9, help="synthetic studies to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-app", action="store_true", help="do not start the review app at the end")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    rc = run(args.out, args.n, args.seed)
    if rc or args.no_app:
        return rc
    print(f"\nStarting the review app: open http://127.0.0.1:{args.port} and log in as "
          f"user '{DEMO_USER}' with password '{DEMO_PASSWORD}' (Ctrl-C to stop).", flush=True)
    return cli(["app", "--config", os.path.join(args.out, "app.yaml"), "--port", str(args.port)])


if __name__ == "__main__":
    sys.exit(main())

"""Build the report plausibility model (word and word-pair counts) that ``rule_real_word`` reads.

Default (what ships as ``medmm/reports/report_lm.json``): medmm's own hand-written reports
(``tests/data/hand_reports.txt``, ``tests/data/reports_ct_mr.txt``), a hand-written phrase list
(``scripts/data/report_phrases.txt``) and synthetic reports from ``medmm.synth``. No licensed corpus
goes into the packaged model: the IU collection (``../shared/data/real_reports``) is CC BY-NC-ND,
so statistics derived from it are not shipped.

With ``--corpus FILE`` (a .jsonl/.csv/folder readable by ``medmm.reports.corpus.read_corpus``) the
model is trained on *your* reports as well and written where ``--out`` says; pass that file to the
checker with ``RulesConfig(lm_path=...)`` (``medmm check --lm FILE``). ``--ids-from`` restricts the
corpus to ids listed in a split file (for a dev/held-out protocol).

    python scripts/build_report_lm.py                                   # the packaged model
    python scripts/build_report_lm.py --corpus my_reports.jsonl --out /tmp/my_lm.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWN_SOURCES = (os.path.join(ROOT, "tests", "data", "hand_reports.txt"), os.path.join(ROOT, "tests", "data", "reports_ct_mr.txt"))
PHRASES = os.path.join(ROOT, "scripts", "data", "report_phrases.txt")
PACKAGED = os.path.join(ROOT, "medmm", "reports", "report_lm.json")


def own_texts(n_synth: int = 300) -> list[str]:
    from medmm.reports.corpus import read_corpus
    from medmm.synth import SMALL, synthesize

    texts = []
    for path in OWN_SOURCES:
        if os.path.isfile(path):
            texts += [r["report"] for r in read_corpus(path).rows]
    with open(PHRASES, encoding="utf-8") as fh:
        texts += [ln for ln in fh.read().splitlines() if ln.strip() and not ln.startswith("#")]
    with tempfile.TemporaryDirectory(prefix="medmm-lm-") as d:
        texts += [r["report"] for r in read_corpus(synthesize(d, n_synth, seed=7, config=SMALL, workers=1)).rows]
    return texts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=None, help="your own reports to add (not shipped)")
    ap.add_argument("--ids-from", default=None, help="a file of report ids (one a line) to keep from --corpus")
    ap.add_argument("--out", default=None, help=f"output JSON (default {os.path.relpath(PACKAGED, ROOT)})")
    args = ap.parse_args(argv)
    from medmm.reports.language import ReportLM

    texts = own_texts()
    source = "medmm hand-written reports + phrases + synthetic reports"
    if args.corpus:
        from medmm.reports.corpus import read_corpus

        rows = read_corpus(args.corpus).rows
        if args.ids_from:
            with open(args.ids_from, encoding="utf-8") as fh:
                keep = {ln.strip() for ln in fh if ln.strip()}
            rows = [r for r in rows if r["id"] in keep]
        texts += [r["report"] for r in rows]
        source += f" + {len(rows)} reports of {os.path.basename(args.corpus)}"
        if not args.out:
            print("--corpus needs --out: a model trained on your reports is not written into the package",
                  file=sys.stderr)
            return 2
    lm = ReportLM.from_texts(texts, source)
    out = args.out or PACKAGED
    lm.save(out)
    print(f"wrote {out}: {len(lm.unigrams)} words, {len(lm.bigrams)} word pairs ({source})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

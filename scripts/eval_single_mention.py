"""Single-mention recall and clean false-alarm rate of the rule checker on real reports, per error family.

The clean reports are split into *tune* and *held-out* by :func:`medmm.reports.evaluate.split_of` (a hash of the
report id); the rules were worked out on the tune part only. For every report of the chosen part and every family
of :mod:`medmm.reports.inject_single` that finds a place in it, one edited copy is made (``--seeds`` copies with
different random choices). A family's recall is the share of its edits on which the checker raises an
*attributable* flag (span or related span on the edit, or the edited sentence quoted); the clean FPR is the share of
the part's unedited reports with any raised flag. The reports are read in place (``../shared``); nothing of them is
written unless ``--out`` names a file (keep it outside the repository: the IU licence is CC BY-NC-ND).

    python scripts/eval_single_mention.py --corpus ../shared/data/real_reports/iu_dev.jsonl --split heldout
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run(corpus: str, split: str, seeds: int, lm_path: str | None = None, show: int = 0) -> dict:
    from medmm.reports.checker import RulesChecker, RulesConfig
    from medmm.reports.corpus import iter_jsonl
    from medmm.reports.evaluate import attributable, split_of
    from medmm.reports.flags import Flag
    from medmm.reports.inject_single import SINGLE_FAMILIES, single_mention_rows

    reports = [row for _, row, problem in iter_jsonl(corpus)
               if not problem and row and (split == "all" or split_of(str(row["id"])) == split)]
    checker = RulesChecker(RulesConfig(lm_path=lm_path))
    t0 = time.process_time()
    clean_flagged, per_rule_fp = 0, Counter()
    for rep in reports:
        res = checker.check(rep["text"])
        if res.has_error:
            clean_flagged += 1
            per_rule_fp.update({f.rule for f in res.flags})
    fam: dict[str, Counter] = defaultdict(Counter)
    by_rule: dict[str, Counter] = defaultdict(Counter)
    misses: dict[str, list] = defaultdict(list)
    for seed in range(seeds):
        for row in single_mention_rows(reports, seed=seed):
            res = checker.check(row["report"], row["header"])
            err = row["errors"][0]
            shown: list[Flag] = res.flags if res.has_error else []
            hits = [f for f in shown if attributable(f, err)]
            c = fam[row["family"]]
            c["n"] += 1
            c["found"] += bool(hits)
            c["span_on_edit"] += any(s < err["end"] and err["start"] < e for f in hits for s, e in f.spans())
            for f in hits:
                by_rule[row["family"]][f.rule] += 1
            if not hits and len(misses[row["family"]]) < show:
                misses[row["family"]].append((err["edited_sentence"], err["detail"], [f.rule for f in res.flags]))
    total_n = sum(c["n"] for c in fam.values())
    total_found = sum(c["found"] for c in fam.values())
    return {
        "corpus": os.path.basename(corpus), "split": split, "reports": len(reports), "seeds": seeds,
        "clean_fpr": clean_flagged / len(reports) if reports else None, "clean_flagged": clean_flagged,
        "clean_flags_by_rule": dict(per_rule_fp),
        "single_mention_recall": total_found / total_n if total_n else None, "edits": total_n, "found": total_found,
        "families": {f: {"n": fam[f]["n"], "found": fam[f]["found"],
                         "recall": fam[f]["found"] / fam[f]["n"] if fam[f]["n"] else None,
                         "span_on_edit": fam[f]["span_on_edit"], "rules": dict(by_rule[f])}
                     for f in SINGLE_FAMILIES},
        "misses": {f: v for f, v in misses.items()},
        "cpu_seconds": round(time.process_time() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, help="clean real reports (JSONL with id and text)")
    ap.add_argument("--split", default="heldout", choices=("tune", "heldout", "all"))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--lm", default=None, help="a plausibility model (scripts/build_report_lm.py)")
    ap.add_argument("--show-misses", type=int, default=0, help="print up to N missed edits per family (tune only!)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here (never the reports)")
    args = ap.parse_args(argv)
    if args.show_misses and args.split != "tune":
        ap.error("--show-misses reads the edits: use it on the tune part only")
    res = run(args.corpus, args.split, args.seeds, args.lm, args.show_misses)
    misses = res.pop("misses")
    print(f"{res['split']}: {res['reports']} reports, clean FPR {res['clean_fpr']:.3f} ({res['clean_flagged']}), "
          f"single-mention recall {res['single_mention_recall']:.3f} ({res['found']}/{res['edits']}), "
          f"{res['cpu_seconds']} s CPU")
    print(f"  clean flags by rule: {res['clean_flags_by_rule']}")
    for f, d in res["families"].items():
        rate = "-" if d["recall"] is None else f"{d['recall']:.3f}"
        print(f"  {f:18s} {d['found']:4d}/{d['n']:<4d} {rate}  span on edit {d['span_on_edit']}  {d['rules']}")
    for f, items in misses.items():
        for sent, detail, rules in items:
            print(f"  MISS {f}: {detail} | {sent} | flags {rules}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Calibrate the rule checker's flag confidences and its default threshold on the *tune* part of the dev corpus.

Writes ``medmm/reports/calibration.json`` (package data next to the taxonomy): per rule family, per rule,
the measured precision of the rule's flags, used as the flag's confidence:

* positives: flags attributable to an error medmm's injector put into a tune report (one error per report,
  ``--seeds`` copies), and flags on clean tune reports that the reviewed file lists as genuine errors of
  the original (``tests/data/reports_reviewed_flags.jsonl``);
* negatives: every other flag on a clean tune report (a false alarm), and flags on an injected report that
  are not attributable to its error and were not raised on its clean original.

Clean and injected reports enter in equal numbers, so a confidence is "the precision of this rule when half
of the reports carry an error"; it is smoothed as (tp + 1) / (tp + fp + 2) and a rule seen fewer than
``--min-flags`` times keeps its family's prior.

Rules that the mixed injection rarely triggers are measured on more errors of their own kind: single-mention
errors (``medmm.reports.inject_single``, one per family and tune report), each taxonomy type is also injected alone (``--per-type-seeds`` copies), and the header rules on *header flips* — a tune report
whose header states another patient sex, view, image laterality or body part (the header is the error; a flag of
the rule that reads that attribute is a true positive, and the clean reports, read with a plausible header —
chest, PA, a random sex — give the false alarms). Which flags each row rests on is kept in the table (tp, fp). The default threshold is the lowest report score (noisy-OR
of the flag confidences) whose precision on that mix is at least ``--min-precision`` (0.90), from
``medmm.metrics.threshold_for_precision``. The held-out part is never read here.

    python scripts/calibrate_report_rules.py --corpus ../shared/data/real_reports/iu_dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REVIEWED = os.path.join(ROOT, "tests", "data", "reports_reviewed_flags.jsonl")
RULE_EDITS = os.path.join(ROOT, "tests", "data", "reports_calibration_edits.jsonl")
OUT = os.path.join(ROOT, "medmm", "reports", "calibration.json")
CHEST_DX = {"modality": "DX", "body_part": "CHEST"}
HAND = -2  # the "seed" of the authors' edits among the injected rows
THIN = 10  # a row resting on fewer true-positive flags than this says so (its confidence is mostly the smoothing)


def thin_note(flags_tp: int, hand: int, flags_fp: int) -> str | None:
    """What the ``note`` of a row says (printed by the README's rule table) when it rests on few true-positive flags
    or mostly on the authors' edits; None for a row measured on the injected and clean reports."""
    src = f", {hand} of them on the authors' edits of tune reports" if hand else ""
    if flags_tp < THIN:
        return (f"thin: {flags_tp} true-positive flags{src} and {flags_fp} false alarms on the tune split; the dev "
                "corpus offers few errors of this kind, so the confidence is mostly the (tp+1)/(tp+fp+2) smoothing")
    if 2 * hand > flags_tp:
        return (f"rests on {flags_tp} true-positive flags{src} (the injectors find few places for this error in the "
                f"dev corpus) and {flags_fp} false alarms on the tune split")
    return None


def read_reviewed(path: str = REVIEWED) -> set[tuple[str, str]]:
    """(report id, rule) pairs a reviewer judged to be genuine errors of the original report."""
    out = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and not line.startswith("#"):
                rec = json.loads(line)
                out.add((rec["id"], rec["rule"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, help="the clean dev reports (JSONL with id and text)")
    ap.add_argument("--seeds", type=int, default=2, help="injected copies of the tune reports")
    ap.add_argument("--min-precision", type=float, default=0.90)
    ap.add_argument("--min-flags", type=int, default=1)
    ap.add_argument("--per-type-seeds", type=int, default=1, help="copies injected with one taxonomy type at a time")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--extra", nargs=2, action="append", default=[], metavar=("CORPUS", "EDITS"),
                    help="another dev corpus (its tune split, read with its own header) and hand edits of it: the "
                         "flags on its clean reports are false alarms and the edits' attributable flags true "
                         "positives (edits weighted to as many as the clean reports). They count in the rule rows "
                         "(rules the radiograph corpus never triggers: chest CT findings, "
                         "/work/ctmr_dev/cdestaging_ct.jsonl tests/data/reports_cdestaging_tune_edits.jsonl); the "
                         "threshold is still chosen on the main corpus's reports, but scored with those rows, so it "
                         "can move too. Named in the table's source.")
    args = ap.parse_args(argv)

    from medmm import metrics
    from medmm.reports.checker import RulesChecker, RulesConfig
    from medmm.reports.evaluate import apply_hand_edits, attributable, read_real_corpus
    import random

    from medmm.reports.flags import RULES
    from medmm.reports.inject import inject_dataset
    from medmm.reports.registry import FAMILIES as PRIORS
    from medmm.reports.taxonomy import TYPE_IDS

    checker = RulesChecker(RulesConfig(threshold=0.0))  # every flag raised, whatever its confidence
    reviewed = read_reviewed()
    rows = read_real_corpus(args.corpus, "tune", CHEST_DX)
    rng = random.Random(0)
    for r in rows:  # a plausible header of a chest radiograph: the clean reports' false alarms of the header rules
        r["header"] = {**CHEST_DX, "view_position": "PA", "patient_sex": rng.choice("MF")}
    tp: Counter = Counter()
    fp: Counter = Counter()
    scores: list[tuple[bool, list[str]]] = []  # (report has an error, rules that flagged it)

    def read_clean(corpus_rows: list[dict]) -> dict[str, Counter]:
        """Each clean report's flags by rule; a flag on a reviewed genuine slip counts as a true positive, any other
        as a false alarm (tp/fp); the main corpus's reports also give the threshold its clean scores."""
        flags_of: dict[str, Counter] = {}
        for r in corpus_rows:
            res = checker.check(r["report"], r["header"])
            flags_of[r["id"]] = Counter(f.rule for f in res.flags)
            genuine = {f.rule for f in res.flags if (r["id"], f.rule) in reviewed}
            for f in res.flags:
                (tp if f.rule in genuine else fp)[f.rule] += 1
            if corpus_rows is rows:
                scores.append((bool(genuine), [f.rule for f in res.flags]))
        return flags_of

    clean_flags = read_clean(rows)
    n_clean = len(rows)
    injected = [(s, x) for s in range(args.seeds) for x in inject_dataset(rows, rate=1.0, seed=s) if x["has_error"]]
    for k, t in enumerate(TYPE_IDS):  # every type alone as well: rules of rare kinds get errors of their kind
        for s in range(args.per_type_seeds):
            injected += [(-1, x) for x in inject_dataset(rows, rate=1.0, types=(t,), seed=1000 + 31 * k + s)
                         if x["has_error"]]
    # single-mention errors (medmm.reports.inject_single: an edit that disagrees with a cue of the same report), one
    # copy per family that finds a place in a tune report: the single-mention rules get errors of their kind
    from medmm.reports.inject_single import single_mention_rows

    by_id = {r["id"]: r for r in rows}

    for x in single_mention_rows([{"id": r["id"], "text": r["report"]} for r in rows], seed=args.seeds):
        x["header"] = {**by_id[x["id"]]["header"], **(x["header"] or {})}
        injected.append((-1, x))
    made, problems = apply_hand_edits(rows, RULE_EDITS)  # errors of the kinds the injection rarely makes
    if problems:
        print("\n".join(f"calibration edit skipped: {p}" for p in problems), file=sys.stderr)
    injected += [(HAND, x) for x in made]
    flips = [("patient_sex", {"M": "F", "F": "M"}), ("view_position", {"PA": "AP"}), ("body_part", {"CHEST": "HEAD"}),
             ("laterality", None)]
    for r in rows:  # header flips: the header is the error; the rule reading that attribute should flag the report
        for attr, swap in flips:
            old = r["header"].get(attr)
            new = swap.get(old) if swap else rng.choice("LR")
            if new:
                x = {**r, "header": {**r["header"], attr: new}, "has_error": True,
                     "errors": [{"type": "metadata", "start": 0, "end": len(r["report"]), "header_attr": attr}]}
                injected.append((-1, x))
    weight = n_clean / max(len(injected), 1)  # equal numbers of clean and error reports
    header_rule = {"patient_sex": "header_sex", "view_position": "header_view", "body_part": "header_body_part",
                   "laterality": "header_laterality"}
    wtp: dict[str, float] = defaultdict(float)
    wfp: dict[str, float] = defaultdict(float)
    raw: Counter = Counter()  # flags judged per rule, unweighted (what --min-flags counts)
    raw_tp: Counter = Counter()  # true-positive flags, unweighted (a row resting on few of them says so)
    raw_fp: Counter = Counter()
    hand_tp: Counter = Counter()  # of raw_tp: on the authors' edits (tests/data/reports_calibration_edits.jsonl)

    def judge_text_error(flags: list, err: dict, inherited: Counter, w: float, hand: bool) -> None:
        """A report with one text error: a flag on it is a true positive, a flag its clean original had already is
        neither, any other flag a false alarm (weighted by ``w``)."""
        for f in flags:
            raw[f.rule] += 1
            if attributable(f, err):
                wtp[f.rule] += w
                raw_tp[f.rule] += 1
                hand_tp[f.rule] += hand
            elif inherited[f.rule] > 0:
                inherited[f.rule] -= 1
            else:
                wfp[f.rule] += w
                raw_fp[f.rule] += 1

    for seed, x in injected:
        err = x["errors"][0]
        res = checker.check(x["report"], x["header"])
        inherited = Counter(clean_flags.get(x["id"], Counter()))  # flags the clean original had already
        if "header_attr" not in err:
            judge_text_error(res.flags, err, inherited, weight, seed == HAND)
        else:  # a header flip: only the header rules are judged on it
            for f in res.flags:
                raw[f.rule] += 1
                if f.rule == header_rule[err["header_attr"]]:
                    wtp[f.rule] += weight
                    raw_tp[f.rule] += 1
                elif f.rule.startswith("header_") and inherited[f.rule] <= 0:
                    wfp[f.rule] += weight
                    raw_fp[f.rule] += 1
                else:
                    inherited[f.rule] -= 1
        if seed == 0:  # the threshold is chosen on one error copy per clean report (prevalence 1:1)
            scores.append((True, [f.rule for f in res.flags]))
    for corpus, edits in args.extra:  # other modalities' dev text: rule rows only (the threshold stays the corpus's)
        xrows = read_real_corpus(corpus, "tune")
        xclean = read_clean(xrows)
        xmade, xproblems = apply_hand_edits(xrows, edits)
        if xproblems:
            print("\n".join(f"calibration edit skipped ({edits}): {p}" for p in xproblems), file=sys.stderr)
        xweight = len(xrows) / max(len(xmade), 1)
        for x in xmade:
            judge_text_error(checker.check(x["report"], x["header"]).flags, x["errors"][0],
                             Counter(xclean.get(x["id"], Counter())), xweight, True)
    families: dict[str, dict] = {fam: {"prior": prior, "rules": {}} for fam, prior in PRIORS.items()}
    for rule, (family, _) in RULES.items():
        t, f = tp[rule] + wtp[rule], fp[rule] + wfp[rule]
        if raw[rule] + tp[rule] + fp[rule] < args.min_flags:
            continue
        row = {"confidence": round((t + 1) / (t + f + 2), 3), "tp": round(t, 1), "fp": round(f, 1),
               "flags_tp": raw_tp[rule] + tp[rule], "flags_fp": raw_fp[rule] + fp[rule]}
        note = thin_note(row["flags_tp"], hand_tp[rule], row["flags_fp"])
        if note:
            row["note"] = note
        families[family]["rules"][rule] = row
    table = {"families": families}

    def confidence(rule: str) -> float:
        fam = RULES[rule][0]
        entry = families[fam]["rules"].get(rule)
        return entry["confidence"] if entry else families[fam]["prior"]

    y_true = [truth for truth, _ in scores]
    y_score = [1.0 - _prod(1.0 - confidence(r) for r in set(rules)) if rules else 0.0 for _, rules in scores]
    thr = metrics.threshold_for_precision(y_true, y_score, args.min_precision)
    threshold = round(thr if thr is not None else 0.99, 3)
    achieved = metrics.binary(y_true, [s >= threshold for s in y_score])
    table.update({"threshold": threshold, "min_precision": args.min_precision,
                  "source": (f"tune split of {os.path.basename(args.corpus)}: {n_clean} clean reports + "
                             f"{len(injected)} with one injected error (weighted 1:1); report precision "
                             f"{achieved.precision:.3f}, recall {achieved.recall:.3f} at the threshold"
                             + "".join(f"; rule rows also measured on the tune split of {os.path.basename(c)} and "
                                       f"the hand edits {os.path.basename(e)}" for c, e in args.extra))})
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump({k: table[k] for k in ("source", "threshold", "min_precision", "families")}, fh, indent=2)
        fh.write("\n")
    print(f"wrote {args.out}: threshold {threshold} ({table['source']})", file=sys.stderr)
    for fam, t in families.items():
        for rule, e in t["rules"].items():
            print(f"  {fam:13s} {rule:24s} confidence {e['confidence']:.3f} (tp {e['tp']}, fp {e['fp']}; flags "
                  f"{e['flags_tp']}/{e['flags_fp']}){' THIN' if 'note' in e else ''}", file=sys.stderr)
    return 0


def _prod(values) -> float:  # noqa: ANN001
    p = 1.0
    for v in values:
        p *= v
    return p


if __name__ == "__main__":
    sys.exit(main())

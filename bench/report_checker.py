"""Report checker: quality on real radiologist reports first, then on medmm's own corpora; speed beside negspacy.

Quality (``medmm.reports.evaluate``, attributable detection: a flag on or quoting the edited sentence):

* **real reports** — the IU chest radiograph reports of ``../shared/data/real_reports/iu_dev.jsonl`` when present
  (CC BY-NC-ND; read in place, never copied), held-out part of the dev split: the clean reports, errors from
  medmm's injector, and the hand-made edits of ``tests/data/reports_hand_edits.jsonl``;
* medmm's own corpora — the hand-written chest reports (``tests/data/hand_reports.txt``), the structured CT/MR
  reports (``tests/data/reports_ct_mr.txt``) and synthetic reports (``medmm synth``) with injected errors. These
  were written by this project and are the easier figures.

Beside medmm: a **library baseline** (spaCy ``sentencizer`` + ``EntityRuler`` with medmm's finding vocabulary +
negspacy's NegEx, and a findings-vs-impression comparison).

Speed, one process, same reports, same run: the whole medmm rule checker vs the negspacy pipeline alone
(``nlp(report)``), each timed over one pass of *distinct* reports (the real ones when present), median of five
passes, medmm's per-sentence caches cleared before each of its passes: both run cold on the text and warm on the words,
as in a long-running audit meeting new reports (medmm's word tables stay loaded; so do spaCy's vocabulary and its
tokenizer cache, which is keyed by white-space-delimited chunk, i.e. by word: the counterpart of medmm's word tables,
not of its sentence caches; clearing it and not medmm's word tables would favour medmm, session 8 checked: 10.31 G
instead of 9.46 G instructions for the peer's pass). Needs ``requirements-bench.txt`` (spaCy,
negspacy).
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HAND = os.path.join(ROOT, "tests", "data", "hand_reports.txt")
CT_MR = os.path.join(ROOT, "tests", "data", "reports_ct_mr.txt")
EDITS = os.path.join(ROOT, "tests", "data", "reports_hand_edits.jsonl")
REAL = os.path.join(os.environ.get("MEDMM_SHARED", os.path.join(ROOT, "..", "shared")), "data", "real_reports",
                    "iu_dev.jsonl")
CHEST_DX = {"modality": "DX", "body_part": "CHEST"}


def own_corpora(n_synth: int = 200) -> dict[str, list[dict[str, Any]]]:
    from medmm.reports.corpus import read_corpus
    from medmm.synth import SMALL, synthesize

    with tempfile.TemporaryDirectory(prefix="medmm-rc-") as d:
        path = synthesize(d, n_synth, seed=123, config=SMALL)
        synth = read_corpus(path).rows
    return {"hand-written chest": read_corpus(HAND).rows, "hand-written CT/MR": read_corpus(CT_MR).rows,
            "synthetic": synth}


def build_baseline() -> Any:
    import spacy
    from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)

    from medmm.reports.lexicon import FINDINGS

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    terms = {"nodule": ["nodule", "nodules", "granuloma"], "mass": ["mass", "masses", "tumor"], "cyst": ["cyst", "cysts"],
             "effusion": ["effusion", "effusions", "pleural effusion", "pleural effusions"],
             "pneumothorax": ["pneumothorax"], "consolidation": ["consolidation", "pneumonia"],
             "atelectasis": ["atelectasis"], "opacity": ["opacity", "opacities"], "edema": ["edema"],
             "cardiomegaly": ["cardiomegaly"], "fracture": ["fracture", "fractures"], "hemorrhage": ["hemorrhage"]}
    assert set(terms) <= set(FINDINGS)
    ruler.add_patterns([{"label": k.upper(), "pattern": [{"LOWER": w} for w in t.split()]} for k, ts in terms.items()
                        for t in ts])
    nlp.add_pipe("negex", config={"ent_types": [k.upper() for k in terms]})
    return nlp


_IMP = re.compile(r"\b(?:IMPRESSION|CONCLUSION)S?\s*:", re.I)


def baseline_check(nlp: Any, report: str) -> Any:
    """The library baseline as a checker: a finding present in one section and negated in the other is an error
    (the flag covers the impression, so it is attributable only to impression edits or quoted ones)."""
    from medmm.reports.flags import CheckResult, Flag

    m = _IMP.search(report)
    if not m:
        return CheckResult(False, 0.0, [], "baseline")
    f_doc, i_doc = nlp(report[: m.start()]), nlp(report[m.end():])
    f = {(e.label_, bool(e._.negex)) for e in f_doc.ents}
    hits = [e for e in i_doc.ents if (e.label_, not e._.negex) in f]
    flags = [Flag("contradiction", m.end() + e.sent.start_char, m.end() + e.sent.end_char, e.sent.text,
                  "finding polarity differs between sections", 1.0, "text", "baseline") for e in hits]
    return CheckResult(bool(flags), float(bool(flags)), flags, "baseline")


class _Baseline:
    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp

    def check(self, report: str, header: Any = None) -> Any:
        return baseline_check(self.nlp, report)


def quality(seeds: int = 3) -> dict[str, Any]:
    from medmm.reports import build_checker
    from medmm.reports.evaluate import real_report_datasets, run_suite
    from medmm.reports.inject import inject_dataset

    ours, base = build_checker("rules"), _Baseline(build_baseline())
    out: dict[str, Any] = {"seeds": seeds}
    if os.path.isfile(REAL):
        sets, _ = real_report_datasets(REAL, "heldout", range(1), EDITS, CHEST_DX)
        named = {"real / clean": sets["clean"], "real / medmm injector": sets["injected"], "real / hand edits": sets["hand"]}
        out["real"] = {"medmm": run_suite(ours, named, sets["clean"]), "baseline": run_suite(base, named, sets["clean"])}
    for name, rows in own_corpora().items():
        ds = [r for s in range(seeds) for r in inject_dataset(rows, rate=0.5, seed=s)]
        out[name] = {"medmm": run_suite(ours, {name: ds})[name], "baseline": run_suite(base, {name: ds})[name]}
    return out


def speed(passes: int = 5) -> dict[str, Any]:
    from medmm.reports import build_checker
    from medmm.reports.analysis import clear_caches
    from medmm.reports.corpus import read_corpus

    if os.path.isfile(REAL):
        reports, source = [r["report"] for r in read_corpus(REAL).rows], "distinct real IU reports"
    else:
        reports = [r["report"] for name, rows in own_corpora().items() for r in rows]
        source = "medmm's own reports (real reports absent)"
    nlp, checker = build_baseline(), build_checker("rules")
    for r in reports:  # load vocabularies and the word-level caches of both once
        nlp(r)
        checker.check(r)

    def timed(fn: Any) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for r in reports:
            fn(r)
        return time.perf_counter() - t0, time.process_time() - c0

    t_ours, t_nlp, c_ours, c_nlp = [], [], [], []
    for _ in range(passes):
        clear_caches()
        t, c = timed(checker.check)
        t_ours.append(t)
        c_ours.append(c)
        t, c = timed(nlp)
        t_nlp.append(t)
        c_nlp.append(c)
    n = len(reports)
    ours, lib = n / statistics.median(t_ours), n / statistics.median(t_nlp)
    # CPU time of this process too: on a machine shared with other jobs, wall-clock ratios swing with their load
    cpu_ours, cpu_lib = n / statistics.median(c_ours), n / statistics.median(c_nlp)
    return {"n_reports": n, "source": source, "passes": passes, "medmm_rules": ours, "negspacy_pipeline": lib,
            "ratio": ours / lib, "cpu_medmm_rules": cpu_ours, "cpu_negspacy_pipeline": cpu_lib,
            "cpu_ratio": cpu_ours / cpu_lib, "cpu_ratio_per_pass": [b / a for a, b in zip(c_ours, c_nlp)]}


def _row(name: str, r: dict[str, Any]) -> str:
    a, s = r["attributable"], r["simple"]
    rec = "—" if a["recall"] is None else f"{a['recall']:.3f}"
    return (f"  {name:34s} FPR {r['clean']['fpr'] if r['clean']['fpr'] is not None else 0:.3f}  precision "
            f"{(s['precision'] if s['precision'] == s['precision'] else 0):.3f}  attributable recall {rec} "
            f"({a['found']}/{a['detectable']} text-detectable)")


def report(q: dict[str, Any], s: dict[str, Any] | None = None) -> str:
    """The bench's summary; ``report(run())`` (bench/__main__.py) or ``report(quality, speed)``."""
    if s is None:
        q, s = q["quality"], q["speed"]
    lines = []
    if "real" in q:
        lines.append("REAL radiologist reports (IU dev, held-out part):")
        for who in ("medmm", "baseline"):
            for name, r in q["real"][who].items():
                lines.append(_row(f"{who}: {name}", r))
    lines.append(f"medmm's own corpora (written by this project), injected errors in half the reports, {q['seeds']} seeds:")
    for name, v in q.items():
        if name in ("real", "seeds"):
            continue
        for who in ("medmm", "baseline"):
            lines.append(_row(f"{who}: {name}", v[who]))
    lines.append(f"speed on {s['n_reports']} {s['source']}, one process, median of {s['passes']} passes (medmm's "
                 f"sentence caches cleared before each): medmm rules "
                 f"{s['medmm_rules']:.0f} reports/s; negspacy pipeline alone {s['negspacy_pipeline']:.0f}/s "
                 f"(medmm {s['ratio']:.2f}x); CPU time of the process: {s['cpu_medmm_rules']:.0f} vs "
                 f"{s['cpu_negspacy_pipeline']:.0f} reports/s (medmm {s['cpu_ratio']:.2f}x; per pass "
                 + " / ".join(f"{x:.2f}" for x in s["cpu_ratio_per_pass"]) + ")")
    return "\n".join(lines)


def run(seeds: int = 3) -> dict[str, Any]:
    return {"quality": quality(seeds), "speed": speed()}


if __name__ == "__main__":
    import sys

    only_speed = "--speed" in sys.argv
    q = {"seeds": 0} if only_speed else quality()
    print(report(q, speed()))

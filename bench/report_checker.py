"""Report checker: quality on injected errors and speed, beside a check assembled from libraries.

Corpora: reports from the synthetic generator (``medmm synth``) and the 105 hand-written
reports of ``tests/data/hand_reports.txt`` (different phrasing). Errors of the kinds text and
header can reveal are injected into half the reports (seeds 0-4). Compared, in the same run:

* **medmm** rule checker (``medmm.reports.check``);
* **library baseline**: spaCy ``sentencizer`` + ``EntityRuler`` (medmm's finding vocabulary) +
  negspacy's NegEx, and a findings-vs-impression comparison (a finding present in one section
  and negated in the other is flagged) — the check the notes describe as the state of the art
  assembled from existing tools.

Speed: reports per second in one process on the clean chest reports (CT and radiographs).
Needs ``requirements-bench.txt`` (spaCy, negspacy).
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
HAND = os.path.join(os.path.dirname(HERE), "tests", "data", "hand_reports.txt")


def corpora(n_synth: int = 200) -> dict[str, list[dict[str, Any]]]:
    from medmm.reports.corpus import read_corpus
    from medmm.synth import SMALL, synthesize

    with tempfile.TemporaryDirectory(prefix="medmm-rc-") as d:
        path = synthesize(d, n_synth, seed=123, config=SMALL)
        synth = read_corpus(path).rows
    return {"synthetic": synth, "hand-written": read_corpus(HAND).rows}


def build_baseline() -> Any:
    import spacy
    from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)

    from medmm.reports.analysis import LEXICON

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    terms = {"nodule": ["nodule", "nodules", "granuloma"], "mass": ["mass", "masses", "tumor"], "cyst": ["cyst", "cysts"],
             "effusion": ["effusion", "effusions", "pleural effusion", "pleural effusions"],
             "pneumothorax": ["pneumothorax"], "consolidation": ["consolidation", "pneumonia"],
             "atelectasis": ["atelectasis"], "opacity": ["opacity", "opacities"], "edema": ["edema"],
             "cardiomegaly": ["cardiomegaly"], "fracture": ["fracture", "fractures"], "hemorrhage": ["hemorrhage"]}
    assert set(terms) <= set(LEXICON)
    ruler.add_patterns([{"label": k.upper(), "pattern": [{"LOWER": w} for w in t.split()]} for k, ts in terms.items()
                        for t in ts])
    nlp.add_pipe("negex", config={"ent_types": [k.upper() for k in terms]})
    return nlp


_IMP = re.compile(r"\b(?:IMPRESSION|CONCLUSION)S?\s*:", re.I)


def baseline_check(nlp: Any, report: str) -> bool:
    m = _IMP.search(report)
    if not m:
        return False
    f_doc, i_doc = nlp(report[: m.start()]), nlp(report[m.end():])
    f = {(e.label_, bool(e._.negex)) for e in f_doc.ents}
    i = {(e.label_, bool(e._.negex)) for e in i_doc.ents}
    return any((label, not neg) in f for label, neg in i)


def run(seeds: int = 5) -> dict[str, Any]:
    from medmm.reports import check
    from medmm.reports.evaluate import evaluate
    from medmm.reports.inject import inject_dataset
    from medmm.reports.taxonomy import TEXT_HEADER_TYPES

    nlp = build_baseline()
    out: dict[str, Any] = {"seeds": seeds}
    data = corpora()
    for name, rows in data.items():
        ds = [r for s in range(seeds) for r in inject_dataset(rows, rate=0.5, types=TEXT_HEADER_TYPES, seed=s)]
        ours = evaluate(ds, lambda r: check(r["report"], header=r.get("header")))
        from medmm.reports.checker import CheckResult

        base = evaluate(ds, lambda r: CheckResult(baseline_check(nlp, r["report"]), float(baseline_check(nlp, r["report"])), []))
        out[name] = {"ours": ours, "baseline": base}
    chest = [r["report"] for rows in data.values() for r in rows
             if (r.get("header") or {}).get("body_part", "CHEST") == "CHEST"]
    reports = chest * max(1, 3000 // max(len(chest), 1))
    check(reports[0])
    nlp(reports[0])

    def rate(fn) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for r in reports:
                fn(r)
            times.append(time.perf_counter() - t0)
        return len(reports) / statistics.median(times)

    out["speed"] = {"n_reports": len(reports), "medmm_rules": rate(lambda r: check(r)),
                    "negspacy_pipeline": rate(lambda r: nlp(r)),
                    "negspacy_check": rate(lambda r: baseline_check(nlp, r))}
    return out


def report(r: dict[str, Any]) -> str:
    lines = ["report checker, injected text/header-visible errors (laterality, negation, measurement, contradiction, "
             f"interval, transcription, metadata), 50 % of reports, {r['seeds']} seeds"]
    for name in ("synthetic", "hand-written"):
        o, b = r[name]["ours"], r[name]["baseline"]
        so, sb = o["simple"], b["simple"]
        lines.append(f"  {name:12s} medmm: precision {so['precision']:.3f} recall {so['recall']:.3f} "
                     f"FPR {so['false_positive_rate']:.3f} COMPLEX {o['complex']['accuracy']:.3f} "
                     f"(n={o['n_reports']}) | library baseline: precision {sb['precision']:.3f} recall "
                     f"{sb['recall']:.3f} FPR {sb['false_positive_rate']:.3f}")
    s = r["speed"]
    lines.append(f"  speed on {s['n_reports']} clean chest reports, one process: medmm rules {s['medmm_rules']:.0f} "
                 f"reports/s; negspacy pipeline alone {s['negspacy_pipeline']:.0f}/s "
                 f"({s['medmm_rules'] / s['negspacy_pipeline']:.2f}x); negspacy + section comparison "
                 f"{s['negspacy_check']:.0f}/s")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))

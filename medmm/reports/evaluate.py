"""``medmm check-eval``: score a checker on datasets with known errors — attributable, per corpus,
per injector and per error type.

A detection counts only when it is *attributable*: a flag whose span overlaps the edited text,
or whose explanation quotes the edited sentence. A flag elsewhere in a report with an error is a
false alarm, not a detection (``has_error`` figures, which do not care where the flag is, are
given beside). Recall is reported over the errors the injector judged text-detectable
(``text_detectable``) and over all errors. Counts and rates come from :mod:`medmm.metrics`.

Real reports: :func:`real_report_datasets` builds, from a clean corpus (the IU dev reports), the
clean reports, the same reports with errors from medmm's injector, and the hand-made edits of
``tests/data/reports_hand_edits.jsonl`` reconstructed against the corpus (that file holds only
ids, sentence hashes and the edit, never report text). :func:`split_of` assigns a report to the
``tune`` or ``heldout`` part of the dev corpus by a hash of its id, so figures measured on
``heldout`` were not tuned on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

from medmm import metrics
from medmm.reports.flags import CheckResult, Flag
from medmm.reports.taxonomy import TYPE_IDS


def split_of(report_id: str) -> str:
    """``tune`` (~70 %) or ``heldout`` (~30 %), fixed by the SHA-256 of the report id (first 8 hex digits mod 10)."""
    return "tune" if int(hashlib.sha256(report_id.encode()).hexdigest()[:8], 16) % 10 < 7 else "heldout"


def read_dataset(path: str) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Rows of a dataset written by ``medmm inject`` (bad lines are skipped with their reason)."""
    from medmm.errors import InputError
    from medmm.reports.corpus import iter_jsonl

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such dataset file")
    rows, bad = [], []
    for n, row, problem in iter_jsonl(path):
        if problem or "report" not in row or "has_error" not in row:
            bad.append((n, problem or "missing 'report' or 'has_error'"))
            continue
        rows.append(row)
    return rows, bad


def attributable(flag: Flag, error: dict[str, Any]) -> bool:
    """Does ``flag`` concern ``error``: its span or one of its related spans (the other side of a conflict)
    overlaps the edit, or it quotes the edited sentence (or one sentence of an edit that spans several)?"""
    if on_edit(flag, error):
        return True
    edited = (error.get("edited_sentence") or "").strip()
    if len(edited) < 8:
        return False
    quoted = [q for q in flag.explanation.split('"')[1::2] if len(q) >= 8]
    return edited in flag.explanation or any(q in edited for q in quoted)


def on_edit(flag: Flag, error: dict[str, Any]) -> bool:
    """Does the flag's span, or one of its related spans, overlap the edited text (what the clinician must change)?"""
    return any(s < error["end"] and error["start"] < e for s, e in flag.spans())


def _rate(num: int, den: int) -> float | None:
    """medmm.metrics' one empty-denominator convention, in the JSON form these results are written in (null)."""
    return metrics.json_ratio(num, den)


def evaluate(rows: Sequence[dict[str, Any]], run: Callable[[dict[str, Any]], CheckResult]) -> dict[str, Any]:
    """Run ``run`` on every row; SIMPLE (has_error) metrics, attributable recall per type and error model,
    clean-report false alarms, and flag-span precision."""
    y_true, y_pred, y_score, any_flag = [], [], [], []
    per_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_model: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_rule: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # flag id -> raised / attributable
    span_hit = span_flags = on_edit_hits = 0
    conf: list[float] = []
    correct: list[bool] = []
    t0 = time.perf_counter()
    for row in rows:
        res = run(row)
        errors = row.get("errors") or []
        y_true.append(bool(row["has_error"]))
        y_pred.append(res.has_error)
        y_score.append(res.score)
        shown = [f for f in res.flags if res.has_error]  # flags of a report below the threshold are not raised
        any_flag.append(bool(res.flags))
        for f in shown:
            hit = any(attributable(f, e) for e in errors)
            span_flags += 1
            span_hit += hit
            on_edit_hits += hit and any(on_edit(f, e) for e in errors)
            per_rule[f.rule or f.type]["raised"] += 1
            per_rule[f.rule or f.type]["attributable"] += hit
            conf.append(f.confidence)
            correct.append(hit)
        for e in errors:
            found = any(attributable(f, e) for f in shown)
            for key, table in ((e["type"], per_type), (f"{e['type']}: {e.get('model') or '?'}", per_model)):
                d = table[key]
                d["n"] += 1
                d["has_error"] += res.has_error
                d["found"] += found
                if e.get("text_detectable", True):
                    d["detectable"] += 1
                    d["detectable_found"] += found
                    d["type_agrees"] += found and any(f.type == e["type"] and attributable(f, e) for f in shown)
    seconds = time.perf_counter() - t0
    simple = metrics.binary(y_true, y_pred)
    clean = [p for p, t in zip(y_pred, y_true) if not t]
    clean_any = [a for a, t in zip(any_flag, y_true) if not t]
    det = sum(d["detectable"] for d in per_type.values())
    det_found = sum(d["detectable_found"] for d in per_type.values())
    auroc = metrics.auroc(y_true, y_score)
    return {
        "n_reports": len(rows), "n_with_error": int(sum(y_true)), "seconds": round(seconds, 3),
        "reports_per_s": round(len(rows) / seconds, 1) if seconds else None,
        "simple": {**simple.to_dict(), "auroc": None if math.isnan(auroc) else round(auroc, 4)},
        "clean": {"n": len(clean), "flagged": int(sum(clean)), "fpr": _rate(int(sum(clean)), len(clean)),
                  "any_flag": int(sum(clean_any)), "any_flag_rate": _rate(int(sum(clean_any)), len(clean_any))},
        "attributable": {"detectable": det, "found": det_found, "recall": _rate(det_found, det),
                         "all": sum(d["n"] for d in per_type.values()),
                         "all_found": sum(d["found"] for d in per_type.values())},
        "by_type": {t: dict(per_type[t]) for t in TYPE_IDS if t in per_type},
        "by_model": {k: dict(v) for k, v in sorted(per_model.items())},
        # per flag id of the rule registry (and any other checker's flags by their rule name): raised, attributable
        "by_rule": {k: {**v, "precision": _rate(v["attributable"], v["raised"])} for k, v in sorted(per_rule.items())},
        "flags": {"raised": span_flags, "attributable": span_hit, "precision": _rate(span_hit, span_flags),
                  # of the attributable flags, those whose span or related span lies on the edited words
                  "on_edit": on_edit_hits, "span_on_edit": _rate(on_edit_hits, span_hit),
                  "calibration": metrics.calibration(correct, conf, 5).to_dict() if conf else None},
    }


# ------------------------------------------------------------------ real reports: clean, injected, hand edits
def read_real_corpus(path: str, split: str | None = None, header: dict | None = None) -> list[dict[str, Any]]:
    """Rows ``{"id", "report", "header"}`` of a JSONL corpus (``text`` or ``report``), optionally one split."""
    from medmm.reports.corpus import read_corpus

    rows = read_corpus(path).rows
    out = []
    for r in rows:
        if split and split != "all" and split_of(r["id"]) != split:
            continue
        out.append({"id": r["id"], "report": r["report"], "header": r.get("header") or header})
    return out


def sentence_hash(sentence: str) -> str:
    """The id of an original sentence in the hand-edit file (so the file holds no report text)."""
    return hashlib.sha1(" ".join(sentence.split()).encode("utf-8")).hexdigest()[:12]


def apply_hand_edits(rows: Sequence[dict[str, Any]], edits_path: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Reconstruct the hand-made error reports: each edit names a report id, the hash of one of its
    sentences, and what to do (``replace`` ``old`` by ``new`` in it, ``insert_after`` it, or ``delete`` it).
    Returns the dataset rows and the edits that could not be applied (with the reason)."""
    from medmm.reports.sections import split_sentences
    from medmm.reports.taxonomy import ERROR_TYPES, complex_class

    by_id = {r["id"]: r for r in rows}
    out, problems = [], []
    with open(edits_path, encoding="utf-8") as fh:
        edits = [json.loads(ln) for ln in fh if ln.strip() and not ln.startswith("#")]
    for n, e in enumerate(edits, start=1):
        row = by_id.get(e["id"])
        if row is None:
            continue  # another split
        if e["type"] not in ERROR_TYPES:
            problems.append(f"edit {n}: unknown type {e['type']}")
            continue
        text = row["report"]
        sent = next((s for s in split_sentences(text) if sentence_hash(s.text) == e["sentence"]), None)
        if sent is None:
            problems.append(f"edit {n} ({e['id']}): sentence {e['sentence']} not found")
            continue
        op = e.get("op", "replace")
        if op == "replace":
            if e["old"] not in sent.text:
                problems.append(f"edit {n} ({e['id']}): {e['old']!r} not in the sentence")
                continue
            edited = sent.text.replace(e["old"], e["new"], 1)
            start, new_text = sent.start, text[: sent.start] + edited + text[sent.end:]
            end = start + len(edited)
        elif op == "insert_after":
            edited = e["new"]
            start = sent.end + 1
            new_text, end = text[: sent.end] + " " + edited + text[sent.end:], start + len(edited)
        elif op == "delete":
            edited, new_text = "", text[: sent.start] + text[sent.end:].lstrip(" ")
            start, end = sent.start, sent.start + 1
        else:
            problems.append(f"edit {n}: unknown op {op}")
            continue
        err = {"type": e["type"], "complex": complex_class(e["type"]), "original_sentence": sent.text,
               "edited_sentence": edited, "start": start, "end": end, "detail": e.get("note", ""), "model": "hand",
               "text_detectable": bool(e.get("text_detectable", True))}
        out.append({"id": f"{e['id']}#hand{n}", "report": new_text, "header": row.get("header"), "has_error": True,
                    "errors": [err], "injector": "hand", "corpus": "real"})
    return out, problems


def real_report_datasets(corpus_path: str, split: str = "heldout", seeds: Iterable[int] = (0,),
                         hand_edits: str | None = None, header: dict | None = None
                         ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Datasets on real reports: ``clean``, ``injected`` (medmm's injector, one error in every report it
    can edit, per seed) and ``hand`` (the hand-made edits), each row tagged with corpus and injector."""
    from medmm.reports.inject import inject_dataset

    rows = read_real_corpus(corpus_path, split, header)
    clean = [{**r, "has_error": False, "errors": [], "injector": "none", "corpus": "real"} for r in rows]
    injected = []
    for seed in seeds:
        for r in inject_dataset(rows, rate=1.0, seed=seed):
            if r["has_error"]:
                injected.append({**r, "id": f"{r['id']}#s{seed}", "corpus": "real"})
    out = {"clean": clean, "injected": injected}
    problems: list[str] = []
    if hand_edits:
        out["hand"], problems = apply_hand_edits(rows, hand_edits)
    return out, problems


# ------------------------------------------------------------------ report
def _f(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def type_table(result: dict[str, Any], title: str) -> list[str]:
    lines = [f"| {title} | errors | text-detectable | attributable found | recall (detectable) | type agrees | "
             "has_error |", "|---|---|---|---|---|---|---|"]
    for t, d in result["by_type"].items():
        lines.append(f"| {t} | {d.get('n', 0)} | {d.get('detectable', 0)} | {d.get('detectable_found', 0)} | "
                     f"{_f(_rate(d.get('detectable_found', 0), d.get('detectable', 0)))} | {d.get('type_agrees', 0)} | "
                     f"{d.get('has_error', 0)} |")
    a = result["attributable"]
    lines.append(f"| **all** | {a['all']} | {a['detectable']} | {a['found']} | **{_f(a['recall'])}** | | "
                 f"{result['simple']['tp']} |")
    return lines


def to_markdown(result: dict[str, Any], title: str = "Report checker evaluation") -> str:
    """One dataset's result as Markdown (attributable recall per type first, then SIMPLE figures)."""
    s, c = result["simple"], result["clean"]
    lines = [f"# {title}", "", f"{result['n_reports']} reports, {result['n_with_error']} with an error; "
             f"{_f(result['reports_per_s'])} reports/s.", ""]
    if result["attributable"]["all"]:
        lines += ["## Attributable detection (a flag on or quoting the edited sentence)", ""]
        lines += type_table(result, "type") + [""]
    lines += ["## SIMPLE (does the report contain an error?)", "",
              "| precision | recall | F1 | AUROC | FPR (clean reports flagged) | clean reports with any flag |",
              "|---|---|---|---|---|---|",
              f"| {_f(s['precision'])} | {_f(s['recall'])} | {_f(s['f1'])} | {_f(s['auroc'])} | "
              f"{_f(c['fpr'])} ({c['flagged']}/{c['n']}) | {c['any_flag']} |", "",
              f"Raised flags attributable to an error: {result['flags']['attributable']}/{result['flags']['raised']} "
              f"({_f(result['flags']['precision'])})."]
    return "\n".join(lines) + "\n"


def suite_markdown(results: dict[str, dict[str, Any]], title: str) -> str:
    """Several datasets (corpus/injector) in one report: the headline table first."""
    lines = [f"# {title}", "", "| corpus / injector | reports | with error | FPR (clean) | precision (has_error) | "
             "attributable recall (detectable) | attributable recall (all) |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        a = r["attributable"]
        precision = r["simple"]["precision"] if r["n_with_error"] else None  # no error: precision says nothing
        lines.append(f"| {name} | {r['n_reports']} | {r['n_with_error']} | {_f(r['clean']['fpr'])} | "
                     f"{_f(precision)} | {_f(a['recall'])} | {_f(_rate(a['all_found'], a['all']))} |")
    for name, r in results.items():
        if r["attributable"]["all"]:
            lines += ["", f"## {name}: per error type", ""] + type_table(r, "type")
    return "\n".join(lines) + "\n"


def run_suite(checker: Any, datasets: dict[str, list[dict[str, Any]]],
              clean: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate one checker on named datasets (``"corpus / injector"`` -> rows), in the order given.

    With ``clean`` (clean reports of the same corpus), each error dataset is evaluated together with the
    clean reports in equal numbers at most, so its precision and FPR are measured on a 1:1-ish mix; the clean
    reports alone are evaluated first (FPR)."""
    def run(r: dict[str, Any]) -> CheckResult:
        return checker.check(r["report"], r.get("header"))

    out: dict[str, dict[str, Any]] = {}
    cache: dict[str, CheckResult] = {}

    def run_cached(r: dict[str, Any]) -> CheckResult:
        key = r["id"] if not r.get("has_error") else ""
        if key and key in cache:
            return cache[key]
        res = run(r)
        if key:
            cache[key] = res
        return res

    for name, rows in datasets.items():
        if clean is not None and rows is not clean:
            # as many clean reports as error reports (or all of them): precision at a prevalence of about 1:1
            errors = [r for r in rows if r.get("has_error")]
            mix = sorted(clean, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[: len(errors)] + list(rows)
            out[name] = evaluate(mix, run_cached)
        else:
            out[name] = evaluate(rows, run_cached)
    return out

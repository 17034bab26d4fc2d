"""``medmm check-eval``: score a checker on an injected dataset (SIMPLE, COMPLEX, spans, evidence)."""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from typing import Any, Callable, Sequence

from medmm.reports.checker import CheckResult
from medmm.reports.taxonomy import TYPE_IDS


def read_dataset(path: str) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Rows of a dataset written by ``medmm inject`` (bad lines are skipped with their reason)."""
    from medmm.errors import InputError

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such dataset file")
    from medmm.reports.corpus import iter_jsonl

    rows, bad = [], []
    for n, row, problem in iter_jsonl(path):
        if problem or "report" not in row or "has_error" not in row:
            bad.append((n, problem or "missing 'report' or 'has_error'"))
            continue
        rows.append(row)
    return rows, bad


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def evaluate(rows: Sequence[dict[str, Any]], run: Callable[[dict[str, Any]], CheckResult]) -> dict[str, Any]:
    """Run ``run`` on every row and compute the metrics."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    y_true, y_pred, y_score = [], [], []
    type_true, type_pred = [], []
    span_tp = span_fp = err_hit = n_errors = 0
    by_evidence: dict[str, Counter] = defaultdict(Counter)
    by_type: dict[str, Counter] = defaultdict(Counter)
    t0 = time.perf_counter()
    for row in rows:
        res = run(row)
        truth = bool(row["has_error"])
        y_true.append(truth)
        y_pred.append(res.has_error)
        y_score.append(res.score)
        errors = row.get("errors") or []
        spans = [(e["start"], e["end"]) for e in errors]
        for f in res.flags:
            hit = any(_overlap((f.start, f.end), s) for s in spans)
            span_tp += hit
            span_fp += not hit
            by_evidence[f.evidence]["flags"] += 1
            by_evidence[f.evidence]["correct"] += hit
        for e in errors:
            n_errors += 1
            found = any(_overlap((f.start, f.end), (e["start"], e["end"])) for f in res.flags)
            err_hit += found
            by_type[e["type"]]["n"] += 1
            by_type[e["type"]]["detected"] += res.has_error
            by_type[e["type"]]["span_found"] += found
        if truth and res.has_error and errors and res.flags:
            top = max(res.flags, key=lambda f: f.confidence)
            type_true.append(errors[0]["type"])
            type_pred.append(top.type)
            by_type[errors[0]["type"]]["type_correct"] += top.type == errors[0]["type"]
    seconds = time.perf_counter() - t0
    tp = sum(t and p for t, p in zip(y_true, y_pred))
    fp = sum((not t) and p for t, p in zip(y_true, y_pred))
    fn = sum(t and not p for t, p in zip(y_true, y_pred))
    tn = sum((not t) and not p for t, p in zip(y_true, y_pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    labels = [t for t in TYPE_IDS if t in set(type_true) | set(type_pred)]
    cm = confusion_matrix(type_true, type_pred, labels=labels).tolist() if type_true else []
    try:
        auroc = float(roc_auc_score(y_true, y_score)) if len(set(y_true)) == 2 else None
    except ValueError:
        auroc = None
    return {
        "n_reports": len(rows), "n_with_error": sum(y_true), "seconds": round(seconds, 3),
        "reports_per_s": round(len(rows) / seconds, 1) if seconds else None,
        "simple": {"accuracy": (tp + tn) / max(len(rows), 1), "precision": precision, "recall": recall,
                   "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
                   "auroc": auroc, "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
                   "tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "complex": {"accuracy": sum(a == b for a, b in zip(type_true, type_pred)) / len(type_true) if type_true else None,
                    "n": len(type_true), "labels": labels, "confusion_matrix": cm},
        "spans": {"precision": span_tp / (span_tp + span_fp) if span_tp + span_fp else None,
                  "recall": err_hit / n_errors if n_errors else None},
        "by_type": {t: dict(c) for t, c in sorted(by_type.items())},
        "by_evidence": {k: {**dict(c), "precision": c["correct"] / c["flags"] if c["flags"] else None}
                        for k, c in sorted(by_evidence.items())},
    }


def _f(x: Any) -> str:
    return "—" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def to_markdown(result: dict[str, Any], title: str = "Report checker evaluation") -> str:
    s, c, sp = result["simple"], result["complex"], result["spans"]
    lines = [f"# {title}", "", f"{result['n_reports']} reports, {result['n_with_error']} with an injected error; "
             f"{_f(result['reports_per_s'])} reports/s.", "", "## SIMPLE (does the report contain an error?)", "",
             "| accuracy | precision | recall | F1 | AUROC | false-positive rate |", "|---|---|---|---|---|---|",
             f"| {_f(s['accuracy'])} | {_f(s['precision'])} | {_f(s['recall'])} | {_f(s['f1'])} | {_f(s['auroc'])} | "
             f"{_f(s['false_positive_rate'])} |", "", f"## COMPLEX (type of the most confident flag, on detected errors: "
             f"n = {c['n']})", "", f"Type accuracy: **{_f(c['accuracy'])}**", "", "| type | injected | detected | type correct "
             "| span found |", "|---|---|---|---|---|"]
    for t, d in result["by_type"].items():
        lines.append(f"| {t} | {d.get('n', 0)} | {d.get('detected', 0)} | {d.get('type_correct', 0)} | {d.get('span_found', 0)} |")
    if c["labels"]:
        lines += ["", "Confusion matrix (rows: injected type, columns: predicted):", "",
                  "| | " + " | ".join(c["labels"]) + " |", "|---|" + "---|" * len(c["labels"])]
        for lab, row in zip(c["labels"], c["confusion_matrix"]):
            lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", f"## Flag spans\n\nprecision {_f(sp['precision'])} (flags overlapping an injected span), "
              f"recall {_f(sp['recall'])} (injected errors overlapped by a flag)", "", "## By evidence", "",
              "| evidence | flags | overlapping an injected error | precision |", "|---|---|---|---|"]
    for k, d in result["by_evidence"].items():
        lines.append(f"| {k} | {d.get('flags', 0)} | {d.get('correct', 0)} | {_f(d.get('precision'))} |")
    return "\n".join(lines) + "\n"

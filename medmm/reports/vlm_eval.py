"""Evaluation of the VLM report checker: SIMPLE and COMPLEX figures with intervals, and the controls.

:func:`score` runs the model once per row (SIMPLE margin, COMPLEX type scores) on the views of
:mod:`medmm.reports.checker_views` — or, with ``blind=True``, on black images of the same size (the
control that shows whether the model reads the image: its image-only recall must fall to its FPR).
:func:`simple_report` turns margins into SIMPLE accuracy / precision / recall / F1 / AUROC, the clean-report
FPR, Youden's J (recall − FPR), recall per error type, per error model and per detectability (text vs
image-only), each rate with a bootstrap interval over studies (:mod:`medmm.metrics`); :func:`complex_report`
the COMPLEX type accuracy and its confusion matrix; :func:`comparison` puts the tuned model beside the untuned
one, the blind control, the rules alone and the ensemble, with "caught what the rules missed".
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from medmm import metrics
from medmm.reports.taxonomy import TYPE_IDS


def _r(x: float | None, d: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), d)


def score(model: Any, rows: Sequence[dict[str, Any]], config: Any, root: str | None = None, blind: bool = False,
          complex_: bool = True, batch_size: int = 16, progress: Callable[[int], None] | None = None) -> list[Any]:
    """One :class:`~medmm.reports.vlm_checker.VLMJudgement` per row (``report``, ``images``)."""
    from medmm.reports.checker_views import checker_images
    from medmm.reports.vlm_checker import judge

    out: list[Any] = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        images = [checker_images(list(r.get("images") or []), root, max_views=config.max_views, blind=blind)
                  if r.get("images") else None for r in chunk]
        out.extend(judge(model, [r["report"] for r in chunk], images, config, complex_=complex_))
        if progress:
            progress(len(chunk))
    return out


def _interval(stat: Callable[[np.ndarray], float], n: int, groups: Sequence[Any]) -> dict[str, Any]:
    return metrics.bootstrap_ci(stat, n, groups=list(groups), n_boot=500).to_dict()


def simple_report(y: Sequence[bool], pred: Sequence[bool], scores: Sequence[float], errors: Sequence[dict | None],
                  groups: Sequence[Any]) -> dict[str, Any]:
    """SIMPLE figures (rates with bootstrap intervals over ``groups``, e.g. the study), per type/model/detectability."""
    yt = np.asarray(y, dtype=bool)
    yp = np.asarray(pred, dtype=bool)
    b = metrics.binary(yt.tolist(), yp.tolist())
    auc = metrics.auroc(yt.tolist(), scores)

    def recall(idx: np.ndarray) -> float:
        t = yt[idx]
        return float(yp[idx][t].mean()) if t.any() else math.nan

    def fpr(idx: np.ndarray) -> float:
        t = ~yt[idx]
        return float(yp[idx][t].mean()) if t.any() else math.nan

    def youden(idx: np.ndarray) -> float:
        return recall(idx) - fpr(idx)

    n = len(yt)
    out: dict[str, Any] = {**b.to_dict(), "auroc": _r(auc), "youden_j": _r(b.recall - b.fpr),
                           "intervals": {"recall": _interval(recall, n, groups), "fpr": _interval(fpr, n, groups),
                                         "youden_j": _interval(youden, n, groups)}}
    by: dict[str, dict[str, dict[str, int]]] = {"type": {}, "model": {}, "detectability": {}}
    for e, p in zip(errors, yp):
        if not e:
            continue
        det = "text" if e.get("text_detectable", True) else "image-only"
        for key, name in (("type", e.get("type") or "?"), ("model", e.get("model") or "?"), ("detectability", det)):
            d = by[key].setdefault(name, {"n": 0, "found": 0})
            d["n"] += 1
            d["found"] += bool(p)
    for table in by.values():
        for d in table.values():
            d["recall"] = _r(d["found"] / d["n"]) if d["n"] else None  # type: ignore[assignment]
    out.update(by_type=by["type"], by_model=by["model"], by_detectability=by["detectability"])
    return out


def complex_report(judgements: Sequence[Any], errors: Sequence[dict | None]) -> dict[str, Any]:
    """COMPLEX type accuracy over the reports with an error, and the confusion matrix (rows: true type)."""
    truth, guess = [], []
    for j, e in zip(judgements, errors):
        if e and j.type:
            truth.append(e["type"])
            guess.append(j.type)
    if not truth:
        return {"n": 0, "type_accuracy": None}
    labels, cm = metrics.confusion_matrix(truth, guess, labels=list(TYPE_IDS))
    acc = [float(t == g) for t, g in zip(truth, guess)]
    return {"n": len(truth), "type_accuracy": _r(float(np.mean(acc))),
            "interval": metrics.mean_ci(acc, n_boot=500).to_dict(),
            "chance": _r(1.0 / len(TYPE_IDS)),
            "confusion": {"labels": list(labels), "matrix": np.asarray(cm).astype(int).tolist()}}


def caught_rules_missed(y: Sequence[bool], rules_pred: Sequence[bool], other_pred: Sequence[bool]) -> dict[str, Any]:
    """Of the reports with an error that the rules miss, the share another checker catches."""
    missed = [i for i, (t, r) in enumerate(zip(y, rules_pred)) if t and not r]
    caught = sum(1 for i in missed if other_pred[i])
    return {"rules_missed": len(missed), "caught": caught, "share": _r(caught / len(missed)) if missed else None}


def table_markdown(results: dict[str, dict[str, Any]], caught: dict[str, dict[str, Any]] | None = None) -> str:
    """The README table: one row per checker (tuned, untuned, blind, rules, ensemble)."""
    lines = ["| checker | recall | FPR (clean) | Youden's J [95% CI] | precision | F1 | AUROC | recall image-only | "
             "recall text | caught what the rules missed |", "|---|---|---|---|---|---|---|---|---|---|"]

    def f(v: Any) -> str:
        return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    for name, r in results.items():
        det = r.get("by_detectability", {})
        ci = r.get("intervals", {}).get("youden_j", {})
        c = (caught or {}).get(name, {})
        lines.append(f"| {name} | {f(r.get('recall'))} | {f(r.get('fpr'))} | {f(r.get('youden_j'))} "
                     f"[{f(ci.get('lo'))}, {f(ci.get('hi'))}] | {f(r.get('precision'))} | {f(r.get('f1'))} | "
                     f"{f(r.get('auroc'))} | {f(det.get('image-only', {}).get('recall'))} | "
                     f"{f(det.get('text', {}).get('recall'))} | "
                     f"{f(c.get('share'))} ({c.get('caught', '—')}/{c.get('rules_missed', '—')}) |")
    return "\n".join(lines) + "\n"


def dataset_extras(rows: Sequence[dict[str, Any]], results: Sequence[Any]) -> dict[str, Any]:
    """``medmm check-eval`` additions for one dataset: Youden's J, recall per detectability and error model,
    bootstrap intervals (grouped by study when rows name one)."""
    y = [bool(r["has_error"]) for r in rows]
    errors = [(r.get("errors") or [None])[0] for r in rows]
    groups = [r.get("study_id") or r.get("original_report") or r.get("id") for r in rows]
    rep = simple_report(y, [bool(x.has_error) for x in results], [float(x.score) for x in results], errors, groups)
    return {"youden_j": rep["youden_j"], "intervals": rep["intervals"], "by_detectability": rep["by_detectability"],
            "by_error_model": rep["by_model"]}

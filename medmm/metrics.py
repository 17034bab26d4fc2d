"""Metrics in one place: binary detection, AUROC, confusion, calibration, bootstrap intervals.

Every evaluation in medmm (report checking, probing, grounding) computes its figures here, so a
precision means the same thing everywhere. Each metric is registered with its direction
(``higher_is_better``) and how it aggregates over items (``mean`` of per-item values, or
``corpus``: computed once from the pooled counts), as lm-evaluation-harness does.

Conventions: ``y_true`` / ``y_pred`` are sequences of booleans (or 0/1); a ratio whose
denominator is zero is ``nan`` (never a silent 0 or 1) so an empty class shows up in reports
(:func:`ratio`, :func:`precision_recall_f1`; JSON writers of :mod:`medmm.runs` write it as null, and
:func:`json_ratio` gives it as None in result dictionaries). Box matching (:mod:`medmm.regions.match`),
grounding evaluation and the report checker's evaluation (:mod:`medmm.reports.evaluate`) compute their
ratios here. Exceptions, each documented where it applies: MediConfusion's confusion is 0 with no valid
pair (the reference's value); per-item scores that are averaged later (a box's IoU, an answer's token
F1) define their own empty case;
bootstrap intervals are percentile intervals with a seeded generator and resample *groups*
(e.g. images, reports) when groups are given, because items of one group are not independent.
scikit-learn is used for AUROC (the reference implementation); the counting metrics are a few
lines here because they must carry their counts and handle empty classes as above.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Hashable, Literal, Sequence

import numpy as np

Aggregation = Literal["mean", "corpus"]


def ratio(num: float, den: float) -> float:
    """``num / den``, or ``nan`` when ``den`` is 0: medmm's one empty-denominator convention (never a silent 0 or 1;
    JSON writers turn it into null, reports into "–")."""
    return float(num) / float(den) if den else math.nan


_ratio = ratio


def json_ratio(num: float, den: float) -> float | None:
    """:func:`ratio` in its JSON form: None (null) where the denominator is 0. For result dictionaries that are
    written as JSON and read back by people and tools (evaluation results): the same convention, spelled null."""
    value = ratio(num, den)
    return None if math.isnan(value) else value


def precision_recall_f1(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    """Corpus precision (tp / predicted), recall (tp / true) and F1 (2tp / (predicted + true)) from pooled counts,
    each ``nan`` when its denominator is 0 (detection with unmatched sets: boxes, findings)."""
    return ratio(tp, n_pred), ratio(tp, n_true), ratio(2 * tp, n_pred + n_true)


@dataclass(frozen=True)
class BinaryMetrics:
    """Counts and rates of a binary detection task (positive = "has the thing")."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def fpr(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def specificity(self) -> float:
        return _ratio(self.tn, self.fp + self.tn)

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.n)

    def to_dict(self, digits: int | None = 4) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["n"] = self.n
        for k in ("precision", "recall", "f1", "fpr", "specificity", "accuracy"):
            v = getattr(self, k)
            out[k] = None if math.isnan(v) else (round(v, digits) if digits is not None else v)
        return out

    def __add__(self, other: "BinaryMetrics") -> "BinaryMetrics":
        return BinaryMetrics(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


def binary(y_true: Sequence[Any], y_pred: Sequence[Any]) -> BinaryMetrics:
    """Confusion counts of two equally long sequences of truthy values."""
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and equally long (got {t.shape} and {p.shape})")
    return BinaryMetrics(tp=int(np.sum(t & p)), fp=int(np.sum(~t & p)), fn=int(np.sum(t & ~p)), tn=int(np.sum(~t & ~p)))


def auroc(y_true: Sequence[Any], scores: Sequence[float]) -> float:
    """Area under the ROC curve (scikit-learn); nan when only one class is present."""
    from sklearn.metrics import roc_auc_score

    t = np.asarray(y_true, dtype=bool)
    if t.all() or not t.any():
        return math.nan
    return float(roc_auc_score(t, np.asarray(scores, dtype=float)))


def confusion_matrix(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
                     labels: Sequence[Hashable] | None = None) -> tuple[list[Hashable], np.ndarray]:
    """(labels, counts) with ``counts[i, j]`` = items of true ``labels[i]`` predicted ``labels[j]``.

    Predictions outside ``labels`` (e.g. an invalid answer) are counted in an extra last column
    labelled ``None`` when present, so nothing is dropped silently.
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred must be equally long")
    labs = list(labels) if labels is not None else sorted({*y_true}, key=str)
    extra = any(p not in labs for p in y_pred)
    cols = labs + ([None] if extra else [])
    index = {lab: i for i, lab in enumerate(labs)}
    counts = np.zeros((len(labs), len(cols)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if t not in index:
            raise ValueError(f"true label {t!r} not in labels {labs}")
        counts[index[t], index.get(p, len(cols) - 1)] += 1
    return cols, counts


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error and its reliability bins (equal-width over [0, 1])."""

    ece: float
    brier: float
    bins: list[dict[str, float]] = field(default_factory=list)  # {"lo", "hi", "n", "mean_prob", "frac_pos"}

    def to_dict(self) -> dict[str, Any]:
        return {"ece": round(self.ece, 4), "brier": round(self.brier, 4), "bins": self.bins}


def calibration(y_true: Sequence[Any], probs: Sequence[float], n_bins: int = 10) -> Calibration:
    """ECE (bin-size weighted |mean prob - observed frequency|) and the Brier score."""
    t = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    if t.shape != p.shape:
        raise ValueError("y_true and probs must be equally long")
    if t.size == 0:
        return Calibration(ece=math.nan, brier=math.nan, bins=[])
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        m = which == b
        if not m.any():
            continue
        mp, fr = float(p[m].mean()), float(t[m].mean())
        ece += m.sum() / t.size * abs(mp - fr)
        bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int(m.sum()),
                     "mean_prob": round(mp, 4), "frac_pos": round(fr, 4)})
    return Calibration(ece=float(ece), brier=float(np.mean((p - t) ** 2)), bins=bins)


def threshold_for_precision(y_true: Sequence[Any], scores: Sequence[float], min_precision: float) -> float | None:
    """The lowest score threshold (predict positive when score >= threshold) whose precision is at least
    ``min_precision``; None when no threshold reaches it. Lowest threshold = highest recall."""
    t = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if t.shape != s.shape:
        raise ValueError("y_true and scores must be equally long")
    if s.size == 0:
        return None
    order = np.argsort(-s, kind="stable")
    ranked = s[order]
    tp = np.cumsum(t[order])  # true positives among the k highest scores
    # one candidate per distinct score: the last item of its group (everything scoring >= it is flagged)
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    precision = tp[ends] / (ends + 1)
    ok = np.flatnonzero(precision >= min_precision)
    return float(ranked[ends[ok[-1]]]) if ok.size else None


# ------------------------------------------------------------------ bootstrap intervals

@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    value: float
    lo: float
    hi: float
    level: float = 0.95
    n_boot: int = 1000

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        r = (lambda v: None if math.isnan(v) else round(v, digits))
        return {"value": r(self.value), "lo": r(self.lo), "hi": r(self.hi), "level": self.level, "n_boot": self.n_boot}


def _group_index(n: int, groups: Sequence[Hashable] | None) -> list[np.ndarray]:
    if groups is None:
        return [np.array([i]) for i in range(n)]
    if len(groups) != n:
        raise ValueError("groups must have one entry per item")
    order: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(g, []).append(i)
    return [np.array(v) for v in order.values()]


def _resamples(n: int, groups: Sequence[Hashable] | None, n_boot: int, seed: int):  # noqa: ANN202
    blocks = _group_index(n, groups)
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        pick = rng.integers(0, len(blocks), size=len(blocks))
        yield np.concatenate([blocks[i] for i in pick]) if blocks else np.array([], dtype=int)


def _percentiles(values: list[float], level: float) -> tuple[float, float]:
    arr = np.array([v for v in values if not math.isnan(v)])
    if arr.size == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    return float(np.quantile(arr, a)), float(np.quantile(arr, 1.0 - a))


def bootstrap_ci(statistic: Callable[[np.ndarray], float], n: int, groups: Sequence[Hashable] | None = None,
                 n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile interval of ``statistic(indices)`` over ``n_boot`` resamples of the items 0..n-1
    (of whole groups when ``groups`` is given). ``statistic`` receives an index array."""
    value = float(statistic(np.arange(n)))
    boots = [float(statistic(idx)) for idx in _resamples(n, groups, n_boot, seed)]
    lo, hi = _percentiles(boots, level)
    return Interval(value, lo, hi, level, n_boot)


def mean_ci(values: Sequence[float], groups: Sequence[Hashable] | None = None, n_boot: int = 1000,
            level: float = 0.95, seed: int = 0) -> Interval:
    """Bootstrap interval of a mean (e.g. accuracy over 0/1 item scores)."""
    v = np.asarray(values, dtype=float)
    return bootstrap_ci(lambda idx: float(v[idx].mean()) if idx.size else math.nan, len(v), groups, n_boot, level, seed)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], groups: Sequence[Hashable] | None = None,
                     n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                     statistic: Callable[[np.ndarray], float] | None = None) -> dict[str, Any]:
    """Paired difference mean(b) - mean(a) on the same items, resampled together.

    Returns ``{"diff": Interval, "p_value": two-sided share of resamples on the other side of 0}``.
    ``statistic`` (optional) maps per-item differences to the statistic (default: mean).
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError("paired_bootstrap needs two equally long sequences (the same items)")
    d = y - x
    stat = statistic or (lambda v: float(v.mean()) if v.size else math.nan)
    value = float(stat(d))
    boots = [float(stat(d[idx])) for idx in _resamples(len(d), groups, n_boot, seed)]
    lo, hi = _percentiles(boots, level)
    arr = np.array([v for v in boots if not math.isnan(v)])
    if arr.size == 0 or value == 0.0:
        p = 1.0
    else:
        p = min(1.0, 2.0 * float(np.mean(arr <= 0.0 if value > 0 else arr >= 0.0)))
    return {"diff": Interval(value, lo, hi, level, n_boot), "p_value": p}


# ------------------------------------------------------------------ registry

@dataclass(frozen=True)
class Metric:
    """A named metric: how to compute it, which direction is better, how it aggregates over items."""

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    aggregation: Aggregation
    description: str = ""


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to :data:`METRICS` (a name can be registered once)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None


for _name, _hib, _desc in [
    ("precision", True, "TP / (TP + FP)"), ("recall", True, "TP / (TP + FN)"), ("f1", True, "2TP / (2TP + FP + FN)"),
    ("fpr", False, "FP / (FP + TN): share of clean items flagged"), ("specificity", True, "TN / (TN + FP)"),
    ("accuracy", True, "(TP + TN) / N"),
]:
    register(Metric(_name, (lambda attr: lambda y_true, y_pred: getattr(binary(y_true, y_pred), attr))(_name),
                    _hib, "corpus", _desc))
register(Metric("auroc", auroc, True, "corpus", "area under the ROC curve (scikit-learn)"))
register(Metric("ece", lambda y_true, probs: calibration(y_true, probs).ece, False, "corpus",
                "expected calibration error, 10 equal-width bins"))
register(Metric("brier", lambda y_true, probs: calibration(y_true, probs).brier, False, "mean", "mean squared error of probabilities"))
register(Metric("mean", lambda values: float(np.mean(values)) if len(values) else math.nan, True, "mean",
                "mean of per-item scores (accuracy over 0/1 scores, IoU, ...)"))

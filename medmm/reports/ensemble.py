"""The learned ensemble: a stacker over the rules' and the VLM's scores, fit on a calibration split.

Features of a report (:func:`features`): the rules' report score (noisy-OR of calibrated flag
confidences) and their most confident flag; the VLM's SIMPLE margin ``logp(yes) - logp(no)``; the
VLM's COMPLEX scores turned into a distribution over the taxonomy ids (softmax of the per-token mean
log-probabilities). A scikit-learn logistic regression (standardised features, balanced classes) maps
them to a probability; the threshold is the lowest one whose precision on the calibration split reaches
``target_precision`` (:func:`medmm.metrics.threshold_for_precision`; the F1-best one when no threshold
reaches it).

The fitted stacker is plain JSON — coefficients, intercept, feature means and scales, threshold, the
model's fingerprint and what it was fit on — written next to the trained model
(``<output_dir>/checker/ensemble.json``), so ``--checker ensemble --model hf:<output_dir>/model`` finds
it; a model whose fingerprint differs refuses it (a stacker fit on another model's scores means nothing).
No pickle is written or read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from medmm.errors import ConfigError, InputError
from medmm.reports.taxonomy import TYPE_IDS

FEATURES = ("rules_score", "rules_max_flag", "vlm_margin") + tuple(f"complex_{t}" for t in TYPE_IDS)
FILE = "ensemble.json"


def features(rules_score: float, rules_max_flag: float, margin: float, type_scores: dict[str, float] | None) -> list[float]:
    """One report's feature vector (order: :data:`FEATURES`)."""
    if type_scores:
        v = np.array([type_scores.get(t, -1e9) for t in TYPE_IDS], dtype=float)
        p = np.exp(v - v.max())
        p = p / p.sum()
    else:
        p = np.full(len(TYPE_IDS), 1.0 / len(TYPE_IDS))
    return [float(rules_score), float(rules_max_flag), float(margin)] + [float(x) for x in p]


@dataclass(frozen=True)
class Stacker:
    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float
    target_precision: float
    fingerprint: str  # the VLM's medmm.models fingerprint
    fit_on: str = ""
    features: tuple[str, ...] = FEATURES
    calib_metrics: dict[str, Any] | None = None

    def probability(self, x: Sequence[float]) -> float:
        z = (np.asarray(x, dtype=float) - np.asarray(self.mean)) / np.asarray(self.scale)
        s = float(np.dot(z, self.coef) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(s, 50.0), -50.0)))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("coef", "mean", "scale", "features"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Stacker":
        if list(d.get("features") or []) != list(FEATURES):
            raise ConfigError("this ensemble stacker was fit on other features (another medmm version); refit it "
                              "with `medmm finetune` or medmm.reports.ensemble.fit")
        return cls(**{**d, **{k: tuple(d[k]) for k in ("coef", "mean", "scale", "features")}})

    def save(self, path: str) -> str:
        from medmm.runs import write_json  # the one atomic writer

        return write_json(path, self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str) -> "Stacker":
        try:
            with open(path, encoding="utf-8") as fh:
                return cls.from_dict(json.load(fh))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{path}: not a readable ensemble stacker ({type(exc).__name__}: {exc})") from None


def choose_threshold(y: Sequence[bool], p: Sequence[float], target_precision: float) -> float:
    """The lowest threshold with precision >= target (medmm.metrics), else the F1-best one."""
    from medmm import metrics

    t = metrics.threshold_for_precision(y, p, target_precision)
    if t is not None:
        return float(t)
    order = sorted(set(float(v) for v in p))
    best = max(order, key=lambda th: metrics.binary(y, [v >= th for v in p]).f1 if order else 0.0)
    return float(best)


def fit(X: Sequence[Sequence[float]], y: Sequence[bool], fingerprint: str, target_precision: float = 0.9,
        fit_on: str = "", C: float = 1.0) -> Stacker:
    """Fit the stacker (scikit-learn logistic regression on standardised features) and its threshold."""
    from sklearn.linear_model import LogisticRegression

    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y, dtype=bool)
    if Xa.ndim != 2 or Xa.shape[1] != len(FEATURES) or len(Xa) != len(ya):
        raise InputError(f"the stacker needs one row of {len(FEATURES)} features per label")
    if ya.all() or not ya.any():
        raise InputError("the stacker's calibration split needs reports with and without errors")
    mean = Xa.mean(axis=0)
    scale = Xa.std(axis=0)
    scale[scale < 1e-9] = 1.0
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
    lr.fit((Xa - mean) / scale, ya)
    st = Stacker(tuple(float(c) for c in lr.coef_[0]), float(lr.intercept_[0]), tuple(float(v) for v in mean),
                 tuple(float(v) for v in scale), 0.5, float(target_precision), fingerprint, fit_on)
    p = [st.probability(x) for x in Xa]
    th = choose_threshold(ya.tolist(), p, target_precision)
    from medmm import metrics

    m = metrics.binary(ya.tolist(), [v >= th for v in p]).to_dict()
    return Stacker(st.coef, st.intercept, st.mean, st.scale, th, st.target_precision, fingerprint, fit_on,
                   calib_metrics={**m, "n": int(len(ya))})


def stacker_path(model: Any) -> str | None:
    from medmm.reports.vlm_checker import checker_dir_of

    folder = checker_dir_of(model)
    path = os.path.join(folder, FILE) if folder else None
    return path if path and os.path.isfile(path) else None


def stacker_for(model: Any) -> Stacker | None:
    """The stacker saved next to a trained model (loaded VLM), checked against its fingerprint."""
    path = stacker_path(model)
    if path is None:
        return None
    st = Stacker.load(path)
    fp = model.fingerprint() if hasattr(model, "fingerprint") else None
    if fp is not None and st.fingerprint != fp:
        raise ConfigError(f"{path}: fit on the scores of another model (fingerprint {st.fingerprint[:12]}, this model "
                          f"{fp[:12]}); refit it on this model's calibration split or remove the file")
    return st

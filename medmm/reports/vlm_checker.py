"""The VLM checker: SIMPLE and COMPLEX questions to a vision-language model via ``medmm.models``.

SIMPLE: "Does this report contain an error?" scored with ``score_options(["yes", "no"])``;
the margin ``logp(yes) - logp(no)`` becomes a probability ``sigmoid(margin - threshold)``,
with ``threshold`` calibrated on a dev split (:func:`calibrate`) and stored in the config.
COMPLEX: the model chooses among the taxonomy ids (``score_options`` over the ids); the
choice becomes the flag type. Prompts live in the packaged ``medmm/configs/reports/vlm-checker.yaml``.

Ensemble (documented rule): ``p = 1 - (1 - p_rules) * (1 - w * p_vlm)`` — a noisy-OR in
which the VLM's vote is down-weighted by ``w`` (``ensemble_weight`` in the config, default
0.5: a model's yes adds evidence but one weak model alone does not reach a 0.5 threshold);
flags are the union, the VLM flag carrying ``evidence: image``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence

import yaml

from medmm.config import files
from medmm.errors import ConfigError
from medmm.reports.taxonomy import TYPE_IDS

CONFIG_PATH = str(files("configs/reports/vlm-checker.yaml"))  # packaged default (medmm.config); read it with load()


@dataclass
class VLMCheckerConfig:
    simple_prompt: str = ("Here is a radiology report for the image.\n\n{report}\n\n"
                          "Does this report contain an error? Answer yes or no.")
    complex_prompt: str = ("Here is a radiology report for the image that contains an error.\n\n{report}\n\n"
                           "Which type of error is it? Answer with one of: {types}.")
    options: tuple[str, str] = ("yes", "no")
    threshold: float = 0.0  # margin logp(yes) - logp(no) above which the report is judged erroneous
    temperature: float = 1.0  # scale of the margin in the sigmoid
    ensemble_weight: float = 0.5
    calibrated_on: str | None = None
    max_report_chars: int = 4000

    @classmethod
    def load(cls, path: str | None = None) -> "VLMCheckerConfig":
        """The packaged default (``reports/vlm-checker.yaml``) or a user's file, validated (unknown keys,
        types — bare YAML yes/no are booleans, not strings — all reported in one ConfigError)."""
        from medmm.config import load_config

        cfg = load_config(path or "reports/vlm-checker.yaml", cls)
        if len(cfg.options) != 2:
            raise ConfigError(f"{path or 'reports/vlm-checker.yaml'}: options must be two quoted strings, "
                              f'e.g. ["yes", "no"]; got {list(cfg.options)!r}')
        return cfg

    def save(self, path: str) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        data = asdict(self)
        data["options"] = list(self.options)
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(data, fh, sort_keys=False, allow_unicode=True)
        return path


def _request(prompt: str, images: Sequence[Any] | None) -> Any:
    from medmm.models import Request

    return Request(images=list(images or []), prompt=prompt)


@dataclass
class VLMJudgement:
    probability: float
    margin: float
    type: str | None = None
    type_scores: dict[str, float] = field(default_factory=dict)


def judge(model: Any, reports: Sequence[str], images: Sequence[Sequence[Any] | None] | None = None,
          config: VLMCheckerConfig | None = None, complex_: bool = True) -> list[VLMJudgement]:
    """SIMPLE margin/probability (and COMPLEX type) for each report."""
    cfg = config or VLMCheckerConfig.load()
    images = images or [None] * len(reports)
    simple = [_request(cfg.simple_prompt.format(report=r[: cfg.max_report_chars]), im) for r, im in zip(reports, images)]
    scores = model.score_options(simple, list(cfg.options))
    out = []
    for s in scores:
        margin = s[0] - s[1]
        z = (margin - cfg.threshold) / max(cfg.temperature, 1e-6)
        out.append(VLMJudgement(1.0 / (1.0 + math.exp(-max(min(z, 50), -50))), margin))
    if complex_:
        types = ", ".join(TYPE_IDS)
        reqs = [_request(cfg.complex_prompt.format(report=r[: cfg.max_report_chars], types=types), im)
                for r, im in zip(reports, images)]
        for j, row in zip(out, model.score_options(reqs, list(TYPE_IDS), reduction="mean")):
            j.type_scores = dict(zip(TYPE_IDS, row))
            j.type = max(j.type_scores, key=j.type_scores.get)  # type: ignore[arg-type]
    return out


def calibrate(margins: Sequence[float], labels: Sequence[bool], config: VLMCheckerConfig, source: str = "dev") -> VLMCheckerConfig:
    """Choose the threshold that maximises F1 on a dev split, and a temperature from the margins' spread."""
    pairs = sorted(zip(margins, labels))
    if not pairs or all(l for _, l in pairs) or not any(l for _, l in pairs):
        raise ConfigError("calibration needs dev examples of both classes (with and without errors)")
    best, best_t = -1.0, config.threshold
    positives = sum(1 for _, l in pairs if l)
    for i in range(len(pairs)):
        t = pairs[i][0] - 1e-9
        tp = sum(1 for m, l in pairs if m > t and l)
        fp = sum(1 for m, l in pairs if m > t and not l)
        f1 = 2 * tp / max(2 * tp + fp + (positives - tp), 1)
        if f1 > best:
            best, best_t = f1, t
    spread = (max(m for m, _ in pairs) - min(m for m, _ in pairs)) / 8 or 1.0
    config.threshold = float(best_t)
    config.temperature = float(spread)
    config.calibrated_on = f"{source} (n={len(pairs)}, dev F1={best:.3f})"
    return config

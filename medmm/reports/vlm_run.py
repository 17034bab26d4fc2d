"""The VLM and ensemble checkers around one loaded model (``build_checker("vlm" | "ensemble", model=...)``).

* ``vlm``: the report is erroneous when the SIMPLE probability (sigmoid of the calibrated margin) is at
  least 0.5 — i.e. the margin is above the threshold calibrated on a dev split — unless a threshold is given.
* ``ensemble``: the rules and the VLM; with a stacker saved next to the model
  (:mod:`medmm.reports.ensemble`, fit on a calibration split) its probability and threshold decide; without
  one, the documented noisy-OR fallback ``1 - (1 - p_rules)(1 - w p_vlm)`` against the rules' threshold.

A model trained by ``medmm finetune`` with checker tasks has its own checker config (prompts, calibrated
threshold, image layout) in ``<output_dir>/checker/``; it is used when no config is given.

Images: a check takes the study's images as file paths (chosen by :func:`medmm.reports.checker_views.checker_views`,
the one choice for training, evaluation, audits and the app) or as ready images (PIL, Volume, ImageView).

A VLM flag says why: its span is the sentence whose removal lowers the SIMPLE margin most (the evidence), its
type the COMPLEX answer, its explanation names the model (fingerprint) and that the evidence is the image.
"""

from __future__ import annotations

from typing import Any, Sequence

from medmm.reports.checker import RulesChecker, clean_text, combine, default_checker
from medmm.reports.flags import CheckResult, Flag


def images_for(images: Sequence[Any] | None, max_views: int, root: str | None = None, blind: bool = False) -> list[Any]:
    """Paths -> the checker's views (PIL); ready images pass through (blanked with ``blind``)."""
    from medmm.reports.checker_views import blank_like, checker_images

    if not images:
        return []
    if all(isinstance(i, str) for i in images):
        return checker_images(list(images), root, max_views=max_views, blind=blind)
    if blind:
        return [blank_like(_pil(i)) for i in images]
    return list(images)


def _pil(image: Any) -> Any:
    from PIL import Image

    from medmm.imaging.volume import Volume
    from medmm.models.base import ImageView

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, Volume):
        return ImageView(image).to_pil()
    return image.to_pil()


class VLMChecker:
    """The VLM (``kind="vlm"``) or rules+VLM (``kind="ensemble"``) checker around one loaded model."""

    def __init__(self, kind: str, model: Any, config: Any = None, rules: RulesChecker | None = None,
                 threshold: float | None = None, explain: bool = True) -> None:
        from medmm.reports.ensemble import stacker_for
        from medmm.reports.vlm_checker import VLMCheckerConfig, trained_config

        if isinstance(model, str):
            from medmm.models import load

            model = load(model)
        self.kind, self.model = kind, model
        self.config = config or trained_config(model) or VLMCheckerConfig.load()
        self.rules = rules or default_checker(None)
        self.stacker = stacker_for(model) if kind == "ensemble" else None
        self.explain = explain
        self.blind = False  # the --blind control: every image replaced by a black one of the same size
        if threshold is not None:
            self.threshold = float(threshold)
        elif kind == "vlm":
            self.threshold = 0.5
        else:
            self.threshold = self.stacker.threshold if self.stacker else self.rules.threshold
        self._fp: str | None = None

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = str(self.model.fingerprint())
        return self._fp

    def _vlm_flag(self, text: str, j: Any, p: float, images: list[Any], study_images: Any = None) -> list[Flag]:
        from medmm.reports.sections import split_sections
        from medmm.reports.vlm_checker import explain
        from medmm.reports.vlm_region import flag_region, model_label

        if p < 0.5 or not j.type:
            return []
        claim = j.contradicted  # claim verification decided the margin: the flag is on the claim's sentence
        span = claim.sentence if claim is not None else None
        if span is None and self.explain:
            span = explain(self.model, text, images, self.config, j.margin)
        if span is None:
            secs = split_sections(text)
            target = next((s for s in secs if s.name == "impression"), None) or (secs[-1] if secs else None)
            span = (target.start, target.end) if target else (0, len(text))
        start, end = span
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if claim is not None:
            other = "right" if claim.side == "left" else "left"
            why = (f"the VLM ({self.fingerprint()[:12]}) reads the {claim.finding} on the {other} in the image, where "
                   f"this sentence says {claim.side} (log-odds {claim.disagreement:+.2f}; p={p:.2f}); evidence: the image")
        else:
            why = (f"the VLM ({self.fingerprint()[:12]}) reads the image as contradicting this sentence "
                   f"(p={p:.2f}, SIMPLE margin {j.margin:+.2f}; the sentence whose removal lowers the margin most) "
                   f"and names the type {j.type}; evidence: the image")
        # H18b (issue 18 item 6): the flag names its model and, when explained, the region its COMPLEX answer gives
        region = flag_region(self.model, text, images, self.config, study_images) if self.explain else None
        kind = "laterality" if claim is not None else j.type
        return [Flag(kind, start, end, text[start:end], why, round(p, 3), "image", "vlm",
                     model=model_label(self.model), region=region)]

    def judge(self, text: str, images: Sequence[Any] | None) -> tuple[Any, list[Any]]:
        from medmm.reports.vlm_checker import judge

        imgs = images_for(images, self.config.max_views, blind=self.blind)
        return judge(self.model, [text], [imgs] if imgs else None, self.config)[0], imgs

    def check(self, report: Any, header: Any = None, images: Sequence[Any] | None = None) -> CheckResult:
        from medmm.reports.ensemble import features

        rules = self.rules.check(report, header)
        notes = list(rules.notes)
        text = clean_text(report, [])
        if not text.strip():
            return CheckResult(False, 0.0, [], self.kind, notes)
        try:
            j, imgs = self.judge(text, images)
        except Exception as exc:  # a model failure is reported in the result; the rule result still stands
            notes.append(f"VLM checker failed ({type(exc).__name__}: {exc}); rules only")
            return CheckResult(rules.has_error, rules.score, rules.flags, self.kind, notes)
        if self.kind == "vlm":
            flags = self._vlm_flag(text, j, j.probability, imgs, images)
            return CheckResult(j.probability >= self.threshold - 1e-9, j.probability, flags, "vlm", notes)
        if self.stacker is not None:
            top = max((f.confidence for f in rules.flags), default=0.0)
            score = self.stacker.probability(features(rules.score, top, j.margin, j.type_scores))
        else:
            score = combine([rules.score, self.config.ensemble_weight * j.probability])
        has_error = score >= self.threshold - 1e-9
        vlm_flags = self._vlm_flag(text, j, j.probability, imgs, images) if has_error else []
        flags = sorted((rules.flags if has_error else []) + vlm_flags, key=lambda f: (f.start, f.type))
        return CheckResult(has_error, score, flags, "ensemble", notes)

"""Grounding evaluation: Text→Region boxes and Region→Text answers, scored honestly.

For each Text→Region sample the model is asked exactly as in training (same prompt, same image
preparation); its answer is decoded by the codec (malformed → no box), the boxes are brought
from the model-input frame back to **acquisition pixels** (:meth:`Box.from_model`) and compared
there with the truth from the label map (or the annotation file). Metrics (``metrics.json``):

* ``n`` — Text→Region samples scored; ``parse_rate`` — share whose answer gave at least one box;
* ``miou`` and ``acc@0.25/0.5/0.75`` — IoU of the **first** predicted box with the true box it
  overlaps most (0 when nothing parsed), as MedRegA scores single boxes;
* ``baseline_miou`` — the same IoU for always answering the **mean training box** (normalised
  to each image's size): the honest floor a model must beat; ``class_prior_miou`` — always
  answering the mean training box *of the asked label* (what a model that ignores the image
  can reach);
* ``multi_box`` — Hungarian matching of all predicted vs all true boxes at IoU ≥ 0.5, summed over
  samples: ``precision`` = matched / predicted, ``recall`` = matched / true (named correctly;
  the reference evaluator swaps them), ``f1``;
* ``region_to_text`` — ``accuracy`` (token recall of the answer ≥ 0.75, MedRegA's rule) and
  ``token_f1`` (token-set F1), over Region→Text samples;
* ``per_class`` — per label: ``n``, ``miou``, ``acc@0.5``, ``parse_rate``, ``baseline_miou``.

Every generation goes through the shared result cache (:class:`medmm.runs.ResultCache`) keyed by
the sample and a :class:`~medmm.runs.RunConfig` of the model fingerprint, codec, prompt
settings and generation length: a killed evaluation resumes where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from medmm import tasks as registry
from medmm.errors import InputError
from medmm.finetune.inputs import input_transform, prepare_image, prompt_messages
from medmm.metrics import precision_recall_f1, ratio  # one metrics module: empty denominator -> nan (null)
from medmm.regions.answers import best_iou, predicted_boxes, token_scores  # noqa: F401 (this module's public names)
from medmm.regions.box import Box
from medmm.regions.codecs import BoxCodec
from medmm.regions.tasks import Sample, load_image
from medmm.runs import ResultCache, RunConfig, item_key

THRESHOLDS = (0.25, 0.5, 0.75)
NormBox = tuple[float, float, float, float]


# ------------------------------------------------------------------ training-box statistics

def box_stats(samples: Iterable[Sample]) -> dict[str, Any]:
    """Mean normalised box of every true Text→Region box, overall and per label (the baselines)."""
    sums: dict[str, list[float]] = {}
    for s in samples:
        if s.task != "text_to_region":
            continue
        for b in s.objects[0].boxes:
            v = (b.x1 / s.width, b.y1 / s.height, b.x2 / s.width, b.y2 / s.height)
            for key in ("__all__", s.objects[0].label):
                acc = sums.setdefault(key, [0.0, 0.0, 0.0, 0.0, 0.0])
                for i in range(4):
                    acc[i] += v[i]
                acc[4] += 1
    if "__all__" not in sums:
        raise InputError("no Text→Region boxes in the training samples: cannot compute the mean training box")
    mean = {k: [a[i] / a[4] for i in range(4)] for k, a in sums.items()}
    return {"mean_box": mean.pop("__all__"), "per_label": mean, "n_boxes": int(sums["__all__"][4])}


# ------------------------------------------------------------------ box scoring

def _scaled(norm: Sequence[float], s: Sample, like: Box) -> Box:
    x1, y1, x2, y2 = norm
    return Box(x1 * s.width, y1 * s.height, max(x2 * s.width, x1 * s.width), max(y2 * s.height, y1 * s.height),
               image=like.image, slice=like.slice)


@dataclass
class _Acc:
    n: int = 0
    parsed: int = 0
    iou_sum: float = 0.0
    base_sum: float = 0.0
    prior_sum: float = 0.0
    hits: tuple[int, int, int] = (0, 0, 0)

    def add(self, first: float, parsed: bool, base: float, prior: float) -> None:
        self.n += 1
        self.parsed += int(parsed)
        self.iou_sum += first
        self.base_sum += base
        self.prior_sum += prior
        self.hits = tuple(h + int(first >= t) for h, t in zip(self.hits, THRESHOLDS))  # type: ignore[assignment]

    def summary(self) -> dict[str, Any]:
        n = self.n  # no Text→Region sample: every mean is nan (null), medmm.metrics' convention
        out = {"n": n, "miou": ratio(self.iou_sum, n), "parse_rate": ratio(self.parsed, n),
               "baseline_miou": ratio(self.base_sum, n), "class_prior_miou": ratio(self.prior_sum, n)}
        out.update({f"acc@{t}": ratio(h, n) for t, h in zip(THRESHOLDS, self.hits)})
        return out


def score(samples: Sequence[Sample], answers: Mapping[str, str], codec: BoxCodec,
          transform_of: Callable[[Sample], Any], stats: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metrics (module docstring) from the answers (``sample.id -> text``). Each answer is parsed and scored by
    its task's parser and scorer from the task registry (:mod:`medmm.tasks`, region tasks of
    :mod:`medmm.regions.tasks`); this function sums the per-sample figures."""
    total, per_class = _Acc(), dict[str, _Acc]()
    counts = {"text_to_region": [0, 0, 0], "grounded_report": [0, 0, 0]}  # matched, predicted, true
    r2t_n = r2t_acc = 0
    r2t_f1 = 0.0
    reports = 0
    mean = stats["mean_box"] if stats else None
    per_label = stats.get("per_label", {}) if stats else {}
    for s in samples:
        text = answers.get(s.id)
        if text is None:
            continue
        task = registry.get(s.task, "region")
        scored = task.scorer(s, task.parser(text, s, codec, transform_of(s)))
        if s.task == "region_to_text":
            r2t_n, r2t_acc, r2t_f1 = r2t_n + 1, r2t_acc + int(scored["correct"]), r2t_f1 + scored["f1"]
        elif s.task == "grounded_report":
            reports += 1
        if "tp" in scored:
            c = counts.setdefault(s.task, [0, 0, 0])
            c[0], c[1], c[2] = c[0] + scored["tp"], c[1] + scored["n_pred"], c[2] + scored["n_true"]
        if s.task != "text_to_region":
            continue
        truths = list(s.objects[0].boxes)
        base = best_iou(_scaled(mean, s, truths[0]), truths) if mean else 0.0
        prior_box = per_label.get(s.objects[0].label, mean)
        prior = best_iou(_scaled(prior_box, s, truths[0]), truths) if prior_box else 0.0
        total.add(scored["first_iou"], scored["parsed"], base, prior)
        per_class.setdefault(s.objects[0].label, _Acc()).add(scored["first_iou"], scored["parsed"], base, prior)
    tp, n_pred, n_true = counts["text_to_region"]
    precision, recall, f1 = precision_recall_f1(tp, n_pred, n_true)
    out = total.summary()
    out["multi_box"] = {"precision": precision, "recall": recall, "f1": f1,
                        "matched": tp, "predicted": n_pred, "true": n_true, "iou_threshold": 0.5}
    out["region_to_text"] = {"n": r2t_n, "accuracy": ratio(r2t_acc, r2t_n), "token_f1": ratio(r2t_f1, r2t_n)}
    if reports:
        tp, n_pred, n_true = counts["grounded_report"]
        p, r, f = precision_recall_f1(tp, n_pred, n_true)
        out["grounded_report"] = {"n": reports, "precision": p, "recall": r, "f1": f, "matched": tp,
                                  "predicted": n_pred, "true": n_true, "iou_threshold": 0.5}
    out["per_class"] = {k: {kk: v for kk, v in a.summary().items() if kk in
                            ("n", "miou", "acc@0.5", "parse_rate", "baseline_miou", "class_prior_miou")}
                        for k, a in sorted(per_class.items())}
    out["baseline"] = "mean training box" if stats else "none (no training statistics given)"
    return out


# ------------------------------------------------------------------ the run

@dataclass(frozen=True)
class GroundingSettings:
    max_new_tokens: int = 48
    batch_size: int = 16
    system_prompt: bool = True
    max_samples: int | None = None  # per task, the first N in file order


def select(samples: Sequence[Sample], max_samples: int | None) -> list[Sample]:
    out: list[Sample] = []
    counts: dict[str, int] = {}
    for s in samples:
        if s.task not in registry.names("region"):  # the region tasks of the task registry
            continue
        if max_samples is not None and counts.get(s.task, 0) >= max_samples:
            continue
        counts[s.task] = counts.get(s.task, 0) + 1
        out.append(s)
    return out


def evaluate(vlm: Any, samples: Sequence[Sample], codec: BoxCodec, root: str | None, cache_path: str,
             settings: GroundingSettings = GroundingSettings(), stats: Mapping[str, Any] | None = None,
             progress: bool = False) -> dict[str, Any]:
    """Generate (through the result cache) and score; returns the metrics dict."""
    from medmm.models.base import Request

    chosen = select(samples, settings.max_samples)
    if not chosen:
        raise InputError(f"no region-task samples ({', '.join(registry.names('region'))}) to evaluate")
    run = RunConfig.build("grounding-eval", model=vlm.fingerprint(), codec=codec.config(),
                          max_new_tokens=settings.max_new_tokens, system_prompt=settings.system_prompt,
                          image_preparation="medmm.finetune.inputs/v1")
    images: dict[tuple[Any, ...], Any] = {}
    transforms: dict[str, Any] = {}

    def image_of(s: Sample) -> Any:
        key = (s.image, s.slice, s.window)
        if key not in images:
            images[key] = load_image(s, root)
        return images[key]

    def transform_of(s: Sample) -> Any:
        if s.id not in transforms:
            transforms[s.id] = input_transform(vlm, s.width, s.height)
        return transforms[s.id]

    keys = {s.id: item_key(json.dumps(s.to_dict(), sort_keys=True)) for s in chosen}
    with ResultCache(cache_path) as cache:
        cfg_key = cache.register(run)
        done = cache.done_keys(cfg_key)
        todo = [s for s in chosen if keys[s.id] not in done]
        bar = None
        if progress and todo:
            from medmm.runs import progress as progress_bar  # the one progress helper

            bar = progress_bar(len(todo), "grounding-eval", "sample")
        for i in range(0, len(todo), settings.batch_size):
            part, reqs = [], []
            for s in todo[i:i + settings.batch_size]:
                try:  # one unreadable image is recorded as a failed item, the evaluation goes on
                    img = image_of(s)
                    if img.size != (s.width, s.height):
                        raise InputError(f"image is {img.size}, the sample says {(s.width, s.height)}")
                    conv = registry.get(s.task, "region").prompt(s, codec, transform_of(s), system=settings.system_prompt)
                except InputError as exc:
                    cache.put(keys[s.id], cfg_key, error=f"sample {s.id}: {exc}")
                    continue
                part.append(s)
                reqs.append(Request(images=[prepare_image(vlm, img)], messages=prompt_messages(conv, settings.system_prompt)))
            gens = vlm.generate(reqs, max_new_tokens=settings.max_new_tokens) if reqs else []
            cache.put_many([(keys[s.id], {"text": g.text}, None) for s, g in zip(part, gens)], cfg_key)
            if bar is not None:
                bar.update(settings.batch_size)
        if bar is not None:
            bar.close()
        answers = {}
        by_key = {keys[s.id]: s.id for s in chosen}
        for k, value in cache.iter_results(cfg_key):
            if k in by_key:
                answers[by_key[k]] = value["text"]
        failed = sorted(cache.status(keys[s.id], cfg_key)["error"] for s in chosen
                        if s.id not in answers and cache.status(keys[s.id], cfg_key))
    metrics = score(chosen, answers, codec, transform_of, stats)
    metrics["failed"] = {"n": len(failed), "first": failed[:5]}  # not scored (unreadable images): rerun to retry
    metrics["run_key"] = cfg_key
    metrics["codec"] = codec.config()
    return metrics


def write_metrics(metrics: Mapping[str, Any], path: str) -> str:
    from medmm.runs import write_json  # the one atomic writer

    return write_json(path, metrics, indent=2, sort_keys=True)

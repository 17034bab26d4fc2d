"""The report-checking tasks of the recipe (a task plugin, :mod:`medmm.finetune.plugins`): SIMPLE and COMPLEX samples, mixable with the region tasks.

``data.tasks`` may name ``simple`` and ``complex`` beside the region tasks; their samples come from a
``medmm checker-data`` JSONL (``data.train`` / ``data.eval`` / ``data.checker_calib``) or are generated
for the run from synthetic studies (``data.checker``, :class:`CheckerSynthSection`): training studies of
several seeds, and held-out studies of another seed split by study into a **calibration** part (the SIMPLE
threshold and the ensemble stacker are fit on it) and an **evaluation** part (``checker.json``).

Encoding (:func:`encode_checker_example`): the views of :mod:`medmm.reports.checker_views` (the same ones the
checker sees at inference), the prompt and message layout of :mod:`medmm.reports.vlm_checker` (report and
image order from the checker config), the answer (``yes``/``no``, or the COMPLEX type, quoted sentence and
region box in the family's codec, in model-input pixels), loss on the answer tokens only.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from medmm.errors import InputError
from medmm.finetune.checker_tasks import CheckerSynthSection
from medmm.finetune.inputs import IGNORE, Example, encode_prompt, input_transform, prepare_image
from medmm.reports.checker_data import CHECKER_TASKS, CheckerSample

__all__ = ["CHECKER_TASKS", "CheckerSynthSection", "encode_checker_example", "is_checker", "prepare_checker_data"]


def is_checker(sample: Any) -> bool:
    return isinstance(sample, CheckerSample)


def _data_config(s: CheckerSynthSection, seed: int) -> Any:
    from medmm.reports.checker_data import CheckerDataConfig

    kw: dict[str, Any] = {"clean_per_error": s.clean_per_error, "complex": s.complex, "seed": seed}
    if s.error_models:
        kw["error_models"] = dict(s.error_models)
    return CheckerDataConfig(**kw)


def _studies(folder: str, n: int, seed: int, s: CheckerSynthSection) -> list[dict[str, Any]]:
    from medmm.reports.checker_data import studies_from_synth_manifest
    from medmm.synth import SMALL, SynthConfig, synthesize

    manifest = os.path.join(folder, "manifest.jsonl")
    if not os.path.isfile(manifest):
        synthesize(folder, n, seed=seed, kinds=tuple(s.kinds), workers=1, config=SMALL if s.small else SynthConfig())
    return studies_from_synth_manifest(manifest)


def _relative(studies: list[dict[str, Any]], folder: str, root: str) -> list[dict[str, Any]]:
    rel = os.path.relpath(folder, root)  # study ids of different seeds repeat (S0001...): the seed folder prefixes them
    return [{**st, "study_id": f"{os.path.basename(folder)}/{st['study_id']}",
             "images": [os.path.join(rel, p) for p in st["images"]]} for st in studies]


def _keep(samples: list[CheckerSample], s: CheckerSynthSection) -> list[CheckerSample]:
    if not s.only_with_error:
        return samples
    with_error = {x.study_id for x in samples if x.has_error}
    return [x for x in samples if x.study_id in with_error]


def prepare_checker_data(s: CheckerSynthSection, data_dir: str) -> tuple[str, str, str]:
    """Paths of the train, calibration and evaluation checker samples (generated once, deterministic)."""
    from medmm.reports.checker_data import build_samples, split_for, write_jsonl

    root = os.path.join(data_dir, "checker")
    paths = tuple(os.path.join(root, f"{name}.jsonl") for name in ("train", "calib", "eval"))
    if all(os.path.isfile(p) for p in paths):
        return paths  # type: ignore[return-value]
    os.makedirs(root, exist_ok=True)
    train: list[CheckerSample] = []
    for seed in s.seeds:
        folder = os.path.join(root, "studies", f"seed{seed}")
        st = _relative(_studies(folder, s.n_per_seed, seed, s), folder, root)
        train += _keep(build_samples(st, _data_config(s, seed), source=f"synth seed {seed}", split="train"), s)
    folder = os.path.join(root, "studies", f"seed{s.eval_seed}")
    held = _relative(_studies(folder, s.n_eval, s.eval_seed, s), folder, root)
    shares = (0.0, s.calib_share, 1.0 - s.calib_share)
    calib = [x for x in held if split_for(x["study_id"], shares) == "calib"]
    ev = [x for x in held if split_for(x["study_id"], shares) != "calib"]
    cfg = _data_config(s, s.eval_seed)
    for path, samples in ((paths[0], train),
                          (paths[1], _keep(build_samples(calib, cfg, f"synth seed {s.eval_seed}", "calib"), s)),
                          (paths[2], _keep(build_samples(ev, cfg, f"synth seed {s.eval_seed}", "eval"), s))):
        write_jsonl(samples, path)
    return paths  # type: ignore[return-value]


def read_checker_samples(path: str, tasks: Sequence[str] | None = None, with_lines: bool = False) -> Any:
    """The checker samples of a JSONL (of ``tasks``), image paths made absolute against the file's folder;
    with ``with_lines`` also the numbers of every checker line (other readers skip them)."""
    import json
    from dataclasses import replace

    from medmm.reports.checker_data import read_jsonl

    samples, _ = read_jsonl(path)
    root = os.path.dirname(os.path.abspath(path))
    out = [replace(s, images=tuple(p if os.path.isabs(p) else os.path.normpath(os.path.join(root, p)) for p in s.images))
           for s in samples if tasks is None or s.task in tasks]
    if not with_lines:
        return out
    lines = set()
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if '"task"' in line:
                try:
                    if json.loads(line).get("task") in CHECKER_TASKS:
                        lines.add(n)
                except ValueError:
                    pass
    return out, lines


def _region_text(vlm: Any, sample: CheckerSample, codec: Any, size: tuple[int, int], n_images: int) -> str | None:
    e = sample.error
    if sample.task != "complex" or e is None or not e.region or n_images != 1 or len(sample.images) < 1:
        return None
    from medmm.regions.box import Box
    from medmm.regions.codecs import RefBoxes

    box = Box.from_dict(e.region)
    if int(e.region.get("image", 0) or 0) != 0 or box.slice is not None:
        return None  # the region lies on another image or slice than the view shown
    t = input_transform(vlm, *size)
    b = box.to_model(t).as_tuple()
    return codec.encode([RefBoxes("region", (b,))], t.size)


def encode_checker_example(vlm: Any, sample: CheckerSample, codec: Any, root: str | None, checker_config: Any,
                           blind: bool = False) -> Example:
    """One SIMPLE / COMPLEX training example (prompt with the checker's views, answer tokens, labels)."""
    from medmm.reports.checker_data import answer_text
    from medmm.reports.checker_views import checker_images
    from medmm.reports.vlm_checker import complex_prompt, messages, simple_prompt

    if not sample.images:
        raise InputError(f"sample {sample.id}: no images (the checker reads the image)")
    images = checker_images(list(sample.images), root, max_views=checker_config.max_views, blind=blind,
                            focus_slices=list(sample.focus_slices) or None)
    prompt = (simple_prompt if sample.task == "simple" else complex_prompt)(sample.report, checker_config)
    msgs = messages(prompt, len(images), checker_config.image_after_text)
    enc = encode_prompt(vlm, msgs, [prepare_image(vlm, im) for im in images])
    prompt_ids = enc.pop("input_ids")[0]
    enc.pop("attention_mask", None)
    enc.pop("mm_token_type_ids", None)
    region = _region_text(vlm, sample, codec, images[0].size, len(images)) if codec is not None else None
    tok = vlm.tokenizer
    answer = tok(answer_text(sample, region), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.cat([prompt_ids, torch.tensor(answer, dtype=torch.long)])
    labels = torch.cat([torch.full_like(prompt_ids, IGNORE), torch.tensor(answer, dtype=torch.long)])
    return Example(ids, labels, {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}, sample.id)


def checker_config(cfg: Any) -> Any:
    """The VLM checker config a run trains with (the packaged prompts, ``data.checker_prompt`` on top);
    written next to the model at the end with its calibrated threshold."""
    from dataclasses import replace

    from medmm.reports.vlm_checker import VLMCheckerConfig

    base = VLMCheckerConfig.load()
    extra = dict(cfg.data.checker_prompt or {})
    if "options" in extra:
        extra["options"] = tuple(extra["options"])
    return replace(base, **extra)

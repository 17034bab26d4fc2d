"""The recipe's data: samples files, or synthetic studies generated for the run (train and held out).

With ``data.synth`` the recipe writes ``medmm synth`` studies for training (``seed``) and a
disjoint held-out set (``eval_seed``: other patients, other images), builds region-task samples
from their label maps (the manifest read as :mod:`medmm.studies` records, then
:func:`medmm.regions.tasks.synthetic_samples`) and writes them as medmm
JSONL under ``output_dir/data`` — the same files ``medmm grounding-eval --data`` reads.
Generation is deterministic for a seed, so a resumed run regenerates the same data.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Sequence

from medmm.errors import InputError
from medmm.finetune.config import FinetuneConfig, SynthSection
from medmm.regions.labelmaps import LabelMapOptions
from medmm.regions.tasks import Sample, read_jsonl, synthetic_samples, write_jsonl
from medmm.studies import iter_manifest


def _synth_set(cfg: SynthSection, out: str, n: int, seed: int, tasks: Sequence[str], split: str) -> list[Sample]:
    from medmm.synth import SMALL, SynthConfig, synthesize
    from medmm.synth.truth import ORGAN_LABELS

    manifest = os.path.join(out, "manifest.jsonl")
    if not os.path.isfile(manifest):
        synthesize(out, n, seed=seed, kinds=tuple(cfg.kinds), workers=1, config=SMALL if cfg.small else SynthConfig())
    organs = {o: ORGAN_LABELS[o] for o in cfg.organs}  # names checked with the config
    options = LabelMapOptions(min_pixels=cfg.min_pixels, max_slices=cfg.max_slices)
    samples = synthetic_samples(iter_manifest(manifest), out, organs, tasks=tasks, options=options,
                                include_findings=cfg.findings)  # the one study record (medmm.studies)
    return [replace(s, split=split) for s in samples]


def prepare_data(cfg: FinetuneConfig, data_dir: str) -> tuple[str, str | None]:
    """Paths of the train and eval samples files (generated under ``data_dir`` for ``data.synth``)."""
    if cfg.synth is None:
        return (cfg.resolve(cfg.data.train) if cfg.data.train else None,  # type: ignore[return-value]
                cfg.resolve(cfg.data.eval) if cfg.data.eval else None)
    s = cfg.synth
    paths = []
    for name, n, seed in (("train", s.n_train, s.seed), ("eval", s.n_eval, s.eval_seed)):
        folder = os.path.join(data_dir, name)
        path = os.path.join(folder, "samples.jsonl")
        if not os.path.isfile(path):
            os.makedirs(folder, exist_ok=True)
            samples = _synth_set(s, folder, n, seed, tuple(t for t in cfg.data.tasks if t not in ("simple", "complex")) if name == "train" else
                                 ("text_to_region", "region_to_text"), name)
            write_jsonl(samples, path)  # all or nothing (medmm.runs.write_atomic)
        paths.append(path)
    return paths[0], paths[1]


def read_samples(path: str, tasks: Sequence[str] | None = None) -> tuple[list[Any], list[str]]:
    """Region-task samples and the samples of registered task plugins (e.g. the report checker's ``simple`` /
    ``complex``: :mod:`medmm.finetune.plugins`) of a medmm JSONL, of ``tasks`` (all when None)."""
    from medmm.finetune.plugins import task_plugins

    checker: list[Any] = []
    lines: set[int] = set()
    for plugin in task_plugins():
        got, at = plugin.read(path, tasks)
        checker += got
        lines |= at
    samples, problems = read_jsonl(path)
    if lines:  # the region reader does not know the checker tasks: those lines are not its problems
        problems = [p for p in problems if int(p.split(":", 1)[0].split()[-1]) not in lines]
    if tasks is not None:
        samples = [s for s in samples if s.task in tasks]
    samples = list(samples) + checker
    if not samples:
        raise InputError(f"{path}: no usable samples" + (f" of tasks {list(tasks)}" if tasks else "")
                         + (f" ({len(problems)} unreadable lines, first: {problems[0]})" if problems else ""))
    return samples, problems

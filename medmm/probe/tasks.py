"""The probe task registry: each probe declares its data reader, prompts, answer parsers and scorer here.

A :class:`ProbeTask` is everything the runner, the scorer, ``probe prepare`` and the CLI need to
know about one kind of probe; nothing else lists the kinds (``probe run --bench`` takes its
choices from :func:`task_names`). Adding a probe = one :func:`register` call with its functions:

* ``load(data, root, mode, controls, limit, layout)`` -> ``(samples, missing)``: reads the data
  file with the task's reader and builds one :class:`~medmm.probe.samples.Sample` per model query
  (the prompt templates of ``medmm/probe/prompts.yaml``, the controls' variants);
* ``parsers``: answer parsers (``robust`` and the reference's compat rule), used by
  :func:`medmm.probe.scoring.parsed_answer`;
* ``score_variant(records, variant, mode, parser, **kw)``: a variant's
  :class:`~medmm.probe.scoring.VariantScore` (point metrics and per-group units for intervals);
* ``metrics`` (headline first), ``modes``, and the ``prepare`` checker of the published copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from medmm.errors import InputError


@dataclass(frozen=True)
class ProbeTask:
    name: str  # --bench value and the "bench" of every record
    title: str
    modes: tuple[str, ...]
    parsers: tuple[str, ...]
    metrics: tuple[str, ...]
    load: Callable[..., tuple[list[Any], dict[str, list[str]]]]
    score_variant: Callable[..., Any]
    prepare: str | None = None  # the ``medmm probe prepare`` name of the published benchmark


TASKS: dict[str, ProbeTask] = {}


def register(task: ProbeTask) -> ProbeTask:
    if task.name in TASKS:
        raise ValueError(f"probe task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def parser_names() -> tuple[str, ...]:
    """Every answer parser some task declares (``robust`` first)."""
    return tuple(dict.fromkeys(p for t in TASKS.values() for p in t.parsers))


def mode_names() -> tuple[str, ...]:
    """Every answering mode some task declares."""
    return tuple(dict.fromkeys(m for t in TASKS.values() for m in t.modes))


def prepare_names() -> tuple[str, ...]:
    return tuple(t.prepare for t in TASKS.values() if t.prepare)


def get_task(name: str) -> ProbeTask:
    if name not in TASKS:
        raise InputError(f"unknown benchmark {name!r}; use one of {', '.join(TASKS)}")
    return TASKS[name]


# ------------------------------------------------------------------ negation pairs (ProbMed)

def _load_negation(data: str, root: str, mode: str, controls: Sequence[str], limit: int | None,
                   layout: str) -> tuple[list[Any], dict[str, list[str]]]:
    from medmm.probe.negation import read_questions
    from medmm.probe.samples import negation_samples, with_image_hashes

    questions = read_questions(data)
    if limit is not None:
        keep = set(list(dict.fromkeys((q.image_type, json.dumps(q.id)) for q in questions))[:limit])
        questions = [q for q in questions if (q.image_type, json.dumps(q.id)) in keep]
    return with_image_hashes(negation_samples(questions, root, mode, controls)), {}


def _score_negation(records: Sequence[Mapping[str, Any]], variant: str, mode: str, parser: str, **kw: Any) -> Any:
    from medmm.probe.scoring import negation_variant

    return negation_variant(records, variant, mode, parser)


# ------------------------------------------------------------------ confusion pairs (MediConfusion)

def _load_confusion(data: str, root: str, mode: str, controls: Sequence[str], limit: int | None,
                    layout: str) -> tuple[list[Any], dict[str, list[str]]]:
    from medmm.probe.confusion import read_dataset, resolve_images
    from medmm.probe.samples import confusion_samples, with_image_hashes

    pairs = read_dataset(data, layout=layout)
    if limit is not None:
        pairs = pairs[:limit]
    resolved = resolve_images(pairs, root)
    refs = {p.pair_id: (p.image_1, p.image_2) for p in pairs}
    return with_image_hashes(confusion_samples(resolved.complete, mode, controls, refs)), resolved.missing


def _score_confusion(records: Sequence[Mapping[str, Any]], variant: str, mode: str, parser: str, **kw: Any) -> Any:
    from medmm.probe.scoring import confusion_variant, pairs_of

    return confusion_variant(records, variant, mode, parser, pairs_of(records), **kw)


register(ProbeTask("negation", "ProbMed-style negation pairs (yes/no, true vs hallucinated attribute)",
                   modes=("mc", "greedy"), parsers=("robust", "probmed-compat"),
                   metrics=("overall", "modality", "organ", "abnormality", "condition", "position"),
                   load=_load_negation, score_variant=_score_negation, prepare="probmed"))
register(ProbeTask("confusion", "MediConfusion-style confusion pairs (two look-alike images, one question)",
                   modes=("mc", "greedy", "prefix", "judge"), parsers=("robust", "mediconfusion-compat"),
                   metrics=("set_accuracy", "individual_accuracy", "confusion", "invalid_rate"),
                   load=_load_confusion, score_variant=_score_confusion, prepare="mediconfusion"))

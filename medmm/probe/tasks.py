"""The probe task registry: each probe declares its data reader, prompts, answer parsers and scorer here.

A :class:`ProbeTask` is everything the runner, the scorer, ``probe prepare`` and the CLI need to
know about one kind of probe. :func:`register` declares it in medmm's one task registry
(:mod:`medmm.tasks`, kind ``"probe"``: reader, prompt, parser, scorer, with this declaration as its
``details``), beside the region tasks; every lookup here reads that registry, and nothing else lists
the kinds (``probe run --bench`` takes its choices from :func:`task_names`). Adding a probe = one
:func:`register` call with its functions:

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
from typing import Any, Callable, Iterator, Mapping, Sequence

from medmm import tasks as registry
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
    prompt_set: str = ""  # its section of medmm/probe/prompts.yaml


def _prompts_of(task: ProbeTask) -> Callable[[], Any]:
    def prompt() -> Any:
        from medmm.probe.samples import prompts

        return prompts()[task.prompt_set]
    return prompt


def _parse(record: Mapping[str, Any], mode: str, parser: str, **kw: Any) -> Any:
    from medmm.probe.scoring import parsed_answer

    return parsed_answer(record, mode, parser, **kw)


def register(task: ProbeTask) -> ProbeTask:
    """Declare a probe in the task registry (:mod:`medmm.tasks`, kind ``probe``)."""
    if task.name in registry.names() and registry.get(task.name).details != task:
        raise ValueError(f"probe task {task.name!r} is registered twice")
    registry.register(registry.TaskSpec(task.name, "probe", task.title, reader=task.load, prompt=_prompts_of(task),
                                        parser=_parse, scorer=task.score_variant, details=task))
    return task


def tasks() -> tuple[ProbeTask, ...]:
    """Every probe of the task registry."""
    return tuple(s.details for s in registry.specs("probe"))


def task_names() -> tuple[str, ...]:
    return registry.names("probe")


def parser_names() -> tuple[str, ...]:
    """Every answer parser some task declares (``robust`` first)."""
    return tuple(dict.fromkeys(p for t in tasks() for p in t.parsers))


def mode_names() -> tuple[str, ...]:
    """Every answering mode some task declares."""
    return tuple(dict.fromkeys(m for t in tasks() for m in t.modes))


def prepare_names() -> tuple[str, ...]:
    return tuple(t.prepare for t in tasks() if t.prepare)


class _ProbeTasks(Mapping[str, ProbeTask]):
    """``name -> ProbeTask``, read from the task registry on every access (a view, never a copy)."""

    def __getitem__(self, name: str) -> ProbeTask:
        if name not in task_names():
            raise KeyError(name)
        return get_task(name)

    def __iter__(self) -> Iterator[str]:
        return iter(task_names())

    def __len__(self) -> int:
        return len(task_names())


TASKS: Mapping[str, ProbeTask] = _ProbeTasks()


def get_task(name: str) -> ProbeTask:
    if name not in task_names():
        raise InputError(f"unknown benchmark {name!r}; use one of {', '.join(task_names())}")
    return registry.get(name, "probe").details  # type: ignore[no-any-return]


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
                   load=_load_negation, score_variant=_score_negation, prepare="probmed", prompt_set="probmed"))
register(ProbeTask("confusion", "MediConfusion-style confusion pairs (two look-alike images, one question)",
                   modes=("mc", "greedy", "prefix", "judge"), parsers=("robust", "mediconfusion-compat"),
                   metrics=("set_accuracy", "individual_accuracy", "confusion", "invalid_rate"),
                   load=_load_confusion, score_variant=_score_confusion, prepare="mediconfusion",
                   prompt_set="mediconfusion"))

"""The one task registry (layer L0): every evaluation task declares itself here — its data reader, prompt,
answer parser and scorer — and everything that lists tasks (the CLI's choices, the probe runner, grounding
evaluation, the fine-tuning config check) reads this registry, never a literal list.

The registry sits at the bottom of the layers so that tasks of packages that may not import each other
register into the same table: probes (``medmm.probe.tasks``, layer L5) and region tasks
(``medmm.regions.tasks``, layer L2) each call :func:`register` from their own module when it is imported.
A :class:`TaskSpec` holds plain callables; what each callable takes is the business of the ``kind`` that
runs it (documented where the kind registers its tasks):

* ``kind="probe"`` — ``reader(data, root, mode, controls, limit, layout) -> (samples, missing)`` reads the
  data file and builds one sample per model query with its prompt; ``prompt()`` returns the prompt
  templates; ``parser(record, mode, parser_name, **kw)`` parses an answer; ``scorer(records, variant,
  mode, parser, **kw)`` scores a variant; ``details`` is the probe's own declaration
  (:class:`medmm.probe.tasks.ProbeTask`: modes, parsers, metrics, the ``prepare`` name);
* ``kind="region"`` — ``reader(path) -> (samples, problems)`` reads a medmm samples JSONL;
  ``prompt(sample, codec, transform, system)`` is the conversation a model is trained and asked with;
  ``parser(text, sample, codec, transform)`` turns an answer into what is scored (boxes in acquisition
  pixels, or the text); ``scorer(sample, parsed)`` gives the per-sample figures that grounding evaluation
  sums.

This follows lm-evaluation-harness's registry: a name maps to a declaration, and the runner is written
once against the declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from medmm.errors import InputError

__all__ = ["TaskSpec", "register", "get", "names", "specs", "kinds"]


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name, the kind of runner that reads it, and the four functions it is made of."""

    name: str
    kind: str  # "probe" | "region" (the runner that reads it)
    title: str
    reader: Callable[..., Any]
    prompt: Callable[..., Any]
    parser: Callable[..., Any]
    scorer: Callable[..., Any]
    details: Any = None  # the kind's own declaration (e.g. a probe's modes, parsers, metrics)

    def __post_init__(self) -> None:
        if not self.name or not self.kind:
            raise ValueError("a task needs a name and a kind")
        for part in ("reader", "prompt", "parser", "scorer"):
            if not callable(getattr(self, part)):
                raise TypeError(f"task {self.name!r}: {part} must be callable")


_TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add a task. A name is registered once (re-importing the declaring module registers the same
    declaration again, which is accepted when it is the same kind)."""
    old = _TASKS.get(spec.name)
    if old is not None and old.kind != spec.kind:
        raise ValueError(f"task {spec.name!r} is registered as a {old.kind} task already")
    _TASKS[spec.name] = spec
    return spec


def get(name: str, kind: str | None = None) -> TaskSpec:
    """The task ``name`` (of ``kind`` when given); an unknown name is an :class:`InputError` naming the choices."""
    spec = _TASKS.get(name)
    if spec is None or (kind is not None and spec.kind != kind):
        what = f"{kind} task" if kind else "task"
        raise InputError(f"unknown {what} {name!r}; use one of {', '.join(names(kind)) or '(none registered)'}")
    return spec


def names(kind: str | None = None) -> tuple[str, ...]:
    """Registered task names (of ``kind``), in registration order."""
    return tuple(s.name for s in specs(kind))


def specs(kind: str | None = None) -> tuple[TaskSpec, ...]:
    return tuple(s for s in _TASKS.values() if kind is None or s.kind == kind)


def kinds() -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.kind for s in _TASKS.values()))

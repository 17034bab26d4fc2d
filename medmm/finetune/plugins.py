"""Task plugins: training tasks that another package brings to the recipe without the recipe importing it.

The recipe knows the region tasks. Other tasks — the report checker's SIMPLE and COMPLEX
(``medmm.checkertrain``, which reads both this package and ``medmm.reports``) — register a
:class:`TaskPlugin` here when they are imported; the recipe asks each registered plugin to validate the
config, add its samples, encode the samples it owns and write its results at the end. The layers stay as
DESIGN.md draws them: the L5 packages stand beside each other, and the package that joins two of them
sits above both.
"""

from __future__ import annotations

from typing import Any, Protocol


class TaskPlugin(Protocol):
    tasks: tuple[str, ...]

    def problems(self, cfg: Any) -> list[str]: ...

    def read(self, path: str, tasks: Any) -> tuple[list[Any], set[int]]: ...

    def load(self, recipe: Any, data_dir: str) -> None: ...

    def owns(self, sample: Any) -> bool: ...

    def encode(self, recipe: Any, sample: Any) -> Any: ...

    def finish(self, recipe: Any, tuned: Any, paths: dict[str, Any]) -> dict[str, Any]: ...

    # optional: ``prepare_model(recipe)``, called once the model is loaded and the examples encoded, before the
    # optimizer is built (e.g. the checker's vision warm-up, medmm.checkertrain.warmup)


_PLUGINS: list[TaskPlugin] = []


def register(plugin: TaskPlugin) -> TaskPlugin:
    """Register a task plugin (once per task names; a second registration replaces the first)."""
    _PLUGINS[:] = [p for p in _PLUGINS if p.tasks != plugin.tasks] + [plugin]
    return plugin


def task_plugins() -> list[TaskPlugin]:
    return list(_PLUGINS)


def plugin_tasks() -> set[str]:
    return {t for p in _PLUGINS for t in p.tasks}


def owner(sample: Any) -> TaskPlugin | None:
    return next((p for p in _PLUGINS if p.owns(sample)), None)

"""Helpers for the packages' ``cli`` modules (layer L0: argparse only, no medmm package).

:class:`RegistryChoices` lets a command's ``choices`` come from a registry (checker kinds, model
families, probe tasks) without importing that registry until the choices are needed: when the
command's own arguments are parsed or its help is shown, never for ``medmm --help`` or another
command. A choice list written as a literal next to an option goes stale when a registry grows.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Callable, overload


class RegistryChoices(Sequence[str]):
    """argparse ``choices`` read from ``"module:attribute"`` (a sequence, or a function returning one) on first use."""

    def __init__(self, source: str | Callable[[], Sequence[str]]) -> None:
        self._source = source
        self._names: tuple[str, ...] | None = None

    def _load(self) -> tuple[str, ...]:
        if self._names is None:
            source = self._source
            if isinstance(source, str):
                module, _, attr = source.partition(":")
                value: Any = getattr(importlib.import_module(module), attr)
            else:
                value = source
            self._names = tuple(value() if callable(value) else value)
        return self._names

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._load()[index]

    def __len__(self) -> int:
        return len(self._load())

    def __contains__(self, value: object) -> bool:
        return value in self._load()

    def __repr__(self) -> str:
        return f"RegistryChoices({self._source!r})"

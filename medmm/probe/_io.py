"""The probe package's JSON writers: medmm.runs' one atomic writer (a temporary file, then a rename; NaN as null)."""

from __future__ import annotations

import os
from typing import Any, Iterable

from medmm.runs import json_clean as clean
from medmm.runs import write_json as _write_json
from medmm.runs import write_jsonl as _write_jsonl

__all__ = ["clean", "write_json", "write_jsonl"]


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    _write_json(path, obj)


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> None:
    _write_jsonl(path, rows)

"""Atomic JSON / JSON-lines writers of the probe package (a temporary file, then a rename; NaN as null)."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable


def clean(obj: Any) -> Any:
    """``obj`` with NaN floats as None (JSON has no NaN)."""
    if isinstance(obj, float):
        return None if obj != obj else obj
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    p = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    with open(p + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(clean(obj), fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    os.replace(p + ".tmp", p)


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> None:
    p = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    with open(p + ".tmp", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(clean(r), ensure_ascii=False) + "\n")
    os.replace(p + ".tmp", p)

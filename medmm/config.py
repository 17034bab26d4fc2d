"""Package data and YAML configs, the same way from a wheel, an editable install or a checkout.

Everything medmm reads at run time that is not user input ships *inside* the package and is
read through :mod:`importlib.resources` (never through a path computed from ``__file__`` up to
the source checkout, which does not exist once medmm is installed from a wheel):

- word lists and tables, e.g. ``read_text("reports/radiology_words.txt")``;
- packaged default configs under ``medmm/configs/`` (``models/tiny-llava.yaml``,
  ``reports/vlm-checker.yaml``, ...), listed by :func:`packaged_configs`.

:func:`load_config` takes either a packaged config name (``"models/tiny-llava.yaml"``) or a
user's path (``configs/finetune/lora.yaml``, ``/srv/medmm/vlm-checker.yaml``). A file that
exists on disk wins over a packaged name, so a user copies a packaged default, edits it and
passes its path. Configs are validated at load: the top level is a mapping, unknown keys are
errors, required keys must be present, values must have the declared type. Every problem of
a file is gathered into one :class:`~medmm.errors.ConfigError`, so a user fixes them in one go.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Mapping, TypeVar, Union

import yaml

from medmm.errors import ConfigError

PACKAGE = "medmm"
CONFIG_DIR = "configs"  # inside the package: medmm/configs/

T = TypeVar("T")


def files(resource: str = "") -> Traversable:
    """The package's data as a :class:`~importlib.resources.abc.Traversable` (``""`` = the package).

    ``resource`` is a ``/``-separated path inside the ``medmm`` package, e.g. ``"configs/models"``.
    """
    root = resources.files(PACKAGE)
    for part in _parts(resource):
        root = root / part
    return root


def read_text(resource: str, encoding: str = "utf-8") -> str:
    """Text of a packaged file, e.g. ``read_text("reports/radiology_words.txt")``.

    A missing file is a :class:`ConfigError` that says the installation is incomplete: package
    data that is missing is a packaging bug, never something to fall back from silently.
    """
    item = files(resource)
    if not item.is_file():
        raise ConfigError(f"packaged file medmm/{resource} is missing: this medmm installation is incomplete; "
                          f"reinstall medmm (pip install --force-reinstall medmm, or pip install -e . in a checkout)")
    return item.read_text(encoding=encoding)


def packaged_configs(folder: str = "") -> list[str]:
    """Names of the packaged configs (``"models/tiny-llava.yaml"``, ...), optionally under ``folder``."""
    names: list[str] = []

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
            elif child.name.endswith((".yaml", ".yml")):
                names.append(name)

    start = files(f"{CONFIG_DIR}/{folder}".rstrip("/"))
    if start.is_dir():
        walk(start, f"{folder.strip('/')}/" if folder.strip("/") else "")
    return sorted(names)


@dataclass(frozen=True)
class ConfigSource:
    """Where a config came from.

    ``label`` names it in messages (the user's path, or ``medmm:configs/NAME`` for a packaged
    default); ``directory`` is the folder of a user's file, against which relative paths inside
    it resolve (``None`` for a packaged config: a packaged default holds no paths).
    """

    name: str
    label: str
    text: str
    directory: Path | None
    packaged: bool


def find_config(name_or_path: str | os.PathLike[str]) -> ConfigSource:
    """A user's file if ``name_or_path`` exists on disk, else the packaged config of that name."""
    name = os.fspath(name_or_path)
    if os.path.isfile(os.path.expanduser(name)):
        path = Path(name).expanduser().resolve()
        return ConfigSource(name, name, path.read_text(encoding="utf-8"), path.parent, packaged=False)
    if os.path.isabs(name) or name.startswith((".", "~")):
        raise ConfigError(f"{name}: config file not found")
    item = files(f"{CONFIG_DIR}/{name}") if _parts(name) else None
    if item is None or not item.is_file():
        listing = ", ".join(packaged_configs()) or "none (this medmm installation is incomplete)"
        raise ConfigError(f"{name}: neither a config file on disk nor a packaged config; packaged configs: {listing}")
    return ConfigSource(name, f"medmm:{CONFIG_DIR}/{name}", item.read_text(encoding="utf-8"), None, packaged=True)


def read_mapping(source: ConfigSource) -> dict[str, Any]:
    """The YAML mapping of a config (an empty file is an empty mapping)."""
    try:
        raw = yaml.safe_load(source.text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source.label}: not valid YAML ({exc})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source.label}: expected a mapping of keys to values at the top level, "
                          f"got {type(raw).__name__}")
    return raw


Schema = Union[type, Mapping[str, Any]]


def problems(data: Mapping[str, Any], schema: Schema) -> list[str]:
    """Every problem of ``data`` against ``schema`` (empty list = valid).

    ``schema`` is a dataclass (its fields are the allowed keys, fields without a default are
    required, annotations are the types) or a mapping ``key -> type`` (all keys optional).
    Types checked: ``str``, ``int``, ``float`` (an int is accepted), ``bool``, ``X | None``,
    ``list[X]`` / ``tuple[X, ...]`` / ``tuple[X, Y]`` (a YAML list), ``dict[K, V]``, ``Any``.
    """
    allowed, required = _allowed(schema)
    found: list[str] = []
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        found.append(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(k for k in required if k not in data)
    if missing:
        found.append(f"missing required key(s) {missing}")
    for key, value in data.items():
        if key in allowed:
            why = _type_problem(value, allowed[key])
            if why:
                found.append(f"{key}: {why}")
    return found


def validate(data: Mapping[str, Any], schema: Schema, label: str) -> None:
    """Raise one :class:`ConfigError` listing every problem of ``data`` (see :func:`problems`)."""
    found = problems(data, schema)
    if found:
        raise ConfigError(_gathered(label, found))


def load_config(name_or_path: str | os.PathLike[str], schema: Schema | None = None) -> Any:
    """Load, validate and build a config from a packaged name or a user's path.

    With a dataclass ``schema`` the result is ``schema(**data)`` (YAML lists become tuples where
    the field is a tuple); errors its constructor raises (``ConfigError``/``ValueError``) are
    reported with the file's label. With a mapping schema or none, the validated dict.
    """
    source = find_config(name_or_path)
    data = read_mapping(source)
    if schema is None:
        return data
    validate(data, schema, source.label)
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
        return data
    return build(schema, data, source.label)


def build(schema: type[T], data: Mapping[str, Any], label: str) -> T:
    """``schema(**data)`` for a validated dataclass config, tuples from YAML lists."""
    hints = typing.get_type_hints(schema)
    kwargs = {k: (tuple(v) if isinstance(v, list) and _origin(hints.get(k)) is tuple else v) for k, v in data.items()}
    try:
        return schema(**kwargs)
    except ConfigError as exc:
        raise ConfigError(_gathered(label, [str(exc)])) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(_gathered(label, [str(exc)])) from None


# --- helpers -------------------------------------------------------------------------------------

def _parts(resource: str) -> list[str]:
    parts = [p for p in resource.replace("\\", "/").split("/") if p]
    if any(p == ".." for p in parts):
        raise ConfigError(f"{resource}: a packaged resource name cannot contain '..'")
    return parts


def _gathered(label: str, found: list[str]) -> str:
    if len(found) == 1:
        return f"{label}: {found[0]}"
    return f"{label}: {len(found)} problems:\n" + "\n".join(f"  - {p}" for p in found)


def _allowed(schema: Schema) -> tuple[dict[str, Any], set[str]]:
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        hints = typing.get_type_hints(schema)
        allowed = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(schema) if f.init}
        required = {f.name for f in dataclasses.fields(schema) if f.init
                    and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        return allowed, required
    if isinstance(schema, Mapping):
        return dict(schema), set()
    raise TypeError(f"schema must be a dataclass or a mapping of key -> type, got {schema!r}")


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp) or (tp if isinstance(tp, type) else None)


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a mapping",
          list: "a list", tuple: "a list", type(None): "null"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    return _NAMES.get(origin or tp, getattr(tp, "__name__", str(tp)))


def _type_problem(value: Any, tp: Any) -> str | None:
    """Why ``value`` is not a ``tp`` (``None`` when it is, or when ``tp`` is not checkable)."""
    if tp is Any or tp is object:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if any(_type_problem(value, a) is None for a in args):
            return None
        return f"expected {_describe(tp)}, got {value!r}"
    base = origin or tp
    if not isinstance(base, type):
        return None  # Literal, TypeVar, ...: left to the config's own checks
    ok = _is_instance(value, base)
    if not ok:
        hint = " (bare yes/no/on/off are booleans in YAML: quote them)" if isinstance(value, bool) and base is str else ""
        return f"expected {_describe(tp)}, got {value!r}{hint}"
    if base in (list, tuple) and args:
        if base is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return f"expected a list of {len(args)} values, got {len(value)}"
            element_types = list(args)
        else:
            element_types = [args[0]] * len(value)
        for i, (item, item_tp) in enumerate(zip(value, element_types)):
            why = _type_problem(item, item_tp)
            if why:
                return f"item {i}: {why}"
    if base is dict and len(args) == 2:
        for k, v in value.items():
            why = _type_problem(k, args[0]) or _type_problem(v, args[1])
            if why:
                return f"entry {k!r}: {why}"
    return None


def _is_instance(value: Any, base: type) -> bool:
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, base)

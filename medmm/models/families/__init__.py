"""One place per model family: the family registry.

Everything that depends on which model family a checkpoint belongs to — how it is detected from
its config, its chat template (tiny models), its image token, its box codec, how its processor
resizes an image (LLaVA's square padding, Qwen2-VL's ``smart_resize``), how its processor is
loaded and saved, its rotary positions after a cached prompt, and how its tiny random model is
built — is declared in **one file** of this folder: a :class:`Family` subclass and ``FAMILY = ...``.
Every module of this package not starting with ``_`` is such a file and is registered when the
registry is first read; nothing else lists families (``tests/test_model_families.py`` fails on a
family name written anywhere else in ``medmm/``).

Adding a family (e.g. a current Qwen VL or a LLaVA-Med checkpoint converted to the transformers
format)::

    # medmm/models/families/my_family.py
    from medmm.models.families._base import Family

    class MyFamily(Family):
        name = "my-family"
        model_types = ("my_model_type",)   # config.model_type values
        codec_name = "qwen2-vl"            # a codec of medmm.regions.codecs (or add one there)
        ...                                # override input_transform, load_processor, ... as needed

    FAMILY = MyFamily()

Lookups: :func:`family_of` (a VLM, a model, a config, a model type or a family name; unknown
model types get the ``generic`` family's defaults), :func:`get_family` (strict, by name),
:func:`families`, :func:`tiny_names`, :func:`model_types`.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import SimpleNamespace
from typing import Any

from medmm.errors import ConfigError
from medmm.models.families._base import Family, UnsupportedFamilyFeature

GENERIC = Family()
DEFAULT_TINY = "llava"  # the tiny model a caller gets without naming one (tests, demos)

__all__ = ["DEFAULT_TINY", "Family", "GENERIC", "UnsupportedFamilyFeature", "families", "family_of", "get_family", "model_types",
           "register", "tiny_names"]

_EXTRA: list[Family] = []


@cache
def _discovered() -> tuple[Family, ...]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        fam = getattr(module, "FAMILY", None)
        if not isinstance(fam, Family):
            raise ConfigError(f"{module.__name__}: a family file must define FAMILY = <a Family instance>")
        found.append(fam)
    return tuple(found)


def families() -> list[Family]:
    """Every registered family (the files of this folder, then any :func:`register`-ed at run time)."""
    out = [*_discovered(), *_EXTRA]
    names = [f.name for f in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"model families registered twice: {dupes}")
    return out


def register(family: Family) -> Family:
    """Register a family defined outside this folder (a plug-in, a test). Its name must be new."""
    if any(f.name == family.name for f in families()):
        raise ConfigError(f"a model family named {family.name!r} is already registered")
    _EXTRA.append(family)
    return family


def unregister(name: str) -> None:
    """Remove a family added with :func:`register` (the folder's own families stay)."""
    _EXTRA[:] = [f for f in _EXTRA if f.name != name]


def get_family(name: str) -> Family:
    """A registered family by its name (``llava``, ``qwen2-vl``, ...) or one of its model types."""
    for f in families():
        if name == f.name or name in f.model_types:
            return f
    raise ConfigError(f"unknown model family {name!r}: use one of {', '.join(f.name for f in families())}")


def _config_of(obj: Any) -> Any:
    """What carries ``model_type``: the object itself (a config, an HFVLM), its config, or its model's."""
    for holder in (obj, getattr(obj, "config", None), getattr(getattr(obj, "model", None), "config", None)):
        if isinstance(getattr(holder, "model_type", None), str):
            return holder
    return None


def family_of(obj: Any) -> Family:
    """The family of a VLM, a transformers model or config, a model type or a family name;
    :data:`GENERIC` (medmm's defaults) for a model type no family claims."""
    if isinstance(obj, Family):
        return obj
    fam = getattr(obj, "family", None)
    if isinstance(fam, Family):
        return fam
    if isinstance(obj, str):
        for f in families():
            if obj == f.name:
                return f
        config: Any = SimpleNamespace(model_type=obj)
    else:
        config = _config_of(obj)
    if config is not None:
        for f in families():
            if f.detect(config):
                return f
    return GENERIC


def tiny_names() -> tuple[str, ...]:
    """Families a tiny random model can be built for (``tiny:NAME``)."""
    return tuple(f.name for f in families() if f.tiny)


def model_types() -> tuple[str, ...]:
    """Every transformers model type a registered family claims."""
    return tuple(mt for f in families() for mt in f.model_types)

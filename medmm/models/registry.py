"""``load(spec, **options)``: one entry point for every backend.

Specs: ``hf:PATH`` (options: adapter, dtype, device, trust_remote_code, allow_pickle,
batch_size), ``llm:PATH`` (a language model alone, on text: a local text-only checkpoint or a VLM
checkpoint's own language model, :mod:`medmm.models.textlm`; the hf options but adapter), ``tiny:FAMILY`` or ``tiny:CONFIG.yaml`` (option: seed), ``http:URL`` or a plain
``http(s)://`` URL (options: model, api_key, timeout, retries, backoff, concurrency,
top_logprobs), or a YAML file with ``backend: hf|tiny|http`` and those options as keys
(``path`` / ``url`` for hf / http): a user's path or a packaged name (``models/tiny-llava.yaml``,
see :mod:`medmm.config`). Unknown options are errors.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable

from medmm.config import find_config, read_mapping
from medmm.errors import ConfigError, InputError
from medmm.models.base import VLM


def _check(fn: Callable[..., Any], options: dict[str, Any], what: str, skip: int = 1) -> None:
    params = list(inspect.signature(fn).parameters)[skip:]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise InputError(f"unknown option(s) {unknown} for {what}; allowed: {params}")


def _hf(path: str, **options: Any) -> VLM:
    from medmm.models.hf import HFVLM

    _check(HFVLM.from_folder, options, "hf models")
    return HFVLM.from_folder(path, **options)


def _llm(path: str, **options: Any) -> VLM:
    from medmm.models.textlm import TextLM

    _check(TextLM.from_folder, options, "llm models")
    return TextLM.from_folder(path, **options)


def _tiny(spec: str, **options: Any) -> VLM:
    from medmm.models.tiny import build_tiny

    _check(build_tiny, options, "tiny models")
    return build_tiny(spec, **options)


def _http(url: str, **options: Any) -> VLM:
    from medmm.models.http import HTTPVLM

    _check(HTTPVLM.__init__, options, "http models", skip=2)
    return HTTPVLM(url, **options)


def load(spec: str, **options: Any) -> VLM:
    """Load a model from a spec string (see the module docstring)."""
    options = {k: v for k, v in options.items() if v is not None}
    if spec.endswith((".yaml", ".yml")):
        return _from_yaml(spec, options)
    if spec.startswith(("http://", "https://")):
        return _http(spec, **options)
    for prefix, fn in (("hf:", _hf), ("llm:", _llm), ("tiny:", _tiny), ("http:", _http)):
        if spec.startswith(prefix):
            return fn(spec[len(prefix):], **options)
    if os.path.isdir(spec):
        return _hf(spec, **options)
    raise InputError(f"model spec {spec!r}: use hf:PATH, llm:PATH, tiny:llava|qwen2-vl, http:URL or a YAML file")


def _from_yaml(name: str, options: dict[str, Any]) -> VLM:
    """A model from a YAML config: a user's file, or a packaged one (``models/tiny-llava.yaml``)."""
    source = find_config(name)
    raw = read_mapping(source)
    where = source.label
    if "backend" not in raw:
        raise ConfigError(f"{where}: a model config needs 'backend: hf|tiny|http'")
    backend = raw["backend"]
    if backend == "tiny":
        return _tiny(name, **options)
    raw = {k: v for k, v in raw.items() if k != "backend"}
    if backend == "hf":
        if "path" not in raw:
            raise ConfigError(f"{where}: backend hf needs 'path'")
        path = str(raw.pop("path"))
        if not os.path.isabs(path):
            if source.directory is None:
                raise ConfigError(f"{where}: a packaged config cannot hold a relative 'path'; copy it and edit the copy")
            path = str(source.directory / path)
        return _hf(path, **{**raw, **options})
    if backend == "http":
        if "url" not in raw:
            raise ConfigError(f"{where}: backend http needs 'url'")
        return _http(raw.pop("url"), **{**raw, **options})
    raise ConfigError(f"{where}: unknown backend {backend!r}: use hf, tiny or http")

"""The report checker's language pack: vocabulary, section names, negation/hedge triggers and rule phrases as data.

Two packaged English files, read through :mod:`medmm.config`:

* ``medmm/configs/reports/lexicon-en.yaml`` — the shared vocabulary (findings and their names, sides, lobes, zones,
  severities, interval words, modality and body-region words, plausible sizes), read by :mod:`medmm.reports.lexicon`
  for the checker *and* the error injector (:func:`lexicon_pack`);
* ``medmm/configs/reports/language-en.yaml`` — the checker's reading: section names, organ sub-headings, negation
  and hedge triggers, and the phrases of the rules (:func:`language_pack`). The injector's own error models never
  read it.

A site adds its own without code: a YAML file named by the ``MEDMM_REPORT_LANGUAGE`` environment variable, with
any keys of ``language-en.yaml`` and, under ``lexicon:``, any keys of ``lexicon-en.yaml``; its list entries are
appended to the packaged ones and its mappings merged (read once per process, at import of the checker).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from medmm.config import ConfigError, find_config, read_mapping

PACKAGED = "reports/language-en.yaml"
LEXICON = "reports/lexicon-en.yaml"
ENV = "MEDMM_REPORT_LANGUAGE"


def _merge(base: Any, extra: Any, where: str) -> Any:
    """``base`` with a site's ``extra``: mappings merged key by key, lists appended (entries not already there),
    anything else replaced."""
    if extra is None:
        return base
    if isinstance(base, dict):
        if not isinstance(extra, dict):
            raise ConfigError(f"{where}: expected a mapping in the site's language pack")
        out = {k: _merge(v, extra[k], f"{where}.{k}") if k in extra else v for k, v in base.items()}
        out.update({k: v for k, v in extra.items() if k not in base})
        return out
    if isinstance(base, list):
        if not isinstance(extra, list) or not all(isinstance(x, (str, dict)) for x in extra):
            raise ConfigError(f"{where}: expected a list (of strings, or of mappings like the packaged entries) in "
                              "the site's language pack")
        return base + [x for x in extra if x not in base]
    return extra


@functools.lru_cache(maxsize=1)
def _site() -> dict[str, Any]:
    """The site's additions (``$MEDMM_REPORT_LANGUAGE``), or an empty mapping."""
    extra_path = os.environ.get(ENV)
    return read_mapping(find_config(os.path.abspath(extra_path))) if extra_path else {}


@functools.lru_cache(maxsize=1)
def language_pack() -> dict[str, Any]:
    """The packaged pack, with the site's additions (``$MEDMM_REPORT_LANGUAGE``) appended."""
    site = {k: v for k, v in _site().items() if k != "lexicon"}
    return _merge(read_mapping(find_config(PACKAGED)), site or None, "language pack")


@functools.lru_cache(maxsize=1)
def lexicon_pack() -> dict[str, Any]:
    """The packaged vocabulary, with the site's ``lexicon:`` additions appended."""
    return _merge(read_mapping(find_config(LEXICON)), _site().get("lexicon"), "language pack lexicon")

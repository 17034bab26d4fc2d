"""The report checker's language pack: section names and negation/hedge triggers as data.

The packaged English pack is ``medmm/configs/reports/language-en.yaml``, read through :mod:`medmm.config`. A site
adds its own phrasings without code: a YAML file with the same keys, named by the ``MEDMM_REPORT_LANGUAGE``
environment variable; its list entries are appended to the packaged ones (read once per process, at import of the
checker). The error injector never reads this pack (it is the checker's reading, not shared vocabulary).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from medmm.config import ConfigError, find_config, read_mapping

PACKAGED = "reports/language-en.yaml"
ENV = "MEDMM_REPORT_LANGUAGE"


def _merge(base: Any, extra: Any, where: str) -> Any:
    if extra is None:
        return base
    if isinstance(base, dict):
        if not isinstance(extra, dict):
            raise ConfigError(f"{where}: expected a mapping in the site's language pack")
        return {k: _merge(base.get(k), v, f"{where}.{k}") if k in base else v for k, v in {**base, **extra}.items()}
    if isinstance(base, list):
        if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
            raise ConfigError(f"{where}: expected a list of strings in the site's language pack")
        return base + [x for x in extra if x not in base]
    return extra


@functools.lru_cache(maxsize=1)
def language_pack() -> dict[str, Any]:
    """The packaged pack, with the site's additions (``$MEDMM_REPORT_LANGUAGE``) appended."""
    pack = read_mapping(find_config(PACKAGED))
    extra_path = os.environ.get(ENV)
    if extra_path:
        pack = _merge(pack, read_mapping(find_config(os.path.abspath(extra_path))), "language pack")
    return pack

"""medmm.models: one interface for vision-language models.

``load(spec)`` with ``hf:PATH`` (local checkpoint), ``tiny:FAMILY`` (built offline from
``configs/models/tiny-FAMILY.yaml``), ``http:URL`` (OpenAI-compatible server) or a YAML file.
"""

from medmm.models.base import (VLM, Generation, ImageView, ModelError, OptionScore, Question, Request, UnsupportedError,
                               with_question)

__all__ = ["VLM", "Generation", "ImageView", "ModelError", "OptionScore", "Question", "Request", "UnsupportedError",
           "load", "with_question"]


def load(spec: str, **options):  # noqa: ANN201 - see medmm.models.registry.load
    from medmm.models.registry import load as _load

    return _load(spec, **options)

"""Processors for vision-language checkpoints without torchvision.

transformers 5 falls back to PIL image processors when torchvision is missing, but
``Qwen2VLProcessor`` (and Qwen2.5-VL's) cannot be constructed: its video processor imports
torchvision. medmm only sends images, so :class:`ImageOnlyQwen2VLProcessor` builds the same
processor without a video processor; text expansion of ``<|image_pad|>`` and everything
else are Qwen2VLProcessor's own code.
"""

from __future__ import annotations

import json
import os
from typing import Any

from transformers import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2-VL / Qwen2.5-VL processor for images only (no video processor, no torchvision)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def read_chat_template(folder: str) -> str | None:
    """The chat template saved in a checkpoint folder, in any of the places transformers uses."""
    jinja = os.path.join(folder, "chat_template.jinja")
    if os.path.isfile(jinja):
        with open(jinja, encoding="utf-8") as fh:
            return fh.read()
    for name, key in (("chat_template.json", "chat_template"), ("processor_config.json", "chat_template"),
                      ("tokenizer_config.json", "chat_template")):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                value = json.load(fh).get(key)
            if isinstance(value, str) and value:
                return value
    return None


def load_processor(folder: str, model_type: str, trust_remote_code: bool = False) -> Any:
    """The processor for a local checkpoint, as its family loads it (image-only for the Qwen2-VL family)."""
    from medmm.models.families import family_of

    return family_of(model_type).load_processor(folder, trust_remote_code)

"""From a region-task sample to the tensors a model trains on, and the model-input frame of each family.

The box text of a sample is written in the pixels of the image **the model receives**, so the
recipe, the grounding evaluation and region-aware inference share one notion of that image:

* LLaVA family: the image is padded to a square (centred, LLaVA's ``expand2square``), then the
  processor resizes it to ``S × S`` (the center crop then removes nothing);
* Qwen2-VL / Qwen2.5-VL: the processor's own ``smart_resize`` (factor = patch × merge, its
  min/max pixels);
* anything else: the processor's resize of the whole image (``resize`` to its size).

:func:`input_transform` returns that map as a :class:`~medmm.regions.frames.InputTransform` from
the plane's pixels, and :func:`prepare_image` returns the image to hand to the processor.

:func:`encode_example` builds the training example: the chat prompt with the image (exactly as
:class:`~medmm.models.hf.HFVLM` builds it for generation), then the answer tokens and the end
token; labels are ``-100`` on the prompt (system, question, image placeholders) so the loss is
on the assistant's tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from PIL import Image

from medmm.models.families import family_of
from medmm.regions.codecs import BoxCodec, CodecSpec
from medmm.regions.frames import InputTransform
from medmm.regions.tasks import Conversation, Sample, conversation, load_image

IGNORE = -100


def model_type(vlm: Any) -> str:
    return str(getattr(vlm, "model_type", None) or getattr(getattr(vlm, "model", None), "config", None).model_type)


def default_codec(vlm: Any, spec: dict[str, Any] | None = None) -> BoxCodec:
    """The configured codec, or the model family's own (LLaVA 0–1, Qwen2-VL 0–1000, Qwen2.5-VL pixels,
    InternVL's 0–999 for a family medmm does not know): :mod:`medmm.models.families`."""
    if spec:
        return CodecSpec.from_mapping(dict(spec)).build()
    return family_of(model_type(vlm)).codec()


def input_transform(vlm: Any, width: int, height: int) -> InputTransform:
    """The map from an image's pixels to the pixels the model sees (its family's rule, see the module docstring)."""
    return family_of(model_type(vlm)).input_transform(vlm.processor.image_processor, width, height)


def prepare_image(vlm: Any, image: Image.Image) -> Image.Image:
    """The image to give the processor: LLaVA-family images padded to a centred square (as
    :func:`input_transform` assumes), others unchanged (the family's rule)."""
    return family_of(model_type(vlm)).prepare_image(vlm.processor.image_processor, image)


@dataclass
class Example:
    """One encoded training example (CPU tensors, no batch dimension)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    vision: dict[str, torch.Tensor]  # pixel_values (+ image_grid_thw for Qwen), with their own batch dim
    sample_id: str
    task: str = ""  # the sample's task (a curriculum stage draws only some tasks: train.stages)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def prompt_messages(conv: Conversation, system: bool = True) -> list[dict[str, Any]]:
    msgs = conv.messages(1)
    return msgs if system and conv.system else msgs[1:]


def encode_prompt(vlm: Any, messages: list[dict[str, Any]], images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
    text = vlm.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    enc = vlm.processor(text=[text], images=list(images), return_tensors="pt")
    enc.pop("token_type_ids", None)
    return dict(enc)


def encode_example(vlm: Any, sample: Sample, codec: BoxCodec, root: str | None = None, system: bool = True,
                   image: Image.Image | None = None) -> Example:
    img = image if image is not None else load_image(sample, root)
    t = input_transform(vlm, *img.size)
    conv = conversation(sample, codec, t, system=system)
    return supervised_example(vlm, prompt_messages(conv, system), [prepare_image(vlm, img)], conv.assistant,
                              sample.id)


def supervised_example(vlm: Any, messages: list[dict[str, Any]], images: Sequence[Image.Image], answer: str,
                       example_id: str) -> Example:
    """A training example: the encoded prompt (``messages`` with ``images``, already prepared) followed by the
    ``answer`` tokens and EOS; the loss is on the answer only (the prompt's labels are :data:`IGNORE`)."""
    enc = encode_prompt(vlm, messages, images)
    prompt_ids = enc.pop("input_ids")[0]
    enc.pop("attention_mask", None)
    enc.pop("mm_token_type_ids", None)
    tok = vlm.tokenizer
    answer_ids = torch.tensor(tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id],
                              dtype=torch.long)
    ids = torch.cat([prompt_ids, answer_ids])
    labels = torch.cat([torch.full_like(prompt_ids, IGNORE), answer_ids])
    return Example(ids, labels, {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}, example_id)


def collate(examples: Sequence[Example], pad_id: int, image_token_id: int | None = None,
            family: Any = None) -> dict[str, torch.Tensor]:
    """Right-padded batch: ``input_ids``, ``attention_mask``, ``labels`` (-100 on padding), vision tensors
    concatenated along their batch dim; a ``family`` whose model takes ``mm_token_type_ids`` (Qwen's
    M-RoPE: 1 on image tokens) gets them (:meth:`medmm.models.families.Family.token_types`)."""
    n = max(len(e) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e)] = e.input_ids
        labels[i, : len(e)] = e.labels
        mask[i, : len(e)] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    for key in examples[0].vision:
        batch[key] = torch.cat([e.vision[key] for e in examples], dim=0)
    types = family.token_types(ids, image_token_id) if family is not None else None
    if types is not None:
        batch["mm_token_type_ids"] = types
    return batch

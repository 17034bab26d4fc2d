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

from medmm.regions.codecs import BoxCodec, CodecSpec, get_codec
from medmm.regions.frames import InputTransform
from medmm.regions.tasks import Conversation, Sample, conversation, load_image

QWEN_TYPES = ("qwen2_vl", "qwen2_5_vl")
LLAVA_TYPES = ("llava", "llava_next", "llava_onevision", "vipllava")
IGNORE = -100


def model_type(vlm: Any) -> str:
    return str(getattr(vlm, "model_type", None) or getattr(getattr(vlm, "model", None), "config", None).model_type)


def default_codec(vlm: Any, spec: dict[str, Any] | None = None) -> BoxCodec:
    """The configured codec, or the family's own (LLaVA 0–1, Qwen2-VL 0–1000, Qwen2.5-VL pixels)."""
    if spec:
        return CodecSpec.from_mapping(dict(spec)).build()
    mt = model_type(vlm)
    return get_codec(mt if mt in ("qwen2_vl", "qwen2_5_vl") else ("llava" if mt in LLAVA_TYPES else "internvl"))


def input_transform(vlm: Any, width: int, height: int) -> InputTransform:
    """The map from an image's pixels to the pixels the model sees (see the module docstring)."""
    ip = vlm.processor.image_processor
    t = InputTransform.identity(width, height)
    mt = model_type(vlm)
    if mt in QWEN_TYPES:
        factor = int(ip.patch_size) * int(ip.merge_size)
        size = ip.size
        lo = getattr(size, "shortest_edge", None) or getattr(ip, "min_pixels", None) or 56 * 56
        hi = getattr(size, "longest_edge", None) or getattr(ip, "max_pixels", None) or 28 * 28 * 1280
        return t.smart_resize(factor=factor, min_pixels=int(lo), max_pixels=int(hi))
    side = _square_side(ip)
    if mt in LLAVA_TYPES and side:
        m = max(width, height)
        left, top = (m - width) // 2, (m - height) // 2
        return t.pad(left, top, m - width - left, m - height - top).resize(side, side)
    if side:
        return t.resize(side, side)
    return t


def _square_side(ip: Any) -> int | None:
    crop = getattr(ip, "crop_size", None)
    if crop is not None and getattr(crop, "height", None):
        return int(crop.height)
    size = getattr(ip, "size", None)
    if size is not None and getattr(size, "height", None):
        return int(size.height)
    if size is not None and getattr(size, "shortest_edge", None):
        return int(size.shortest_edge)
    return None


def prepare_image(vlm: Any, image: Image.Image) -> Image.Image:
    """The image to give the processor: LLaVA-family images padded to a centred square (as
    :func:`input_transform` assumes), others unchanged."""
    if model_type(vlm) not in LLAVA_TYPES:
        return image
    w, h = image.size
    if w == h:
        return image
    m = max(w, h)
    mean = tuple(int(round(v * 255)) for v in getattr(vlm.processor.image_processor, "image_mean", (0.5, 0.5, 0.5)))
    canvas = Image.new("RGB", (m, m), mean[:3])
    canvas.paste(image, ((m - w) // 2, (m - h) // 2))
    return canvas


@dataclass
class Example:
    """One encoded training example (CPU tensors, no batch dimension)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    vision: dict[str, torch.Tensor]  # pixel_values (+ image_grid_thw for Qwen), with their own batch dim
    sample_id: str

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
    enc = encode_prompt(vlm, prompt_messages(conv, system), [prepare_image(vlm, img)])
    prompt_ids = enc.pop("input_ids")[0]
    enc.pop("attention_mask", None)
    enc.pop("mm_token_type_ids", None)
    tok = vlm.tokenizer
    answer = tok(conv.assistant, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.cat([prompt_ids, torch.tensor(answer, dtype=torch.long)])
    labels = torch.cat([torch.full_like(prompt_ids, IGNORE), torch.tensor(answer, dtype=torch.long)])
    return Example(ids, labels, {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}, sample.id)


def collate(examples: Sequence[Example], pad_id: int, image_token_id: int | None = None,
            qwen: bool = False) -> dict[str, torch.Tensor]:
    """Right-padded batch: ``input_ids``, ``attention_mask``, ``labels`` (-100 on padding), vision tensors
    concatenated along their batch dim; Qwen models also get ``mm_token_type_ids`` (1 on image tokens)."""
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
    if qwen and image_token_id is not None:
        batch["mm_token_type_ids"] = (ids == image_token_id).long()
    return batch

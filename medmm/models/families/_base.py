"""What a model family declares: the one class a new family subclasses (see ``medmm.models.families``).

Every default here is the behaviour of a family medmm knows nothing special about (``generic``):
the processor resizes the whole image to its square size, boxes are written in InternVL's format,
the processor loads with ``AutoProcessor``, and no tiny model can be built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from medmm.models.base import UnsupportedError
from medmm.regions.codecs import BoxCodec, get_codec
from medmm.regions.frames import InputTransform

if TYPE_CHECKING:  # annotations only
    import torch

    from medmm.models.tiny import TinyConfig


class UnsupportedFamilyFeature(UnsupportedError):
    """A family does not offer what was asked (e.g. a tiny build, the attention-ratio crop)."""


class Family:
    """A model family: how medmm detects it, prompts it, shows it images and reads its boxes.

    Subclass it in one file of ``medmm/models/families/`` and set ``FAMILY = YourFamily()`` there.
    Class attributes are data; methods are the family's rules (override only what differs).
    """

    #: medmm's name of the family (also the ``tiny:NAME`` spec when ``tiny`` is true)
    name: str = "generic"
    #: transformers ``config.model_type`` values that belong to this family (detection)
    model_types: tuple[str, ...] = ()
    #: a tiny random model of this family can be built offline (``tiny:NAME``, tests, the demo)
    tiny: bool = False
    #: the tiny model's recipe (``TinyConfig`` keys but ``family``); ``None``: the packaged
    #: ``medmm/configs/models/tiny-NAME.yaml`` holds it
    tiny_recipe: dict[str, Any] | None = None
    #: box codec name in :data:`medmm.regions.codecs.CODECS` (the family's own box-as-text format)
    codec_name: str = "internvl"
    #: the image placeholder token the chat template writes (expanded by the processor)
    image_token: str = "<image>"
    #: the chat template of the family's tiny model (real checkpoints bring their own)
    chat_template: str | None = None
    #: multimodal rotary positions (Qwen's M-RoPE): text that continues a cached prompt needs explicit
    #: position ids, and a training batch carries ``mm_token_type_ids`` (1 on image tokens)
    mrope: bool = False
    #: ViCrop's attention-ratio crop works (a square grid of image tokens from one resize + centre crop)
    attention_crop: bool = False

    # ------------------------------------------------------------------ detection
    def detect(self, config: Any) -> bool:
        """Whether a transformers config (or anything with ``model_type``) is of this family."""
        return getattr(config, "model_type", None) in self.model_types

    # ------------------------------------------------------------------ boxes
    def codec(self, **options: Any) -> BoxCodec:
        """The family's box codec (``options``: e.g. ``scale`` for a grid codec)."""
        return get_codec(self.codec_name, **options)

    # ------------------------------------------------------------------ images
    def input_transform(self, image_processor: Any, width: int, height: int) -> InputTransform:
        """The map from an image's pixels to the pixels the model sees (its processor's resize)."""
        t = InputTransform.identity(width, height)
        side = square_side(image_processor)
        return t.resize(side, side) if side else t

    def prepare_image(self, image_processor: Any, image: Image.Image) -> Image.Image:
        """The image to give the processor (as :meth:`input_transform` assumes): unchanged by default."""
        return image

    def attention_grid(self, image_processor: Any, size: tuple[int, int]) -> tuple[InputTransform, int]:
        """For ViCrop's attention crop: the processor's map of an image of ``size`` and the side of the
        square it crops (the image-token grid covers it)."""
        raise UnsupportedFamilyFeature(f"the {self.name} family has no attention-ratio crop; give a box instead")

    # ------------------------------------------------------------------ processors
    def load_processor(self, folder: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=trust_remote_code)

    def save_processor(self, processor: Any, folder: str) -> None:
        """Write the processor so that :meth:`load_processor` reads it back."""
        processor.save_pretrained(folder)

    # ------------------------------------------------------------------ positions and token types
    def continuation_positions(self, model: Any, positions: "torch.Tensor", rows: "torch.Tensor | None",
                               batch: int) -> dict[str, "torch.Tensor"]:
        """Explicit position ids for text that continues a cached prompt (``positions``: the cache
        positions of the new tokens, one row for all or ``(batch, n)``; ``rows``: for each continuation
        row, the prompt row it continues, or ``None`` when every row continues the single prompt).
        Empty: the model derives them."""
        return {}

    def token_types(self, input_ids: "torch.Tensor", image_token_id: int | None) -> "torch.Tensor | None":
        """``mm_token_type_ids`` for a training batch (``None``: the model does not take them)."""
        return None

    # ------------------------------------------------------------------ tiny models
    def tiny_tokens(self) -> tuple[list[str], dict[str, str], str]:
        """Special tokens of the tiny tokenizer: (specials in id order, extra named tokens, eos)."""
        return ["<unk>", "<pad>", "<s>", "</s>", self.image_token], {"image_token": self.image_token}, "</s>"

    def build_tiny(self, cfg: "TinyConfig", tokenizer: Any) -> tuple[Any, Any]:
        """A random model and its processor from a tiny config (``tiny: True`` families)."""
        raise UnsupportedFamilyFeature(f"the {self.name} family has no tiny model builder")

    def __repr__(self) -> str:
        return f"<family {self.name}>"


def square_side(image_processor: Any) -> int | None:
    """The square side a resize-and-crop image processor produces (``None`` when it does not say)."""
    crop = getattr(image_processor, "crop_size", None)
    if crop is not None and getattr(crop, "height", None):
        return int(crop.height)
    size = getattr(image_processor, "size", None)
    if size is not None and getattr(size, "height", None):
        return int(size.height)
    if size is not None and getattr(size, "shortest_edge", None):
        return int(size.shortest_edge)
    return None


def text_kwargs(cfg: "TinyConfig", tok: Any) -> dict[str, Any]:
    """The language model's config of a tiny model (defaults overridden by the config's ``text``)."""
    t = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, **cfg.text}
    return {**t, "vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id, "max_position_embeddings": 2048}

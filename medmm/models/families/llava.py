"""LLaVA (1.5) and ViP-LLaVA: one CLIP image (resize + centre crop to S x S), ``<image>`` in the prompt.

Images are padded to a centred square (LLaVA's ``expand2square``) before the processor resizes
them, so the centre crop removes nothing and a box keeps its place. Boxes as text:
``label: [0.123, 0.456, 0.789, 0.901]`` (normalised, the ``llava`` codec). The token grid is a
square over the cropped image, which is what ViCrop's attention-ratio crop needs.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from medmm.models.families._base import Family, square_side, text_kwargs
from medmm.regions.frames import InputTransform

TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


class LlavaFamily(Family):
    name = "llava"
    model_types = ("llava", "vipllava")
    tiny = True
    codec_name = "llava"
    image_token = "<image>"
    chat_template = TEMPLATE
    attention_crop = True

    def input_transform(self, image_processor: Any, width: int, height: int) -> InputTransform:
        t = InputTransform.identity(width, height)
        side = square_side(image_processor)
        if not side:
            return t
        m = max(width, height)
        left, top = (m - width) // 2, (m - height) // 2
        return t.pad(left, top, m - width - left, m - height - top).resize(side, side)

    def prepare_image(self, image_processor: Any, image: Image.Image) -> Image.Image:
        """Padded to a centred square in the processor's mean colour (``expand2square``)."""
        w, h = image.size
        if w == h:
            return image
        m = max(w, h)
        mean = tuple(int(round(v * 255)) for v in getattr(image_processor, "image_mean", (0.5, 0.5, 0.5)))
        canvas = Image.new("RGB", (m, m), mean[:3])
        canvas.paste(image, ((m - w) // 2, (m - h) // 2))
        return canvas

    def attention_grid(self, image_processor: Any, size: tuple[int, int]) -> tuple[InputTransform, int]:
        """The CLIP processor's map (shortest edge to S, centre crop S x S) and S."""
        from medmm.models.base import UnsupportedError

        crop = getattr(image_processor, "crop_size", None)
        side = int(getattr(crop, "height", 0) or 0)
        shortest = int(getattr(getattr(image_processor, "size", None), "shortest_edge", 0) or side)
        if not side:
            raise UnsupportedError("the attention crop needs a LLaVA-style processor (resize + centre crop)")
        w, h = size
        rw, rh = (shortest, int(shortest * h / w)) if w <= h else (int(shortest * w / h), shortest)
        t = InputTransform.identity(w, h).resize(rw, rh)
        left, top = (rw - side) // 2, (rh - side) // 2
        return t.crop(left, top, left + side, top + side), side

    # ------------------------------------------------------------------ tiny
    def _tiny_parts(self, cfg: Any, tok: Any) -> tuple[dict[str, Any], dict[str, int]]:
        import transformers as tf

        v = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, **cfg.vision}
        common = dict(
            vision_config=tf.CLIPVisionConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, **v),
            text_config=tf.LlamaConfig(**text_kwargs(cfg, tok)),
            image_token_id=tok.image_token_id, vision_feature_select_strategy="default", vision_feature_layer=-1,
            image_seq_length=(cfg.image_size // cfg.patch_size) ** 2,
        )
        return common, {"height": cfg.image_size, "width": cfg.image_size}

    def _finish(self, model: Any, tok: Any, ip: Any, proc_cls: Any, cfg: Any) -> tuple[Any, Any]:
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        processor = proc_cls(image_processor=ip, tokenizer=tok, patch_size=cfg.patch_size,
                             vision_feature_select_strategy="default", num_additional_image_tokens=1,
                             chat_template=self.chat_template)
        return model, processor

    def build_tiny(self, cfg: Any, tokenizer: Any) -> tuple[Any, Any]:
        import transformers as tf

        common, crop = self._tiny_parts(cfg, tokenizer)
        model = tf.LlavaForConditionalGeneration(tf.LlavaConfig(**common))
        ip = tf.CLIPImageProcessorPil(size={"shortest_edge": cfg.image_size}, crop_size=crop)
        return self._finish(model, tokenizer, ip, tf.LlavaProcessor, cfg)


FAMILY = LlavaFamily()

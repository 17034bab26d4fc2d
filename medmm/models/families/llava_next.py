"""LLaVA-NeXT and LLaVA-OneVision: LLaVA's prompt, square padding and box text, with any-resolution
tiling (a base view plus tiles from ``image_grid_pinpoints``). The tiles make the image tokens no
single square grid, so ViCrop's attention-ratio crop is not offered (give a box instead)."""

from __future__ import annotations

from typing import Any

from medmm.models.families.llava import LlavaFamily


class LlavaNextFamily(LlavaFamily):
    name = "llava-next"
    model_types = ("llava_next", "llava_onevision")
    attention_crop = False

    def attention_grid(self, image_processor: Any, size: tuple[int, int]) -> Any:
        return super(LlavaFamily, self).attention_grid(image_processor, size)  # the base's refusal

    def build_tiny(self, cfg: Any, tokenizer: Any) -> tuple[Any, Any]:
        import transformers as tf

        common, crop = self._tiny_parts(cfg, tokenizer)
        s = cfg.image_size
        pinpoints = [[s, s], [s, 2 * s], [2 * s, s], [2 * s, 2 * s]]
        model = tf.LlavaNextForConditionalGeneration(tf.LlavaNextConfig(image_grid_pinpoints=pinpoints, **common))
        ip = tf.LlavaNextImageProcessorPil(size={"shortest_edge": s}, crop_size=crop, image_grid_pinpoints=pinpoints)
        return self._finish(model, tokenizer, ip, tf.LlavaNextProcessor, cfg)


FAMILY = LlavaNextFamily()

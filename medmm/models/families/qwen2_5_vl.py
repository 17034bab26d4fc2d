"""Qwen2.5-VL: Qwen2-VL's prompt, resize and M-RoPE with windowed vision attention; boxes as JSON
``[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]`` in absolute pixels of the resized input."""

from __future__ import annotations

from typing import Any

from medmm.models.families.qwen2_vl import Qwen2VLFamily


class Qwen25VLFamily(Qwen2VLFamily):
    name = "qwen2.5-vl"
    model_types = ("qwen2_5_vl",)
    codec_name = "qwen2.5-vl"

    def _tiny_model(self, cfg: Any, text: dict[str, Any], ids: dict[str, int]) -> Any:
        import transformers as tf

        v = {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4, "window_size": 56,
             "fullatt_block_indexes": [1], **cfg.vision}
        vision = {**v, "out_hidden_size": text["hidden_size"], "patch_size": cfg.patch_size, "spatial_merge_size": 2,
                  "temporal_patch_size": 2}
        return tf.Qwen2_5_VLForConditionalGeneration(tf.Qwen2_5_VLConfig(vision_config=vision, text_config=text, **ids))


FAMILY = Qwen25VLFamily()

"""Qwen3-VL: Qwen2-VL's ChatML prompt, image tokens and ``smart_resize`` (patch 16 x merge 2: multiples of
32 pixels), interleaved M-RoPE with the same continuation rule (positions after the prompt plus its
``rope_deltas``), DeepStack vision features; boxes as JSON ``bbox_2d`` on a relative 0–1000 grid (the
``qwen3-vl`` codec). The whole family is this file (the registry finds it)."""

from __future__ import annotations

from typing import Any

from medmm.models.families.qwen2_vl import Qwen2VLFamily


class Qwen3VLFamily(Qwen2VLFamily):
    name = "qwen3-vl"
    model_types = ("qwen3_vl",)
    codec_name = "qwen3-vl"
    # ~0.9 M parameters; 64-128 px inputs -> at most 16 merged image tokens
    tiny_recipe = {"seed": 0, "patch_size": 16, "min_pixels": 4096, "max_pixels": 16384,
                   "text": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2}}

    def _tiny_text(self, cfg: Any, tok: Any) -> tuple[dict[str, Any], dict[str, int]]:
        text, ids = super()._tiny_text(cfg, tok)
        text["head_dim"] = text["hidden_size"] // text["num_attention_heads"]
        text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}
        return text, ids

    def _tiny_model(self, cfg: Any, text: dict[str, Any], ids: dict[str, int]) -> Any:
        import transformers as tf

        v = {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4, "num_position_embeddings": 64,
             "deepstack_visual_indexes": [0], **cfg.vision}
        vision = {**v, "out_hidden_size": text["hidden_size"], "patch_size": cfg.patch_size, "spatial_merge_size": 2,
                  "temporal_patch_size": 2}
        return tf.Qwen3VLForConditionalGeneration(tf.Qwen3VLConfig(vision_config=vision, text_config=text, **ids))


FAMILY = Qwen3VLFamily()

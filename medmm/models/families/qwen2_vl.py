"""Qwen2-VL: ``<|vision_start|><|image_pad|><|vision_end|>`` in a ChatML prompt, the processor's own
``smart_resize`` (sides multiples of patch x merge, area within its min/max pixels), M-RoPE positions,
boxes as ``<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on 0–1000.

Without torchvision its processor cannot be built (the video processor imports it), so the
processor here is image-only (:class:`medmm.models.processors.ImageOnlyQwen2VLProcessor`).
"""

from __future__ import annotations

from typing import Any

from medmm.models.families._base import Family, text_kwargs
from medmm.regions.frames import InputTransform

TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}"
)
SPECIAL_IDS = (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
               ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))


class Qwen2VLFamily(Family):
    name = "qwen2-vl"
    model_types = ("qwen2_vl",)
    tiny = True
    codec_name = "qwen2-vl"
    image_token = "<|image_pad|>"
    chat_template = TEMPLATE
    mrope = True

    def input_transform(self, image_processor: Any, width: int, height: int) -> InputTransform:
        ip = image_processor
        factor = int(ip.patch_size) * int(ip.merge_size)
        size = ip.size
        lo = getattr(size, "shortest_edge", None) or getattr(ip, "min_pixels", None) or 56 * 56
        hi = getattr(size, "longest_edge", None) or getattr(ip, "max_pixels", None) or 28 * 28 * 1280
        return InputTransform.identity(width, height).smart_resize(factor=factor, min_pixels=int(lo), max_pixels=int(hi))

    def load_processor(self, folder: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

        from medmm.models.processors import ImageOnlyQwen2VLProcessor, read_chat_template

        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=trust_remote_code)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(folder, local_files_only=True)
        return ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                         chat_template=read_chat_template(folder))

    def save_processor(self, processor: Any, folder: str) -> None:
        processor.tokenizer.save_pretrained(folder)
        processor.image_processor.save_pretrained(folder)

    def continuation_positions(self, model: Any, positions: Any, rows: Any, batch: int) -> dict[str, Any]:
        """M-RoPE text positions continue from the prompt's last position plus the ``rope_deltas`` the
        prefill stored (per prompt row); the forward would derive them from the full attention mask
        (prompt + continuation) and get the length wrong, so they are given."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        deltas = base.model.rope_deltas
        # one position row for every continuation row, or (2-D) a row of positions per continuation row
        pos = (positions.view(1, 1, -1) if positions.dim() == 1 else positions.unsqueeze(0)).expand(3, batch, -1)
        if deltas is not None:
            deltas = deltas.to(pos.device)
            if rows is not None:
                pos = pos + deltas[rows].view(1, batch, -1)
            else:
                pos = pos + deltas.repeat_interleave(batch // deltas.shape[0], dim=0)
        return {"position_ids": pos}

    def token_types(self, input_ids: Any, image_token_id: int | None) -> Any:
        return None if image_token_id is None else (input_ids == image_token_id).long()

    # ------------------------------------------------------------------ tiny
    def tiny_tokens(self) -> tuple[list[str], dict[str, str], str]:
        specials = ["<unk>", "<pad>", "<s>", "</s>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                    "<|vision_end|>", "<|im_start|>", "<|im_end|>"]
        extra = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                 "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}
        return specials, extra, "<|im_end|>"

    def _tiny_text(self, cfg: Any, tok: Any) -> tuple[dict[str, Any], dict[str, int]]:
        text = text_kwargs(cfg, tok)
        half = (text["hidden_size"] // text["num_attention_heads"]) // 2
        mrope = [half - 2 * (half // 4), half // 4, half // 4]
        ids = {name: tok.convert_tokens_to_ids(t) for name, t in SPECIAL_IDS}
        rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope}
        return {**text, "rope_parameters": rope, **ids}, ids

    def _tiny_model(self, cfg: Any, text: dict[str, Any], ids: dict[str, int]) -> Any:
        import transformers as tf

        v = {"depth": 2, "embed_dim": 64, "num_heads": 4, "mlp_ratio": 2, **cfg.vision}
        vision = {**v, "hidden_size": text["hidden_size"], "patch_size": cfg.patch_size, "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "in_channels": 3}
        return tf.Qwen2VLForConditionalGeneration(tf.Qwen2VLConfig(vision_config=vision, text_config=text, **ids))

    def build_tiny(self, cfg: Any, tokenizer: Any) -> tuple[Any, Any]:
        import transformers as tf

        from medmm.models.processors import ImageOnlyQwen2VLProcessor

        text, ids = self._tiny_text(cfg, tokenizer)
        model = self._tiny_model(cfg, text, ids)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        ip = tf.Qwen2VLImageProcessorPil(min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels, patch_size=cfg.patch_size,
                                         merge_size=2, temporal_patch_size=2)
        processor = ImageOnlyQwen2VLProcessor(image_processor=ip, tokenizer=tokenizer, chat_template=self.chat_template)
        return model, processor


FAMILY = Qwen2VLFamily()

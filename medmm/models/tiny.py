"""The ``tiny`` backend: LLaVA- and Qwen2-VL-style models built offline from a YAML config.

Nothing is downloaded: the tokenizer is a byte-level BPE trained on medmm's own text (the
synthetic report generator's sentences and the prompt templates, shipped as package data so that
this layer does not import ``medmm.synth``), the weights are random
(seeded), and the processor uses transformers' PIL image processors. :meth:`HFVLM.save`
writes a folder the ``hf`` backend loads, so tests exercise the same code as real checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch

from medmm.config import files, load_config, read_text
from medmm.errors import ConfigError
from medmm.models.hf import HFVLM, _quiet_transformers

FAMILIES = ("llava", "llava-next", "qwen2-vl", "qwen2.5-vl")
# Packaged tiny-model configs: medmm/configs/models/ (names for load_tiny_config: "models/NAME.yaml").
# CONFIG_DIR is the folder on disk (for callers that join file names); prefer the packaged names.
CONFIG_DIR = str(files("configs/models"))

LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    """A tiny model recipe (packaged ``medmm/configs/models/tiny-*.yaml``); unknown keys are errors."""

    family: str = "llava"
    seed: int = 0
    backend: str = "tiny"
    image_size: int = 64
    patch_size: int = 16
    min_pixels: int = 3136
    max_pixels: int = 12544
    vision: dict[str, Any] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)
    tokenizer: dict[str, Any] = field(default_factory=lambda: {"vocab_size": 1000})

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"tiny model family {self.family!r}: use one of {', '.join(FAMILIES)}")
        if self.backend != "tiny":
            raise ConfigError(f"a tiny model config must say backend: tiny (got {self.backend!r})")


def load_tiny_config(path_or_family: str) -> TinyConfig:
    """A :class:`TinyConfig` from a family name (the packaged ``medmm/configs/models/tiny-FAMILY.yaml``),
    a packaged config name (``models/bench-llava-16m.yaml``) or a user's YAML path."""
    name = path_or_family
    if not name.endswith((".yaml", ".yml")):
        if name not in FAMILIES:
            raise ConfigError(f"unknown tiny family {name!r}: use one of {', '.join(FAMILIES)}")
        name = f"models/tiny-{name}.yaml"
    return load_config(name, TinyConfig)


def training_corpus() -> list[str]:
    """medmm's own text (synthetic reports of every finding type, prompts, answers, digits), shipped as
    package data (``medmm/models/tiny_tokenizer_corpus.json``, written by
    ``scripts/make_tiny_tokenizer_corpus.py``) so that this layer never imports the generator."""
    texts = json.loads(read_text("models/tiny_tokenizer_corpus.json"))["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ConfigError("medmm/models/tiny_tokenizer_corpus.json: expected a list of texts; reinstall medmm")
    return texts


def build_tokenizer(vocab_size: int, family: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if family.startswith("llava"):
        specials = ["<unk>", "<pad>", "<s>", "</s>", "<image>"]
        extra = {"image_token": "<image>"}
        eos = "</s>"
    else:
        specials = ["<unk>", "<pad>", "<s>", "</s>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                    "<|vision_end|>", "<|im_start|>", "<|im_end|>"]
        extra = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                 "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}
        eos = "<|im_end|>"
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token=eos, extra_special_tokens=extra)


def build_tiny(spec: str | TinyConfig = "llava", seed: int | None = None, device: str = "cpu",
               dtype: str = "float32") -> HFVLM:
    """Build a tiny model in memory from a family name, a YAML path or a :class:`TinyConfig`.

    ``device``/``dtype`` place the random weights directly (e.g. a large benchmark model on a GPU).
    """
    from medmm.models.hf import resolve_device, resolve_dtype

    cfg = spec if isinstance(spec, TinyConfig) else load_tiny_config(spec)
    seed = cfg.seed if seed is None else seed
    _quiet_transformers()
    tok = build_tokenizer(int(cfg.tokenizer.get("vocab_size", 1000)), "llava" if cfg.family.startswith("llava") else "qwen")
    torch.manual_seed(seed)
    dev = resolve_device(device)
    with dev:
        model, processor = _llava(cfg, tok) if cfg.family.startswith("llava") else _qwen2_vl(cfg, tok)
    model.to(dtype=resolve_dtype(dtype, dev))
    vlm = HFVLM(model, processor, name=f"tiny:{cfg.family}")
    vlm.tiny_config = cfg  # type: ignore[attr-defined]
    return vlm


def _text_kwargs(cfg: TinyConfig, tok: Any) -> dict[str, Any]:
    t = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, **cfg.text}
    return {**t, "vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id, "max_position_embeddings": 2048}


def _llava(cfg: TinyConfig, tok: Any) -> tuple[Any, Any]:
    """LLaVA (1.5) or, for family ``llava-next``, LLaVA-NeXT with any-resolution tiling."""
    import transformers as tf

    v = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, **cfg.vision}
    n_tokens = (cfg.image_size // cfg.patch_size) ** 2
    common = dict(
        vision_config=tf.CLIPVisionConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, **v),
        text_config=tf.LlamaConfig(**_text_kwargs(cfg, tok)),
        image_token_id=tok.image_token_id, vision_feature_select_strategy="default", vision_feature_layer=-1,
        image_seq_length=n_tokens,
    )
    crop = {"height": cfg.image_size, "width": cfg.image_size}
    if cfg.family == "llava-next":
        s = cfg.image_size
        pinpoints = [[s, s], [s, 2 * s], [2 * s, s], [2 * s, 2 * s]]
        model = tf.LlavaNextForConditionalGeneration(tf.LlavaNextConfig(image_grid_pinpoints=pinpoints, **common))
        ip = tf.LlavaNextImageProcessorPil(size={"shortest_edge": s}, crop_size=crop, image_grid_pinpoints=pinpoints)
        proc_cls = tf.LlavaNextProcessor
    else:
        model = tf.LlavaForConditionalGeneration(tf.LlavaConfig(**common))
        ip = tf.CLIPImageProcessorPil(size={"shortest_edge": cfg.image_size}, crop_size=crop)
        proc_cls = tf.LlavaProcessor
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    processor = proc_cls(image_processor=ip, tokenizer=tok, patch_size=cfg.patch_size,
                         vision_feature_select_strategy="default", num_additional_image_tokens=1,
                         chat_template=LLAVA_TEMPLATE)
    return model, processor


def _qwen2_vl(cfg: TinyConfig, tok: Any) -> tuple[Any, Any]:
    """Qwen2-VL or, for family ``qwen2.5-vl``, Qwen2.5-VL (windowed vision attention)."""
    import transformers as tf

    from medmm.models.processors import ImageOnlyQwen2VLProcessor

    text = _text_kwargs(cfg, tok)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    half = head_dim // 2
    mrope = [half - 2 * (half // 4), half // 4, half // 4]
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text_config = {**text, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope}, **ids}
    if cfg.family == "qwen2.5-vl":
        v = {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4, "window_size": 56,
             "fullatt_block_indexes": [1], **cfg.vision}
        vision = {**v, "out_hidden_size": text["hidden_size"], "patch_size": cfg.patch_size, "spatial_merge_size": 2,
                  "temporal_patch_size": 2}
        model = tf.Qwen2_5_VLForConditionalGeneration(tf.Qwen2_5_VLConfig(vision_config=vision, text_config=text_config, **ids))
    else:
        v = {"depth": 2, "embed_dim": 64, "num_heads": 4, "mlp_ratio": 2, **cfg.vision}
        vision = {**v, "hidden_size": text["hidden_size"], "patch_size": cfg.patch_size, "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "in_channels": 3}
        model = tf.Qwen2VLForConditionalGeneration(tf.Qwen2VLConfig(vision_config=vision, text_config=text_config, **ids))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    ip = tf.Qwen2VLImageProcessorPil(min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels, patch_size=cfg.patch_size,
                                     merge_size=2, temporal_patch_size=2)
    processor = ImageOnlyQwen2VLProcessor(image_processor=ip, tokenizer=tok, chat_template=QWEN_TEMPLATE)
    return model, processor

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
from medmm.models.families import DEFAULT_TINY, get_family, tiny_names
from medmm.models.hf import HFVLM, _quiet_transformers

# Packaged tiny-model configs: medmm/configs/models/ (names for load_tiny_config: "models/NAME.yaml").
# CONFIG_DIR is the folder on disk (for callers that join file names); prefer the packaged names.
CONFIG_DIR = str(files("configs/models"))
FAMILIES = tiny_names()  # the families a tiny model is built for: read from medmm.models.families


@dataclass(frozen=True)
class TinyConfig:
    """A tiny model recipe (packaged ``medmm/configs/models/tiny-*.yaml``); unknown keys are errors."""

    family: str = DEFAULT_TINY
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
        if self.family not in tiny_names():
            raise ConfigError(f"tiny model family {self.family!r}: use one of {', '.join(tiny_names())}")
        if self.backend != "tiny":
            raise ConfigError(f"a tiny model config must say backend: tiny (got {self.backend!r})")


def load_tiny_config(path_or_family: str) -> TinyConfig:
    """A :class:`TinyConfig` from a family name (the recipe its family file declares, ``tiny_recipe``, or
    else the packaged ``medmm/configs/models/tiny-FAMILY.yaml``), a packaged config name
    (``models/bench-llava-16m.yaml``) or a user's YAML path."""
    name = path_or_family
    if not name.endswith((".yaml", ".yml")):
        if name not in tiny_names():
            raise ConfigError(f"unknown tiny family {name!r}: use one of {', '.join(tiny_names())}")
        recipe = get_family(name).tiny_recipe
        if recipe is not None:
            return TinyConfig(family=name, **recipe)
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
    """The tiny byte-level BPE tokenizer with the special tokens of ``family`` (a registered family name)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials, extra, eos = get_family(family).tiny_tokens()
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token=eos, extra_special_tokens=extra)


def build_tiny(spec: str | TinyConfig = DEFAULT_TINY, seed: int | None = None, device: str = "cpu",
               dtype: str = "float32") -> HFVLM:
    """Build a tiny model in memory from a family name, a YAML path or a :class:`TinyConfig`.

    ``device``/``dtype`` place the random weights directly (e.g. a large benchmark model on a GPU).
    """
    from medmm.models.hf import resolve_device, resolve_dtype

    cfg = spec if isinstance(spec, TinyConfig) else load_tiny_config(spec)
    seed = cfg.seed if seed is None else seed
    _quiet_transformers()
    fam = get_family(cfg.family)
    tok = build_tokenizer(int(cfg.tokenizer.get("vocab_size", 1000)), fam.name)
    torch.manual_seed(seed)
    dev = resolve_device(device)
    with dev:
        model, processor = fam.build_tiny(cfg, tok)
    model.to(dtype=resolve_dtype(dtype, dev))
    vlm = HFVLM(model, processor, name=f"tiny:{cfg.family}")
    vlm.tiny_config = cfg  # type: ignore[attr-defined]
    return vlm

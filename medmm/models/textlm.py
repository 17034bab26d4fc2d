"""The ``llm`` backend: a language model alone, run on text — for MMStar's multimodal leakage.

MMStar (Chen et al., 2024) separates what a vision-language model answers *from the image* from what its
language model answers *without one*:

* ``S_v``  — the VLM's score with the image (the probe's ``image`` variant);
* ``S_wv`` — the VLM's score with the question alone, no image (the ``none`` variant);
* ``S_t``  — the score of the language model alone on the question (the ``llm`` variant, this backend);
* multimodal gain ``MG = S_v - S_wv`` and multimodal leakage ``ML = max(0, S_wv - S_t)``: what multimodal
  training taught the model to answer without looking (benchmark samples leaked into its training data).

``S_t`` is meant for the VLM's *base* LLM before multimodal training (LLaVA-1.5 → Vicuna): give that local
checkpoint as ``llm:PATH`` (a text-only transformers checkpoint, ``AutoModelForCausalLM``). ``llm:PATH`` of
a VLM checkpoint (a config with a ``text_config``) runs *that checkpoint's own* language model with its
LM head and without its vision tower and projector; with no image in the prompt this equals the VLM
without an image (``S_wv``), so it checks the machinery and saves the vision tower's memory but measures
no leakage — say so when you report it.

Loading follows the ``hf`` backend's rules: local folders only, safetensors unless pickles are allowed,
``trust_remote_code`` only on request. Generation options, option scoring and the KV-cache paths are the
``hf`` backend's (:class:`~medmm.models.hf.HFVLM`), fed by the tokenizer instead of a multimodal
processor; a request with an image is refused.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Sequence

from medmm.models.base import UnsupportedError
from medmm.models.hf import HFVLM, ModelError, _quiet_transformers, check_weights, resolve_device, resolve_dtype

__all__ = ["TextLM", "TextProcessor", "language_model_of"]


def _template_takes_parts(template: str) -> bool:
    """Does the chat template read content parts (``{"type": "text", "text": ...}``)? VLM templates do, most
    text-only templates expect a plain string."""
    return "'type'" in template or '"type"' in template or ".type" in template


class TextProcessor:
    """A tokenizer with the processor interface the ``hf`` backend calls (chat template, batch encoding)."""

    def __init__(self, tokenizer: Any, chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)

    def apply_chat_template(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True,
                            tokenize: bool = False) -> Any:
        plain = []
        for m in messages:
            content = m.get("content")
            if isinstance(content, list):
                if any(isinstance(c, dict) and c.get("type") == "image" for c in content):
                    raise UnsupportedError("a language model alone takes no image: ask the question without it")
                if not _template_takes_parts(self.chat_template or ""):
                    content = "".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            plain.append({**m, "content": content})
        return self.tokenizer.apply_chat_template(plain, add_generation_prompt=add_generation_prompt,
                                                  tokenize=tokenize, chat_template=self.chat_template)

    def __call__(self, text: Sequence[str], images: Any = None, **kwargs: Any) -> Any:
        if images:
            raise UnsupportedError("a language model alone takes no image: ask the question without it")
        return self.tokenizer(list(text), **kwargs)


def language_model_of(vlm_model: Any) -> Any:
    """A causal LM (``AutoModelForCausalLM`` of the VLM's ``text_config``) holding the VLM's language model and
    LM head weights, without its vision tower. Raises :class:`ModelError` where transformers has no causal-LM
    class for that language model or the weights do not fit it."""
    from transformers import AutoModelForCausalLM

    text_config = getattr(vlm_model.config, "text_config", None)
    if text_config is None:
        raise ModelError("not a vision-language checkpoint (no text_config): load it with llm:PATH directly")
    try:
        causal = AutoModelForCausalLM.from_config(text_config)
    except ValueError as exc:
        raise ModelError(f"transformers has no causal-LM class for this VLM's language model "
                         f"({text_config.model_type}): give the base LLM's own checkpoint as llm:PATH ({exc})") from None
    base = vlm_model.get_decoder() if hasattr(vlm_model, "get_decoder") else None
    head = vlm_model.get_output_embeddings() if hasattr(vlm_model, "get_output_embeddings") else None
    if base is None or head is None:
        raise ModelError("cannot find the language model and LM head of this VLM")
    try:
        causal.get_decoder().load_state_dict(base.state_dict())
        causal.get_output_embeddings().load_state_dict(head.state_dict())
    except RuntimeError as exc:
        raise ModelError(f"the VLM's language model does not fit {type(causal).__name__}: {exc}") from None
    causal.generation_config = vlm_model.generation_config
    return causal.to(dtype=next(vlm_model.parameters()).dtype)


class TextLM(HFVLM):
    """A language model run on text alone (module docstring). ``source``: ``"causal-lm"`` (a text-only
    checkpoint) or ``"vlm-language-model"`` (a VLM's own language model)."""

    def __init__(self, model: Any, tokenizer: Any, *, chat_template: str | None = None, path: str | None = None,
                 name: str | None = None, batch_size: int = 8, source: str = "causal-lm") -> None:
        self.source = source
        super().__init__(model, TextProcessor(tokenizer, chat_template), path=path, name=name or
                         (f"llm:{path}" if path else "llm:in-memory"), batch_size=batch_size)

    @classmethod
    def from_folder(cls, path: str, adapter: str | None = None, dtype: str = "auto", device: str = "cpu",  # type: ignore[override]
                    trust_remote_code: bool = False, allow_pickle: bool = False, batch_size: int = 8) -> "TextLM":
        """A local checkpoint: a text-only causal LM, or the language model of a VLM checkpoint."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        _quiet_transformers()
        if adapter:
            raise ModelError("llm: adapters are not supported; merge the adapter into the checkpoint first")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelError(f"{path}: no config.json; llm:PATH needs a local transformers checkpoint folder")
        check_weights(path, allow_pickle)
        config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        template_file = os.path.join(path, "chat_template.jinja")
        template = open(template_file, encoding="utf-8").read() if os.path.isfile(template_file) else None
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
            if getattr(config, "text_config", None) is not None:  # a VLM: its language model without the vision tower
                vlm = HFVLM.from_folder(path, dtype=dtype, device="cpu", trust_remote_code=trust_remote_code,
                                        allow_pickle=allow_pickle)
                template = template or vlm.chat_template
                model, source = language_model_of(vlm.model), "vlm-language-model"
                del vlm
            else:
                model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True,
                                                             trust_remote_code=trust_remote_code,
                                                             use_safetensors=not allow_pickle)
                source = "causal-lm"
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot load the language model: {exc}") from exc
        model.to(dev)
        return cls(model, tokenizer, chat_template=template, path=os.path.abspath(path), batch_size=batch_size,
                   source=source)

    def save(self, folder: str, state_dict: dict[str, Any] | None = None) -> str:
        """A checkpoint folder ``llm:FOLDER`` loads (safetensors, tokenizer, chat template)."""
        os.makedirs(folder, exist_ok=True)
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        with open(os.path.join(folder, "chat_template.jinja"), "w", encoding="utf-8") as fh:
            fh.write(str(self.chat_template))
        return folder

    def image_attention(self, request: Any) -> list[Any]:
        raise UnsupportedError("a language model alone has no image attention")

    def fingerprint(self) -> str:
        """The ``hf`` fingerprint of the weights and template, marked as a text-only run of them (the language
        model of a VLM is not the VLM)."""
        return hashlib.sha256(f"llm:{self.source}:{super().fingerprint()}".encode()).hexdigest()[:32]

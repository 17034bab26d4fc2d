"""The ``hf`` backend: local transformers checkpoints (LLaVA, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL, ...).

Offline by construction: every ``from_pretrained`` is ``local_files_only``; weights must be
safetensors unless the caller explicitly allows pickles; ``trust_remote_code`` is off unless
asked for.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import time
from typing import Any, Sequence

import torch

from medmm.errors import InputError
from medmm.models.base import (VLM, Generation, ModelError, OptionScore, Question, Request, check_prompt_sets,
                               check_questions, options_per_request, score_prompt_sets_per_prompt, with_question)
from medmm.models.families import family_of, model_types

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
FULL_HASH_LIMIT = 256 * 2**20  # files up to this size are hashed in full; larger ones by size + mtime


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available; use device=cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    return DTYPES[dtype]


def _file_digest(path: str) -> str:
    st = os.stat(path)
    if st.st_size > FULL_HASH_LIMIT:
        return f"size={st.st_size};mtime={st.st_mtime_ns}"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(folder: str) -> dict[str, str]:
    """Digest of every file that determines a checkpoint's outputs (weights, configs, templates)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        name = os.path.basename(path)
        if os.path.isfile(path) and (name.endswith((".safetensors", ".json", ".jinja", ".model", ".txt")) or
                                     name.endswith(PICKLE_SUFFIXES)):
            out[name] = _file_digest(path)
    return out


def check_weights(folder: str, allow_pickle: bool, what: str = "checkpoint") -> None:
    safes = glob.glob(os.path.join(folder, "*.safetensors"))
    pickles = [p for p in glob.glob(os.path.join(folder, "*")) if p.endswith(PICKLE_SUFFIXES)]
    if safes:
        return
    if pickles and not allow_pickle:
        raise ModelError(
            f"{folder}: the {what} has only pickle-based weights ({', '.join(os.path.basename(p) for p in pickles)}); "
            "pickles can run code when loaded, so medmm refuses them. Convert them to safetensors, or pass "
            "allow_pickle=True (--allow-pickle) if you trust the file."
        )
    if not pickles:
        raise ModelError(f"{folder}: no weights found (*.safetensors) in the {what}")


class HFVLM(VLM):
    """A transformers image-text-to-text model and its processor."""

    def __init__(self, model: Any, processor: Any, *, path: str | None = None, adapter: str | None = None,
                 name: str | None = None, batch_size: int = 8) -> None:
        _quiet_transformers()
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"  # batched generation appends on the right
        if self.tokenizer.pad_token is None:  # some checkpoints ship without one; padding is masked anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.path = path
        self.adapter = adapter
        self.batch_size = batch_size
        self.name = name or (f"hf:{path}" if path else "hf:in-memory")
        self.chat_template = getattr(processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)
        if not self.chat_template:
            raise ModelError(
                f"{path or 'model'}: no chat template (chat_template.jinja, or chat_template in the processor or "
                "tokenizer config); medmm needs one to build prompts. Add the template the model was trained with."
            )
        if getattr(processor, "chat_template", None) is None:
            processor.chat_template = self.chat_template
        self.model_type = getattr(model.config, "model_type", "?")
        self.family = family_of(self.model_type)  # everything family-specific: medmm.models.families

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_folder(cls, path: str, adapter: str | None = None, dtype: str = "auto", device: str = "cpu",
                    trust_remote_code: bool = False, allow_pickle: bool = False, batch_size: int = 8) -> "HFVLM":
        from transformers import AutoConfig, AutoModelForImageTextToText
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

        _quiet_transformers()
        if not os.path.isdir(path):
            raise ModelError(f"{path}: no such checkpoint folder (medmm loads local folders only; nothing is downloaded)")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelError(f"{path}: no config.json; not a transformers checkpoint folder")
        check_weights(path, allow_pickle)
        try:
            config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
        except (ValueError, KeyError) as exc:
            raise ModelError(f"{path}: unsupported architecture ({exc}); pass trust_remote_code=True only if you "
                             "trust the code shipped with the checkpoint") from exc
        model_type = getattr(config, "model_type", None)
        if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES and not trust_remote_code:
            raise ModelError(
                f"{path}: unsupported architecture {model_type!r}: medmm loads image-text-to-text models "
                f"({', '.join(model_types())}, ...)"
            )
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                path, dtype=torch_dtype, local_files_only=True, trust_remote_code=trust_remote_code,
                use_safetensors=not allow_pickle)
            processor = family_of(str(model_type)).load_processor(path, trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot load the checkpoint: {exc}") from exc
        if adapter:
            model = _attach_adapter(model, adapter, allow_pickle)
        model.to(dev)
        return cls(model, processor, path=os.path.abspath(path), adapter=os.path.abspath(adapter) if adapter else None,
                   batch_size=batch_size)

    def save(self, folder: str, state_dict: dict[str, Any] | None = None) -> str:
        """Write a checkpoint folder the ``hf`` backend loads (safetensors, processor, chat template).
        ``state_dict``: the weights to write instead of the model's own (e.g. gathered from FSDP shards)."""
        os.makedirs(folder, exist_ok=True)
        extra = {} if state_dict is None else {"state_dict": state_dict}
        self.model.save_pretrained(folder, safe_serialization=True, **extra)
        self.family.save_processor(self.processor, folder)
        with open(os.path.join(folder, "chat_template.jinja"), "w", encoding="utf-8") as fh:
            fh.write(self.chat_template)
        return folder

    # ------------------------------------------------------------------ encoding
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prompt_text(self, request: Request) -> str:
        return self.processor.apply_chat_template(request.chat(), add_generation_prompt=True, tokenize=False)

    def encode(self, requests: Sequence[Request]) -> Any:
        texts = [self.prompt_text(r) for r in requests]
        images = [img for r in requests for img in r.pil_images()]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        enc = self.processor(**kwargs)
        enc.pop("token_type_ids", None)  # text-only segment ids; the models here do not take them
        return enc.to(self.device)

    # ------------------------------------------------------------------ generation
    def generate(self, requests: Sequence[Request], max_new_tokens: int = 64, temperature: float = 0.0,
                 batch_size: int | None = None, **kwargs: Any) -> list[Generation]:
        out: list[Generation] = []
        step = batch_size or self.batch_size
        for start in range(0, len(requests), step):
            out.extend(self._generate_batch(list(requests[start:start + step]), max_new_tokens, temperature, **kwargs))
        return out

    def _generate_batch(self, requests: list[Request], max_new_tokens: int, temperature: float,
                        **kwargs: Any) -> list[Generation]:
        t0 = time.perf_counter()
        enc = self.encode(requests)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        stop = kwargs.pop("stop", None)  # OpenAI-style generation options, as the http backend takes them
        stop = [stop] if isinstance(stop, str) else list(stop or ())
        seed = kwargs.pop("seed", None)
        if temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=temperature, top_p=kwargs.pop("top_p", None) or 1.0)
        else:
            kwargs.pop("top_p", None)  # greedy: top-p does not apply
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:  # transformers stops on the strings (it needs the tokenizer); the text is cut before them below
            gen_kwargs.update(stop_strings=stop, tokenizer=self.tokenizer)
        if seed is not None:  # sampling reproducible per call
            torch.manual_seed(int(seed))
        gen_kwargs.update(kwargs)
        with torch.inference_mode():
            out = self.model.generate(**enc, **gen_kwargs)
        seconds = time.perf_counter() - t0
        new = out[:, enc["input_ids"].shape[1]:]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        results = []
        for row, mask in zip(new.tolist(), enc["attention_mask"]):
            tokens = []
            finish = "length"
            for t in row:
                if t in eos_ids:
                    finish = "stop"
                    break
                if t == self.tokenizer.pad_token_id and self.tokenizer.pad_token_id not in eos_ids:
                    finish = "stop"
                    break
                tokens.append(t)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
            if cut >= 0:  # the answer ends before its stop string (as OpenAI-compatible servers return it)
                text, finish = text[:cut], "stop"
            results.append(Generation(text, int(mask.sum()), len(tokens), seconds, finish))
        return results

    # ------------------------------------------------------------------ option scoring
    def _option_ids(self, options: list[str]) -> list[list[int]]:
        ids = [self.tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
        for o, t in zip(options, ids):
            if not t:
                raise InputError(f"option {o!r} encodes to no tokens")
        return ids

    def score_option_details(self, requests: Sequence[Request],
                             options: Sequence[str] | Sequence[Sequence[str]]) -> list[list[OptionScore]]:
        """The prompt is encoded once per request; all its options then run as one batch on a
        copy of the prompt's KV cache."""
        per = options_per_request(requests, options)
        results = []
        for req, opts in zip(requests, per):
            ids = self._option_ids(opts)
            enc = self.encode([req])
            with torch.inference_mode():
                out = self.model(**enc, use_cache=True)
                first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
                totals = [float(first[t[0]]) for t in ids]
                longest = max(len(t) for t in ids)
                if longest > 1:
                    n = len(opts)
                    cache = getattr(out, "cache", None) or out.past_key_values
                    cache.batch_repeat_interleave(n)
                    pad = self.tokenizer.pad_token_id or 0
                    feed = torch.full((n, longest - 1), pad, dtype=torch.long, device=self.device)
                    target = torch.full((n, longest - 1), -1, dtype=torch.long, device=self.device)
                    for i, t in enumerate(ids):
                        feed[i, : len(t) - 1] = torch.tensor(t[:-1])
                        target[i, : len(t) - 1] = torch.tensor(t[1:])
                    prompt_len = enc["input_ids"].shape[1]
                    mask = torch.cat([enc["attention_mask"].expand(n, -1), (target >= 0).long()], dim=1)
                    positions = torch.arange(prompt_len, prompt_len + longest - 1, device=self.device)
                    extra = self._continuation_positions(positions, n)
                    extra[self._cache_kwarg] = cache
                    cont = self.model(input_ids=feed, attention_mask=mask, use_cache=True,
                                      cache_position=positions, **extra)
                    lp = torch.log_softmax(cont.logits.float(), dim=-1)
                    picked = lp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * (target >= 0)
                    for i in range(n):
                        totals[i] += float(picked[i].sum())
            results.append([OptionScore(o, s, len(t)) for o, s, t in zip(opts, totals, ids)])
        return results

    # ------------------------------------------------------------------ several questions, one encoding
    def score_questions(self, requests: Sequence[Request], questions: Sequence[Question], batch_size: int | None = None,
                        max_rows: int = 64) -> list[list[list[OptionScore]]]:
        """Per request, per question, each option's log-probability (see :meth:`VLM.score_questions`), with
        the images and the shared prompt encoded **once** per request (:meth:`score_prompt_sets`)."""
        qs = check_questions(questions)
        return self.score_prompt_sets([[with_question(r, q.text) for q in qs] for r in requests],
                                      [q.options for q in qs], batch_size=batch_size, max_rows=max_rows)

    def score_prompt_sets(self, prompt_sets: Sequence[Sequence[Request]], options: Sequence[Sequence[str]],
                          batch_size: int | None = None, max_rows: int = 64) -> list[list[list[OptionScore]]]:
        """Per item, per prompt, each option's log-probability (see :meth:`VLM.score_prompt_sets`), the
        prompts of an item (same images) sharing one encoding, items batched (``batch_size``, default the
        model's): the prompts are tokenized exactly as :meth:`score_option_details` would, their longest
        common token prefix (images, report) runs through the model once for a batch of items
        (left-padded), each prompt's own tokens then run on a copy of that prefix's KV cache (one row per
        item and prompt) with all its options packed beside them (``max_rows`` rows per forward). A batch
        whose prompts differ in images or share no prefix holding them is scored one prompt at a time."""
        check_prompt_sets(prompt_sets, options)
        step = batch_size or self.batch_size
        out: list[list[list[OptionScore]]] = []
        for start in range(0, len(prompt_sets), step):
            out.extend(self._score_sets_batch([list(ps) for ps in prompt_sets[start:start + step]], options,
                                              max(1, max_rows)))
        return out

    def _score_sets_batch(self, asked: list[list[Request]], options: Sequence[Sequence[str]], max_rows: int
                          ) -> list[list[list[OptionScore]]]:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        def same_pictures(a: Request, b: Request) -> bool:
            return ([id(x) for x in a.images] == [id(x) for x in b.images] and a.boxes == b.boxes
                    and a.box_shape == b.box_shape)

        if any(not same_pictures(row[0], r) for row in asked for r in row[1:]):
            return score_prompt_sets_per_prompt(self, asked, options)  # prompts about different images
        opt_ids = [self._option_ids(list(o)) for o in options]
        n_q = len(options)
        enc = self.encode([row[0] for row in asked])  # images + the first question's prompt, left-padded
        ids, mask = enc["input_ids"], enc["attention_mask"]
        image_id = getattr(self.model.config, "image_token_id", None)
        prefixes, suffixes = [], []
        for i, row in enumerate(asked):
            plain = [self.tokenizer(self.prompt_text(a))["input_ids"] for a in row]  # image placeholders unexpanded
            n = min(len(t) for t in plain) - 1  # every question keeps at least one token of its own
            lcp = next((k for k in range(n) if any(t[k] != plain[0][k] for t in plain[1:])), n)
            real = ids[i][mask[i].bool()].tolist()
            tail = plain[0][lcp:]
            if (lcp < 1 or real[len(real) - len(tail):] != tail or len(real) <= len(tail)
                    or (image_id is not None and any(image_id in t[lcp:] for t in plain))):
                return score_prompt_sets_per_prompt(self, asked, options)  # no shared prefix holding the images
            prefixes.append(len(real) - len(tail))
            suffixes.append([t[lcp:] for t in plain])
        # the prefixes, left-padded to one length: every per-token tensor of the encoding cut the same way
        b, width = len(asked), max(prefixes)
        per_token = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor) and v.shape[:2] == ids.shape}
        pre = {k: torch.full((b, width), self.tokenizer.pad_token_id if k == "input_ids" else 0, dtype=v.dtype,
                             device=v.device) for k, v in per_token.items()}
        for i, length in enumerate(prefixes):
            keep = mask[i].bool().nonzero().squeeze(-1)[:length]
            for k, v in per_token.items():
                pre[k][i, width - length:] = v[i, keep]
        pre_mask = pre["attention_mask"]
        pad = (width - pre_mask.sum(-1)).to(self.device)  # left padding of each prompt row
        forward = {**{k: v for k, v in enc.items() if k not in per_token}, **pre}
        if not self.family.mrope:  # positions of real tokens from 0, as each prompt alone would have them
            forward["position_ids"] = (pre_mask.cumsum(-1) - 1).clamp(min=0)
        if self._takes_logits_to_keep:
            forward["logits_to_keep"] = 1  # the prompt's logits are not needed (a real vocabulary x prompt is GBs)
        with torch.inference_mode():
            out = self.model(**forward, use_cache=True)
            cache = getattr(out, "cache", None) or out.past_key_values
            if not isinstance(cache, DynamicCache) or any(type(layer) is not DynamicLayer for layer in cache.layers):
                return score_prompt_sets_per_prompt(self, asked, options)  # a cache whose rows cannot be copied
            rows = [(i, q) for i in range(b) for q in range(n_q)]
            scores: list[list[float]] = []
            for lo in range(0, len(rows), max_rows):
                chunk = rows[lo:lo + max_rows]
                scores.extend(self._score_packed(cache, pre_mask, pad, width, [i for i, _ in chunk],
                                                 [suffixes[i][q] for i, q in chunk], [opt_ids[q] for _, q in chunk]))
            _restore(cache)
        by_row = dict(zip(rows, scores))
        return [[[OptionScore(opt, by_row[(i, q)][o], len(opt_ids[q][o])) for o, opt in enumerate(options[q])]
                 for q in range(n_q)] for i in range(b)]

    def _score_packed(self, cache: Any, mask: torch.Tensor, pad: torch.Tensor, width: int, prompt_rows: list[int],
                      suffixes: list[list[int]], options: list[list[list[int]]]) -> list[list[float]]:
        """One forward for a chunk of (prompt row, question) rows on copies of the prompt rows' KV cache. Each
        row packs the question's own tokens, then every option's tokens but its last, side by side: an
        attention mask lets each option see the prompt, the question and its own earlier tokens only, and its
        tokens take the positions right after the question (as if it were the only answer). The option's
        first token is scored after the question's last token, each further one after the option's previous one."""
        r = len(prompt_rows)
        layouts, n = [], 0
        for suffix, opts in zip(suffixes, options):
            starts, at = [], len(suffix)
            for t in opts:
                starts.append(at)
                at += len(t) - 1
            layouts.append(starts)
            n = max(n, at)
        idx = torch.tensor(prompt_rows, device=self.device)
        feed = torch.full((r, n), self.tokenizer.pad_token_id or 0, dtype=torch.long, device=self.device)
        offsets = torch.zeros((r, n), dtype=torch.long, device=self.device)  # position after the prompt
        allowed = torch.zeros((r, n, n), dtype=torch.bool, device=self.device)
        for j, (suffix, opts, starts) in enumerate(zip(suffixes, options, layouts)):
            s = len(suffix)
            feed[j, :s] = torch.tensor(suffix, device=self.device)
            offsets[j, :s] = torch.arange(s, device=self.device)
            allowed[j, :s, :s] = torch.ones((s, s), dtype=torch.bool, device=self.device).tril()
            for t, a in zip(opts, starts):
                k = len(t) - 1
                if k:
                    feed[j, a:a + k] = torch.tensor(t[:-1], device=self.device)
                    offsets[j, a:a + k] = torch.arange(s, s + k, device=self.device)
                    allowed[j, a:a + k, :s] = True
                    allowed[j, a:a + k, a:a + k] = torch.ones((k, k), dtype=torch.bool, device=self.device).tril()
            allowed[j, s + sum(len(t) - 1 for t in opts):, :1] = True  # padding rows: see something, never read
        prompt_seen = mask[idx].bool().unsqueeze(1).expand(r, n, mask.shape[1])
        full = torch.cat([prompt_seen, allowed], dim=2).unsqueeze(1)
        dtype = next(self.model.parameters()).dtype
        additive = torch.zeros(full.shape, dtype=dtype, device=self.device).masked_fill(~full, torch.finfo(dtype).min)
        after = (width - pad[idx]).view(-1, 1) + offsets  # positions after each prompt's real tokens
        extra = self.family.continuation_positions(self.model, after, idx, r) or {"position_ids": after}
        _select(cache, idx)
        extra[self._cache_kwarg] = cache
        out = self.model(input_ids=feed, attention_mask=additive, use_cache=True,
                         cache_position=torch.arange(width, width + n, device=self.device), **extra)
        results = []
        for j, (suffix, opts, starts) in enumerate(zip(suffixes, options, layouts)):
            s = len(suffix)
            lp = torch.log_softmax(out.logits[j, s - 1:].float(), dim=-1)  # row 0: after the question
            row = []
            for t, a in zip(opts, starts):
                total = lp[0, t[0]]
                if len(t) > 1:
                    picks = torch.arange(a - s + 1, a - s + len(t), device=self.device)
                    total = total + lp[picks, torch.tensor(t[1:], device=self.device)].sum()
                row.append(float(total))
            results.append(row)
        return results

    @functools.cached_property
    def _takes_logits_to_keep(self) -> bool:
        import inspect

        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return "logits_to_keep" in inspect.signature(base.forward).parameters

    @functools.cached_property
    def _cache_kwarg(self) -> str:
        """``cache`` in transformers >= 5.2x, ``past_key_values`` before (and deprecated after); looked
        up once per model, not on every scored request."""
        import inspect

        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    def _continuation_positions(self, positions: torch.Tensor, batch: int,
                                rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Explicit position ids for text that continues a cached multimodal prompt (the family's rule:
        Qwen's M-RoPE needs them, others derive them). ``rows``: the prompt row of each continuation row."""
        return self.family.continuation_positions(self.model, positions, rows, batch)

    def score_options_naive(self, requests: Sequence[Request], options: Sequence[str] | Sequence[Sequence[str]]
                            ) -> list[list[float]]:
        """Reference implementation: one full forward (prompt + option) per option. For tests and benchmarks."""
        per = options_per_request(requests, options)
        results = []
        for req, opts in zip(requests, per):
            row = []
            for o, t in zip(opts, self._option_ids(opts)):
                enc = self.encode([req])
                opt = torch.tensor([t], device=self.device)
                enc["input_ids"] = torch.cat([enc["input_ids"], opt], dim=1)
                enc["attention_mask"] = torch.cat([enc["attention_mask"], torch.ones_like(opt)], dim=1)
                if "mm_token_type_ids" in enc:  # Qwen2-VL: option tokens are text (type 0)
                    enc["mm_token_type_ids"] = torch.cat([enc["mm_token_type_ids"], torch.zeros_like(opt)], dim=1)
                with torch.inference_mode():
                    logits = self.model(**enc).logits[0].float()
                lp = torch.log_softmax(logits, dim=-1)
                start = enc["input_ids"].shape[1] - len(t)
                row.append(float(sum(lp[start - 1 + j, tok] for j, tok in enumerate(t))))
            results.append(row)
        return results

    # ------------------------------------------------------------------ attention (ViCrop)
    def image_attention(self, request: Request) -> list[Any]:
        """Per image of ``request``: the attention of the answer position (the last prompt token) over
        that image's tokens, averaged over layers and heads, as a float64 numpy vector in token order.

        Runs one forward with eager attention (SDPA does not return weights) and restores the
        model's attention implementation afterwards. Used by :mod:`medmm.models.vicrop`.
        """
        import numpy as np

        image_id = getattr(self.model.config, "image_token_id", None)
        if image_id is None:
            raise ModelError(f"{self.name}: the model config has no image_token_id; cannot locate image tokens")
        enc = self.encode([request])
        setter = getattr(self.model, "set_attn_implementation", None)
        before = getattr(self.model.config, "_attn_implementation", None)
        if setter is not None:
            setter("eager")
        try:
            with torch.inference_mode():
                out = self.model(**enc, output_attentions=True)
        finally:
            if setter is not None and before:
                setter(before)
        if not out.attentions or out.attentions[0] is None:
            raise ModelError(f"{self.name}: the model returned no attention weights")
        att = torch.stack([a[0, :, -1, :].float() for a in out.attentions]).mean(dim=(0, 1)).cpu().numpy()
        ids = enc["input_ids"][0].cpu().numpy()
        positions = np.flatnonzero(ids == image_id)
        n = len(request.images)
        if n == 0 or len(positions) % n:
            raise ModelError(f"{self.name}: {len(positions)} image tokens for {n} image(s)")
        per = len(positions) // n
        return [att[positions[i * per:(i + 1) * per]].astype(np.float64) for i in range(n)]

    # ------------------------------------------------------------------ identity
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        info: dict[str, Any] = {
            "backend": "hf",
            "model_type": self.model_type,
            "dtype": str(next(self.model.parameters()).dtype),
            "chat_template": hashlib.sha256(self.chat_template.encode()).hexdigest(),
        }
        if self.path:
            info["weights"] = folder_digest(self.path)
        else:
            wh = hashlib.sha256()
            for k, v in sorted(self.model.state_dict().items()):
                wh.update(k.encode())
                wh.update(v.detach().float().cpu().numpy().tobytes())
            info["weights"] = wh.hexdigest()
            info["config"] = hashlib.sha256(self.model.config.to_json_string().encode()).hexdigest()
        if self.adapter:
            info["adapter"] = folder_digest(self.adapter)
        h.update(json.dumps(info, sort_keys=True).encode())
        return h.hexdigest()[:32]


def _attach_adapter(model: Any, adapter: str, allow_pickle: bool) -> Any:
    from peft import PeftModel

    if not os.path.isdir(adapter) or not os.path.isfile(os.path.join(adapter, "adapter_config.json")):
        raise ModelError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    check_weights(adapter, allow_pickle, what="adapter")
    # peft loads adapter_model.safetensors when present, else adapter_model.bin (a pickle): a decoy
    # *.safetensors must not let a pickle through, so any pickle in the folder is refused outright
    pickles = sorted(os.path.basename(p) for p in glob.glob(os.path.join(adapter, "*")) if p.endswith(PICKLE_SUFFIXES))
    if pickles and not allow_pickle:
        raise ModelError(f"{adapter}: the adapter folder holds pickle-based files ({', '.join(pickles)}) that peft may "
                         "load and that can run code; remove them (keep adapter_model.safetensors), or pass "
                         "allow_pickle=True (--allow-pickle) if you trust them")
    if not allow_pickle and not os.path.isfile(os.path.join(adapter, "adapter_model.safetensors")):
        raise ModelError(f"{adapter}: no adapter_model.safetensors (the file peft loads) in the adapter folder")
    try:
        return PeftModel.from_pretrained(model, adapter, is_trainable=False, local_files_only=True)
    except Exception as exc:
        raise ModelError(f"{adapter}: the adapter does not fit this model: {exc}") from exc


def _select(cache: Any, rows: torch.Tensor) -> None:
    """Point every layer of a DynamicCache at copies of ``rows`` of its prompt (kept for :func:`_restore`)."""
    for layer in cache.layers:
        if not hasattr(layer, "_medmm_prompt"):
            layer._medmm_prompt = (layer.keys, layer.values)
        keys, values = layer._medmm_prompt
        layer.keys, layer.values = keys[rows], values[rows]


def _restore(cache: Any) -> None:
    for layer in cache.layers:
        saved = getattr(layer, "_medmm_prompt", None)
        if saved is not None:
            layer.keys, layer.values = saved
            del layer._medmm_prompt

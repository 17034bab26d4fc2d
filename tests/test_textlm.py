"""The llm backend (a language model alone, on text) and MMStar's multimodal leakage with it, on tiny models
built from configs: a text-only causal-LM checkpoint, and a VLM checkpoint's own language model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medmm.models import Request, load
from medmm.models.base import UnsupportedError
from medmm.models.textlm import TextLM

PROMPT = "Is this a CT scan? (please answer yes/no)"


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory):
    from medmm.models.tiny import build_tiny

    folder = tmp_path_factory.mktemp("tiny-llava")
    vlm = build_tiny("llava")
    vlm.save(str(folder))
    return vlm, str(folder)


@pytest.fixture(scope="module")
def text_lm_dir(tmp_path_factory):
    """A tiny text-only Llama checkpoint (safetensors, tokenizer, chat template), built from a config."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from medmm.models.tiny import build_tokenizer

    tok = build_tokenizer(1000, "llava")
    torch.manual_seed(7)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                         bos_token_id=tok.bos_token_id))
    template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}assistant:{% endif %}")
    folder = tmp_path_factory.mktemp("tiny-text-llama")
    TextLM(model, tok, chat_template=template).save(str(folder))
    return str(folder)


def test_a_vlm_checkpoint_s_language_model_equals_the_vlm_without_an_image(tiny_vlm_dir):
    """llm:PATH of a VLM: its language model and LM head without the vision tower. With no image in the
    prompt the VLM is that language model, so scores and greedy answers must be identical."""
    vlm, folder = tiny_vlm_dir
    lm = load("llm:" + folder)
    assert isinstance(lm, TextLM) and lm.source == "vlm-language-model"
    assert not any("vision" in n for n, _ in lm.model.named_parameters())
    req = Request(prompt=PROMPT, system="Answer briefly.")
    a, b = vlm.score_options([req], ["yes", "no", "maybe not"]), lm.score_options([req], ["yes", "no", "maybe not"])
    assert np.allclose(a, b, atol=1e-5)
    assert vlm.generate([req], max_new_tokens=6)[0].text == lm.generate([req], max_new_tokens=6)[0].text
    assert lm.fingerprint() != vlm.fingerprint()  # a text-only run of the weights is another model


def test_a_text_only_checkpoint_answers_and_refuses_images(text_lm_dir):
    lm = load("llm:" + text_lm_dir)
    assert lm.source == "causal-lm"
    req = Request(prompt=PROMPT)
    scores = lm.score_options([req], ["yes", "no"])[0]
    assert all(np.isfinite(scores)) and scores[0] != scores[1]
    naive = lm.score_options_naive([req], ["yes", "no"])[0]
    assert np.allclose(scores, naive, atol=1e-4)  # the KV-cache path agrees with full forwards
    gen = lm.generate([req], max_new_tokens=4, stop=["\n"])[0]
    assert gen.finish_reason in ("stop", "length") and "\n" not in gen.text
    with pytest.raises(UnsupportedError, match="no image"):
        lm.generate([Request(images=[Image.new("RGB", (8, 8))], prompt=PROMPT)])
    with pytest.raises(Exception, match="unknown option"):
        load("llm:" + text_lm_dir, adapterx="x")


def test_probe_run_reports_multimodal_leakage_with_a_local_llm(tmp_path, text_lm_dir):
    """`medmm probe run --controls blind --llm llm:PATH`: the none variant (no image), the llm variant (the
    language model alone) and ML = max(0, S_none - S_llm) per metric in metrics.json (MMStar)."""
    from tests.probe.test_runner import _negation_file

    data = _negation_file(tmp_path)
    out = tmp_path / "run"
    from medmm.cli import main

    assert main(["probe", "run", "--bench", "negation", "--data", str(data), "--model", "tiny:llava", "--mode", "greedy",
                 "--llm", "llm:" + text_lm_dir, "--controls", "blind", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert {r["variant"] for r in rows} == {"image", "none", "blank", "noise", "llm"}
    assert all(r["status"] == "ok" for r in rows)
    leak, variants = metrics["controls"]["multimodal_leakage"], metrics["variants"]
    checked = 0
    for k, v in leak.items():
        a, b = variants["none"].get(k), variants["llm"].get(k)
        if isinstance(a, float) and isinstance(b, float) and v is not None:
            assert v == pytest.approx(max(0.0, a - b), abs=1e-6)
            checked += 1
    assert checked >= 1
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["llm"]  # the language model's fingerprint is part of the run identity


def test_a_vlm_whose_language_model_has_no_causal_lm_class_is_refused_clearly(tmp_path):
    """Qwen2-VL's language model (qwen2_vl_text) has no AutoModelForCausalLM class: one clear error that says
    what to give instead, never a half-loaded model."""
    from medmm.models.base import ModelError
    from medmm.models.tiny import build_tiny

    build_tiny("qwen2-vl").save(str(tmp_path))
    with pytest.raises(ModelError, match="give the base LLM's own checkpoint as llm:PATH"):
        load("llm:" + str(tmp_path))

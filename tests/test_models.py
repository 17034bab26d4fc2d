"""medmm.models: tiny families, save/reload (with LoRA), option scoring, batching, errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from medmm.errors import ConfigError, InputError
from medmm.models import ImageView, ModelError, Request, load
from medmm.models.families import tiny_names
from medmm.models.hf import HFVLM
from medmm.models.tiny import build_tiny, load_tiny_config

FAMILIES = list(tiny_names())  # every family with a tiny builder (medmm.models.families): a new one is tested here
OPTIONS = ["yes", "no", "a small left pleural effusion"]


def _images(n: int = 3, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray((rng.random((60 + 12 * i, 72 + 8 * i, 3)) * 255).astype(np.uint8)) for i in range(n)]


def _requests() -> list[Request]:
    imgs = _images()
    return [
        Request(images=[imgs[0]], prompt="Is there a nodule in the left lung? Answer yes or no."),
        Request(images=[imgs[1]], prompt="Is there a pneumothorax?", system="You are a radiologist."),
        Request(images=[imgs[2], imgs[0]], prompt="Compare the two images. Is there an effusion?"),
    ]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request):
    return build_tiny(request.param)


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"ckpt-{tiny.model_type}")
    tiny.save(str(folder))
    return str(folder)


def test_generate_and_score_run(tiny):
    gens = tiny.generate(_requests(), max_new_tokens=5)
    assert len(gens) == 3
    assert all(g.completion_tokens <= 5 and g.prompt_tokens > 10 and g.seconds > 0 for g in gens)
    scores = tiny.score_options(_requests(), OPTIONS)
    assert np.array(scores).shape == (3, 3) and np.isfinite(scores).all() and (np.array(scores) < 0).all()
    means = tiny.score_options(_requests(), OPTIONS, reduction="mean")
    details = tiny.score_option_details(_requests(), OPTIONS)
    for row, mrow, drow in zip(scores, means, details):
        for s, m, d in zip(row, mrow, drow):
            assert m == pytest.approx(s / d.n_tokens)
    assert details[0][2].n_tokens > 1  # the long option really spans several tokens


def test_score_options_equals_naive_forward(tiny):
    fast = np.array(tiny.score_options(_requests(), OPTIONS))
    naive = np.array(tiny.score_options_naive(_requests(), OPTIONS))
    np.testing.assert_allclose(fast, naive, atol=1e-4)


def test_batched_generation_equals_one_by_one(tiny):
    reqs = _requests()
    batched = [g.text for g in tiny.generate(reqs, max_new_tokens=8, batch_size=3)]
    single = [tiny.generate([r], max_new_tokens=8)[0].text for r in reqs]
    assert batched == single


def test_save_reload_identical(tiny, saved):
    assert os.path.isfile(os.path.join(saved, "model.safetensors"))
    assert not any(f.endswith(".bin") for f in os.listdir(saved))
    again = load(f"hf:{saved}")
    reqs = _requests()
    assert [g.text for g in again.generate(reqs, max_new_tokens=6)] == [g.text for g in tiny.generate(reqs, max_new_tokens=6)]
    np.testing.assert_allclose(again.score_options(reqs, OPTIONS), tiny.score_options(reqs, OPTIONS), atol=1e-6)
    assert again.fingerprint() == load(f"hf:{saved}").fingerprint()


def test_lora_adapter_round_trip(tiny, saved, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = load(f"hf:{saved}")  # the base was saved before wrapping (stack notes, trap 4)
    peft_model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)  # LoRA B starts at zero; make the adapter change outputs
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(str(adapter))
    assert (adapter / "adapter_model.safetensors").exists()
    in_memory = HFVLM(peft_model, base.processor)
    reloaded = load(f"hf:{saved}", adapter=str(adapter))
    reqs = _requests()
    s_mem, s_re = in_memory.score_options(reqs, OPTIONS), reloaded.score_options(reqs, OPTIONS)
    np.testing.assert_allclose(s_re, s_mem, atol=1e-6)
    assert [g.text for g in reloaded.generate(reqs, max_new_tokens=6)] == [g.text for g in in_memory.generate(reqs, max_new_tokens=6)]
    plain = load(f"hf:{saved}")
    assert not np.allclose(plain.score_options(reqs, OPTIONS), s_re, atol=1e-3)  # the adapter matters
    assert reloaded.fingerprint() != plain.fingerprint()


def test_requests_from_volumes_and_boxes(tiny, make_series):
    from medmm.imaging import load_volume

    folder, _, _ = make_series(n=4, rows=40, cols=40, intercept=-1024.0)
    vol = load_volume(folder)
    req = Request(images=[ImageView(vol, window="lung")], prompt="Describe.", boxes=[[(5, 5, 20, 20)]])
    pil = req.pil_images()[0]
    assert pil.size == (40, 40) and pil.getpixel((5, 10)) == (255, 0, 0)  # the box is drawn
    assert tiny.generate([req], max_new_tokens=3)[0].completion_tokens <= 3
    assert tiny.generate([Request(images=[vol], prompt="Describe.")], max_new_tokens=2)


def test_image_count_mismatch_is_a_clear_error(tiny):
    req = Request(images=_images(2), messages=[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}])
    with pytest.raises(InputError, match="1 image placeholder"):
        tiny.generate([req])


def test_checkpoint_errors(saved, tmp_path):
    with pytest.raises(ModelError, match="no such checkpoint folder"):
        load(f"hf:{tmp_path / 'missing'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load(f"hf:{empty}")
    pickled = tmp_path / "pickled"
    shutil.copytree(saved, pickled)
    os.remove(pickled / "model.safetensors")
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelError, match="pickle"):
        load(f"hf:{pickled}")
    other = tmp_path / "bert"
    shutil.copytree(saved, other)
    (other / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(ModelError, match="unsupported architecture"):
        load(f"hf:{other}")
    no_template = tmp_path / "no-template"
    shutil.copytree(saved, no_template)
    os.remove(no_template / "chat_template.jinja")
    for name in ("processor_config.json", "tokenizer_config.json"):
        path = no_template / name
        if path.exists():
            cfg = json.loads(path.read_text())
            cfg.pop("chat_template", None)
            path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="chat template"):
        load(f"hf:{no_template}")
    with pytest.raises(InputError, match="unknown option"):
        load(f"hf:{saved}", colour="blue")
    with pytest.raises(InputError, match="model spec"):
        load("nonsense-spec")


def test_tiny_config_validation(tmp_path):
    assert load_tiny_config("llava").family == "llava"
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend: tiny\nfamily: llava\nlayers: 3\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_tiny_config(str(bad))
    with pytest.raises(ConfigError, match="family"):
        load_tiny_config("gpt")


def test_yaml_spec_for_hf(saved, tmp_path):
    cfg = tmp_path / "model.yaml"
    cfg.write_text(f"backend: hf\npath: {saved}\ndtype: float32\n")
    vlm = load(str(cfg))
    assert isinstance(vlm, HFVLM) and vlm.fingerprint() == load(f"hf:{saved}").fingerprint()


def _report_requests() -> list[Request]:
    """Requests that share nothing but their form: reports of different lengths (left padding in a batch),
    a system prompt, two images, chat messages."""
    imgs = _images()
    prefix = "Here is a radiology report for the image.\n\n{}\n\n"
    return [
        Request(images=[imgs[0]], prompt=prefix.format("FINDINGS: Small left pleural effusion. No pneumothorax.")),
        Request(images=[imgs[1]], prompt=prefix.format("FINDINGS: Moderate right pneumothorax, increased since the prior "
                                                       "study. IMPRESSION: Moderate right pneumothorax."),
                system="You are a radiologist."),
        Request(images=[imgs[2], imgs[0]], prompt=prefix.format("Compare the two images. No change.")),
        Request(images=[imgs[1]], messages=[{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": prefix.format("FINDINGS: Normal chest radiograph.")}]}]),
    ]


QUESTIONS = [("Does this report contain an error? Answer yes or no.", ("yes", "no")),
             ("Which type of error is it? Answer with one of the error types.",
              ("laterality", "omission", "measurement", "a small left pleural effusion"))]


def test_score_questions_share_one_encoding_and_equal_two_prompts(tiny, monkeypatch):
    """SIMPLE and COMPLEX on one encoding of image + report (batched across reports) give the scores of
    asking each question as its own prompt, and the images go through the model once per report."""
    from medmm.models import Question
    from medmm.models.base import score_questions_per_prompt, with_question

    qs = [Question(t, o) for t, o in QUESTIONS]
    reqs = _report_requests()
    calls: list[int] = []
    encode = tiny.encode
    monkeypatch.setattr(tiny, "encode", lambda rs: calls.append(len(rs)) or encode(rs))
    shared = tiny.score_questions(reqs, qs, batch_size=4, max_rows=3)
    assert calls == [4]  # one encoding (images and prompts) for the four reports and both questions
    monkeypatch.undo()
    apart = score_questions_per_prompt(tiny, reqs, qs)
    for rs, ra in zip(shared, apart):
        assert [[s.option for s in q] for q in rs] == [list(q.options) for q in qs]
        np.testing.assert_allclose([s.logprob for q in rs for s in q], [s.logprob for q in ra for s in q], atol=1e-4)
        assert [[s.n_tokens for s in q] for q in rs] == [[s.n_tokens for s in q] for q in ra]
    # ... and the per-prompt reference is score_options on the question appended to the prompt
    simple = tiny.score_options([with_question(r, qs[0].text) for r in reqs], list(qs[0].options))
    np.testing.assert_allclose([[s.logprob for s in r[0]] for r in shared], simple, atol=1e-4)


def test_question_errors():
    from medmm.models import Question
    from medmm.models.base import with_question

    with pytest.raises(InputError, match="option"):
        Question("Which?", ())
    with pytest.raises(InputError, match="user turn"):
        with_question(Request(messages=[{"role": "system", "content": "x"}]), "Which?")
    asked = with_question(Request(messages=[{"role": "user", "content": "report"}]), " Which?")
    assert asked.messages[0]["content"] == "report Which?"


def test_score_prompt_sets_share_what_the_prompts_share(tiny):
    """Whole prompts per item (the checker's SIMPLE and COMPLEX prompts differ before the report too): the
    common token prefix is shared, results equal one prompt at a time; prompts about different images fall
    back to one prompt at a time (same results)."""
    from medmm.models.base import score_prompt_sets_per_prompt

    imgs = _images()
    reports = ["FINDINGS: Small left pleural effusion.", "FINDINGS: Moderate right pneumothorax, increased."]
    sets = [[Request(images=[im], prompt=f"Here is a radiology report for the image.\n\n{r}\n\nIs there an error? yes or no."),
             Request(images=[im], prompt=f"Here is a radiology report for the image that contains an error.\n\n{r}\n\n"
                                         "Which type of error is it?")] for im, r in zip(imgs, reports)]
    options = [("yes", "no"), ("laterality", "omission", "measurement")]
    shared = tiny.score_prompt_sets(sets, options, batch_size=2)
    apart = score_prompt_sets_per_prompt(tiny, sets, options)
    flat = lambda out: [s.logprob for item in out for q in item for s in q]  # noqa: E731
    np.testing.assert_allclose(flat(shared), flat(apart), atol=1e-4)
    mixed = [[sets[0][0], Request(images=[imgs[2]], prompt=sets[0][1].prompt)]]  # another image: not shared
    np.testing.assert_allclose(flat(tiny.score_prompt_sets(mixed, options)),
                               flat(score_prompt_sets_per_prompt(tiny, mixed, options)), atol=1e-6)
    with pytest.raises(InputError, match="prompt"):
        tiny.score_prompt_sets([[sets[0][0]]], options)

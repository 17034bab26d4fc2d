"""Generation options (system prompt, temperature, top-p, max tokens, stop, seed) reach every backend and are
part of the run identity."""

from __future__ import annotations

import json

import pytest

from medmm.errors import InputError
from medmm.probe.runner import GenerationOptions, run_probe

from .conftest import FakeVLM
from .test_runner import _negation_file


def test_options_reach_the_backend_and_the_run_identity(tmp_path):
    data = _negation_file(tmp_path)
    model = FakeVLM()
    gen = GenerationOptions(system="You are a radiologist.", temperature=0.7, top_p=0.9, max_new_tokens=12,
                            stop=("\n\n",), seed=5)
    run_probe("negation", str(data), model, str(tmp_path / "run"), generation=gen, progress=False)
    assert all(r.system == "You are a radiologist." for r in model.requests)
    assert model.gen_kwargs and all(k == {"max_new_tokens": 12, "temperature": 0.7, "top_p": 0.9, "stop": ["\n\n"],
                                          "seed": 5} for k in model.gen_kwargs)
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert {k: config[k] for k in ("system", "temperature", "top_p", "stop", "seed", "max_new_tokens")} == {
        "system": "You are a radiologist.", "temperature": 0.7, "top_p": 0.9, "stop": ["\n\n"], "seed": 5,
        "max_new_tokens": 12}
    # the same options: everything cached; another seed: another configuration, asked again
    model.calls = 0
    again = run_probe("negation", str(data), model, str(tmp_path / "run"), generation=gen, progress=False)
    assert (again.n_computed, model.calls) == (0, 0)
    other = run_probe("negation", str(data), model, str(tmp_path / "run"), progress=False,
                      generation=GenerationOptions(**{**gen.__dict__, "seed": 6}))
    assert other.n_computed == 10
    # defaults keep the identity runs had before the options existed (no extra parts)
    plain = run_probe("negation", str(data), FakeVLM(), str(tmp_path / "plain"), progress=False)
    cfg = json.loads((tmp_path / "plain" / "run.json").read_text())["config"]
    assert plain.n_computed == 10 and not {"system", "top_p", "stop", "seed"} & set(cfg)
    with pytest.raises(InputError, match="top-p"):
        GenerationOptions(top_p=1.5)


def test_hf_backend_honours_stop_and_seed():
    from medmm.models import Request
    from medmm.models.tiny import build_tiny

    vlm = build_tiny("llava", seed=0)
    req = [Request(prompt="Describe the image in many words.")]
    full = vlm.generate(req, max_new_tokens=12)[0].text
    assert len(full) > 4
    stop = full[2:4]
    cut = vlm.generate(req, max_new_tokens=12, stop=[stop])[0]
    assert cut.text == full[:full.find(stop)] and cut.finish_reason == "stop"
    a = vlm.generate(req, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=11)[0].text
    b = vlm.generate(req, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=11)[0].text
    assert a == b  # a seed makes sampling reproducible
    assert vlm.generate(req, max_new_tokens=12, top_p=0.5)[0].text == full  # greedy: top-p does not apply

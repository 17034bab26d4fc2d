"""run_probe's options as one object (ProbeOptions), with the older keyword form as a compatible call path."""

from __future__ import annotations

import inspect
import json

import pytest

from medmm.errors import InputError
from medmm.probe.runner import GenerationOptions, ProbeOptions, run_probe

from .conftest import FakeVLM
from .test_runner import _negation_file


def test_keywords_and_options_object_are_the_same_run(tmp_path):
    data = _negation_file(tmp_path)
    old = run_probe("negation", str(data), FakeVLM(), str(tmp_path / "old"), mode="greedy", controls=("blind",),
                    batch_size=3, max_new_tokens=7, progress=False)
    opts = ProbeOptions(mode="greedy", controls=("blind",), batch_size=3, progress=False,
                        generation=GenerationOptions(max_new_tokens=7))
    new = run_probe("negation", str(data), FakeVLM(), str(tmp_path / "new"), opts)
    run_old, run_new = (json.loads((tmp_path / d / "run.json").read_text()) for d in ("old", "new"))
    assert run_old["config_key"] == run_new["config_key"] and run_new["config"]["max_new_tokens"] == 7
    assert old.metrics == new.metrics and old.n_samples == new.n_samples == 40
    assert ProbeOptions.of(mode="greedy", max_new_tokens=7, controls=["blind"], batch_size=3, progress=False) == opts


def test_bad_options_are_refused_at_construction(tmp_path):
    with pytest.raises(TypeError, match="unknown option"):
        ProbeOptions.of(mdoe="mc")
    with pytest.raises(InputError, match="prefix reduction"):
        ProbeOptions(prefix_reduction="max")
    with pytest.raises(InputError, match="batch size"):
        ProbeOptions(batch_size=0)
    data = _negation_file(tmp_path)
    with pytest.raises(TypeError, match="unknown option"):
        run_probe("negation", str(data), FakeVLM(), str(tmp_path / "x"), bach_size=2)


def test_run_probe_takes_a_short_parameter_list():
    params = inspect.signature(run_probe).parameters
    named = [p for p in params.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert len(named) <= 10  # bench, data, model, out, options, judge, llm, model_spec, judge_spec, on_batch

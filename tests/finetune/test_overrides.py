"""finetune --set reads KEY=VALUE with the one reader (medmm.runs.parse_key_values)."""

from __future__ import annotations

import pytest

from medmm.errors import ConfigError
from medmm.finetune.config import apply_overrides
from medmm.runs import parse_key_values


def test_overrides_read_values_as_the_one_reader_does():
    items = ["train.max_steps=50", "optim.lr=1e-3", "peft.target_modules=[q_proj, v_proj]", "model.path=hf:/x",
             "train.progress=false", "data.eval="]
    out = apply_overrides({"train": {"max_steps": 5, "seed": 1}}, items)
    want = parse_key_values(items)
    assert out["train"] == {"max_steps": 50, "seed": 1, "progress": False}
    assert out["optim"]["lr"] == want["optim.lr"] == 1e-3 and isinstance(out["optim"]["lr"], float)
    assert out["peft"]["target_modules"] == ["q_proj", "v_proj"] and out["model"]["path"] == "hf:/x"
    assert out["data"]["eval"] is None


def test_a_bad_override_is_a_config_error_with_an_example():
    with pytest.raises(ConfigError, match=r"--set 'nokey': use KEY=VALUE, e.g. train.max_steps=50"):
        apply_overrides({}, ["nokey"])

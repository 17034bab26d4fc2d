"""Fine-tuning resumes by content, not by path: a data file changed under the same name refuses to resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medmm.errors import ConfigError
from medmm.finetune.recipe import FinetuneRecipe
from medmm.runs import run_identity
from tests.finetune.conftest import recipe_config


def test_changed_data_file_refuses_to_resume(region_data, tmp_path):
    original = Path(region_data["train"])
    train = original.with_name(f"copy-{tmp_path.name}.jsonl")  # beside it: sample image paths are relative
    shutil.copy(original, train)
    data = dict(region_data, train=str(train))
    out = tmp_path / "run"
    FinetuneRecipe(recipe_config(data, out)).train(until=5)  # checkpoint at step 5
    assert FinetuneRecipe(recipe_config(data, out)).setup().step == 5  # same content: resumes
    lines = train.read_text().splitlines()
    train.write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # same path, same samples, another order
    with pytest.raises(ConfigError, match="a data file's content"):
        FinetuneRecipe(recipe_config(data, out)).setup()
    train.unlink()


def test_run_identity_is_content(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text("x\n")
    first = run_identity({"lr": 1}, {"train": a, "eval": None}, code_version="1")
    b = tmp_path / "b.jsonl"
    shutil.copy(a, b)
    assert run_identity({"lr": 1}, {"train": b, "eval": None}, code_version="1") == first  # moved: same run
    a.write_text("y\n")
    assert run_identity({"lr": 1}, {"train": a, "eval": None}, code_version="1") != first  # changed: another run
    assert run_identity({"lr": 1}, {"train": b, "eval": None}, code_version="2") != first  # other code
    assert first["data"]["eval"] is None

"""The model-family registry: one file per family, and no family listed anywhere else."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from medmm.errors import ConfigError
from medmm.models import families as reg
from medmm.models.families import GENERIC, Family, family_of, get_family, tiny_names

ROOT = Path(__file__).resolve().parents[1]
# The registry's own folder, and the codec registry below it (codec names are codec ids there; a family
# says which codec it writes by name).
ALLOWED = (ROOT / "medmm" / "models" / "families", ROOT / "medmm" / "regions" / "codecs.py")


def _names() -> set[str]:
    return {n for f in reg.families() for n in (f.name, *f.model_types)}


def family_literals(source: str, names: set[str]) -> list[tuple[int, str]]:
    """String constants (docstrings excepted) that are exactly a family name or a model type."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and node.value in names]


def test_the_registered_families():
    names = [f.name for f in reg.families()]
    assert {"llava", "llava-next", "qwen2-vl", "qwen2.5-vl", "qwen3-vl", "internvl"} <= set(names)
    assert set(tiny_names()) == {"llava", "llava-next", "qwen2-vl", "qwen2.5-vl", "qwen3-vl"}
    for f in reg.families():
        assert f.codec().name == f.codec_name  # every family's codec exists in medmm.regions.codecs
        for mt in f.model_types:
            assert family_of(mt) is f and family_of(SimpleNamespace(model_type=mt)) is f
    assert family_of("idefics3") is GENERIC and GENERIC.codec().name == "internvl"
    with pytest.raises(ConfigError, match="unknown model family"):
        get_family("gpt")


def test_family_rules_match_the_processors():
    from medmm.models.tiny import build_tiny

    llava, qwen = build_tiny("llava"), build_tiny("qwen2-vl")
    assert llava.family is get_family("llava") and qwen.family is get_family("qwen2-vl")
    t = llava.family.input_transform(llava.processor.image_processor, 90, 60)
    assert t.size == (64, 64) and t.offset_y > 0  # padded to a square, then resized
    assert llava.family.prepare_image(llava.processor.image_processor, Image.new("RGB", (90, 60))).size == (90, 90)
    ip = qwen.processor.image_processor
    _, gh, gw = ip(images=[Image.new("RGB", (90, 60))], return_tensors="pt")["image_grid_thw"][0].tolist()
    assert qwen.family.input_transform(ip, 90, 60).size == (gw * ip.patch_size, gh * ip.patch_size)
    assert not get_family("llava-next").attention_crop and get_family("llava").attention_crop


def test_no_family_literal_outside_the_registry():
    names = _names()
    # the scanner itself finds what it must find (this test can fail)
    assert family_literals(textwrap.dedent('''
        """llava docstrings are prose"""
        if mt in ("qwen2_vl", "x"):
            pass
    '''), names) == [(3, "qwen2_vl")]
    found = []
    for base in (ROOT / "medmm", ROOT / "apps"):
        for path in sorted(base.rglob("*.py")):
            if any(path == a or a in path.parents for a in ALLOWED):
                continue
            for line, value in family_literals(path.read_text(encoding="utf-8"), names):
                found.append(f"{path.relative_to(ROOT)}:{line}: {value!r}")
    assert not found, ("family names or model types written outside medmm/models/families (declare the rule in the "
                       "family's file and read it through the registry):\n" + "\n".join(found))


def test_a_new_family_is_one_file(tmp_path, monkeypatch):
    """A family file dropped into the registry's folder is found, and the layers that read the registry
    (codec, model-input frame, tiny specs) follow it without any other edit."""
    from medmm.finetune.inputs import default_codec, input_transform

    folder = tmp_path / "extra_families"
    folder.mkdir()
    (folder / "my_vlm.py").write_text(textwrap.dedent('''
        from medmm.models.families._base import Family
        from medmm.regions.frames import InputTransform


        class MyVLM(Family):
            name = "my-vlm"
            model_types = ("my_vlm",)
            codec_name = "qwen2-vl"

            def input_transform(self, image_processor, width, height):
                return InputTransform.identity(width, height).letterbox(32)


        FAMILY = MyVLM()
    '''))
    monkeypatch.setattr(reg, "__path__", [*reg.__path__, str(folder)])
    reg._discovered.cache_clear()
    try:
        fam = get_family("my-vlm")
        vlm = SimpleNamespace(model_type="my_vlm", processor=SimpleNamespace(image_processor=None))
        assert family_of(vlm) is fam
        assert default_codec(vlm).name == "qwen2-vl"
        assert input_transform(vlm, 64, 32).size == (32, 32)
        assert "my-vlm" not in tiny_names()  # no tiny builder declared
    finally:
        monkeypatch.undo()
        reg._discovered.cache_clear()
    assert "my-vlm" not in [f.name for f in reg.families()]


def test_register_refuses_a_duplicate():
    class Dup(Family):
        name = "llava"

    with pytest.raises(ConfigError, match="already registered"):
        reg.register(Dup())

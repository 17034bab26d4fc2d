"""medmm.config: package data through importlib.resources, YAML configs validated at load.

The wheel itself is built, installed outside the checkout and smoke-tested by
``scripts/wheel_smoke.sh`` (run by ``.ci/run``); these tests check the loader and that every
file the library reads at run time is declared as package data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from medmm import config
from medmm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    name: str
    steps: int = 10
    rate: float = 0.1
    options: tuple[str, str] = ("yes", "no")
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_packaged_config_by_name_and_listing() -> None:
    names = config.packaged_configs()
    assert "models/tiny-llava.yaml" in names and "models/bench-llava-16m.yaml" in names
    assert config.packaged_configs("models") == [n for n in names if n.startswith("models/")]
    data = config.load_config("models/tiny-llava.yaml")
    assert data["backend"] == "tiny" and data["family"] == "llava"
    source = config.find_config("models/tiny-llava.yaml")
    assert source.packaged and source.directory is None and source.label == "medmm:configs/models/tiny-llava.yaml"


def test_user_file_builds_dataclass_with_tuples(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name: a\nsteps: 3\nrate: 1\noptions: ["ja", "nein"]\nextra: {k: 1}\n')
    recipe = config.load_config(path, Recipe)
    assert recipe == Recipe(name="a", steps=3, rate=1, options=("ja", "nein"), extra={"k": 1})
    assert config.find_config(path).directory == tmp_path.resolve()


def test_every_problem_is_gathered_in_one_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "steps: many\nrate: true\noptions: [yes, no]\ncolour: red\nlr: 3\n")
    with pytest.raises(ConfigError) as info:
        config.load_config(path, Recipe)
    message = str(info.value)
    assert message.startswith(f"{path}: 5 problems:")
    assert "unknown key(s) ['colour', 'lr']" in message
    assert "missing required key(s) ['name']" in message
    assert "steps: expected an integer, got 'many'" in message
    assert "rate: expected a number, got True" in message
    assert "options: item 0: expected a string, got True (bare yes/no/on/off are booleans in YAML: quote them)" in message


def test_mapping_schema_and_wrong_tuple_length(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nb: [x]\n")
    assert config.load_config(path, {"a": int, "b": list[str]}) == {"a": 1, "b": ["x"]}
    with pytest.raises(ConfigError, match=r"b: expected a list of 2 values, got 1"):
        config.load_config(path, {"a": int, "b": tuple[str, str]})


def test_constructor_errors_carry_the_label(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Positive:
        n: int

        def __post_init__(self) -> None:
            if self.n <= 0:
                raise ValueError("n must be positive")

    path = _write(tmp_path, "n: -1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: n must be positive$"):
        config.load_config(path, Positive)


def test_missing_and_malformed_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a config file on disk nor a packaged config; packaged configs: .*models/tiny-llava.yaml"):
        config.load_config("models/nope.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        config.load_config(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="cannot contain '..'"):
        config.load_config("models/../../pyproject.toml")
    with pytest.raises(ConfigError, match="expected a mapping of keys to values at the top level, got list"):
        config.load_config(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load_config(_write(tmp_path, "a: [1, 2\n"))


def test_read_text_and_missing_package_data() -> None:
    words = config.read_text("reports/radiology_words.txt")
    assert "pneumothorax" in words.split()
    with pytest.raises(ConfigError, match="medmm/reports/absent.txt is missing: this medmm installation is incomplete"):
        config.read_text("reports/absent.txt")


def test_runtime_data_files_are_declared_package_data() -> None:
    """Every non-Python file under medmm/ is matched by a package-data pattern in pyproject.toml."""
    setuptools_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = setuptools_cfg["package-data"]["medmm"]
    data_files = [p.relative_to(ROOT / "medmm").as_posix() for p in (ROOT / "medmm").rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data_files, "expected package data under medmm/"
    undeclared = [f for f in data_files if not any(fnmatch(f, pat) for pat in patterns)]
    assert undeclared == []


def test_review_app_ships_as_package_data_one_copy() -> None:
    """``medmm app`` runs the packaged script; in the tree it is a link to apps/report_checker.py (one copy)."""
    packaged = config.files("_apps/report_checker.py")
    assert packaged.is_file()
    link = ROOT / "medmm" / "_apps" / "report_checker.py"
    assert link.is_symlink() and link.resolve() == (ROOT / "apps" / "report_checker.py").resolve()
    assert packaged.read_bytes() == (ROOT / "apps" / "report_checker.py").read_bytes()


def test_vlm_checker_default_config_is_packaged() -> None:
    from medmm.reports import vlm_checker

    assert "reports/vlm-checker.yaml" in config.packaged_configs("reports")
    assert Path(vlm_checker.CONFIG_PATH).is_file()

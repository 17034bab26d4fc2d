"""The error injector cannot grade the checker with the checker's own patterns.

Read with ``ast`` (not by importing): ``medmm/reports/inject.py`` may import the public
vocabulary (``lexicon``), the sentence splitter (``sections``), the taxonomy and third-party
libraries — never a checker module, and never a private name of any medmm module. The lexicon
itself is plain data (read from YAML through medmm.config), so it cannot smuggle the checker in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import medmm.reports

PKG = Path(medmm.reports.__file__).resolve().parent
INJECT = PKG / "inject.py"
ALLOWED = {"medmm.reports.lexicon", "medmm.reports.sections", "medmm.reports.taxonomy", "medmm.reports", "medmm.errors"}
CHECKER_MODULES = {"medmm.reports.checker", "medmm.reports.analysis", "medmm.reports.rules_sections",
                   "medmm.reports.rules_single", "medmm.reports.rules_text", "medmm.reports.language",
                   "medmm.reports.flags", "medmm.reports.api", "medmm.reports.vlm_checker"}


def _imports(tree: ast.AST) -> list[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every import in the tree, nested ones included."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative import: resolve against medmm.reports
                mod = "medmm.reports" + ("." + mod if mod else "")
            out += [(mod, a.name, node.lineno) for a in node.names]
    return out


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    aliases: dict[str, str] = {}
    for mod, name, line in _imports(tree):
        full = f"{mod}.{name}" if name and f"{mod}.{name}" in CHECKER_MODULES else mod
        if full in CHECKER_MODULES or (mod.startswith("medmm") and mod not in ALLOWED):
            found.append(f"line {line}: imports {full}")
        if name and name.startswith("_") and mod.startswith("medmm"):
            found.append(f"line {line}: imports the private name {mod}.{name}")
        if mod.startswith("medmm") and name:
            aliases[name] = f"{mod}.{name}"
    for node in ast.walk(tree):  # lexicon._something: a private name reached through a module alias
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and isinstance(node.value, ast.Name) and node.value.id in {"lx", "lexicon", "sections", "taxonomy"}:
            found.append(f"line {node.lineno}: uses the private name {node.value.id}.{node.attr}")
    return found


def test_injector_imports_no_checker_and_no_private_name():
    assert violations(INJECT.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("source,expected", [
    ("from medmm.reports.checker import _speller\n", "medmm.reports.checker"),
    ("def f():\n    from medmm.reports.checker import _NOT_THIS_STUDY\n", "private name"),
    ("import medmm.reports.analysis\n", "medmm.reports.analysis"),
    ("from medmm.reports import rules_text\n", "medmm.reports.rules_text"),
    ("from medmm.reports.lexicon import _hidden\n", "private name"),
    ("from medmm.reports import lexicon as lx\nx = lx._table\n", "private name"),
])
def test_the_check_itself_catches_what_it_forbids(source, expected):
    """The ast check is not vacuous: each forbidden form is reported."""
    assert any(expected in v for v in violations(source)), violations(source)


def test_lexicon_is_plain_data():
    """The lexicon reads its words from data (lexicon-en.yaml through the language pack's loader, which reads
    through medmm.config) and imports nothing else of medmm: it cannot smuggle the checker in."""
    tree = ast.parse((PKG / "lexicon.py").read_text(encoding="utf-8"))
    assert [m for m, _, _ in _imports(tree) if m.startswith("medmm")] == ["medmm.reports.language_pack"]
    loader = ast.parse((PKG / "language_pack.py").read_text(encoding="utf-8"))
    assert {m for m, _, _ in _imports(loader) if m.startswith("medmm")} == {"medmm.config"}


def test_importing_the_injector_loads_no_checker_module():
    code = ("import sys, medmm.reports.inject; "
            "print(sorted(m for m in sys.modules if m.startswith('medmm.reports')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(eval(out))  # a printed list of module names
    assert loaded & CHECKER_MODULES == set(), loaded
    assert "medmm.reports.inject" in loaded

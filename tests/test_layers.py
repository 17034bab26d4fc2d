"""The layers of DESIGN.md hold: a package never loads a higher layer, nor a package beside it.

Two checks, because each misses what the other sees:

- at run time: each package is imported in a clean subprocess together with every one of its
  submodules (``pkgutil.walk_packages``), and no module of a higher layer — or of another
  package of the same layer — may appear in ``sys.modules``;
- in the source: every ``import`` / ``from ... import`` anywhere in a package's files (inside
  functions too: a lazy import runs only on the code path that needs it) and every string that
  names a medmm module (``lazy_exports`` tables, ``"module:object"`` registry entries, pool
  preload lists) must point to the same or a lower layer. Imports under ``if TYPE_CHECKING:``
  are annotations only and are not counted.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

import medmm

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "medmm"

# DESIGN.md, top to bottom = low to high (medmm.errors below the rest of L0, which all use it). Private helpers sit with the lowest layer that uses them:
# _lazy (lazy namespace exports) and _pool (names no module: callers pass their preload) are L0;
# _warm (report-checking warm-up that the audit's forkserver preloads) belongs to the audit.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("L0", ("medmm.errors",)),  # the floor: every layer raises medmm's errors
    ("L0", ("medmm.config", "medmm.metrics", "medmm.runs", "medmm.tasks", "medmm._lazy", "medmm._pool", "medmm._cli")),
    ("L1", ("medmm.imaging", "medmm.deid")),
    ("L2", ("medmm.regions",)),
    ("L2.5", ("medmm.studies",)),  # the one study record: HeaderFacts + Box, read by synth and above
    ("L3", ("medmm.synth",)),
    ("L4", ("medmm.models",)),
    ("L5", ("medmm.finetune", "medmm.probe", "medmm.reports")),
    ("L5.3", ("medmm.checkertrain",)),  # the report checker's VLM trained by the recipe: joins finetune and reports
    ("L5.5", ("medmm.hospital",)),  # PACS / RIS sources, report feeds, SR/FHIR encoders: the audit reads them
    ("L6", ("medmm.audit", "medmm._warm")),
    ("L7", ("medmm.app", "medmm.cli", "medmm.demo")),
]
# Imports between packages of the same layer that DESIGN.md allows (importer -> imported). The L5
# packages (finetune, probe, reports) stand beside each other: none may import another.
SAME_LEVEL_ALLOWED: dict[str, set[str]] = {
    # DESIGN.md lists deid after imaging in L1: it reads DICOM and walks trees through imaging's one file policy.
    "medmm.deid": {"medmm.imaging"},
    "medmm.audit": {"medmm._warm"},  # the audit's own warm-up module (a string in its preload list)
    "medmm._warm": set(),
    "medmm.cli": {"medmm.app", "medmm.demo"},  # the CLI is the front door: `medmm app`, `medmm demo`
    "medmm.demo": {"medmm.app", "medmm.cli"},  # the demo ends in the app and shows CLI commands
}
# Inside one package, DESIGN.md forbids a few imports outright (the error injector never imports
# the checker: otherwise the evaluation grades itself).
FORBIDDEN_WITHIN: dict[str, tuple[str, ...]] = {
    "medmm.reports.inject": ("medmm.reports.checker",),
}
# Not code: data folders inside the package (package data, read through importlib.resources).
DATA_DIRS = {"medmm._apps", "medmm.configs"}

LEVEL = {pkg: i for i, (_, pkgs) in enumerate(LAYERS) for pkg in pkgs}
PACKAGES = [pkg for _, pkgs in LAYERS for pkg in pkgs]


def owner(module: str) -> str | None:
    """The layer entry (``medmm.reports``) a module (``medmm.reports.checker``) belongs to."""
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        name = ".".join(parts[:n])
        if name in LEVEL:
            return name
    return None


def violations(importer: str, imported: list[str]) -> list[str]:
    """Why each of ``imported`` may not be loaded by ``importer`` (a layer entry)."""
    found = []
    for mod in sorted(set(imported)):
        target = owner(mod)
        if target is None or target == importer:
            continue
        if LEVEL[target] > LEVEL[importer]:
            found.append(f"{mod} (higher layer {LAYERS[LEVEL[target]][0]})")
        elif LEVEL[target] == LEVEL[importer] and target not in SAME_LEVEL_ALLOWED.get(importer, set()):
            found.append(f"{mod} (same layer {LAYERS[LEVEL[target]][0]}, beside {importer})")
    return found


def exists(pkg: str) -> bool:
    return importlib.util.find_spec(pkg) is not None


def _skip_if_absent(pkg: str) -> None:
    if not exists(pkg):
        pytest.skip(f"{pkg} does not exist yet (DESIGN.md places it in layer {LAYERS[LEVEL[pkg]][0]})")


def test_every_top_level_module_has_a_layer() -> None:
    names = {f"medmm.{m.name}" for m in pkgutil.iter_modules(medmm.__path__)}
    names |= {f"medmm.{p.name}" for p in PACKAGE_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"}
    unplaced = sorted(names - set(LEVEL) - DATA_DIRS)
    assert unplaced == [], f"add these to LAYERS (per DESIGN.md) or DATA_DIRS: {unplaced}"


# --- run time: a clean interpreter per package ----------------------------------------------------

_PROBE = r"""
import importlib, json, pkgutil, sys
name = sys.argv[1]
mod = importlib.import_module(name)
failed = {}
if hasattr(mod, "__path__"):
    for info in pkgutil.walk_packages(mod.__path__, name + ".", onerror=lambda n: failed.setdefault(n, "walk")):
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # reported by the test, with the module's name
            failed[info.name] = f"{type(exc).__name__}: {exc}"
json.dump({"loaded": sorted(m for m in sys.modules if m == "medmm" or m.startswith("medmm.")),
           "failed": failed}, sys.stdout)
"""


@cache
def _loaded_by_all() -> dict[str, dict]:
    """Import each existing package in its own clean interpreter (in parallel), from outside the tree."""
    present = [p for p in PACKAGES if exists(p)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ROOT)  # the tree under test, whether or not it is installed

    def run(pkg: str) -> tuple[str, dict]:
        proc = subprocess.run([sys.executable, "-c", _PROBE, pkg], capture_output=True, text=True, cwd=ROOT.parent,
                              env=env, timeout=240)
        if proc.returncode != 0:
            return pkg, {"error": proc.stderr[-2000:]}
        return pkg, json.loads(proc.stdout)

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 1))) as pool:
        return dict(pool.map(run, present))


@pytest.mark.slow  # one clean interpreter per package (~20-50 s in all on 2 busy cores, once per session)
@pytest.mark.parametrize("pkg", PACKAGES)
def test_importing_a_layer_loads_no_higher_or_sibling_layer(pkg: str) -> None:
    _skip_if_absent(pkg)
    result = _loaded_by_all()[pkg]
    assert "error" not in result, f"importing {pkg} failed in a clean interpreter:\n{result.get('error')}"
    assert result["failed"] == {}, f"submodules of {pkg} that do not import: {result['failed']}"
    assert violations(pkg, result["loaded"]) == [], f"importing {pkg} (and all its submodules) loaded these"


# --- source: every import statement, lazy ones included -------------------------------------------

_MODULE_STRING = re.compile(r"^medmm(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?$")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def source_imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every medmm import and medmm module string in one file (``module``: its name)."""
    module = module or _module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "medmm"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "medmm":
                # `from medmm.reports import lexicon` imports the module medmm.reports.lexicon (its package
                # only as a parent, like `import medmm.reports.lexicon`); `from medmm.reports import check`
                # takes a name from the package itself.
                subs = [f"{target}.{a.name}" for a in node.names if _file(f"{target}.{a.name}")]
                if len(subs) < len(node.names):
                    found.append((node.lineno, target))
                found += [(node.lineno, sub) for sub in subs]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            found.append((node.lineno, node.value.split(":")[0]))
    return found


def _file(module: str) -> Path | None:
    """The source file of a medmm module, or None (a name inside a module, or no such module)."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reachable(module: str) -> set[str]:
    """Every medmm module ``module``'s own code can import, following imports module by module
    (lazy ones included; a parent package's ``__init__`` only where it is imported by name)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = _file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo += [t for _, t in source_imports(path, module=name)]
    return seen - {module}


# Violations known today, owned by another package's engineer: strict xfail, so the test turns red
# (XPASS) the day they are fixed and this entry must go.
KNOWN_VIOLATIONS: dict[str, str] = {}


@pytest.mark.parametrize("module", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=KNOWN_VIOLATIONS[m])) if m in KNOWN_VIOLATIONS else m
    for m in FORBIDDEN_WITHIN])
def test_within_package_rules(module: str) -> None:
    """DESIGN.md: the error injector never imports the checker (the evaluation would grade itself)."""
    if _file(module) is None:
        pytest.skip(f"{module} does not exist")
    assert sorted(reachable(module) & set(FORBIDDEN_WITHIN[module])) == []


def _files(pkg: str) -> list[Path]:
    base = PACKAGE_DIR.joinpath(*pkg.split(".")[1:])
    if base.is_dir():
        return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
    return [base.with_suffix(".py")]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_source_imports_respect_the_layers(pkg: str) -> None:
    _skip_if_absent(pkg)
    bad = []
    for path in _files(pkg):
        for line, target in source_imports(path):
            for why in violations(pkg, [target]):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {why}")
    assert bad == []


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The source scan sees lazy, relative and string imports; the verdicts name the layer."""
    fake = tmp_path / "probe.py"
    code = ("from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from medmm.models import VLM\n"
            "def f():\n    from ..reports import check\n    import medmm.audit.runner\n"
            "    from medmm.regions import box, Box\n    from medmm.synth import truth\n"
            "EXPORTS = {'x': 'medmm.synth.generate'}\nENTRY = 'medmm.app.views:draw'\n")
    fake.write_text(code, encoding="utf-8")
    found = sorted(t for _, t in source_imports(fake, module="medmm.imaging.probe"))
    assert found == ["medmm.app.views", "medmm.audit.runner", "medmm.regions", "medmm.regions.box", "medmm.reports",
                     "medmm.synth.generate", "medmm.synth.truth"]
    assert violations("medmm.imaging", found) == [
        "medmm.app.views (higher layer L7)", "medmm.audit.runner (higher layer L6)",
        "medmm.regions (higher layer L2)", "medmm.regions.box (higher layer L2)", "medmm.reports (higher layer L5)",
        "medmm.synth.generate (higher layer L3)", "medmm.synth.truth (higher layer L3)"]
    assert violations("medmm.reports", ["medmm.probe.build", "medmm.models.hf", "medmm.reports.checker"]) == [
        "medmm.probe.build (same layer L5, beside medmm.reports)"]
    assert "medmm.reports.checker" in reachable("medmm.reports")  # the package namespace imports the checker


# --- process pools: the forkserver preloads what the caller names, nothing more -----------------------

_POOL_PROBE = r"""
import json, sys
from concurrent.futures import ProcessPoolExecutor
from medmm._pool import forkserver_preload, pool_context
LOADED = "sorted(m for m in __import__('sys').modules if m == 'medmm' or m.startswith('medmm.'))"
seen = []
for preload in json.loads(sys.argv[1]):
    with ProcessPoolExecutor(1, mp_context=pool_context(preload=preload)) as pool:
        seen.append(pool.submit(eval, LOADED).result())  # eval: a builtin, pickled by reference
json.dump({"workers": seen, "preload": list(forkserver_preload())}, sys.stdout)
"""


def _pool_run(*preloads: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", _POOL_PROBE, json.dumps(preloads)], capture_output=True, text=True,
                          cwd=ROOT.parent, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_forkserver_workers_load_only_the_callers_preload() -> None:
    # The header scan's pool first: its workers hold imaging, and nothing above it. The audit's pool
    # later in the same process gets the same (already running) server: documented in medmm/_pool.py.
    scan_first = _pool_run(["medmm.imaging.series"], ["medmm.audit.runner", "medmm._warm"])
    assert scan_first["preload"] == ["medmm.imaging.series"]
    for loaded in scan_first["workers"]:
        assert "medmm.imaging.series" in loaded
        assert violations("medmm.imaging", loaded) == []
    # An audit's pool first: its workers start with the runner and the warm report checker.
    audit_first = _pool_run(["medmm.audit.runner", "medmm._warm"])
    assert audit_first["preload"] == ["medmm.audit.runner", "medmm._warm"]
    assert {"medmm.audit.runner", "medmm._warm", "medmm.reports"} <= set(audit_first["workers"][0])


def test_pool_context_refuses_main() -> None:
    from medmm._pool import pool_context

    with pytest.raises(ValueError, match="__main__"):
        pool_context(preload=["__main__"])

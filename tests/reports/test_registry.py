"""The rule registry: every flag id is declared once with its test and a measured confidence, and everything
(checker, calibration, legend, README table) reads it from there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medmm.reports.checker import RULES, RulesChecker, RulesConfig
from medmm.reports.flags import calibration
from medmm.reports.registry import FAMILIES, flag_specs, rule_functions, rule_table
from medmm.reports.taxonomy import ERROR_TYPES

ROOT = Path(__file__).resolve().parents[2]
SPECS = flag_specs()


@pytest.fixture(scope="module")
def every_flag() -> RulesChecker:
    return RulesChecker(RulesConfig(threshold=0.0))  # every flag raised, whatever its confidence


def test_every_rule_function_is_declared_and_run_by_the_checker():
    declared = [fn for fn, _ in rule_functions()]
    assert declared == list(RULES) and len(declared) == len({fn.__name__ for fn in declared})
    for fn, specs in rule_functions():
        assert specs, f"{fn.__name__} declares no flag id"
    src = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "medmm" / "reports").glob("rules_*.py"))
    raised = set(re.findall(r'make_flag\(\s*"(\w+)"', src))
    raised |= {w for pair in re.findall(r'make_flag\("(\w+)" if \w+ else "(\w+)"', src) for w in pair}
    assert raised == set(SPECS), f"raised but not declared: {raised - set(SPECS)}; declared, never raised: " \
                                 f"{set(SPECS) - raised}"


@pytest.mark.parametrize("flag_id", sorted(SPECS))
def test_every_flag_id_has_its_test(every_flag, flag_id):
    """The declared example raises the id, on the words the rule is about; the clean look-alike does not."""
    spec = SPECS[flag_id]
    assert spec.type in ERROR_TYPES and spec.family in FAMILIES and spec.reads and spec.explains
    res = every_flag.check(spec.example, spec.header_dict())
    hits = [f for f in res.flags if f.rule == flag_id]
    assert hits, f"{flag_id}: its example raised {[f.rule for f in res.flags]}"
    for f in hits:
        assert f.type == spec.type and spec.example[f.start:f.end] == f.text
    clean = every_flag.check(spec.clean, spec.header_dict())
    assert flag_id not in [f.rule for f in clean.flags], f"{flag_id}: raised on its clean example"


@pytest.mark.parametrize("flag_id", sorted(SPECS))
def test_every_flag_id_has_a_measured_confidence(flag_id):
    """A calibration row measured on the dev corpus (scripts/calibrate_report_rules.py), not the family prior."""
    spec = SPECS[flag_id]
    row = calibration().families.get(spec.family, {}).get("rules", {}).get(flag_id)
    assert row is not None, f"{flag_id}: no measured confidence in calibration.json (run the calibration script)"
    assert row["tp"] + row["fp"] > 0 and 0.0 < row["confidence"] < 1.0


def test_readme_rule_table_is_generated_from_the_registry():
    table = rule_table()
    for flag_id in SPECS:
        assert f"| `{flag_id}` |" in table
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's rule table is stale: paste medmm.reports.registry.rule_table() into it"


def test_language_pack_is_data_a_site_extends_without_code(tmp_path):
    """Section names and negation triggers come from the packaged YAML; a site's file (MEDMM_REPORT_LANGUAGE) adds
    to them. Checked in a fresh interpreter: the pack is read once per process, at import."""
    import json
    import subprocess
    import sys

    extra = tmp_path / "site.yaml"
    extra.write_text("sections:\n  impression: [ASSESSMENT]\nnegation:\n  pre: ['absent\\s+is']\n", encoding="utf-8")
    code = ("import json; from medmm.reports import check; from medmm.reports.sections import split_sections; "
            "t = 'FINDINGS: Small left pleural effusion.\\n\\nASSESSMENT: Small right pleural effusion.'; "
            "print(json.dumps([[s.name for s in split_sections(t)], [f.type for f in check(t).flags]]))")
    env = {**__import__("os").environ, "MEDMM_REPORT_LANGUAGE": str(extra)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    names, types = json.loads(out.stdout)
    assert names == ["findings", "impression"] and types == ["laterality"]
    env.pop("MEDMM_REPORT_LANGUAGE")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout)[0] == ["findings"]  # "ASSESSMENT" is no section name of the packaged pack


def test_the_injector_does_not_read_the_language_pack():
    src = (ROOT / "medmm" / "reports" / "inject.py").read_text(encoding="utf-8")
    assert "language_pack" not in src and "language-en" not in src

"""The rule registry: every flag id is declared once with its test and a measured confidence, and everything
(checker, calibration, legend, README table) reads it from there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medmm.reports.analysis import analyze
from medmm.reports.checker import RULES, RulesChecker, RulesConfig, as_header
from medmm.reports.flags import calibration, make_flag
from medmm.reports.language import packaged_lm
from medmm.reports.registry import FAMILIES, flag_specs, needs_model, rule_functions, rule_table, undeclared_ids
from medmm.reports.taxonomy import ERROR_TYPES

ROOT = Path(__file__).resolve().parents[2]
REAL = Path(os.environ.get("MEDMM_SHARED", ROOT / ".." / "shared")) / "data" / "real_reports" / "iu_dev.jsonl"
SPECS = flag_specs()


@pytest.fixture(scope="module")
def every_flag() -> RulesChecker:
    return RulesChecker(RulesConfig(threshold=0.0))  # every flag raised, whatever its confidence


def _run_rule(fn, specs, text: str, header) -> list:
    a = analyze(text)
    hdr = as_header(header)
    return fn(a, hdr, packaged_lm()) if needs_model(specs) else fn(a, hdr)


def test_every_rule_function_is_declared_and_run_by_the_checker():
    declared = [fn for fn, _ in rule_functions()]
    assert declared == list(RULES) and len(declared) == len({fn.__name__ for fn in declared})
    for fn, specs in rule_functions():
        assert specs, f"{fn.__name__} declares no flag id"


def test_every_rule_raises_exactly_the_ids_it_declares():
    """The ids are data of the declaration (shared loops take them as arguments), checked on what the rules emit:
    on every declared example and clean look-alike, a rule returns only ids it declared, and each id it declared is
    raised by the rule itself on that id's example."""
    texts = [(s.example, s.header_dict()) for s in SPECS.values()] + [(s.clean, s.header_dict()) for s in SPECS.values()]
    for fn, specs in rule_functions():
        for text, header in texts:
            found = _run_rule(fn, specs, text, header)
            assert not undeclared_ids(specs, found), f"{fn.__name__} raised {undeclared_ids(specs, found)} on {text!r}"
        for spec in specs:
            assert spec.rule == fn.__name__
            found = _run_rule(fn, specs, spec.example, spec.header_dict())
            assert spec.id in {f.rule for f in found}, f"{fn.__name__} does not raise {spec.id} on its example"


def test_undeclared_ids_sees_an_id_a_rule_did_not_declare():
    fn, specs = next((fn, specs) for fn, specs in rule_functions() if fn.__name__ == "rule_side_phrase")
    spec = specs[0]
    flags = _run_rule(fn, specs, spec.example, None)
    assert flags and not undeclared_ids(specs, flags)
    other = next(s for s in SPECS.values() if s.rule != fn.__name__)
    stray = make_flag(other.id, spec.example, 0, 4, "raised by the wrong rule")
    assert undeclared_ids(specs, flags + [stray]) == {other.id}


@pytest.mark.skipif(not REAL.is_file(), reason=f"real reports not available ({REAL} is absent)")
def test_rules_raise_only_declared_ids_on_real_reports():
    """The same check on real text: 600 IU dev reports, clean and with one single-mention edit each (read in place
    from ../shared, never copied)."""
    from medmm.reports.corpus import iter_jsonl
    from medmm.reports.inject_single import single_mention_rows

    reports = [row for _, row, problem in iter_jsonl(str(REAL)) if not problem and row][:600]
    texts = [(r["text"], None) for r in reports]
    texts += [(row["report"], row["header"]) for row in single_mention_rows(reports, seed=0)]
    raised = set()
    for text, header in texts:
        a = analyze(text)
        hdr = as_header(header)
        for fn, specs in rule_functions():
            found = fn(a, hdr, packaged_lm()) if needs_model(specs) else fn(a, hdr)
            assert not undeclared_ids(specs, found), f"{fn.__name__} raised {undeclared_ids(specs, found)}"
            raised |= {f.rule for f in found}
    assert len(raised) >= 10  # the texts exercise most rules (not a vacuous pass)


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


def test_thin_calibration_rows_say_so():
    """A row resting on fewer than 10 true-positive flags, or mostly on the authors' edits, carries a note (printed
    by the README's rule table); lobe_zone's row is one of them."""
    rows = {rule: row for fam in calibration().families.values() for rule, row in fam.get("rules", {}).items()}
    for rule, row in rows.items():
        assert "flags_tp" in row and "flags_fp" in row, f"{rule}: rerun scripts/calibrate_report_rules.py"
        if row["flags_tp"] < 10:
            assert "note" in row and row["note"].startswith("thin"), rule
    assert "authors' edits" in rows["lobe_zone"]["note"]
    assert rows["lobe_zone"]["note"] in rule_table()

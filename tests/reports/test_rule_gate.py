"""Rule gates (medmm/reports/rule_gate.py): a rule the checker skips because the report's words fail its gate, or
its mentions lack the fact it needs, must be a rule that would have flagged nothing there. A wrong gate drops flags
silently, so every gated rule is run directly on every declared example, on made-up texts and on the real IU dev
reports (when ../shared has them), and its output must be empty wherever its gate fails; and the checker with its
gates must return what it returns with every rule called."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from medmm.reports.analysis import analyze
from medmm.reports.checker import RulesChecker, RulesConfig, as_header
from medmm.reports.language import packaged_lm
from medmm.reports.registry import Gate, flag_specs, needs_model, rule_functions, rule_gate
from medmm.reports.rule_gate import FACTS, RuleGates

ROOT = Path(__file__).resolve().parents[2]
REAL = Path(os.environ.get("MEDMM_SHARED", ROOT / ".." / "shared")) / "data" / "real_reports" / "iu_dev.jsonl"
SPECS = flag_specs()
GATED = [(fn, specs) for fn, specs in rule_functions() if rule_gate(fn.__name__) != Gate()]

# made-up texts that pass some gates and fail others (sides, units, interval words, lobes, non-ASCII)
MADE_UP = [
    "FINDINGS: Right lower lobe opacity measuring 2 cm, new since the prior. Left lung clear.\n\n"
    "IMPRESSION: Stable left lower lobe opacity.",
    "FINDINGS: No pleural effusion or pneumothorax. Heart size normal.\n\nIMPRESSION: No acute disease.",
    "FINDINGS: Status post right upper lobectomy. Nodule in the right upper lobe, unchanged from 11/8/2023.",
    "FINDINGS: Enlarged 19 mm subcarinal lymph node. No enlarged mediastinal nodes.\n\nIMPRESSION: Adenopathy.",
    "FINDINGS: Small left pleural effusoin. Calcified granola in the rigth lung.\n\nIMPRESSION: Effusion.",
    "FINDINGS: Épanchement pleural gauche. Left pleural effusion.\n\nIMPRESSION: Right effusion.",
    "LUNGS: Normal. Small right pleural effusion.\nPLEURA: No effusion.",
    "",
]


def _call(fn, specs, a, header=None):
    return fn(a, header, packaged_lm()) if needs_model(specs) else fn(a, header)


def _texts() -> list[tuple[str, dict | None]]:
    out = [(s.example, s.header_dict()) for s in SPECS.values()] + [(s.clean, s.header_dict()) for s in SPECS.values()]
    return out + [(t, None) for t in MADE_UP]


def _gate_fails(fn, a) -> bool:
    """Would the checker skip ``fn`` on ``a``?"""
    g = RuleGates([rule_gate(fn.__name__)], packaged_lm())
    bits = g.bits(a)
    if bits & g.need[0] != g.need[0]:
        return True
    needs = rule_gate(fn.__name__).needs
    return needs is not None and g.unless[0] is not None and not bits & g.unless[0] and not FACTS[needs](a)


def test_some_rules_are_gated_and_every_fact_named_exists():
    assert len(GATED) >= 20
    for fn, _ in GATED:
        needs = rule_gate(fn.__name__).needs
        assert needs is None or needs in FACTS, f"{fn.__name__} needs an unknown fact {needs!r}"


@pytest.mark.parametrize("fn,specs", GATED, ids=[fn.__name__ for fn, _ in GATED])
def test_a_gate_that_fails_means_no_flag(fn, specs):
    failed = 0
    for text, header in _texts():
        a = analyze(text)
        if _gate_fails(fn, a):
            failed += 1
            assert _call(fn, specs, a, as_header(header)) == [], f"{fn.__name__} flags a report its gate skips: {text!r}"
    assert failed, f"{fn.__name__}: no text here fails its gate (the test would not see a wrong gate)"


def test_each_gated_rule_passes_its_gate_on_its_own_example():
    for fn, specs in GATED:
        for spec in specs:
            if spec.header:
                continue
            assert not _gate_fails(fn, analyze(spec.example)), f"{fn.__name__} is gated off its own example"


def test_a_fact_is_waived_by_its_unless_words():
    g = RuleGates([Gate(needs="positive finding", needs_unless=("than",)), Gate(needs="positive finding")])
    assert g.unless[1] == 0 and g.unless[0]
    assert g.bits(analyze("FINDINGS: Right greater than left effusions.")) & g.unless[0]
    assert not g.bits(analyze("FINDINGS: Effusions.")) & g.unless[0]
    assert RuleGates([Gate(needs="positive finding", needs_unless=(":",))]).unless == (None,)  # no letters: the fact
    # never skips the rule


def test_letter_keys_and_non_ascii_text():
    g = RuleGates([Gate((("no change",),)), Gate(((" mm ",), ("left",)))])
    assert g.bits(analyze("FINDINGS: Unchanged 3 mm nodule.")) & g.need[0] == g.need[0]  # "change" in "unchanged"
    assert g.bits(analyze("FINDINGS: A 3 mm nodule.")) & g.need[1] != g.need[1]  # no "left"
    assert g.bits(analyze("FINDINGS: Nodule à gauche.")) == -1  # not ASCII: every rule runs
    assert RuleGates([Gate(((":",),))]).need == (0,)  # a string without letters is no condition


@pytest.mark.skipif(not REAL.is_file(), reason=f"{REAL} absent (the IU dev reports of ../shared)")
def test_gates_never_skip_a_flag_on_real_reports():
    """Every gated rule on every real dev report (with and without a chest radiograph header): where the gate
    fails, the rule flags nothing; and the checker's result equals the result with every rule called."""
    rows = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    checker = RulesChecker(RulesConfig(threshold=0.0))
    ungated = RulesChecker(RulesConfig(threshold=0.0))
    ungated._plan = tuple((r, lm, 0, None, 0) for r, lm, *_ in ungated._plan)
    ungated._plan_without_header = tuple((r, lm, 0, None, 0) for r, lm, *_ in ungated._plan_without_header)
    header = {"modality": "DX", "body_part": "CHEST"}
    for row in rows:
        text = row.get("report") or row.get("text") or ""
        a = analyze(text)
        for fn, specs in GATED:
            if _gate_fails(fn, a):
                assert _call(fn, specs, a) == [], f"{fn.__name__} flags report {row.get('id')}, which its gate skips"
        for hdr in (None, header):
            assert checker.check(text, hdr) == ungated.check(text, hdr), row.get("id")


def test_the_rules_a_checker_keeps_per_gate_bits_follow_its_plan():
    """The checker keeps, per gate-bit pattern, the rules that pass their gates (RulesChecker._runs): a second report
    of the same words runs the same rules, and a plan replaced afterwards (as the per-rule timing script does) is the
    one that runs."""
    checker = RulesChecker(RulesConfig(threshold=0.0))
    text = "FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION: Small right pleural effusion."
    first = checker.check(text)
    assert checker._runs and checker.check(text) == first
    called: list[str] = []

    def wrap(rule):
        def run(*args):
            called.append(rule.__name__)
            return rule(*args)
        run.__name__ = rule.__name__
        return run

    checker._plan_without_header = tuple((wrap(p[0]),) + p[1:] for p in checker._plan_without_header)
    assert checker.check(text) == first
    bits = checker._gates.bits(analyze(text))
    assert called == [p[0].__name__ for p in checker._plan_without_header if bits & p[2] == p[2]]
    assert "rule_laterality" in called

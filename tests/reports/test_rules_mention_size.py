"""A high grade against its own size: next to it (rules_mention.severity_size: "large 3 mm nodule"), or given further
on with "measuring", through a place but no conjunction (rules_findings.severity_measured: "massive ... opacity in the
left apex measuring 1.4 cm"; one rule for it, where two were written in the same session)."""

import pytest

from medmm.reports.analysis import analyze
from medmm.reports.rules_findings import rule_severity_measured
from medmm.reports.rules_mention import rule_severity_size

F = "FINDINGS: {}\n\nIMPRESSION: Finding."


@pytest.mark.parametrize("findings,rule", [
    ("There is a massive rounded opacity in the left apex measuring 1.4 cm projecting over the clavicle.",
     rule_severity_measured),
    ("A large 3 mm nodule in the right upper lobe.", rule_severity_size),
    ("Huge rounded opacity projecting over the left hilum measuring approximately 9 mm.", rule_severity_measured),
])
def test_a_high_grade_on_a_small_measured_finding_is_flagged(findings, rule):
    assert len(rule(analyze(F.format(findings)))) == 1


@pytest.mark.parametrize("findings", [
    "Large mass in the right upper lobe measuring 8 cm.",
    "Large hiatal hernia and a nodule measuring 3 mm.",  # two findings
    "Large right pleural effusion. A nodule in the left lung measuring 4 mm.",
    "Large right pleural effusion with a nodule measuring 4 mm.",
])
def test_a_size_of_another_finding_or_a_fitting_size_is_not_flagged(findings):
    a = analyze(F.format(findings))
    assert rule_severity_size(a) == [] and rule_severity_measured(a) == []

"""severity_size (rules_mention.py): a high grade against the size its finding measures, also where the size is
given further on with "measuring", through a place but no conjunction."""

import pytest

from medmm.reports.analysis import analyze
from medmm.reports.rules_mention import rule_severity_size

F = "FINDINGS: {}\n\nIMPRESSION: Finding."


@pytest.mark.parametrize("findings", [
    "There is a massive nodular like opacity in the right midlung measuring 1.2 cm projecting over the ribs.",
    "A large 3 mm nodule in the right upper lobe.",
    "Huge rounded opacity projecting over the left hilum measuring approximately 9 mm.",
])
def test_a_high_grade_on_a_small_measured_finding_is_flagged(findings):
    assert [f.rule for f in rule_severity_size(analyze(F.format(findings)))] == ["severity_size"]


@pytest.mark.parametrize("findings", [
    "Large mass in the right upper lobe measuring 8 cm.",
    "Large hiatal hernia and a nodule measuring 3 mm.",  # two findings
    "Large right pleural effusion. A nodule in the left lung measuring 4 mm.",
    "Large right pleural effusion with a nodule measuring 4 mm.",
])
def test_a_size_of_another_finding_or_a_fitting_size_is_not_flagged(findings):
    assert rule_severity_size(analyze(F.format(findings))) == []

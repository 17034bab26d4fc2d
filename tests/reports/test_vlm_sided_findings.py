"""``sided_findings``: the checker's prompt restates the sides the report names, in a short fixed format."""

from __future__ import annotations

from dataclasses import replace

from medmm.reports.vlm_checker import VLMCheckerConfig, complex_prompt, simple_prompt, sided_findings_line


def test_the_line_lists_positive_sided_findings_once_in_order():
    report = ("FINDINGS: Small right pleural effusion. A 48 mm mass in the left lower lobe. No left pleural effusion. "
              "Possible right pneumothorax. Left-sided pacemaker.\n\nIMPRESSION: Small right pleural effusion.")
    assert sided_findings_line(report) == "Sided findings named: effusion right, mass left, pacemaker left."
    assert sided_findings_line("FINDINGS: No acute cardiopulmonary process.") == "Sided findings named: none."


def test_a_side_swapped_in_every_mention_stays_consistent_in_the_line():
    report = "FINDINGS: Small right pleural effusion.\n\nIMPRESSION: Right effusion."
    swapped = report.replace("right", "left").replace("Right", "Left")
    assert sided_findings_line(swapped) == "Sided findings named: effusion left."


def test_prompts_carry_the_line_only_when_asked():
    cfg = VLMCheckerConfig.load()
    report = "FINDINGS: Small right pleural effusion."
    assert "Sided findings" not in simple_prompt(report, cfg)
    on = replace(cfg, sided_findings=True)
    for prompt in (simple_prompt(report, on), complex_prompt(report, on)):
        assert "Small right pleural effusion.\n\nSided findings named: effusion right." in prompt

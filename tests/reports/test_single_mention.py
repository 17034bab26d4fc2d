"""Single-mention errors a reader can see: the injector made for them, and the checker's recall on real reports."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from medmm.reports.checker import RulesChecker, RulesConfig
from medmm.reports.evaluate import attributable
from medmm.reports.inject_single import SINGLE_FAMILIES, inject_single, single_mention_rows

ROOT = Path(__file__).resolve().parents[2]
IU = ROOT.parent / "shared" / "data" / "real_reports" / "iu_dev.jsonl"

# medmm's own text (not a real report): one place for every family
REPORT = ("COMPARISON: None.\n\n"
          "FINDINGS: Small left pleural effusion. Vague opacity at the right lung base within the right lower lobe. "
          "Opacity in the right middle lobe. A small 8 mm nodule in the left upper lobe. "
          "There is no focal consolidation, pneumothorax or edema.\n\n"
          "IMPRESSION: Right middle lobe pneumonia.")
SUMMARY = ("COMPARISON: 3/4/2021.\n\nFINDINGS: Small left pleural effusion. Calcified granuloma.\n\n"
           "IMPRESSION: No interval change.")
ONE_SIDE = "FINDINGS: Calcified granuloma in the left lung. Heart size normal.\n\nIMPRESSION: Granuloma."


@pytest.mark.parametrize("family", SINGLE_FAMILIES)
def test_every_family_edits_one_statement_and_records_its_cue(family):
    text = SUMMARY if family == "interval_summary" else ONE_SIDE if family == "header_laterality" else REPORT
    out = inject_single(text, family, np.random.default_rng(0))
    assert out is not None, f"{family}: no place found in the test report"
    edited, edit, header = out
    assert edited != text and edit.family == family and edit.model == f"single:{family}"
    assert edit.original_sentence in text and edit.edited_sentence in edited
    assert 0 <= edit.start < edit.end <= len(edited)
    if family == "header_laterality":
        assert header and header["laterality"] in ("L", "R") and edit.cue_start == -1
    else:
        assert header is None and edited[edit.cue_start:edit.cue_end] == edit.cue and edit.cue.strip()
    # the same seed gives the same edit
    again = inject_single(text, family, np.random.default_rng(0))
    assert again is not None and again[0] == edited


def test_a_report_without_a_place_gets_no_edit_and_a_bad_family_a_clear_error():
    assert inject_single("FINDINGS: Normal chest.\n\nIMPRESSION: Normal.", "lobe_side", np.random.default_rng(0)) is None
    with pytest.raises(ValueError, match="use one of"):
        inject_single(REPORT, "nonsense", np.random.default_rng(0))


def test_the_injector_reads_no_checker_module():
    from tests.reports.test_independence import violations

    src = (ROOT / "medmm" / "reports" / "inject_single.py").read_text(encoding="utf-8")
    assert violations(src) == []


def test_the_checker_finds_each_family_on_medmm_text():
    checker = RulesChecker(RulesConfig())
    rows = single_mention_rows([{"id": "a", "text": REPORT}, {"id": "b", "text": SUMMARY},
                                {"id": "c", "text": ONE_SIDE}], seed=0)
    assert {r["family"] for r in rows} == set(SINGLE_FAMILIES)
    for row in rows:
        res = checker.check(row["report"], row["header"])
        assert any(attributable(f, row["errors"][0]) for f in res.flags if res.has_error), row["family"]


@pytest.mark.skipif(not IU.is_file(), reason=f"the real dev reports are absent ({IU}); they live in ../shared")
def test_single_mention_recall_and_clean_fpr_on_the_held_out_real_reports():
    """Held-out IU reports (never tuned on): single-mention recall >= 0.60 in every family with 20 or more edits,
    clean FPR <= 0.03 (issue 21)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("eval_single_mention", ROOT / "scripts" / "eval_single_mention.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    res = mod.run(os.fspath(IU), "heldout", 1)
    assert res["clean_fpr"] <= 0.03, res["clean_flags_by_rule"]
    assert res["single_mention_recall"] >= 0.60
    for fam, d in res["families"].items():
        if d["n"] >= 20:
            assert d["recall"] >= 0.60, (fam, d)


@pytest.mark.skipif(not IU.is_file(), reason=f"the real dev reports are absent ({IU}); they live in ../shared")
@pytest.mark.parametrize("split,edits,at_least", [
    ("tune", "reports_single_mention_tune_edits.jsonl", 0.80),  # the hand edits the rules were worked out on
    ("heldout", "reports_single_mention_hand_edits.jsonl", 0.60),  # measured blind at 9/18 first (see README)
    ("tune", "reports_single_mention_tune3_edits.jsonl", 0.80),  # the kinds blind set 3 missed, written on tune: 11/12
    ("heldout", "reports_single_mention_blind3_edits.jsonl", 0.60),  # blind 5/16; 11/16 after the tune3 changes
    ("heldout", "reports_single_mention_blind4_edits.jsonl", 0.45),  # blind 7/15 (session 5; 6/15 at 007f9ba)
    ("tune", "reports_single_mention_tune4_edits.jsonl", 0.80),  # the interval kinds blind set 4 missed: 0/6 -> 6/6
    ("tune", "reports_single_mention_tune5_edits.jsonl", 0.80),  # the families blind sets 2-4 missed: 2/16 -> 15/16
    # blind set 5 (session 5, H5S): measured once at 7/21 (0.33), the same at 7ff8a5d: a floor against regressions, not
    # the goal (issue 21 asks >= 0.60 on errors made by others)
    ("heldout", "reports_single_mention_blind5_edits.jsonl", 0.33),
    ("tune", "reports_single_mention_tune5b_edits.jsonl", 0.80),  # the kinds blind set 5 missed, on tune: 0/11 -> 11/11
    # blind set 6 (session 7, H7B, written without running the checker): measured once on the merged session 7 rules,
    # 9 of 24 (0.375; laterality 1/4, location 2/3, interval 0/4, severity 1/3, negation 2/4, transcription 1/3,
    # measurement 2/3)
    ("heldout", "reports_single_mention_blind6_edits.jsonl", 0.37),
    # session 7 (H7R): another author's phrasings on tune, written before the rules: 14/37 -> 29/37
    ("tune", "reports_single_mention_tune6_edits.jsonl", 0.75),
])
def test_hand_made_single_mention_edits_are_found(split, edits, at_least):
    from medmm.reports.evaluate import apply_hand_edits, read_real_corpus

    rows = read_real_corpus(os.fspath(IU), split)
    made, problems = apply_hand_edits(rows, os.fspath(ROOT / "tests" / "data" / edits))
    assert not problems and bool(made)
    checker = RulesChecker(RulesConfig())
    found = 0
    for row in made:
        res = checker.check(row["report"])
        found += any(attributable(f, row["errors"][0]) for f in res.flags if res.has_error)
    n = len(made)  # counts only in the asserts: pytest would print the reports' text on a failure
    assert found / n >= at_least, f"{found}/{n}"


@pytest.mark.skipif(not IU.is_file(), reason=f"the real dev reports are absent ({IU}); they live in ../shared")
def test_the_second_blind_set_stays_found():
    """15 held-out edits written after the last rule change, measured once at 12/15: a floor for later changes."""
    from medmm.reports.evaluate import apply_hand_edits, read_real_corpus

    made, problems = apply_hand_edits(read_real_corpus(os.fspath(IU), "heldout"),
                                      os.fspath(ROOT / "tests" / "data" / "reports_single_mention_blind_edits.jsonl"))
    n_made = len(made)  # a count: pytest would print the reports' text on a failure
    assert not problems and n_made == 15
    checker = RulesChecker(RulesConfig())
    found = sum(any(attributable(f, r["errors"][0]) for f in res.flags if res.has_error)
                for r in made for res in [checker.check(r["report"])])
    assert found >= 12, f"{found}/15"

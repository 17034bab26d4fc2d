"""The synthetic checker's operating point and check-eval's explanation switch."""

from __future__ import annotations

from medmm.checkertrain.evaluate import youden_threshold
from medmm.reports.vlm_checker import VLMCheckerConfig, calibrate


def test_threshold_is_at_the_best_youden_j_not_at_flag_everything():
    # errors have margins 1..6, clean reports mostly low: Youden's J is best between 2.5 and 3 (recall 4/6,
    # FPR 1/6: J 0.5; flagging above 0.75 gives 6/6 and 3/6: J 0.5 too, and the first maximum found from the top wins)
    errors = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    clean = [0.0, 0.0, 0.5, 1.5, 2.5, 5.0]
    margins, labels = errors + clean, [True] * 6 + [False] * 6
    cfg = youden_threshold(margins, labels, calibrate(margins, labels, VLMCheckerConfig()))
    recall = sum(m > cfg.threshold for m in errors) / 6
    fpr = sum(m > cfg.threshold for m in clean) / 6
    assert 2.5 < cfg.threshold < 3.0 and (recall, fpr) == (4 / 6, 1 / 6)
    assert "Youden" in (cfg.calibrated_on or "")


def test_youden_threshold_leaves_a_one_class_split_alone():
    cfg = VLMCheckerConfig(threshold=0.25)
    assert youden_threshold([0.1, 0.2], [True, True], cfg).threshold == 0.25


def test_check_eval_explains_flags_only_when_asked():
    import argparse

    from medmm.reports.cli import add_parsers

    ap = argparse.ArgumentParser()
    add_parsers(ap.add_subparsers(dest="cmd"))
    assert ap.parse_args(["check-eval", "d.jsonl", "--checker", "vlm", "--model", "tiny:llava"]).explain is False
    assert ap.parse_args(["check-eval", "d.jsonl", "--checker", "vlm", "--model", "m", "--explain"]).explain is True

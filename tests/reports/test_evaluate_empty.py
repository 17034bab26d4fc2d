"""The report checker's evaluation follows medmm.metrics' one empty-denominator convention (null in its JSON form)."""

from __future__ import annotations

import json
import math

from medmm import metrics
from medmm.reports.evaluate import evaluate
from medmm.reports.flags import CheckResult


def test_every_rate_over_nothing_is_null_not_zero_or_one():
    rows = [{"has_error": True, "report": "x", "errors": []}, {"has_error": True, "report": "y", "errors": []}]
    out = evaluate(rows, lambda row: CheckResult(has_error=False, score=0.0, flags=[]))
    # no clean report, no detectable error, no flag raised: every rate has an empty denominator
    assert out["clean"]["n"] == 0 and out["clean"]["fpr"] is None and out["clean"]["any_flag_rate"] is None
    assert out["attributable"]["detectable"] == 0 and out["attributable"]["recall"] is None
    assert out["flags"]["raised"] == 0 and out["flags"]["precision"] is None and out["flags"]["span_on_edit"] is None
    assert out["simple"]["precision"] is None  # nothing predicted positive (metrics.BinaryMetrics)
    assert out["simple"]["recall"] == 0.0  # two errors, none found: a real zero stays zero
    json.dumps(out, allow_nan=False)  # valid JSON: nan never leaks out


def test_json_ratio_is_ratio_spelled_null():
    assert metrics.json_ratio(1, 4) == metrics.ratio(1, 4) == 0.25
    assert metrics.json_ratio(0, 0) is None and math.isnan(metrics.ratio(0, 0))
    assert metrics.json_ratio(0, 3) == 0.0

"""The rule checker on a real CT/MR dev corpus: the ``*.jsonl`` files of the folder named by ``MEDMM_CTMR_DEV``, else
of ``../shared/data/ctmr_dev/`` (the 49 CT and 30 MR MTSamples radiology reports written by
``scripts/mtsamples_ct_mr.py``, and the 137 CDEStaging chest CT findings of ``scripts/cdestaging_ct.py``; see
``datasets/mtsamples-ct-mr.md``). Never copied into the repository; skipped, with the reason, when absent. The causes
of false alarms found on their tune parts are tested on made-up text in test_ct_mr_false_alarms.py.

* Clean CT and MR reports: at most 3 % flagged per modality (the radiograph bound of test_real_reports.py).
* Errors from medmm's injector: attributable recall over text-detectable errors at least 0.60.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medmm.reports import build_checker
from medmm.reports.corpus import read_corpus
from medmm.reports.evaluate import attributable
from medmm.reports.inject import inject_dataset

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MEDMM_SHARED", ROOT / ".." / "shared"))
CTMR = Path(os.environ.get("MEDMM_CTMR_DEV") or SHARED / "data" / "ctmr_dev")
FILES = sorted(CTMR.glob("*.jsonl")) if CTMR.is_dir() else []

pytestmark = pytest.mark.skipif(not FILES, reason=f"no real CT/MR dev corpus ({CTMR}/*.jsonl is absent; build one "
                                                  "with scripts/mtsamples_ct_mr.py and point MEDMM_CTMR_DEV at it, "
                                                  "see datasets/mtsamples-ct-mr.md)")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    out = [r for path in FILES for r in read_corpus(str(path)).rows]
    assert out, f"{FILES}: no reports read"
    return out


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_clean_ct_mr_reports_are_rarely_flagged(rows, modality):
    checker = build_checker("rules")
    mine = [r for r in rows if (r.get("header") or {}).get("modality") == modality]
    if len(mine) < 10:
        pytest.skip(f"fewer than 10 {modality} reports in {CTMR}")
    flagged = [r["id"] for r in mine if checker.check(r["report"], r.get("header")).has_error]
    assert len(flagged) / len(mine) <= 0.03, f"{len(flagged)} of {len(mine)} clean {modality} reports flagged"


def test_injected_errors_in_ct_mr_reports_are_found(rows):
    checker = build_checker("rules")
    data = [r for r in inject_dataset(rows, rate=1.0, seed=0) if r["has_error"] and r["errors"][0]["text_detectable"]]
    assert len(data) >= 20
    found = sum(any(attributable(f, r["errors"][0]) for f in checker.check(r["report"], r["header"]).flags)
                for r in data)
    assert found / len(data) >= 0.60, f"{found} of {len(data)}"


SOURCE_ERRORS = ROOT / "tests" / "data" / "reports_ctmr_source_errors.jsonl"  # held-out reports: measured
SOURCE_ERRORS_TUNE = ROOT / "tests" / "data" / "reports_ctmr_source_errors_tune.jsonl"  # tune reports: develop on


def source_errors(rows: list[dict], path: Path = SOURCE_ERRORS) -> list[tuple[dict, dict]]:
    """(report, error) for each error listed in ``path``: errors already in the real reports (not injected),
    located by the sentence hash and the wrong words, in the form ``attributable`` reads."""
    import json

    from medmm.reports.evaluate import sentence_hash
    from medmm.reports.sections import split_sentences

    by_id = {r["id"]: r for r in rows}
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        e = json.loads(line)
        row = by_id[e["id"]]
        sent = next(s for s in split_sentences(row["report"]) if sentence_hash(s.text) == e["sentence"])
        start = sent.start + sent.text.index(e["wrong"])
        out.append((row, {"type": e["type"], "start": start, "end": start + len(e["wrong"]),
                          "edited_sentence": sent.text, "text_detectable": e["text_detectable"]}))
    return out


def test_errors_already_in_the_real_reports_are_found(rows):
    """Errors made outside this project (dictation slips, a side that disagrees with the impression, a wrong date),
    read off the held-out reports: the issue's goal is 0.85 of the text-detectable ones."""
    checker = build_checker("rules")
    errors = source_errors(rows)
    assert len(errors) >= 10
    missed = [(r["id"], r["report"][e["start"]:e["end"]]) for r, e in errors
              if not any(attributable(f, e) for f in checker.check(r["report"], r.get("header")).flags)]
    assert 1 - len(missed) / len(errors) >= 0.85, f"{len(missed)} of {len(errors)} missed: {missed}"


def test_hand_made_edits_in_ct_mr_reports_are_found(rows):
    """tests/data/reports_ctmr_hand_edits.jsonl: 25 errors written by hand into the held-out reports (sides swapped
    between findings and impression, a grade or a unit changed, a denial turned into a finding) before they were run
    through the checker; goal 0.60 of them, as for the injector's errors."""
    from medmm.reports.evaluate import apply_hand_edits

    checker = build_checker("rules")
    data, problems = apply_hand_edits(rows, str(ROOT / "tests" / "data" / "reports_ctmr_hand_edits.jsonl"))
    assert not problems and len(data) >= 20, problems
    missed = [r["id"] for r in data if not any(attributable(f, r["errors"][0])
                                               for f in checker.check(r["report"], r["header"]).flags)]
    assert 1 - len(missed) / len(data) >= 0.60, f"{len(missed)} of {len(data)} missed: {missed}"

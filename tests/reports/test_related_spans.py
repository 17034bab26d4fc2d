"""Both sides of a conflict: a flag carries ``related`` spans, ``check --json`` prints them, the app highlights the
pair, and evaluation counts a flag whose primary or related span lies on the edit."""

from __future__ import annotations

import json

from medmm.reports import check
from medmm.reports.evaluate import attributable, evaluate, on_edit

FINDINGS = "Small left pleural effusion."
REPORT = f"COMPARISON: None.\n\nFINDINGS: {FINDINGS} No pneumothorax.\n\nIMPRESSION: Small right pleural effusion."


def _error_on(text: str, sentence: str) -> dict:
    start = text.index(sentence)
    return {"type": "laterality", "start": start, "end": start + len(sentence), "edited_sentence": "",
            "text_detectable": True}


def test_a_findings_impression_conflict_shows_both_sentences():
    res = check(REPORT)
    [flag] = [f for f in res.flags if f.type == "laterality"]
    assert flag.text == "Small right pleural effusion."
    assert [(r.text, REPORT[r.start:r.end]) for r in flag.related] == [(FINDINGS, FINDINGS)]
    d = flag.as_dict()
    assert d["related"] == [{"start": REPORT.index(FINDINGS), "end": REPORT.index(FINDINGS) + len(FINDINGS),
                             "text": FINDINGS}]
    json.dumps(res.as_dict())  # JSON-ready


def test_evaluation_counts_the_related_span_on_the_edit():
    """The findings sentence was edited ("right" -> "left"): the flag's primary span is the impression, its related
    span the edited sentence; it counts as on the edit without any quote."""
    res = check(REPORT)
    [flag] = [f for f in res.flags if f.type == "laterality"]
    err = _error_on(REPORT, "left")
    assert not (flag.start < err["end"] and err["start"] < flag.end)  # the primary span is elsewhere
    assert on_edit(flag, err) and attributable(flag, err)
    out = evaluate([{"report": REPORT, "has_error": True, "errors": [err]}], lambda r: check(r["report"]))
    assert out["flags"]["span_on_edit"] == 1.0 and out["attributable"]["found"] == 1


def test_single_statement_flags_keep_one_span():
    res = check("FINDINGS: There is a plural effusion on the left.\n\nIMPRESSION: Left effusion.")
    assert res.flags and all(not f.related for f in res.flags if f.type == "transcription")


def test_interval_without_prior_points_at_the_comparison():
    text = "COMPARISON: None.\n\nFINDINGS: The 6 mm right upper lobe nodule is unchanged.\n\nIMPRESSION: See above."
    [flag] = [f for f in check(text).flags if f.type == "interval"]
    assert [r.text for r in flag.related] == ["None."]


def test_check_json_prints_related(tmp_path, capsys):
    from medmm.cli import main

    path = tmp_path / "r.txt"
    path.write_text(REPORT, encoding="utf-8")
    assert main(["check", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rel = out["flags"][0]["related"]
    assert rel and set(rel[0]) == {"start", "end", "text"} and rel[0]["text"] == FINDINGS


def test_the_app_highlights_both_sides():
    from medmm.app.views import highlight

    flags = [{**f.as_dict(), "id": 7} for f in check(REPORT).flags]
    html = highlight(REPORT, flags)
    assert html.count('data-flag="7"') == 2 and "flag-related" in html
    assert html.index("Small left pleural effusion.") < html.index("Small right pleural effusion.")


def test_evaluation_counts_flags_per_rule_id():
    err = _error_on(REPORT, "left")
    out = evaluate([{"report": REPORT, "has_error": True, "errors": [err]}], lambda r: check(r["report"]))
    assert out["by_rule"]["laterality_sections"] == {"raised": 1, "attributable": 1, "precision": 1.0}

"""medmm.reports: sections, negation phrasing that trips peers, rules, injector, evaluation, bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from medmm.reports import check
from medmm.reports.analysis import analyze, prior_status
from medmm.reports.corpus import read_corpus
from medmm.reports.evaluate import evaluate, to_markdown
from medmm.reports.inject import OPERATIONS, inject_dataset, inject_one
from medmm.reports.sections import split_sections, split_sentences
from medmm.reports.taxonomy import ERROR_TYPES, TEXT_HEADER_TYPES, TYPE_IDS, complex_class

HAND = os.path.join(os.path.dirname(__file__), "data", "hand_reports.txt")


# ------------------------------------------------------------------ taxonomy and sections
def test_taxonomy_ids_and_complex_classes():
    assert TYPE_IDS == ("laterality", "negation", "measurement", "severity", "location", "finding", "insertion",
                        "omission", "contradiction", "device", "interval", "transcription", "metadata")
    assert complex_class("insertion") == "insert" and complex_class("omission") == "remove"
    assert all(complex_class(t) == "substitute" for t in ("laterality", "negation", "measurement", "contradiction"))
    assert set(OPERATIONS) == set(ERROR_TYPES)
    with pytest.raises(ValueError):
        complex_class("spelling")


def test_sections_with_typos_and_offsets():
    text = "INDICATON: Cough.\n\nFINDNGS: Small left effusion.\n\nIMPRESION: Left effusion.\n"
    secs = split_sections(text)
    assert [s.name for s in secs] == ["indication", "findings", "impression"]
    for s in secs:
        assert text[s.start:s.end] == s.text
    sents = split_sentences(text, secs)
    assert [text[s.start:s.end] for s in sents] == ["Cough.", "Small left effusion.", "Left effusion."]


def test_report_without_headers_uses_last_paragraph_as_impression():
    secs = split_sections("The lungs are clear. No effusion.\n\nNo acute disease.")
    assert [s.name for s in secs] == ["findings", "impression"]
    assert [s.name for s in split_sections("Single paragraph, no headers.")] == ["findings"]


def test_numbered_impression_items():
    text = "IMPRESSION: 1. Small left effusion. 2. No pneumothorax."
    assert [s.text for s in split_sentences(text)] == ["Small left effusion.", "No pneumothorax."]


# ------------------------------------------------------------------ negation phrasing that trips peers
@pytest.mark.parametrize("text,kind,negated,trigger", [
    ("The study is negative for pneumothorax.", "pneumothorax", True, "negative for"),
    ("Pneumothorax: No.", "pneumothorax", True, ": No"),
    ("IMPRESSION: No pneumothorax.", "pneumothorax", True, "No"),
    ("No pneumothorax, pleural effusion, or focal consolidation.", "consolidation", True, "No"),
    ("The previously seen effusion has resolved.", "effusion", True, "has resolved"),
    ("Pneumothorax is no longer seen.", "pneumothorax", True, "is no longer seen"),
    ("Small right effusion but no pneumothorax.", "effusion", False, None),
    ("Small right effusion but no pneumothorax.", "pneumothorax", True, "no"),
])
def test_negation_scope(text, kind, negated, trigger):
    m = next(m for m in analyze(text).mentions if m.type == kind)
    assert m.negated is negated
    assert m.trigger == trigger


def test_no_new_is_not_a_negation():
    m = analyze("No new consolidation.").mentions[0]
    assert not m.negated and m.pseudo and m.trigger == "No new"


def test_cannot_exclude_is_uncertain_not_negated():
    m = analyze("Pneumonia cannot be excluded.").mentions[0]
    assert m.type == "consolidation" and not m.negated and m.uncertain and "excluded" in m.trigger
    nature = analyze("A 3 mm nodule, likely benign.").mentions[0]
    assert not nature.uncertain  # the hedge is about its nature, not its presence


def test_sides_attach_within_clauses():
    ms = analyze("Left-sided chest tube, no right effusion.").mentions
    assert [(m.type, m.side, m.negated) for m in ms] == [("chest_tube", "left", False), ("effusion", "right", True)]
    res = check("FINDINGS: Left-sided chest tube, no right effusion. Small left pleural effusion.\n\n"
                "IMPRESSION: Small left pleural effusion with a left chest tube.")
    assert not res.has_error, res.flags


def test_mass_effect_is_not_a_mass():
    assert not analyze("No mass effect.").mentions


# ------------------------------------------------------------------ rules
def _types(res):
    return [f.type for f in res.flags]


def test_laterality_between_sections():
    res = check("FINDINGS: A 9 mm nodule in the right upper lobe.\n\nIMPRESSION: 9 mm left upper lobe nodule.")
    assert res.has_error and _types(res) == ["laterality"]
    f = res.flags[0]
    assert f.text == "9 mm left upper lobe nodule." and "right" in f.explanation and f.evidence == "text"


def test_contradiction_and_negation_are_told_apart():
    contra = check("FINDINGS: Small left pleural effusion.\n\nIMPRESSION: No pleural effusion.")
    assert _types(contra) == ["contradiction"] and '("No")' in contra.flags[0].explanation
    assert "Small left pleural effusion." in contra.flags[0].explanation  # the other statement is quoted
    neg = check("FINDINGS: There is no effusion in the left pleural space.\n\nIMPRESSION: Small left pleural effusion.")
    assert _types(neg) == ["negation"]


def test_measurement_unit_and_plausibility():
    res = check("FINDINGS: An 8 mm nodule in the right lower lobe.\n\nIMPRESSION: 8 cm right lower lobe nodule.")
    assert res.has_error and "measurement" in _types(res)
    f = next(f for f in res.flags if f.type == "measurement")
    assert f.text == "8 cm" and "unit" in f.explanation
    assert "measurement" in _types(check("FINDINGS: A 45 mm nodule in the left lung."))


def test_interval_without_prior():
    res = check("COMPARISON: None.\n\nFINDINGS: Small left effusion, unchanged.\n\nIMPRESSION: Small left effusion.")
    from medmm.reports.flags import calibration

    assert _types(res) == ["interval"] and res.flags[0].rule == "interval_no_prior"
    assert res.flags[0].confidence == pytest.approx(calibration().confidence("interval_no_prior"), abs=1e-3)
    assert not check("COMPARISON: Radiograph from yesterday.\n\nFINDINGS: Small left effusion, unchanged.\n\n"
                     "IMPRESSION: Stable small left effusion.").has_error
    assert prior_status(analyze("COMPARISON: None available.\n\nFINDINGS: x")) == "none"


def test_transcription_rules():
    assert "transcription" in _types(check("FINDINGS: Small plural effusion on the left."))
    assert "transcription" in _types(check("FINDINGS: No pneumothroax. Small left effusion."))
    rep = check("FINDINGS: Small left pleural effusion. Small left pleural effusion.")
    assert "transcription" in _types(rep) and rep.flags[0].start > 20


def test_header_metadata_rules():
    res = check("TECHNIQUE: CT of the chest.\n\nFINDINGS: Clear lungs.", header={"modality": "MR", "body_part": "CHEST"})
    assert _types(res) == ["metadata"] and res.flags[0].evidence == "header" and res.flags[0].text == "CT"
    sex = check("FINDINGS: The uterus is unremarkable.", header={"sex": "M"})
    assert _types(sex) == ["metadata"]
    body = check("FINDINGS: No pneumothorax. Clear lungs.", header={"modality": "MR", "body_part": "HEAD"})
    assert "metadata" in _types(body)
    side = check("FINDINGS: Fracture of the left distal radius.", header={"laterality": "R"})
    assert _types(side) == ["metadata"]
    view = check("EXAM: PA and lateral chest.\n\nFINDINGS: Clear.", header={"modality": "DX", "view_position": "AP"})
    assert _types(view) == ["metadata"]
    # a prior of another modality, or a recommendation, is not this study
    ok = check("COMPARISON: Prior CT chest.\n\nFINDINGS: Clear lungs. Recommend follow-up CT.",
               header={"modality": "DX", "body_part": "CHEST"})
    assert not ok.has_error


def test_clean_hand_written_reports_raise_no_error():
    corpus = read_corpus(HAND)
    assert len(corpus.rows) >= 100
    flagged = [r["id"] for r in corpus.rows if check(r["report"], header=r["header"]).has_error]
    assert flagged == []


# ------------------------------------------------------------------ injector and evaluation
_PROVENANCE_REPORT = (
    "EXAMINATION: CT chest.\n\nCOMPARISON: CT chest from last year.\n\nFINDINGS: A 9 mm nodule in the right upper lobe, "
    "unchanged. Small left pleural effusion. Left internal jugular central line with tip in the superior vena cava. "
    "Calcified granuloma in the left lower lobe. No pneumothorax.\n\nIMPRESSION: 1. Stable 9 mm right upper lobe "
    "nodule. 2. Small left pleural effusion.\n")


@pytest.mark.parametrize("kind", TYPE_IDS)
def test_injector_provenance(kind):
    """Every operation applies to a report written to allow it, and its provenance matches the edit."""
    header = {"modality": "CT", "body_part": "CHEST", "patient_sex": "F"}
    report = _PROVENANCE_REPORT + ("The uterus is not imaged." if kind == "metadata" else "")
    out = None
    for seed in range(20):  # an operation may choose a variant that does not apply; some seed must apply
        out = inject_one(report, header, np.random.default_rng(seed), (kind,))
        if out is not None:
            break
    assert out is not None, f"the {kind} operation never applied"
    text, new_header, err = out
    assert err.type == kind
    assert (err.complex == ERROR_TYPES[kind].complex) or (kind == "device" and err.complex in ("insert", "substitute"))
    assert 0 <= err.start < err.end <= len(text)
    assert text != report or new_header != header  # something changed
    if err.edited_sentence and text != report:
        assert err.edited_sentence in text
        assert text.replace(err.edited_sentence, err.original_sentence, 1) == report or kind in (
            "transcription", "contradiction", "insertion", "device")


def test_injector_respects_bilateral_findings():
    rng = np.random.default_rng(1)
    report = "FINDINGS: Small bilateral pleural effusions.\n\nIMPRESSION: Small bilateral pleural effusions."
    assert inject_one(report, None, rng, ("laterality",)) is None


def test_evaluation_on_injected_hand_corpus(tmp_path):
    """The hand-written corpus with injected text/header-visible errors (synthetic figures, not real reports)."""
    rows = read_corpus(HAND).rows
    ds = [r for s in range(2) for r in inject_dataset(rows, rate=0.5, types=TEXT_HEADER_TYPES, seed=s)]
    result = evaluate(ds, lambda r: check(r["report"], header=r.get("header")))
    assert result["clean"]["fpr"] <= 0.05
    assert result["simple"]["precision"] >= 0.90
    assert result["attributable"]["recall"] >= 0.70
    md = to_markdown(result)
    assert "Attributable detection" in md and "| laterality |" in md


# ------------------------------------------------------------------ corpus readers
def test_corpus_readers(tmp_path):
    (tmp_path / "mimic" / "p10" / "p10000032").mkdir(parents=True)
    (tmp_path / "mimic" / "p10" / "p10000032" / "s50414267.txt").write_text(
        "FINDINGS: No effusion.\nIMPRESSION: Normal.")
    (tmp_path / "mimic" / "empty.txt").write_text("  ")
    c = read_corpus(str(tmp_path / "mimic"))
    assert [r["id"] for r in c.rows] == [os.path.join("p10", "p10000032", "s50414267.txt")] and len(c.skipped) == 1
    iu = tmp_path / "indiana_reports.csv"
    iu.write_text("uid,MeSH,findings,impression\n1,normal,The lungs are clear.,No acute disease.\n2,x,,\n")
    rows = read_corpus(str(iu)).rows
    assert rows[0]["report"] == "FINDINGS: The lungs are clear.\n\nIMPRESSION: No acute disease." and len(rows) == 1
    jl = tmp_path / "r.jsonl"
    jl.write_text(json.dumps({"id": "a", "report": "FINDINGS: x"}) + "\nnot json\n" + json.dumps({"id": "b"}) + "\n")
    c = read_corpus(str(jl))
    assert len(c.rows) == 1 and len(c.skipped) == 2


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("report,note", [
    ("", "empty report"),
    ("   \n\t ", "empty report"),
    (None, "empty report"),
    (b"FINDINGS: Small left effusion \xe9\xff.", "not UTF-8"),
    ("{\\rtf1\\ansi FINDINGS: No pneumothorax.\\par}", "RTF"),
    ("<p>FINDINGS: No pneumothorax.</p><br>IMPRESSION: Normal.", "HTML"),
    (12345, "must be text"),
])
def test_bad_report_input_never_raises(report, note):
    res = check(report)
    assert not res.has_error
    assert any(note in n for n in res.notes), res.notes


def test_huge_report_and_odd_header():
    big = "FINDINGS: " + "The lungs are clear. " * 60000 + "\n\nIMPRESSION: Normal."
    res = check(big, header={"modality": "CT", "colour": "blue"})
    assert any("checked the first" in n for n in res.notes) and any("colour" in n for n in res.notes)
    assert isinstance(check("FINDINGS: x", header="not a dict").notes[0], str)


def test_vlm_and_ensemble_with_a_tiny_model():
    from medmm.errors import ConfigError
    from medmm.models.tiny import build_tiny
    from medmm.reports import build_checker
    from medmm.reports.vlm_checker import VLMCheckerConfig, calibrate, judge

    vlm = build_tiny("llava")
    report = "FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small right pleural effusion."
    cfg = VLMCheckerConfig()
    j = judge(vlm, [report], None, cfg)[0]
    # the COMPLEX answer is the best-scored option, and every taxonomy id was scored
    assert set(j.type_scores) == set(TYPE_IDS) and j.type == max(j.type_scores, key=j.type_scores.get)
    # the probability is the documented sigmoid of the calibrated margin
    assert j.probability == pytest.approx(1 / (1 + np.exp(-(j.margin - cfg.threshold) / cfg.temperature)))
    rules = check(report)
    ens = build_checker("ensemble", model=vlm, config=cfg).check(report)
    # the ensemble score is the documented noisy-OR, recomputed here from its parts
    expected = 1 - (1 - rules.score) * (1 - cfg.ensemble_weight * j.probability)
    assert ens.score == pytest.approx(expected)
    assert "laterality" in _types(ens) and ens.checker == "ensemble"
    assert any(f.evidence == "image" for f in ens.flags) == (j.probability >= 0.5)
    cal = calibrate([0.5, 1.5, -0.2, -1.0, 2.0], [True, True, False, False, True], VLMCheckerConfig())
    assert -0.2 < cal.threshold < 0.5 and cal.calibrated_on.startswith("dev")
    with pytest.raises(ConfigError, match="both classes"):
        calibrate([1.0], [True], VLMCheckerConfig())


def test_a_failing_rule_is_recorded_not_dropped(monkeypatch):
    from medmm.reports import checker as ck

    def broken(a, header=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(ck, "RULES", (broken,) + ck.RULES)
    rc = ck.RulesChecker(ck.RulesConfig())
    res = rc.check("FINDINGS: No pneumothroax.")
    assert any("broken failed" in n and "boom" in n for n in res.notes)
    assert "transcription" in _types(res)  # the other rules still ran
    strict = ck.RulesChecker(ck.RulesConfig(strict=True))
    with pytest.raises(RuntimeError, match="boom"):
        strict.check("FINDINGS: Clear lungs.")

"""Structured CT and MR reports: organ sub-headings as sections, findings-only reports, priors named in the sentence."""

from __future__ import annotations

import os

import numpy as np
import pytest

from medmm.reports import check
from medmm.reports.corpus import read_corpus
from medmm.reports.evaluate import attributable
from medmm.reports.inject import inject_dataset
from medmm.reports.sections import split_sections, split_sentences

CT_MR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "reports_ct_mr.txt")

STRUCTURED = ("EXAMINATION: CT chest with contrast.\nCOMPARISON: CT chest 3/2/2024.\nFINDINGS:\n"
              "LUNGS: A 6 mm nodule in the right upper lobe. No consolidation.\nPLEURA: No effusion.\n"
              "MEDIASTINUM: No lymphadenopathy.\nUPPER ABDOMEN: Unremarkable.\n"
              "IMPRESSION: 6 mm right upper lobe nodule.")


def test_organ_subheadings_are_labelled_findings_sections():
    secs = split_sections(STRUCTURED)
    assert [(s.name, s.label) for s in secs] == [
        ("technique", None), ("comparison", None), ("findings", None), ("findings", "lungs"), ("findings", "pleura"),
        ("findings", "mediastinum"), ("findings", "upper abdomen"), ("impression", None)]
    for s in secs:
        assert STRUCTURED[s.start:s.end] == s.text
    sents = [s.text for s in split_sentences(STRUCTURED, secs) if s.section == "findings"]
    assert sents[:2] == ["A 6 mm nodule in the right upper lobe.", "No consolidation."]


def test_findings_only_structured_report_has_no_impression():
    text = "LUNGS: Clear.\n\nPLEURA: No effusion.\n\nBONES: Old healed right rib fractures."
    secs = split_sections(text)
    assert {s.name for s in secs} == {"findings"} and [s.label for s in secs] == ["lungs", "pleura", "bones"]
    # without organ headings the last paragraph of a header-less report is the impression (MIMIC's fallback)
    assert [s.name for s in split_sections("Clear lungs.\n\nNormal chest.")] == ["findings", "impression"]
    assert not check(text).has_error


def test_hand_written_ct_mr_reports_raise_no_flag():
    corpus = read_corpus(CT_MR)
    assert len(corpus.rows) >= 12 and not corpus.skipped
    flagged = {r["id"]: [(f.rule, f.text) for f in check(r["report"], header=r["header"]).flags] for r in corpus.rows}
    assert {k: v for k, v in flagged.items() if v} == {}


@pytest.mark.parametrize("sentence", [
    "A 6 mm nodule in the right upper lobe is unchanged from 3/2/2024.",
    "The nodule has increased since the outside CT of 11/8/2023.",
    "Stable left adrenal nodule compared with the prior CT.",
])
def test_a_prior_named_in_the_sentence_is_not_interval_without_prior(sentence):
    report = f"COMPARISON: None.\n\nFINDINGS: {sentence}\n\nIMPRESSION: See above."
    assert "interval" not in [f.type for f in check(report).flags]
    bare = "COMPARISON: None.\n\nFINDINGS: The 6 mm right upper lobe nodule is unchanged.\n\nIMPRESSION: See above."
    assert [f.type for f in check(bare).flags] == ["interval"]


def test_errors_between_an_organ_section_and_the_impression_are_found():
    side = STRUCTURED.replace("IMPRESSION: 6 mm right", "IMPRESSION: 6 mm left")
    assert [f.type for f in check(side).flags] == ["laterality"]
    unit = STRUCTURED.replace("IMPRESSION: 6 mm", "IMPRESSION: 6 cm")
    assert "measurement" in [f.type for f in check(unit).flags]
    denied = STRUCTURED.replace("IMPRESSION: 6 mm right upper lobe nodule.", "IMPRESSION: No pulmonary nodule.")
    assert [f.type for f in check(denied).flags] == ["contradiction"]


def test_injected_errors_in_ct_mr_reports_are_caught():
    rows = read_corpus(CT_MR).rows
    ds = [r for s in range(6) for r in inject_dataset(rows, rate=1.0, seed=s) if r["has_error"]]
    detectable = [r for r in ds if r["errors"][0]["text_detectable"]]
    found = [r for r in detectable
             if any(attributable(f, r["errors"][0]) for f in check(r["report"], header=r["header"]).flags)]
    assert len(detectable) >= 25
    assert len(found) / len(detectable) >= 0.70, (len(found), len(detectable))
    assert np.mean([r["errors"][0]["type"] != "transcription" for r in detectable]) > 0.5  # not only typos


def test_mtsamples_converter_restores_headers_and_modality():
    """scripts/mtsamples_ct_mr.py on a made-up row in the Kaggle export's comma-joined layout."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "scripts", "mtsamples_ct_mr.py")
    spec = importlib.util.spec_from_file_location("mtsamples_ct_mr", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    row = {"": "7", "sample_name": " CT Chest ", "description": " CT of the chest with contrast.",
           "medical_specialty": " Radiology", "transcription": "EXAM:,  CT chest with contrast.,FINDINGS:,  A 6 mm "
           "nodule in the right upper lobe.  No effusion.,IMPRESSION:,  6 mm right upper lobe nodule."}
    [rec] = mod.convert([row, {**row, "sample_name": "Office visit", "description": "Follow-up."}])
    assert rec["header"] == {"modality": "CT", "body_part": "CHEST"} and rec["id"] == "mts7"
    secs = [s.name for s in split_sections(rec["text"])]
    assert secs == ["technique", "findings", "impression"], rec["text"]
    assert not check(rec["text"], header=rec["header"]).has_error

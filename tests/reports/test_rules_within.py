"""within_sentence: a statement contradicted inside its own sentence or ";"-list (rules_within.py)."""

import pytest

from medmm.reports.analysis import analyze
from medmm.reports.rules_within import rule_within_sentence

F = "FINDINGS: {}\n\nIMPRESSION: Chest."


def _flags(findings: str):
    return rule_within_sentence(analyze(F.format(findings)))


@pytest.mark.parametrize("findings,positive,denial", [
    ("There is no pneumothorax or pneumomediastinum; small left apical pneumothorax.", "pneumothorax", "no"),
    ("The lungs are well expanded, without consolidation, pleural effusion or pneumothorax, and a small right "
     "pleural effusion.", "pleural effusion", "without"),
    ("Normal heart size and pulmonary vascularity; the heart is enlarged.", "heart is enlarged", "Normal heart size"),
    ("Heart size is at the upper limits of normal, with massive cardiomegaly.", "cardiomegaly", "upper limits"),
    ("Negative for acute bone abnormality; acute left rib fracture.", "fracture", "Negative for acute bone"),
    ("Both lungs are clear and expanded, with dense right lower lobe consolidation.", "consolidation", "lungs are clear"),
])
def test_a_finding_in_the_sentence_that_denies_it_is_flagged_with_both_sides(findings, positive, denial):
    flags = _flags(findings)
    assert len(flags) == 1, flags
    f = flags[0]
    text = F.format(findings)
    assert positive in text[f.start:f.end]
    assert f.related and f.related[0].end <= len(text) and denial in f.explanation


@pytest.mark.parametrize("findings", [
    "No pleural effusion or pneumothorax; left basilar atelectasis.",  # another finding
    "No right pleural effusion; small left pleural effusion.",  # the other side
    "No large pleural effusion; small left pleural effusion.",  # a qualified denial
    "No new consolidation; stable right basilar consolidation.",  # "no new" says nothing of the old one
    "The lungs are clear except for right lower lobe consolidation.",  # an exception
    "Heart size is upper limits of normal versus mild cardiomegaly.",  # a hedge
    "No acute bony abnormality; old healed left rib fractures.",  # chronic
    "Normal heart size. Left lower lobe consolidation.",  # two sentences
    "The lungs are clear. No pneumothorax; small left pleural effusion.",
])
def test_look_alikes_are_not_flagged(findings):
    assert _flags(findings) == []


def test_an_organ_sub_heading_is_no_finding():
    assert _flags("LYMPHADENOPATHY: No enlarged axillary, hilar or mediastinal nodes are seen.") == []


@pytest.mark.parametrize("findings", [
    "The lungs are clear without airspace disease, and patchy right lower lobe airspace disease.",
    "There is no pneumothorax or pneumomediastinum, and a small left apical pneumothorax.",
])
def test_the_flag_is_the_finding_s_words_apart_from_the_denial(findings):
    # one sentence holds both: the flag lies on the positive finding's words, the denial or claim beside it (related)
    flags = _flags(findings)
    assert len(flags) == 1, flags
    f, r = flags[0], flags[0].related[0]
    assert f.end - f.start < len(findings) // 2
    assert f.end <= r.start or r.end <= f.start, (f, r)

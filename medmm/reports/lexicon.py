"""Radiology vocabulary shared by the checker and the error injector (public on purpose), read from data.

Both sides of an evaluation need the same *words* — what a finding, a side, a lobe, a severity,
an interval word or a modality is called — but not the same *judgements*. This module holds only
vocabulary and facts of anatomy (which lobes exist on which side, how large a structure can be);
how a checker reads negation or decides a sentence is wrong stays in the checker's modules and its
language pack, and how the injector makes an error stays in :mod:`medmm.reports.inject`. The injector
imports this module, never the checker (``tests/reports/test_independence.py`` enforces it), so an
evaluation with injected errors does not grade the checker on its own patterns.

The words themselves are data: ``medmm/configs/reports/lexicon-en.yaml``, read through :mod:`medmm.config`
(:func:`medmm.reports.language_pack.lexicon_pack`), so a site adds a finding's synonym, a sided noun or a
structure's size without code (a ``lexicon:`` key in the YAML named by ``MEDMM_REPORT_LANGUAGE``; read once per
process, at import). This module only gives them the Python shapes the code uses (tuples, dicts, frozensets of
lower-case words or regex fragments).
"""

from __future__ import annotations

from typing import Any

from medmm.reports.language_pack import lexicon_pack

_L: dict[str, Any] = lexicon_pack()


def _pairs(values: Any, where: str) -> tuple[float, float]:
    """A (smallest, largest) pair; a site's override appended to the packaged pair is its last two numbers."""
    nums = [float(v) for v in values]
    if len(nums) < 2:
        raise ValueError(f"lexicon {where}: expected [smallest, largest] in mm, got {values!r}")
    return nums[-2], nums[-1]


# ------------------------------------------------------------------ findings
# finding type -> (organ, regex fragments naming it). Device types have organ "device".
FINDINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    kind: (str(v["organ"]), tuple(v["patterns"])) for kind, v in _L["findings"].items()}
DEVICE_TYPES = frozenset(k for k, (organ, _) in FINDINGS.items() if organ == "device")
# Types a reader treats as one family when a section paraphrases another ("airspace opacity" in the
# findings, "left base opacity" in the impression).
FINDING_FAMILIES: dict[str, str] = dict(_L["finding_families"])
# Findings that need attention now when present (as opposed to chronic or incidental ones).
ACUTE_FINDINGS = frozenset(_L["acute_findings"])
# Words that make a finding chronic, healed or incidental: "No acute ..." does not deny it.
CHRONIC_WORDS = frozenset(_L["chronic_words"])

# ------------------------------------------------------------------ sides, lobes, zones, sided anatomy
SIDES: tuple[str, ...] = tuple(_L["sides"])
BILATERAL_WORDS: tuple[str, ...] = tuple(_L["bilateral_words"])
# lobe name -> sides on which it exists (the lingula belongs to the left upper lobe)
LOBES: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _L["lobes"].items()}
ZONES: tuple[str, ...] = tuple(_L["zones"])
# Nouns that take a side in reports (a side swap on them is a laterality error).
SIDED_NOUNS: tuple[str, ...] = tuple(_L["sided_nouns"])

# ------------------------------------------------------------------ severity and interval words
SEVERITY_RANK: dict[str, int] = {k: int(v) for k, v in _L["severity_rank"].items()}
# interval words and the direction of change they state
INTERVAL_DIRECTION: dict[str, str] = dict(_L["interval_direction"])
# phrases that name a prior study inside a sentence ("unchanged from 3/4/2021", "since the prior")
PRIOR_REFERENCE: tuple[str, ...] = tuple(_L["prior_reference"])
NO_PRIOR_PHRASES: tuple[str, ...] = tuple(_L["no_prior_phrases"])

# ------------------------------------------------------------------ modality, body region, sex, view
MODALITY_WORDS: dict[str, str] = dict(_L["modality_words"])  # "CT ratio" (cardiothoracic) is not CT: see the data
MODALITY_GROUP: dict[str, str] = dict(_L["modality_group"])
# Words that put a sentence outside *this* study: priors, outside studies, recommendations, hypotheticals.
OTHER_STUDY_CUES: tuple[str, ...] = tuple(_L["other_study_cues"])
REGION_WORDS: dict[str, str] = dict(_L["region_words"])
BODY_GROUP: dict[str, str] = dict(_L["body_group"])
FEMALE_ANATOMY: str = str(_L["female_anatomy"])
MALE_ANATOMY: str = str(_L["male_anatomy"])
VIEW_WORDS: dict[str, str] = dict(_L["view_words"])

# ------------------------------------------------------------------ sizes a named structure can have
# structure regex -> (smallest, largest) plausible single dimension in mm, from anatomy and the
# definitions radiologists use (Fleischner: a nodule is < 30 mm; a "mass" is >= 30 mm in the lung, and
# anything called a mass is at least several mm; a main pulmonary artery is ~15-45 mm wide).
STRUCTURE_SIZE_MM: dict[str, tuple[float, float]] = {
    k: _pairs(v, f"structure_size_mm[{k!r}]") for k, v in _L["structure_size_mm"].items()}
UNITS_MM: dict[str, float] = {k: float(v) for k, v in _L["units_mm"].items()}

# ------------------------------------------------------------------ organs that qualify a finding's site
SITE_WORDS: dict[str, str] = dict(_L["site_words"])
# a clause that calls its finding normal ("lymph nodes ... subcentimeter in size"): finding type -> pattern
NORMAL_MENTION: dict[str, str] = dict(_L.get("normal_mention") or {})
# words of one cross-sectional modality's images (MR signal, CT density): modality group -> pattern
MODALITY_SIGNAL_WORDS: dict[str, str] = dict(_L.get("modality_signal_words") or {})
# words just before a finding that refer back to one already described ("this mass")
DEMONSTRATIVE_BEFORE: str = str(_L.get("demonstrative_before") or r"(?!)")

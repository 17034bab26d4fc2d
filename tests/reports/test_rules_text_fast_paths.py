"""The fast paths of the transcription rules find what the plain search finds.

``rule_homophone`` and ``rule_word_repetition`` skip reports with word-set and word-list pre-tests and search plain
ASCII text lower-cased with case-sensitive ASCII patterns (``analysis._for_lower_case``). Here each is compared with
the search it replaces (the re.I pattern on the text as written, on every section it reads, no pre-test) on texts
that hold the errors in upper, lower and title case, beside de-identification tokens, tabs and the separators
\\x1c-\\x1f (where the lower-cased search must not be used), and non-ASCII text.
"""

from __future__ import annotations

import pytest

from medmm.reports.analysis import analyze
from medmm.reports.rules_text import (_HOMOPHONE_CUES, _HOMOPHONES, _STUTTER, _stutter, rule_homophone,
                                      rule_word_repetition)

_BODIES = [
    "Small left plural effusion.",
    "Write lower lobe opacity. Write-sided effusion.",
    "There is know acute disease.",
    "Their is a small effusion. Their are two nodules.",
    "Opacity in the ilium lobe. Ileal lung nodule.",
    "A discreet nodule in the right apex.",
    "The hart is normal. Heart sighs normal.",
    "Loose of volume in the left lower lobe.",
    "Cite of the fracture. Sight of the insertion is clean.",
    "The airways are patient. Bronchi remain widely patient. The stent is patient.",
    "Hard size is normal. The hard and mediastinum. Scaring at the base. Classified granuloma, densely classified.",
    "Low long volumes. The right long base. Pleural infusion; no pneumothorax or infusion. Infusion port in place.",
    "Costophrenic angels. Focal consultation. Soft issues. Mile cardiomegaly. Lift lower lobe. Right lower love.",
    "Left bass. Floral effusion. Thoracic spin. Hurt size is normal. Pleural confusion.",
    "Left basilar atelectasis atelectasis. The the lungs are clear.",
    "XXXX XXXX XXXX and XXXX. No XXXX no effusion. The XXXX the heart.",
    "Prior to the to the scan. Had had surgery. That that is all.",
    "Lungs\tlungs are clear. Heart heart size normal.",
    "Effusion \x1c effusion. Plural\x1feffusion.",
    "Plural effusion in the café. The the heart.",
    "There is no pneumothorax. The heart is normal in size.",
]


def _texts() -> list[str]:
    out = []
    for body in _BODIES:
        for variant in (body, body.upper(), body.lower(), body.title()):
            out.append(f"INDICATION: Cough. The the.\n\nFINDINGS: {variant}\n\nIMPRESSION: {variant}")
    return out


def _spans(flags: list) -> list[tuple[int, int, str]]:
    return [(f.start, f.end, f.explanation) for f in flags]


@pytest.mark.parametrize("text", _texts())
def test_homophone_fast_path_finds_what_the_plain_search_finds(text: str) -> None:
    a = analyze(text)
    low = text.lower()
    expected = []
    for (pattern, why), cues in zip(_HOMOPHONES, _HOMOPHONE_CUES):
        if any(c in low for c in cues):
            expected += [(m.start(), m.end(), f"likely homophone error: {why}") for m in pattern.finditer(text)]
    assert _spans(rule_homophone(a)) == expected


@pytest.mark.parametrize("text", _texts())
def test_word_repetition_fast_path_finds_what_the_plain_search_finds(text: str) -> None:
    a = analyze(text)
    expected = []
    for sec in a.sections:
        if sec.name in ("indication", "comparison"):
            continue
        expected += [(m.start(), m.end(), f"\"{' '.join(m.group(1).split())}\" is repeated")
                     for m in _STUTTER.finditer(text, sec.start, sec.end) if _stutter(m.group(1))]
    assert _spans(rule_word_repetition(a)) == expected


def test_the_comparison_texts_hold_errors() -> None:
    """The texts above do exercise both rules (a comparison of two empty lists would prove nothing)."""
    texts = _texts()
    assert sum(bool(rule_homophone(analyze(t))) for t in texts) >= 40
    assert sum(bool(rule_word_repetition(analyze(t))) for t in texts) >= 15

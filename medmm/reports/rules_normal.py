"""A structure said to be not normal under an impression that says nothing is wrong: ``negated_normal``.

"The lungs are not clear." or "Mediastinal contours appear abnormal." in the findings, and "No acute cardiopulmonary
disease." as the impression: a reader sees that one of the two is wrong (a "not" dictated or dropped, "abnormal" for
"normal"), although the sentence names no finding for ``normal_impression`` (``rules_sections.py``) to compare. The
statement is expected, not an error, when it says why (chronic, known, due to technique: the pack's blockers) or the
impression names the same structure. The words are the language pack's ``negated_normal``.

Cost: a pre-test on the report's word set and one scan for the pack's ``cue`` (every negated statement holds a cue);
then one scan of the findings' text; the impression and the sentences are read only when that finds a statement.
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports.analysis import Analysis
from medmm.reports.findings_sizes import EXAMPLE_WITH_IMPRESSION as _F
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import language_pack, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rules_sections import _says_nothing_acute

_NN = language_pack()["negated_normal"]


_SUBJECT = "(?:" + longest_first(_NN["subjects"]) + ")"
_STATEMENT = re.compile(r"\b(" + _SUBJECT + r")\s+(?:(?:and|or)\s+[\w\s]{0,30}?\s+)?(?:" + longest_first(_NN["predicates"])
                        + r")\b", re.I)
_CUE_WORDS = frozenset(w.lower() for w in _NN["cue_words"])
_CUE = re.compile(_NN["cue"])
# the gate: a cue word, or what every match of the cue holds (its keys; and its leading word where the cue is a word,
# white space and one group of words, as packaged: "not\s+(?:clear|normal|...)"); (): no gate
_CUE_KEYS = substring_keys([_NN["cue"]])
_CUE_LEAD = re.fullmatch(r"([a-z]+)\\s\+\(\?:[a-z|]+\)", _NN["cue"])
_GATE = () if _CUE_KEYS is None else ((*sorted(_CUE_WORDS), *_CUE_KEYS),) + (
    ((*sorted(_CUE_WORDS), _CUE_LEAD.group(1)),) if _CUE_LEAD else ())
_BLOCKER = re.compile(r"\b(?:" + longest_first(_NN["blockers"]) + r")\b", re.I)


@declare(FlagSpec(id="negated_normal", type="negation", family="sections", reads=("findings", "impression"),
                  explains="the findings say {structure} is not normal but the impression reads {statement}",
                  example=_F.format("The lungs are not clear. No pleural effusion.", "No acute cardiopulmonary disease."),
                  clean=_F.format("The lungs are clear. No pleural effusion.", "No acute cardiopulmonary disease.")),
         gate=_GATE)  # the pre-test below, as a gate
def rule_negated_normal(a: Analysis, header: Any = None) -> list[Flag]:
    """A normal statement negated in the findings ("not clear", "abnormal") under an impression of nothing acute."""
    if _CUE_WORDS.isdisjoint(a.lower_words()[1]) and not _CUE.search(a.lower_text()):
        return []  # the common case, decided on the report's word set and one literal-led scan
    if not any(_STATEMENT.search(a.text, sec.start, sec.end) for sec in a.sections if sec.name == "findings"):
        return []
    statement = next((s for s in a.sentences_in("impression") if _says_nothing_acute(s.text)), None)
    if statement is None:
        return []
    imp_low = " ".join(s.text.lower() for s in a.sentences_in("impression"))
    for sent in a.sentences_in("findings"):
        m = _STATEMENT.search(sent.text)
        if m is None or _BLOCKER.search(sent.text):
            continue
        subject = m.group(1).lower().split()[0]
        if re.search(r"\b" + re.escape(subject.rstrip("s")) + r"s?\b", imp_low):  # a word ("pulmonary" is not
            # in "cardiopulmonary")
            continue  # the impression speaks of the same structure
        return [make_flag("negated_normal", a.text, sent.start + m.start(), sent.start + m.end(),
                          f"the findings say \"{m.group(0)}\" but the impression reads \"{statement.text[:80]}\"",
                          related=[(statement.start, statement.end)])]
    return []

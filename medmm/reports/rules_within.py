"""A statement contradicted inside its own sentence or list: ``within_sentence``.

A reader sees at once that "There is no pneumothorax or pneumomediastinum; small left apical pneumothorax." or
"Normal heart size and pulmonary vascularity; the heart is enlarged." cannot both be right, whichever half an edit
or a dictation slip changed. Two readings of one *sentence group* (a sentence, with the next one when it ends in
";": the parts of one list) are compared:

* a firm denial of a finding (``analysis``: "no pneumothorax", "without ... pleural effusion") and a firm positive
  mention of the same finding that the denial covers (same type, organ and side or no side, the denial's qualifier:
  "no large effusion" does not deny a small one) — the same test the findings-vs-impression rules use
  (``rules_sections._contradicts``);
* a normal claim of the language pack (``within_sentence.normal_claims``: "normal heart size", "the lungs are
  clear", "negative for acute bone abnormality") and a firm, non-chronic positive mention of a finding type it denies
  ("cardiomegaly", "consolidation", "acute rib fracture"), with no blocker ("except", "other than", a hedge) between.

The flag spans the positive finding's words and relates the denial or normal claim (its words in the same sentence,
else its sentence): text alone cannot say which of the two is wrong, so both are shown. Across sentences of one section the same contradiction
is ``polarity_within`` (``rules_sections.py``). Cost: mentions are already read; a normal claim's pattern runs only
on a sentence group that holds a positive mention of a type the claim denies.
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports.analysis import Analysis, Mention, per_sentence
from medmm.reports.findings_sizes import EXAMPLE_WITH_IMPRESSION as _F
from medmm.reports.findings_sizes import lower_search
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import lacks, language_pack, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.rule_loop import BODY
from medmm.reports.rules_sections import _contradicts, _firm_negative, _firm_positive, _side_ok

_WS = language_pack()["within_sentence"]
_CLAIMS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(c["pattern"], re.I), frozenset(c["denies"])) for c in _WS["normal_claims"])
# each claim's search, the types it denies, and strings one of which each of its matches holds (None: no pre-test)
_CLAIM_SEARCHES = tuple((lower_search(pattern), types, substring_keys([pattern.pattern])) for pattern, types in _CLAIMS)
_DENIED_BY_CLAIM = frozenset(t for _, types in _CLAIMS for t in types)
_BLOCKER = re.compile(r"\b(?:" + longest_first(_WS["blockers"]) + r")\b", re.I)
# sites one denial covers together: each site -> the name of its group
_SITE_GROUP = {site: group[0] for group in _WS.get("same_site", ()) for site in group}


def _groups(a: Analysis) -> dict[int, int]:
    """Sentence index -> index of the first sentence of its group (a sentence ending in ";" goes on in the next)."""
    if ";" not in a.text:  # most reports: every sentence is a group of its own
        return dict(zip(range(len(a.sentences)), range(len(a.sentences))))
    out: dict[int, int] = {}
    first = -1
    prev = None
    for i, s in enumerate(a.sentences):
        if prev is None or prev.section != s.section or not prev.text.rstrip().endswith(";"):
            first = i
        out[i] = first
        prev = s
    return out


def _denies(n: Mention, p: Mention) -> bool:
    """Does the denial ``n`` deny ``p``? ``rules_sections._contradicts``, except that sites of one group (the pack's
    ``same_site``: "lungs ... without pleural effusion" denies an effusion of the pleura) count as one site."""
    ns, ps = n.site, p.site
    if not ns or not ps or ns == ps or _SITE_GROUP.get(ns) is None or _SITE_GROUP.get(ns) != _SITE_GROUP.get(ps):
        return _contradicts(n, p)
    # the tests of _contradicts other than the site
    if n.type != p.type or not _side_ok(n.side, p.side) or (n.organ and p.organ and n.organ != p.organ):
        return False
    if n.qualifier and not re.search(r"\b" + n.qualifier + r"\b", p.clause_text, re.I):
        return False
    return not (n.lobe and p.lobe and n.lobe != p.lobe)


def _firm_finding(a: Analysis, p: Mention) -> bool:
    """A firm positive mention of a finding, not a sub-heading ("LYMPHADENOPATHY: There are no enlarged ...")."""
    return _firm_positive(p) and not p.past and not p.is_device and not a.text[p.end: p.end + 3].lstrip().startswith(":")


def _span_of(a: Analysis, m: Mention) -> tuple[int, int]:
    return _span_of_sentence(a, m.sentence)


def _span_of_sentence(a: Analysis, i: int) -> tuple[int, int]:
    return a.sentences[i].start, a.sentences[i].end


def _flag(a: Analysis, pos: Mention, other: tuple[int, int], says: str) -> Flag:
    """The flag: the positive finding's words, the denial or normal claim related (either may be the wrong one)."""
    return make_flag("within_sentence", a.text, pos.start, pos.end, says, related=[other])  # the finding's words


@per_sentence
def _claims(sentence: str) -> tuple[tuple[frozenset[str], int, int, str], ...]:
    """The normal claims of one sentence: (types denied, start, end, text), offsets relative to the sentence."""
    out = []
    low = sentence.lower() if sentence.isascii() else None  # ASCII: the claims' substring pre-tests first
    for search, types, keys in _CLAIM_SEARCHES:
        if low is not None and lacks(low, keys):
            continue
        m = search(sentence)  # on the lower-cased sentence where it is ASCII: the words are read from the sentence
        if m is not None:
            out.append((types, m.start(), m.end(), sentence[m.start():m.end()]))
    return tuple(out)


def _claim_in(a: Analysis, first: int, last: int, pos: Mention) -> tuple[int, int, str] | None:
    """A normal claim of the group [first, last] that denies ``pos``, with no blocker between the two."""
    for i in range(first, last + 1):
        sent = a.sentences[i]
        for types, ms, me, said in _claims(sent.text):
            if pos.type not in types:
                continue
            cs, ce = sent.start + ms, sent.start + me
            lo, hi = (ce, pos.start) if ce <= pos.start else (pos.end, cs)
            if hi < lo or _BLOCKER.search(a.text, lo, hi):
                continue
            return cs, ce, said
    return None


@declare(FlagSpec(id="within_sentence", type="contradiction", family="within", reads=BODY,
                  explains="{finding} in the sentence (or list) that denies it or calls it normal: {denial}",
                  example=_F.format("There is no pneumothorax or pleural effusion; small left apical pneumothorax.",
                                    "Pneumothorax."),
                  clean=_F.format("There is no pleural effusion; small left apical pneumothorax.", "Pneumothorax.")),
         needs="positive finding")
def rule_within_sentence(a: Analysis, header: Any = None) -> list[Flag]:
    """A finding stated present in the sentence or ";"-list that denies it or calls its organ normal."""
    flags: list[Flag] = []
    groups: dict[int, int] | None = None
    for section in BODY:
        ms = a.mentions_in(section)
        # cheap fields first (the clause attributes below are read lazily, once per sentence, and cost regexes)
        denied_types = {m.type for m in ms if m.negated}
        cands = [m for m in ms if not m.negated and not m.pseudo and not m.uncertain
                 and (m.type in denied_types or m.type in _DENIED_BY_CLAIM)]
        if not cands:
            continue
        if groups is None:
            groups = _groups(a)
        by_group: dict[int, list[Mention]] = {}
        for n in ms:
            if n.negated and n.type in denied_types:
                by_group.setdefault(groups[n.sentence], []).append(n)
        for p in cands:
            g = groups[p.sentence]
            same = [n for n in by_group.get(g, ()) if n.type == p.type]
            last = p.sentence + 1 if p.sentence + 1 < len(a.sentences) and groups.get(p.sentence + 1) == g \
                else p.sentence
            claimed = p.type in _DENIED_BY_CLAIM and any(p.type in c[0] for i in range(g, last + 1)
                                                          for c in _claims(a.sentences[i].text))
            if not (same or claimed) or not _firm_finding(a, p):
                continue
            denial = next((n for n in same if _firm_negative(n) and _denies(n, p)), None)
            if denial is not None:
                other = _span_of(a, denial) if denial.sentence != p.sentence else (denial.start, denial.end)
                flags.append(_flag(a, p, other,
                                   f"\"{p.text}\" in the sentence (or list) that denies it: "
                                   f"\"{(denial.trigger or '').strip()} ... {denial.text}\""))
                continue
            if not claimed or p.chronic:
                continue
            claim = _claim_in(a, g, last, p)
            if claim is not None:
                at = next(k for k in range(g, len(a.sentences)) if a.sentences[k].end >= claim[1])
                other = _span_of_sentence(a, at) if at != p.sentence else (claim[0], claim[1])
                flags.append(_flag(a, p, other,
                                   f"\"{p.text}\" in the sentence (or list) that calls it normal: \"{claim[2]}\""))
    return flags

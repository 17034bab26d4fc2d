"""Reading a report: finding mentions with polarity, side, size and severity, and report facts.

Negation and uncertainty use a regex NegEx/ConText-style matcher written here, chosen with
the measurements in ../shared/notes/reports.md: medspacy (ConText) would pin numpy < 2 and
runs at ~170 reports/s; negspacy runs at ~5,900 reports/s but gives no trigger provenance
and no uncertainty; a regex matcher runs at >10,000 reports/s, keeps the trigger of every
decision (shown in each flag's explanation), and handles the phrasings that trip peers
("is negative for X", "X: No", "no new X", "cannot exclude X", "left-sided chest tube, no
right effusion"). The trigger lists are the NegEx/ConText ones, trimmed to radiology.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from medmm.reports.sections import Section, Sentence, split_sections, split_sentences

from medmm.reports import lexicon as lx

LEXICON = lx.FINDINGS  # finding type -> (organ, patterns); the vocabulary is public (medmm.reports.lexicon)
DEVICE_TYPES = lx.DEVICE_TYPES


def _words_alternation(patterns: tuple[str, ...] | list[str], flags: int = re.I) -> re.Pattern[str]:
    """``\\b(?:p1|p2|...)\\b`` with a first-letter lookahead: Python's regex engine otherwise tries
    every alternative at every position (8x slower on report text, measured)."""
    firsts = sorted({p[0].lower() for p in patterns} | {p[0].upper() for p in patterns})
    return re.compile(r"\b(?=[" + "".join(firsts) + r"])(?:" + "|".join(patterns) + r")\b", flags)


_TERM = _words_alternation([p for _, (_, ps) in LEXICON.items() for p in ps])
_TERM_TYPE = [(k, re.compile(r"(?:" + "|".join(ps) + r")\Z", re.I)) for k, (_, ps) in LEXICON.items()]


@functools.lru_cache(maxsize=4096)
def term_type(text: str) -> str:
    """The finding type of a matched term (cached: reports repeat a small vocabulary)."""
    for kind, pat in _TERM_TYPE:
        if pat.match(text):
            return kind
    return ""

PRE_NEG = (r"no", r"not", r"without", r"negative\s+for", r"free\s+of", r"no\s+evidence\s+of", r"no\s+signs?\s+of",
           r"absence\s+of", r"resolution\s+of", r"resolved", r"rules?\s+out", r"ruled\s+out", r"clear\s+of",
           r"no\s+(?:definite|focal|acute|significant|large|residual|visible)", r"neither", r"nor")
_NOT_ON_PRIOR = r"(?!\s+(?:on|in|at)\s+(?:the\s+)?(?:prior|previous|earlier|outside|older))"
POST_NEG = (r"(?:is|are|was|were)\s+(?:absent|not\s+(?:\w+ly\s+)?(?:seen|identified|present|visualized|appreciated))"
            + _NOT_ON_PRIOR, r"not\s+(?:\w+ly\s+)?(?:seen|identified|present)" + _NOT_ON_PRIOR, r"has\s+resolved", r"have\s+resolved", r":\s*(?:no|none|negative|absent)\b",
            r"(?:is|are)\s+no\s+longer\s+(?:seen|present|visualized)")
PSEUDO = (r"no\s+(?:new|change|interval\s+change|increase|decrease|significant\s+change)", r"not\s+only",
          # a qualified denial ("no other / solid / suspicious nodules") says nothing against the finding itself
          r"no\s+(?:other|additional|further|more|second|solid|calcified|cavitary|suspicious|dominant|enlarging|"
          r"discrete|worrisome)",
          r"no\s+longer\s+(?!seen|present|visualized)", r"without\s+(?:change|interval\s+change)")
# Hedges that follow the finding and still question its existence ("pneumonia cannot be excluded");
# others that follow it ("nodule, likely benign", "mass, concerning for malignancy") qualify its nature.
UNCERTAIN_POST = (r"cannot\s+(?:be\s+)?(?:excluded?|ruled?\s+out)", r"can\s*not\s+be\s+(?:excluded|ruled\s+out)",
                  r"not\s+excluded", r"(?:is|are)\s+(?:questionable|possible|suspected)", r"versus", r"vs\.?")
UNCERTAIN = (r"cannot\s+(?:be\s+)?(?:excluded?|ruled?\s+out)", r"can\s*not\s+be\s+(?:excluded|ruled\s+out)",
             r"not\s+excluded", r"possib(?:le|ly)", r"probabl[ey]", r"likely", r"may\s+(?:represent|be)",
             r"suspicious\s+for", r"concerning\s+for", r"questionable", r"suggestive\s+of", r"versus", r"vs\.?",
             r"differential", r"could\s+(?:represent|be)", r"favou?r(?:ed|s)?")
TERMINATORS = r"\b(?:but|however|although|though|which|except|apart\s+from|aside\s+from|whereas|otherwise)\b|[;:]"

_PRE = _words_alternation(PRE_NEG)
_POST = re.compile(r"(?:" + "|".join(POST_NEG) + r")", re.I)
_PSEUDO = _words_alternation(PSEUDO)
_UNCERTAIN = _words_alternation(UNCERTAIN)
_UNCERTAIN_POST = _words_alternation(UNCERTAIN_POST)
_TERMINATOR = re.compile(r"(?=[bhatwexoBHATWEXO;:])(?:" + TERMINATORS + ")", re.I)
_SEV_WORDS = "|".join(sorted(lx.SEVERITY_RANK, key=len, reverse=True))
_SIDE_OR_SEVERITY = re.compile(
    r"\b(?=[lrbtmsexLRBTMSEX])(?:(?P<side>left|right|bilateral(?:ly)?|both|bibasilar|bibasal|biapical|bihilar)"
    r"(?:[-\s]sided)?|(?P<sev>" + _SEV_WORDS + r"))\b", re.I)
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:x\s*\d+(?:\.\d+)?\s*(?:x\s*\d+(?:\.\d+)?\s*)?)?(mm|cm|millimet(?:er|re)s?|centimet(?:er|re)s?)\b", re.I)
_SEVERITY = re.compile(r"\b(" + _SEV_WORDS + r")\b", re.I)
SEVERITY_RANK = lx.SEVERITY_RANK
_CLAUSE = re.compile(r"(?=[bhw;,aBHWA])(?:\bbut\b|\bhowever\b|;|,\s+(?=(?:no|without|with|and\s+no|but)\b)|\band\s+(?=(?:a|an|the|no|small|large|left|right)\b)|\bwith\b|,\s+(?=(?:the|this|these|there|it)\b))", re.I)
INTERVAL = re.compile(
    r"\b(?=[nuisdwpacrNUISDWPACR])(?:new|newly|unchanged|stable|increased|decreased|increasing|decreasing|improved|improving|worsened|worsening|"
    r"interval(?:ly)?|since\s+the\s+(?:prior|previous|last)|compared\s+(?:with|to)|again\s+(?:seen|noted|demonstrated)|"
    r"redemonstrated|persistent|previously|prior\s+(?:study|exam|examination|radiograph|ct|mri|film))\b", re.I)
NO_PRIOR = re.compile(r"^\W*(?:" + "|".join(lx.NO_PRIOR_PHRASES) + r")\b", re.I)
# attributes read from a mention's clause
_QUALIFIED_NEG = re.compile(r"\b(?:acute|focal|displaced|definite|definitive|large|significant|discrete|"
                            r"confluent|dense|gross|new|frank|overt|active|convincing|obvious|visible|suspicious|"
                            r"evident|appreciable|apparent|measurable|substantial|moderate|sizable|dominant)\b", re.I)
_CHRONIC = re.compile(r"\b(?:" + "|".join(sorted(lx.CHRONIC_WORDS, key=len, reverse=True)) + r")\b", re.I)
_INTERVAL_WORD = re.compile(r"\b(" + "|".join(sorted(lx.INTERVAL_DIRECTION, key=len, reverse=True)) + r")\b", re.I)
_SITE = re.compile(r"\b(" + "|".join(sorted(lx.SITE_WORDS, key=len, reverse=True)) + r")\b", re.I)
_LOBE = re.compile(r"\b(?:(left|right)\s+)?(upper|middle|lower)\s+lobes?\b|\b(lingula)r?\b", re.I)
_BOTH_SIDES = re.compile(r"\b(?:bilateral(?:ly)?|both|bibasilar|bibasal|biapical|bihilar)\b|\b(?:left|right)\s+"
                         r"(?:greater|more|worse)\s+than\s+(?:the\s+)?(?:left|right)\b", re.I)
_SEVERAL_LOBES = re.compile(r"\blobes\b|\band\s+(?:upper|middle|lower)\b", re.I)
_HYPOTHETICAL = re.compile(r"\b(?:if|recommend\w*|consider\w*|suggest(?:ed)?|could\s+be|would|should|"
                           r"follow-?\s?up|to\s+exclude|to\s+evaluate|to\s+assess|evaluat(?:e|ion)\s+(?:for|of)|assess\w*\s+for|limited|"
                           r"rule\s+out|concern\s+for|question\s+of|history\s+of|\?)", re.I)


@dataclass
class Mention:
    type: str
    text: str
    start: int
    end: int
    sentence: int
    section: str
    negated: bool = False
    uncertain: bool = False
    pseudo: bool = False  # "no new X": says nothing about whether X exists
    trigger: str | None = None
    side: str | None = None
    size_mm: float | None = None
    size_text: tuple[int, int] | None = None  # span of the measurement
    severity: str | None = None
    site: str | None = None  # the organ named in the clause ("thyroid", "pleura", ...)
    qualifier: str | None = None  # for a negation: the word that narrows it ("no *acute* fracture")
    chronic: bool = False  # "old", "healed", "calcified", "stable": not what "no acute" denies
    interval: str | None = None  # direction of an interval word attached to the mention (new/same/more/less/gone)
    interval_word: str | None = None
    lobe: str | None = None  # "right upper lobe", "lingula"
    hypothetical: bool = False  # in a recommendation, condition or indication-like clause

    @property
    def positive(self) -> bool:
        return not self.negated and not self.pseudo

    @property
    def is_device(self) -> bool:
        return self.type in DEVICE_TYPES


@dataclass
class Analysis:
    text: str
    sections: list[Section]
    sentences: list[Sentence]
    mentions: list[Mention] = field(default_factory=list)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def in_section(self, name: str) -> list[Mention]:
        return [m for m in self.mentions if m.section == name]


def _clause_bounds(cuts: list[tuple[int, int]], lo: int, hi: int, pos: int) -> tuple[int, int]:
    """The clause around ``pos`` within [lo, hi), given clause cuts (", no", "and a", "but", ...)."""
    start, end = lo, hi
    for cs, ce in cuts:
        if ce <= pos:
            start = max(start, ce)
        elif cs >= pos:
            end = min(end, cs)
            break
    return start, end


def _side_word(word: str) -> str:
    w = word.lower()
    if w.startswith(("bilateral", "bi")) or w == "both":
        return "bilateral"
    return w


def _to_mm(value: str, unit: str) -> float:
    v = float(value)
    return v * 10 if unit.lower().startswith("c") else v


def _nearest(matches: list[tuple[int, int, Any]], lo: int, hi: int, pos: int) -> tuple[int, int, Any] | None:
    best = None
    for m in matches:
        if lo <= m[0] and m[1] <= hi and (best is None or abs(m[0] - pos) < abs(best[0] - pos)):
            best = m
    return best


def _by_sentence(matches: list[tuple[int, int, Any]], sent_starts: list[int], sent_ends: list[int]
                 ) -> dict[int, list[tuple[int, int, Any]]]:
    """Matches grouped by the sentence that contains them (one bisect per match)."""
    out: dict[int, list[tuple[int, int, Any]]] = {}
    for m in matches:
        i = bisect.bisect_right(sent_starts, m[0]) - 1
        if i >= 0 and m[1] <= sent_ends[i]:
            out.setdefault(i, []).append(m)
    return out


def _scan(pattern: re.Pattern[str], text: str, value: Any = None) -> list[tuple[int, int, Any]]:
    if value is None:
        return [(m.start(), m.end(), m.group(0)) for m in pattern.finditer(text)]
    return [(m.start(), m.end(), value(m)) for m in pattern.finditer(text)]


def _clause_attributes(m: Mention, text: str, cs: int, ce: int, lo: int, hi: int, pre: Any) -> None:
    """Site, qualifier, chronicity, interval word, lobe and hypothetical mood of a mention."""
    clause = text[cs:ce]
    site = _SITE.search(clause)
    if site:
        m.site = lx.SITE_WORDS[site.group(1).lower()]
    if m.negated and pre is not None:
        q = _QUALIFIED_NEG.search(text, pre[0], m.start)
        if q:
            m.qualifier = q.group(0).lower()
    m.chronic = bool(_CHRONIC.search(clause))
    iv = _INTERVAL_WORD.search(clause)
    if iv:
        m.interval_word = iv.group(1).lower()
        m.interval = lx.INTERVAL_DIRECTION[m.interval_word]
    lobes = list(_LOBE.finditer(clause))
    lobe = lobes[0] if len(lobes) == 1 and not _SEVERAL_LOBES.search(clause) else None
    if lobe:
        m.lobe = (f"{(lobe.group(1) or '').lower()} {lobe.group(2).lower()} lobe".strip() if lobe.group(2)
                  else "lingula")
    m.hypothetical = bool(_HYPOTHETICAL.search(text, lo, hi))
    if m.side in ("left", "right") and _BOTH_SIDES.search(text, lo, hi):
        m.side = "bilateral"


def analyze(text: str) -> Analysis:
    """Sections, sentences and finding mentions of a report.

    Every pattern is matched once over the whole report (8 regex passes, not 8 per sentence),
    then matches are bucketed by sentence and clause.
    """
    sections = split_sections(text)
    sentences = split_sentences(text, sections)
    a = Analysis(text, sections, sentences)
    terms = _scan(_TERM, text)
    if not terms:
        return a
    starts = [x.start for x in sentences]
    ends = [x.end for x in sentences]
    groups = _by_sentence(terms, starts, ends)
    cuts = _by_sentence([(m.start(), m.end(), None) for m in _CLAUSE.finditer(text)], starts, ends)
    terminators = _by_sentence([(m.start(), m.end(), None) for m in _TERMINATOR.finditer(text)], starts, ends)
    pre_list, pseudo_list = [], []
    for m in _PRE.finditer(text):  # pseudo-triggers all begin with a negation word: test only there
        pre_list.append((m.start(), m.end(), m.group(0)))
        ps = _PSEUDO.match(text, m.start())
        if ps:
            pseudo_list.append((ps.start(), ps.end(), ps.group(0)))
    pres = _by_sentence(pre_list, starts, ends)
    pseudos = _by_sentence(pseudo_list, starts, ends)
    uncertain = _by_sentence(_scan(_UNCERTAIN, text), starts, ends)
    side_list, sev_list = [], []
    for m in _SIDE_OR_SEVERITY.finditer(text):  # one pass for two word classes that never overlap
        if m.group("side"):
            side_list.append((m.start(), m.end(), _side_word(m.group("side"))))
        else:
            sev_list.append((m.start(), m.end(), m.group("sev").lower()))
    sides = _by_sentence(side_list, starts, ends)
    sevs = _by_sentence(sev_list, starts, ends)
    sizes = _by_sentence(_scan(_SIZE, text, lambda m: _to_mm(m.group(1), m.group(2))), starts, ends)
    for index, here in groups.items():
        sent = sentences[index]
        lo, hi = sent.start, sent.end
        s_cuts = [(c[0], c[1]) for c in cuts.get(index, ())]
        s_terms = [t[1] for t in terminators.get(index, ())]
        s_pres = pres.get(index, [])
        s_pseudos = pseudos.get(index, [])
        s_unc = uncertain.get(index, [])
        s_sides = sides.get(index, [])
        s_sizes = sizes.get(index, [])
        s_sevs = sevs.get(index, [])
        for ms, me, word in here:
            cs, ce = _clause_bounds(s_cuts, lo, hi, ms)
            mention = Mention(term_type(word), word, ms, me, index, sent.section)
            scope = max([cs] + [t for t in s_terms if cs <= t <= ms])
            pre = next((p for p in reversed(s_pres) if scope <= p[0] and p[1] <= ms), None)
            if pre and len(text[pre[1]:ms].split()) <= 12:
                ps = next((p for p in s_pseudos if p[0] <= pre[0] < p[1] and p[0] >= scope), None)
                if ps:
                    mention.pseudo, mention.trigger = True, ps[2]
                else:
                    mention.negated, mention.trigger = True, pre[2]
            if not mention.negated and not mention.pseudo:
                after = text[me:ce]
                post = _POST.match(after.lstrip()) or _POST.search(after[:40])
                if post:
                    mention.negated, mention.trigger = True, post.group(0).strip()
            if not mention.negated:
                unc = next((u for u in s_unc if cs <= u[0] and u[1] <= ms), None)  # a hedge before the term
                if unc is None:
                    unc = next((u for u in s_unc if me <= u[0] < ce and _UNCERTAIN_POST.fullmatch(u[2])), None)
                if unc:
                    mention.uncertain = True
                    mention.trigger = mention.trigger or unc[2]
            side = _nearest(s_sides, cs, ce, ms)
            if side:
                mention.side = side[2]
            size = _nearest(s_sizes, cs, ce, ms)
            if size:
                mention.size_mm = size[2]
                mention.size_text = (size[0], size[1])
            sev = _nearest(s_sevs, cs, ce, ms)
            if sev:
                mention.severity = sev[2]
            _clause_attributes(mention, text, cs, ce, lo, hi, pre)
            a.mentions.append(mention)
    return a


def prior_status(a: Analysis) -> str:
    """``none`` (COMPARISON says there is no prior), ``prior`` (a prior is named) or ``unknown``."""
    comp = a.section("comparison")
    if comp is not None:
        return "none" if NO_PRIOR.match(comp.text) or not comp.text.strip() else "prior"
    if re.search(r"\b(?:compared\s+(?:with|to)|comparison\s+(?:with|to|is\s+made)|prior\s+(?:study|exam|examination|"
                 r"radiograph|film|ct|mri)\s+(?:dated|from|of))\b", a.text, re.I):
        return "prior"
    return "unknown"

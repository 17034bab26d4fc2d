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
from typing import Any, NamedTuple

from medmm.reports import lexicon as lx
from medmm.reports import sections as _sections
from medmm.reports.language_pack import (alternation, by_first_letter, charset_led, first_char_lookahead, language_pack,
                                         longest_first, substring_keys)
from medmm.reports.sections import Section, Sentence, split_sections, split_sentences

MAX_COMPARED_MENTIONS = 150  # per section, compared pairwise by the section rules (see Analysis.mentions_in)
LEXICON = lx.FINDINGS  # finding type -> (organ, patterns); the vocabulary is public (medmm.reports.lexicon)
DEVICE_TYPES = lx.DEVICE_TYPES


def _words_alternation(patterns: tuple[str, ...] | list[str], flags: int = re.I) -> re.Pattern[str]:
    """``\\b(?:p1|p2|...)\\b`` with a first-letter lookahead: Python's regex engine otherwise tries
    every alternative at every position (8x slower on report text, measured). The lookahead is derived from the
    patterns (:func:`~medmm.reports.language_pack.first_char_lookahead`): a site's trigger that starts with a group
    or an escape gets the right letters, or none. The alternation is written grouped by first letter
    (:func:`~medmm.reports.language_pack.by_first_letter`): the same matches."""
    body = by_first_letter(patterns, bool(flags & re.I))
    return re.compile(r"\b" + first_char_lookahead(body) + r"(?:" + body + r")\b", flags)


def _charset_led_lower(pattern: re.Pattern[str], body: str) -> re.Pattern[str]:
    """:func:`_for_lower_case` of ``pattern`` (``first_char_lookahead(body)`` and ``body``), written as
    :func:`~medmm.reports.language_pack.charset_led` when it can be."""
    led = charset_led(body)
    return _for_lower_case(re.compile("(?:" + led + ")", pattern.flags) if led is not None else pattern)


def plain_ascii(text: str) -> bool:
    """May ``text``, lower-cased, be searched with :func:`_for_lower_case` patterns for the spans the re.I pattern
    finds in it? ASCII (lower-casing keeps every offset), without the separators U+001C-U+001F (which only
    Unicode-mode white space matches; each tested with a memchr: a regex scan for them costs more)."""
    return text.isascii() and "\x1c" not in text and "\x1d" not in text and "\x1e" not in text and "\x1f" not in text


def _for_lower_case(pattern: re.Pattern[str]) -> re.Pattern[str]:
    r"""``pattern`` (compiled with re.I) for lower-cased ASCII text: the letters outside escapes lower-cased and
    re.I dropped. Case-insensitive matching is about twice as slow in Python's regex engine, and on ASCII text
    lower-casing first finds the same spans (ASCII lower-casing keeps every offset).

    Compiled with re.ASCII too: in Unicode mode every ``\b`` and ``\w`` test calls the Unicode database (4 % of the
    checker's instructions, callgrind), in ASCII mode it is a table look-up. On ASCII text the two modes differ only
    in ``\s``, which in Unicode mode also matches the separators \x1c-\x1f: :func:`read_sentence` uses these
    patterns only on text without them (four substring tests, each a memchr: a regex scan for them costs more)."""
    out, src, i = [], pattern.pattern, 0
    while i < len(src):
        if src[i] == "\\":
            out.append(src[i: i + 2])  # \S, \W, \B ... keep their case
            i += 2
        elif src.startswith("(?P", i):  # a named group: "(?P<name>" or "(?P=name)" as written
            j = src.index(">" if src[i + 3] == "<" else ")", i) + 1
            out.append(src[i:j])
            i = j
        else:
            out.append(src[i].lower())
            i += 1
    return re.compile("".join(out), (pattern.flags & ~re.I & ~re.UNICODE) | re.ASCII)


_TERM = _words_alternation([p for _, (_, ps) in LEXICON.items() for p in ps])
_TERM_TYPE = [(k, re.compile(r"(?:" + "|".join(ps) + r")\Z", re.I)) for k, (_, ps) in LEXICON.items()]


@functools.lru_cache(maxsize=4096)
def term_type(text: str) -> str:
    """The finding type of a matched term (cached: reports repeat a small vocabulary)."""
    for kind, pat in _TERM_TYPE:
        if pat.match(text):
            return kind
    return ""

# negation and hedge triggers: data (the language pack, medmm/configs/reports/language-en.yaml; a site extends it)
_PACK = language_pack()
PRE_NEG = tuple(_PACK["negation"]["pre"])
POST_NEG = tuple(_PACK["negation"]["post"])
PSEUDO = tuple(_PACK["negation"]["pseudo"])
# Hedges that follow the finding and still question its existence ("pneumonia cannot be excluded");
# others that follow it ("nodule, likely benign", "mass, concerning for malignancy") qualify its nature.
UNCERTAIN_POST = tuple(_PACK["hedges"]["after"])
UNCERTAIN = tuple(_PACK["hedges"]["before"])
TERMINATORS = str(_PACK["scope_terminators"])

_PRE = _words_alternation(PRE_NEG)
_POST = re.compile(r"(?:" + "|".join(POST_NEG) + r")", re.I)
_PSEUDO = _words_alternation(PSEUDO)
_UNCERTAIN = _words_alternation(UNCERTAIN)
_UNCERTAIN_POST = _words_alternation(UNCERTAIN_POST)
_TERMINATOR = re.compile(first_char_lookahead(TERMINATORS) + "(?:" + TERMINATORS + ")", re.I)
_SEV_WORDS = longest_first(lx.SEVERITY_RANK)
# how a sentence is read: data too (the pack's ``reading``)
_READ = _PACK["reading"]
SIDE_WORDS: dict[str, tuple[str, ...]] = {side: tuple(words) for side, words in _READ["sides"].items()}
_SIDE_ALTERNATION = alternation([w for words in SIDE_WORDS.values() for w in words])
# each word class grouped by first letter (language_pack.by_first_letter: the same matches, fewer alternatives tried per word)
_SIDE_OR_SEVERITY_BODY = (r"(?:(?P<side>" + by_first_letter([w for ws in SIDE_WORDS.values() for w in ws]) + r")"
                          + _READ["side_suffix"] + r"|(?P<sev>" + by_first_letter(_SEV_WORDS.split("|")) + r"))")
_SIDE_OR_SEVERITY = re.compile(r"\b" + first_char_lookahead(_SIDE_OR_SEVERITY_BODY) + _SIDE_OR_SEVERITY_BODY + r"\b",
                               re.I)
UNIT_MM: dict[str, float] = {unit: float(v) for unit, v in _READ["unit_mm"].items()}
_UNIT_PATTERNS: dict[str, tuple[str, ...]] = {unit: tuple(ps) for unit, ps in _READ["size_units"].items()}
if set(_UNIT_PATTERNS) - set(UNIT_MM):
    from medmm.config import ConfigError

    raise ConfigError(f"language pack: reading.size_units {sorted(set(_UNIT_PATTERNS) - set(UNIT_MM))} have no "
                      "millimetres in reading.unit_mm: add them")
_UNIT_FULL = [(unit, re.compile("(?:" + alternation(ps) + r")\Z", re.I)) for unit, ps in _UNIT_PATTERNS.items()]
UNIT_ALTERNATION = alternation([p for ps in _UNIT_PATTERNS.values() for p in ps])  # the units of a size
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:x\s*\d+(?:\.\d+)?\s*(?:x\s*\d+(?:\.\d+)?\s*)?)?("
                   + UNIT_ALTERNATION + r")\b", re.I)
_SEVERITY = re.compile(r"\b(" + _SEV_WORDS + r")\b", re.I)
SEVERITY_RANK = lx.SEVERITY_RANK
_CLAUSE_BODY = alternation(_READ["clause_cuts"])
_CLAUSE = re.compile(first_char_lookahead(_CLAUSE_BODY) + "(?:" + _CLAUSE_BODY + ")", re.I)
INTERVAL = _words_alternation(_READ["interval_cues"])
NO_PRIOR = re.compile(r"^\W*(?:" + "|".join(lx.NO_PRIOR_PHRASES) + r")\b", re.I)
# attributes read from a mention's clause
_ALL_WORDS = re.compile(r"[a-z]+")
_LONG_WORDS = re.compile(r"[a-z]{4,}")  # the maximal runs of four letters or more: the words of _ALL_WORDS that long
# _ALL_WORDS at C speed: every byte but a-z made a space, then split (the UTF-8 bytes of other letters are >= 128, so
# the runs are the same); several times faster than findall, and the words are shared (word_list)
_A_TO_Z_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))
_LETTERS_A_Z = "abcdefghijklmnopqrstuvwxyz"
_SHORT_WORDS = frozenset([*_LETTERS_A_Z, *(a + b for a in _LETTERS_A_Z for b in _LETTERS_A_Z),
                          *(a + b + c for a in _LETTERS_A_Z for b in _LETTERS_A_Z for c in _LETTERS_A_Z)])
_QUALIFIED_NEG = re.compile(r"\b(?:" + alternation(_READ["negation_qualifiers"]) + r")\b", re.I)
_CHRONIC = _words_alternation(sorted(lx.CHRONIC_WORDS, key=len, reverse=True))
_INTERVAL_WORD = _words_alternation(sorted(lx.INTERVAL_DIRECTION, key=len, reverse=True))
_SITE = _words_alternation(sorted(lx.SITE_WORDS, key=len, reverse=True))
_LOBE = re.compile(_READ["lobe"], re.I)
_BOTH_SIDES = re.compile(r"\b(?:" + alternation(SIDE_WORDS.get("bilateral", ())) + r")\b|\b(?:"
                         + alternation(_READ["both_sides"]) + r")\b", re.I)
# one group per level, in the order of ZONE_LEVELS
ZONE_LEVELS: tuple[str, ...] = tuple(_READ["zone_levels"])
_ZONE = re.compile(r"\b(?:" + "|".join("(" + alternation(ws) + ")" for ws in _READ["zone_levels"].values()) + r")\b",
                   re.I)
_SEVERAL_LOBES = re.compile(_READ["several_lobes"], re.I)
_HYPOTHETICAL = re.compile(r"\b(?:" + alternation(_READ["hypothetical"]) + ")", re.I)


@dataclass(slots=True)
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
    organ: str | None = None  # the organ sub-heading of a structured report the mention stands under
    sentence_side: str | None = None  # the one side its sentence names when its clause names none
    # where the clause attributes below are read from: the sentence's reading (shared by every occurrence of the
    # sentence) and the sentence's text. They are computed on first use, once per distinct sentence: most mentions
    # are never compared with another and never need them.
    reading: _Reading | None = field(default=None, repr=False, compare=False)
    sentence_text: str = field(default="", repr=False, compare=False)

    def _attr(self, name: str) -> Any:
        r = self.reading
        if r is None:
            return _NO_CONTEXT[name]
        attrs = r.attrs
        if name not in attrs:
            attrs.update(_ATTRIBUTE_READERS[name](r, self.sentence_text))
        return attrs[name]

    @property
    def site(self) -> str | None:
        """The organ named in the clause ("thyroid", "pleura", ...)."""
        return self._attr("site")

    @property
    def qualifier(self) -> str | None:
        """For a negation: the word that narrows it ("no *acute* fracture")."""
        return self._attr("qualifier")

    @property
    def chronic(self) -> bool:
        """"old", "healed", "calcified", "stable": not what "no acute ..." denies."""
        return self._attr("chronic")

    @property
    def interval(self) -> str | None:
        """Direction of an interval word attached to the mention (new/same/still/more/less/gone)."""
        return self._attr("interval")

    @property
    def interval_word(self) -> str | None:
        return self._attr("interval_word")

    @property
    def lobe(self) -> str | None:
        """"right upper lobe", "lingula" (None when the clause names several lobes)."""
        return self._attr("lobe")

    @property
    def zone(self) -> str | None:
        """upper (apex, apical, upper lobe/zone), lower (base, basilar, lower lobe/zone) or mid."""
        return self._attr("zone")

    @property
    def past(self) -> bool:
        """Said of the past ("previous pneumonia", "history of", "healed"): not a finding of this study."""
        return self._attr("past")

    @property
    def clause_text(self) -> str:
        r = self.reading
        return self.sentence_text[r.clause[0]: r.clause[1]] if r is not None else self.text

    @property
    def hypothetical(self) -> bool:
        """In a recommendation, a condition or a question ("if there is concern for fracture ...")."""
        return self._attr("hypothetical")

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

    _by_section: dict[str, list[Mention]] | None = field(default=None, repr=False)
    _first_section: dict[str, Section] | None = field(default=None, repr=False)
    _sentences_by_section: dict[str, list[Sentence]] | None = field(default=None, repr=False)
    _words: tuple[str, set[str]] | None = field(default=None, repr=False)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # what several rules compute from one analysis

    def lower_words(self) -> tuple[str, set[str]]:
        """The lower-cased text and its set of words of four letters or more (computed once per analysis)."""
        if self._words is None:
            # = set(long_word_list()): the words are runs of a-z, so those of three letters or fewer are a finite
            # set, taken away in C
            self._words = (self.lower_text(), self.word_set() - _SHORT_WORDS)
        return self._words

    def lower_text(self) -> str:
        low = self.cache.get("low")
        if low is None:
            low = self.cache["low"] = self.text.lower()
        return low

    def long_word_list(self) -> list[str]:
        """The lower-case words of four letters or more, in order (computed once per analysis)."""
        long_words = self.cache.get("long_words")
        if long_words is None:
            long_words = self.cache["long_words"] = [w for w in self.word_list() if len(w) > 3]
        return long_words

    def word_set(self) -> set[str]:
        """The distinct lower-case words (computed once per analysis)."""
        words = self.cache.get("word set")
        if words is None:
            words = self.cache["word set"] = set(self.word_list())
        return words

    def word_list(self) -> list[str]:
        """All lower-case words in order (computed once per analysis)."""
        words = self.cache.get("words")
        if words is None:
            words = self.cache["words"] = (self.lower_text().encode("utf-8", "surrogatepass").translate(_A_TO_Z_ONLY)
                                           .decode("ascii").split())  # = _ALL_WORDS.findall(self.lower_text())
        return words

    def mentions_in(self, name: str) -> list[Mention]:
        """Non-device mentions of one section, the first :data:`MAX_COMPARED_MENTIONS` (computed once per analysis).

        Rules compare these pairwise; the bound keeps a check linear on adversarial input (a real report names
        far fewer findings: at most 40 in a section of the IU dev reports). ``cache["capped"]`` says it applied."""
        if self._by_section is None:
            self._by_section = {}
            for m in self.mentions:
                if m.type not in DEVICE_TYPES:
                    self._by_section.setdefault(m.section, []).append(m)
            for key, ms in self._by_section.items() if len(self.mentions) > MAX_COMPARED_MENTIONS else ():
                if len(ms) > MAX_COMPARED_MENTIONS:
                    self._by_section[key] = ms[:MAX_COMPARED_MENTIONS]
                    self.cache["capped"] = True
        return self._by_section.get(name, [])

    def section(self, name: str) -> Section | None:
        """The first section of that name (looked up in a dict made once per analysis)."""
        if self._first_section is None:
            self._first_section = {}
            for s in self.sections:
                self._first_section.setdefault(s.name, s)
        return self._first_section.get(name)

    def sentences_in(self, name: str) -> list[Sentence]:
        """The sentences of the sections of that name, in order (grouped once per analysis)."""
        if self._sentences_by_section is None:
            self._sentences_by_section = {}
            for s in self.sentences:
                self._sentences_by_section.setdefault(s.section, []).append(s)
        return self._sentences_by_section.get(name, [])

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


_SIDE_FULL = [(side, re.compile("(?:" + alternation(ws) + ")" + _READ["side_suffix"] + r"\Z", re.I))
              for side, ws in SIDE_WORDS.items()]


@functools.lru_cache(maxsize=1024)
def _side_word(word: str) -> str:
    """The side (``left``, ``right``, ``bilateral``) a side word names (reading.sides of the pack)."""
    w = word.lower()
    return next((side for side, pat in _SIDE_FULL if pat.match(w)), w)


@functools.lru_cache(maxsize=256)
def unit_mm(unit: str) -> float:
    """Millimetres per ``unit`` (a unit :data:`UNIT_ALTERNATION` matched: "cm", "millimeters")."""
    return next((UNIT_MM[name] for name, pat in _UNIT_FULL if pat.match(unit)), 1.0)


def _to_mm(value: str, unit: str) -> float:
    return float(value) * unit_mm(unit)


def _nearest(matches: list[tuple[int, int, Any]], lo: int, hi: int, pos: int) -> tuple[int, int, Any] | None:
    best = None
    for m in matches:
        if lo <= m[0] and m[1] <= hi and (best is None or abs(m[0] - pos) < abs(best[0] - pos)):
            best = m
    return best


_SEVERITY_GAP = 4  # words at most between a severity word and the term it grades ("small bilateral pleural effusion")


def _own_severity(sevs: list[tuple[int, int, Any]], terms: list[tuple[int, int]], lo: int, hi: int, ms: int, me: int,
                  low: str) -> tuple[int, int, Any] | None:
    """The severity word of the term at ``[ms, me)``, the nearest in its clause ``[lo, hi)`` that grades it: one before
    it, within :data:`_SEVERITY_GAP` words and with no other term between ("small effusion"); or one after it that
    grades no later term ("the effusion is small"; not "effusions and extensive consolidation", not "marked tapering
    of the vessel ... worrisome for a lesion")."""
    best = None
    for m in sevs:
        if not (lo <= m[0] and m[1] <= hi):
            continue
        if m[1] <= ms:
            if any(m[1] <= t[0] < ms for t in terms) or len(low[m[1]:ms].split()) > _SEVERITY_GAP:
                continue
        elif m[0] >= me:
            if any(me <= t[0] < m[0] for t in terms) \
                    or any(m[1] <= t[0] < hi and len(low[m[1]:t[0]].split()) <= _SEVERITY_GAP for t in terms):
                continue
        if best is None or abs(m[0] - ms) < abs(best[0] - ms):
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


def _words_back(text: str, pos: int, n: int) -> int:
    """The offset ``n`` words before ``pos``."""
    start = pos
    for _ in range(n + 1):
        start = text.rfind(" ", 0, max(start - 1, 0))
        if start < 0:
            return 0
    return start + 1


_INTERVAL_AFTER = re.compile(r"\W*(?:(?:" + alternation(_READ["interval_verbs"]) + r")\s+(?:been\s+)?)?(?:\w+ly\s+)?"
                             r"(?P<word>" + longest_first(lx.INTERVAL_DIRECTION) + r")\b",
                             re.I)
_PAST = re.compile(r"\b(?:" + alternation(_READ["past"]) + r")\b", re.I)


# The readers below work on the sentence's text with the reading's offsets (relative to the sentence). A sentence
# never starts right after a letter or digit of the report (it starts after white space, a colon or the report's
# start), so the word boundaries they test read the same in the sentence as in the report.
class _ReaderPatterns(NamedTuple):
    """The patterns the attribute readers run, for one kind of sentence text (see :func:`_reader_view`)."""

    site: re.Pattern[str]
    qualified_neg: re.Pattern[str]
    chronic: re.Pattern[str]
    past: re.Pattern[str]
    interval_word: re.Pattern[str]
    interval_after: re.Pattern[str]
    lobe: re.Pattern[str]
    several_lobes: re.Pattern[str]
    zone: re.Pattern[str]
    hypothetical: re.Pattern[str]


def _reader_view(sent: str) -> tuple[str, _ReaderPatterns]:
    """The text the readers search and their patterns: an ASCII sentence lower-cased, with the patterns made for it
    (:func:`_for_lower_case`: the same spans, case-insensitive matching being the slow part), else the sentence as
    written. Every value a reader keeps is lower-cased or a boolean, so both views give the same attributes."""
    if plain_ascii(sent):
        return sent.lower(), _READERS_LOWER
    return sent, _READERS_ANY


def _attr_site(r: _Reading, sent: str) -> dict[str, Any]:
    text, p = _reader_view(sent)
    site = p.site.search(text, *r.clause)
    return {"site": lx.SITE_WORDS[site.group(0).lower()] if site else None}


def _attr_qualifier(r: _Reading, sent: str) -> dict[str, Any]:
    pre = r.trigger_start
    if not r.negated or pre is None:
        return {"qualifier": None}
    text, p = _reader_view(sent)
    # the quality must qualify this item, not an earlier one of a list ("no focal opacity, effusion, or ...")
    item_start = max(pre, text.rfind(",", pre, r.start) + 1)
    q = p.qualified_neg.search(text, item_start, r.start)
    return {"qualifier": q.group(0).lower() if q else None}


def _attr_chronic(r: _Reading, sent: str) -> dict[str, Any]:
    text, p = _reader_view(sent)
    return {"chronic": bool(p.chronic.search(text, *r.clause))}


_PAST_KEYS = substring_keys(_READ["past"])  # one of these is in every _PAST match (None: no pre-test)


def _attr_past(r: _Reading, sent: str) -> dict[str, Any]:
    if r.marks is not None and "h" not in r.marks:  # no token of the sentence holds a key of _PAST: nor does the clause
        return {"past": False}
    clause = sent[r.clause[0]: r.clause[1]]
    if _PAST_KEYS is not None and clause.isascii() and not any(map(clause.lower().__contains__, _PAST_KEYS)):
        return {"past": False}
    text, p = _reader_view(sent)
    return {"past": bool(p.past.search(text, *r.clause))}


def _attr_interval(r: _Reading, sent: str) -> dict[str, Any]:
    # an interval word belongs to the finding when it stands just before it ("new left effusion") or is said of it
    # after it ("effusion, unchanged", "effusion has increased"), not when it qualifies the next noun of the clause
    if r.marks is not None and "i" not in r.marks:  # no token of the sentence holds an interval word: nor does the clause
        return {"interval": None, "interval_word": None}
    cs, ce = r.clause
    clause = sent[cs:ce]
    if clause.isascii() and not any(map(clause.lower().__contains__, lx.INTERVAL_DIRECTION)):
        return {"interval": None, "interval_word": None}  # both patterns look for these words, within the clause
    text, p = _reader_view(sent)
    iv = p.interval_word.search(text, max(cs, _words_back(text, r.start, 3)), r.start) or \
        p.interval_after.match(text, r.end, ce)
    if not iv:
        return {"interval": None, "interval_word": None}
    word = (iv.group("word") if iv.re is p.interval_after else iv.group(0)).lower()
    return {"interval": lx.INTERVAL_DIRECTION[word], "interval_word": word}


# every lobe (_LOBE) and zone (_ZONE) holds one of these; a lower-cased ASCII clause without any of them names neither
_LOBE_KEYS, _ZONE_KEYS = substring_keys([_READ["lobe"]]), substring_keys([w for ws in _READ["zone_levels"].values() for w in ws])
_LOBE_OR_ZONE_KEYS = tuple(dict.fromkeys(_LOBE_KEYS + _ZONE_KEYS)) if _LOBE_KEYS is not None and _ZONE_KEYS is not None \
    else None


def _attr_lobe(r: _Reading, sent: str) -> dict[str, Any]:
    if r.marks is not None and "l" not in r.marks:  # no token of the sentence holds a lobe or zone key: nor does the clause
        return {"lobe": None, "zone": None}
    clause = sent[r.clause[0]: r.clause[1]]
    if _LOBE_OR_ZONE_KEYS is not None and clause.isascii() and \
            not any(map(clause.lower().__contains__, _LOBE_OR_ZONE_KEYS)):
        return {"lobe": None, "zone": None}
    text, p = _reader_view(clause)
    lobes = list(p.lobe.finditer(text))
    lobe = lobes[0] if len(lobes) == 1 and not p.several_lobes.search(text) else None
    name = None
    if lobe:
        name = (f"{(lobe.group(1) or '').lower()} {lobe.group(2).lower()} lobe".strip() if lobe.group(2)
                else "lingula")
    zones = {i for z in p.zone.finditer(text) for i, g in enumerate(z.groups()) if g}
    return {"lobe": name, "zone": ZONE_LEVELS[zones.pop()] if len(zones) == 1 else None}


def _attr_hypothetical(r: _Reading, sent: str) -> dict[str, Any]:
    text, p = _reader_view(sent)
    return {"hypothetical": bool(p.hypothetical.search(text))}


_READERS_ANY = _ReaderPatterns(_SITE, _QUALIFIED_NEG, _CHRONIC, _PAST, _INTERVAL_WORD, _INTERVAL_AFTER, _LOBE,
                               _SEVERAL_LOBES, _ZONE, _HYPOTHETICAL)
_READERS_LOWER = _ReaderPatterns(*map(_for_lower_case, _READERS_ANY))


# attribute -> the reader that computes it (one regex or two each: a rule asks for few of them)
_ATTRIBUTE_READERS = {"site": _attr_site, "qualifier": _attr_qualifier, "chronic": _attr_chronic, "past": _attr_past,
                      "interval": _attr_interval, "interval_word": _attr_interval, "lobe": _attr_lobe,
                      "zone": _attr_lobe, "hypothetical": _attr_hypothetical}
_NO_CONTEXT = {"site": None, "qualifier": None, "chronic": False, "past": False, "interval": None,
               "interval_word": None, "lobe": None, "zone": None, "hypothetical": False}


@dataclass(slots=True)
class _Reading:
    """One finding mention read from a sentence, offsets relative to the sentence (what the cache keeps; never
    changed once made, but not frozen: a frozen dataclass of this size takes 8x longer to build)."""

    type: str
    text: str
    start: int
    end: int
    negated: bool
    uncertain: bool
    pseudo: bool
    trigger: str | None
    side: str | None
    size_mm: float | None
    size_text: tuple[int, int] | None
    severity: str | None
    clause: tuple[int, int]
    trigger_start: int | None
    sentence_side: str | None = None  # the one side the sentence names, when the clause names none
    # the marks of the sentence's tokens (_ScanKeys.marks), the attribute readers' first pre-test (None: no marks)
    marks: str | None = field(default=None, repr=False, compare=False)
    # the clause attributes read so far (see Mention._attr): one dict per distinct sentence, filled on demand
    attrs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class _SentencePatterns(NamedTuple):
    """The patterns :func:`read_sentence` runs, for one kind of sentence text."""

    term: re.Pattern[str]
    clause: re.Pattern[str]
    terminator: re.Pattern[str]
    pre: re.Pattern[str]
    pseudo: re.Pattern[str]
    post: re.Pattern[str]
    uncertain: re.Pattern[str]
    side_or_severity: re.Pattern[str]
    size: re.Pattern[str]
    both_sides: re.Pattern[str]


UNIT_KEYS = substring_keys([p for ps in _UNIT_PATTERNS.values() for p in ps])  # every size holds one (None: no pre-test)
_UNITS = UNIT_KEYS
_ANY_CASE = _SentencePatterns(_TERM, _CLAUSE, _TERMINATOR, _PRE, _PSEUDO, _POST, _UNCERTAIN, _SIDE_OR_SEVERITY, _SIZE,
                              _BOTH_SIDES)
# clause cuts, scope terminators and negation triggers open with a look-ahead or \b: written to open with a literal
# character, the regex engine skips in C to the positions that can start one (callgrind: the clause scan -48 %)
_LOWER_CASE = _SentencePatterns(*map(_for_lower_case, _ANY_CASE))._replace(
    clause=_charset_led_lower(_CLAUSE, _CLAUSE_BODY), terminator=_charset_led_lower(_TERMINATOR, TERMINATORS),
    pre=_charset_led_lower(_PRE, r"\b(?:" + by_first_letter(PRE_NEG) + r")\b"))


class _ScanKeys:
    """Which of :func:`read_sentence`'s scans can find anything in a lower-cased sentence, told from the keys of their
    patterns (:func:`~medmm.reports.language_pack.substring_keys`: one of a pattern's keys is in each of its matches)
    before they run: a scan whose keys are all absent finds nothing and is skipped.

    A key without white space stands in the text only inside one of its white-space-delimited tokens, so each distinct
    token is decided once, when a process first meets it (a word table, like the rule gates' in
    :mod:`medmm.reports.rule_gate`): its *marks*, one letter per scan whose keys it holds ("" for most tokens). A
    sentence's marks are its tokens' joined (two C-level calls: cheaper than one scan). A key holding white space is
    reduced to its longest part without (a weaker condition, still a necessary one); a scan without keys, or with a
    key of white space only, is always marked."""

    _MAX_TOKENS = 200_000  # the table's bound (adversarial input of endless distinct tokens: computed, not kept)

    def __init__(self, key_sets: dict[str, tuple[str, ...] | None]) -> None:
        told = {mark: keys for mark, keys in key_sets.items() if keys is not None and all(k.split() for k in keys)}
        self.always = "".join(mark for mark in key_sets if mark not in told)
        self.keys = tuple((mark, tuple(max(k.split(), key=len) for k in keys)) for mark, keys in told.items())
        self.tokens: dict[str, str] = {}  # token met -> its marks

    def marks(self, low: str) -> str:
        """The marks of the scans that may find something in ``low`` (lower-cased ASCII text)."""
        tokens = low.split()
        try:  # every token met before (almost always)
            return self.always + "".join(map(self.tokens.__getitem__, tokens))
        except KeyError:
            pass
        out = [self.always]
        for t in tokens:
            m = self.tokens.get(t)
            if m is None:
                m = "".join(mark for mark, keys in self.keys if any(k in t for k in keys))
                if len(self.tokens) < self._MAX_TOKENS:
                    self.tokens[t] = m
            out.append(m)
        return "".join(out)


# the scans of read_sentence its tokens can rule out, one mark each; the term scan is not among them: it runs on every
# sentence and finds nothing in most, where testing fifty keys costs more than the scan
_SCAN_KEYS = _ScanKeys({"c": substring_keys(_READ["clause_cuts"]), "p": substring_keys(PRE_NEG),
                        "s": substring_keys([w for ws in SIDE_WORDS.values() for w in ws] + _SEV_WORDS.split("|")),
                        "z": _UNITS, "u": substring_keys(UNCERTAIN),
                        "b": substring_keys(list(SIDE_WORDS.get("bilateral", ())) + list(_READ["both_sides"])),
                        "n": substring_keys(POST_NEG),
                        # and the attribute readers' (Mention._attr): lobe or zone, interval word, said of the past
                        "l": _LOBE_OR_ZONE_KEYS, "i": tuple(lx.INTERVAL_DIRECTION), "h": _PAST_KEYS})
_ALL_SCANS = "cpszubnlih"


@functools.lru_cache(maxsize=32768)
def read_sentence(sent: str) -> tuple[_Reading, ...]:
    """The finding mentions of one sentence with polarity, hedging, side, size and severity.

    Cached by sentence text: radiology reports repeat their sentences ("No pneumothorax.", "The lungs
    are clear."): on the IU dev reports more than half of the body sentences of a report occur in an
    earlier one. Only the sentence decides a mention's reading (negation scope ends at the sentence).
    The patterns run on the lower-cased sentence when it is ASCII (see :func:`_for_lower_case`); every
    text kept (terms, triggers) is cut from the sentence as written.
    """
    if plain_ascii(sent):
        low, pat = sent.lower(), _LOWER_CASE
    else:
        low, pat = sent, _ANY_CASE
    first = pat.term.search(low)  # most sentences name no finding: one search, no scanner, no list
    if first is None:
        return ()
    # the rest as finditer goes on after its first match (a term is never empty)
    terms = [first.span()] + [(m.start(), m.end()) for m in pat.term.finditer(low, first.end())]
    scans = _SCAN_KEYS.marks(low) if pat is _LOWER_CASE else _ALL_SCANS  # the scans below that can find anything
    hi = len(sent)
    cuts = [(m.start(), m.end()) for m in pat.clause.finditer(low)] if "c" in scans else []
    pres, pseudos = [], []
    for m in pat.pre.finditer(low) if "p" in scans else ():  # pseudo-triggers all begin with a negation word
        pres.append((m.start(), m.end(), sent[m.start(): m.end()]))
        ps = pat.pseudo.match(low, m.start())
        if ps:
            pseudos.append((ps.start(), ps.end(), sent[ps.start(): ps.end()]))
    # terminators only bound the scope of a negation word: none, nothing to bound
    stops = [m.end() for m in pat.terminator.finditer(low)] if pres else []
    unc = None  # hedges: read when a term is not negated
    sides, sevs = [], []
    for m in pat.side_or_severity.finditer(low) if "s" in scans else ():  # two classes, one pass
        if m.group("side"):
            sides.append((m.start(), m.end(), _side_word(m.group("side"))))
        else:
            sevs.append((m.start(), m.end(), m.group("sev").lower()))
    sizes = [(m.start(), m.end(), _to_mm(m.group(1), m.group(2))) for m in pat.size.finditer(low)] \
        if "z" in scans else []  # a size has a unit
    named = {s[2] for s in sides}  # the sides the sentence names
    the_side = next(iter(named)) if len(named) == 1 else None
    both = None
    out = []
    for ms, me in terms:
        cs, ce = _clause_bounds(cuts, 0, hi, ms) if cuts else (0, hi)
        negated = uncertain = pseudo = False
        trigger = None
        pre: tuple[int, int, str] | None = None
        if pres:  # plain loops: a generator costs more than the few items they look at
            scope = cs  # the last terminator between the clause's start and the term, else the clause's start
            for t in stops:
                if cs <= t <= ms and t > scope:
                    scope = t
            for p in reversed(pres):  # the nearest negation word before the term, in its scope
                if scope <= p[0] and p[1] <= ms:
                    pre = p
                    break
        if pre and len(sent[pre[1]:ms].split()) <= 12:
            covering = next((p for p in pseudos if p[0] <= pre[0] < p[1] and p[0] >= scope), None) if pseudos else None
            if covering:
                pseudo, trigger = True, covering[2]
            else:
                negated, trigger = True, pre[2]
        if not negated and not pseudo:
            trigger = _post_trigger(pat.post, sent, low, me, ce) if "n" in scans else None  # none of its keys: none
            negated = trigger is not None
        if not negated:
            if unc is None:
                unc = [(m.start(), m.end(), sent[m.start(): m.end()]) for m in pat.uncertain.finditer(low)] \
                    if "u" in scans else []
            u = next((u for u in unc if cs <= u[0] and u[1] <= ms), None) if unc else None  # a hedge before the term
            if u is None and unc:
                u = next((u for u in unc if me <= u[0] < ce and _UNCERTAIN_POST.fullmatch(u[2])), None)
            if u:
                uncertain, trigger = True, trigger or u[2]
        side = _nearest(sides, cs, ce, ms) if sides else None
        side_word = side[2] if side else None
        if side_word in ("left", "right"):
            if both is None:
                both = "b" in scans and bool(pat.both_sides.search(low))
            if both:
                side_word = "bilateral"  # "right greater than left", "bilateral ... right"
        size = _nearest(sizes, cs, ce, ms) if sizes else None
        sev = _own_severity(sevs, terms, cs, ce, ms, me, low) if sevs else None
        sentence_side = the_side if side_word is None else None
        word = sent[ms:me]
        out.append(_Reading(term_type(word), word, ms, me, negated, uncertain, pseudo, trigger, side_word,
                            size[2] if size else None, (size[0], size[1]) if size else None, sev[2] if sev else None,
                            (cs, ce), pre[0] if pre and (negated or pseudo) else None, sentence_side, scans))
    return tuple(out)


# every negation that follows its term (POST_NEG) holds one of these (derived from the phrases; None: no pre-test); in
# a lower-cased ASCII sentence, a clause tail without any of them needs no regex
_POST_KEYS = substring_keys(POST_NEG)


def _post_trigger(post: re.Pattern[str], sent: str, low: str, me: int, ce: int) -> str | None:
    """A negation said after the term within its clause ("effusion is not seen"), as written, or None."""
    after = low[me:ce]
    if post is not _POST and _POST_KEYS is not None and not any(map(after.__contains__, _POST_KEYS)):
        return None
    stripped = after.lstrip()
    m = post.match(stripped)
    if m:
        at = me + len(after) - len(stripped)
    else:
        m = post.search(after[:40])
        at = me
    return sent[at + m.start(): at + m.end()].strip() if m else None


_PER_SENTENCE: list[Any] = []  # the caches of per_sentence functions


def per_sentence(fn: Any) -> Any:
    """Cache ``fn``, a function of one sentence's (or one section's) text, the way :func:`read_sentence` is cached
    (reports repeat their sentences and whole sections); :func:`clear_caches` empties it with the others."""
    cached = functools.lru_cache(maxsize=32768)(fn)
    _PER_SENTENCE.append(cached)
    return cached


def clear_caches() -> None:
    """Forget the sentences read so far (benchmarks time a cold start with this)."""
    read_sentence.cache_clear()
    for cached in _PER_SENTENCE:
        cached.cache_clear()
    _sections.clear_caches()


_NOT_READ = frozenset({"indication", "comparison"})  # what the patient was sent for, which prior: no finding of this study


def analyze(text: str) -> Analysis:
    """Sections, sentences and finding mentions of a report (each sentence read by :func:`read_sentence`;
    INDICATION and COMPARISON are split into sentences but not read for findings)."""
    sections = split_sections(text)
    sentences = split_sentences(text, sections)
    a = Analysis(text, sections, sentences)
    mentions = a.mentions
    for index, sent in enumerate(sentences):
        if sent.section in _NOT_READ:
            continue
        readings = read_sentence(sent.text)
        if not readings:
            continue
        off = sent.start
        for r in readings:
            size = r.size_text
            mentions.append(Mention(r.type, r.text, r.start + off, r.end + off, index, sent.section, r.negated,
                                    r.uncertain, r.pseudo, r.trigger, r.side, r.size_mm,
                                    (size[0] + off, size[1] + off) if size else None, r.severity, sent.label,
                                    r.sentence_side, r, sent.text))
    # A report whose text holds no finding term has no mention. A term read in a sentence is a term of the text
    # (tested where it stands, not by a scan of the whole text) unless a lookahead of the term saw past the sentence.
    if mentions and not _TERM.match(text, mentions[0].start) and not _TERM.search(text):
        a.mentions = []
    return a


_PRIOR_NAMED = re.compile(_READ["prior_named"], re.I)


@per_sentence
def _says_no_prior(comparison: str) -> bool:
    return bool(NO_PRIOR.match(comparison)) or not comparison.strip()


def prior_status(a: Analysis) -> str:
    """``none`` (COMPARISON says there is no prior), ``prior`` (a prior is named) or ``unknown``."""
    comp = a.section("comparison")
    if comp is not None:
        return "none" if _says_no_prior(comp.text) else "prior"
    if _PRIOR_NAMED.search(a.text):
        return "prior"
    return "unknown"

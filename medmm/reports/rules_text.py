"""Transcription rules: repeated sentences, homophones in context, non-words, real-word dictation errors.

Non-words: a word neither English nor radiology vocabulary (nor built from known parts: "bihilar",
"nodularity", "redemonstrated") that has a correction at edit distance 1.

Real words in the wrong place ("calcified granola", "hilarious lymph nodes", "pleural infusion"):
a word that the radiology plausibility model has never seen, close in spelling to a radiology word
that the model *has* seen next to the same neighbour. The model is counts of words and word pairs
(:class:`medmm.reports.language.ReportLM`); the rule names the word it would expect.
"""

from __future__ import annotations

import bisect
import functools
import operator
import os
import re
from dataclasses import dataclass
from itertools import compress, islice
from typing import Any

import jellyfish

from medmm.reports import lexicon as lx
from medmm.reports.analysis import Analysis, _for_lower_case, plain_ascii
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language import (
    ReportLM,
    english_words,
    known_words,
    medical_words,
    packaged_lm,
    radiology_words,
    speller,
)
from medmm.reports.language_pack import language_pack
from medmm.reports.registry import FlagSpec, declare

# sound-alike words in a context only the other word fits: data (the language pack's ``homophones``)
_HOMOPHONE_DATA = language_pack()["homophones"]
_HOMOPHONES = [(re.compile(e["pattern"], re.I), e["says"]) for e in _HOMOPHONE_DATA]
_HOMOPHONE_CUES = tuple(tuple(e["cues"]) for e in _HOMOPHONE_DATA)
_ANY_HOMOPHONE_CUE = tuple(c for cues in _HOMOPHONE_CUES for c in cues)
# Each pattern needs one of its entry's ``words`` as a whole word: in ASCII text, a report none of whose words of four
# letters or more is one of them holds no homophone error (None: an entry names a shorter word, so no such pre-test)
_WORDS_OF = [w for e in _HOMOPHONE_DATA for w in e["words"]]
_HOMOPHONE_WORDS = frozenset(_WORDS_OF) if all(len(w) >= 4 for w in _WORDS_OF) else None
_ENTRY_WORDS = tuple(frozenset(e["words"]) for e in _HOMOPHONE_DATA)  # the same test for each entry's own pattern
_ENTRIES_OF: dict[str, tuple[int, ...]] = {w: tuple(i for i, ws in enumerate(_ENTRY_WORDS) if w in ws) for w in _WORDS_OF}
_HOMOPHONES_LOWER = [_for_lower_case(pattern) for pattern, _ in _HOMOPHONES]  # the same spans on plain ASCII text
_WORD = re.compile(r"\b[A-Za-z][a-z]{3,}\b")
# known words with a prefix and/or suffix are no typos ("bihilar", "nodularity"): data (the pack's ``non_word``)
_NON_WORD = language_pack()["non_word"]
_PREFIXES = tuple(_NON_WORD["prefixes"])
_SUFFIXES = tuple((str(suffix), str(repl)) for suffix, repl in _NON_WORD["suffixes"])
_MIN_STEM = int(_NON_WORD["min_stem"])


def _strip_suffix(word: str, known: frozenset[str]) -> bool:
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) + len(repl) >= _MIN_STEM:
            if word[: -len(suffix)] + repl in known:
                return True
    return False


@functools.lru_cache(maxsize=65536)
def _derived(word: str, known: frozenset[str]) -> bool:
    """Is ``word`` a known word with a common prefix and/or suffix ("bihilar", "nodularity")?"""
    if _strip_suffix(word, known):
        return True
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= _MIN_STEM:
            rest = word[len(prefix):].lstrip("-")
            if rest in known or _strip_suffix(rest, known):
                return True
    return False


@functools.lru_cache(maxsize=65536)
def _correction(word: str) -> str | None:
    """The most frequent candidate of pyspellchecker at edit distance 1, ties broken alphabetically
    (pyspellchecker's own ``correction()`` breaks ties by set order, which changes with PYTHONHASHSEED:
    the same report would get a different suggestion in another process). Cached: unknown words recur."""
    sp = speller()
    candidates = sp.candidates(word)
    if not candidates:
        return _domain_correction(word)
    domain = _domain_words()  # a radiology word first: "fissue" is "fissure" here, not "issue"
    return min(candidates, key=lambda c: (c not in domain, -sp[c], c))


_DOMAIN_DISTANCE = sorted((int(n), int(d)) for n, d in _NON_WORD.get("domain_distance") or ())


@functools.lru_cache(maxsize=1)
def _domain_by_start() -> dict[tuple[str, int], tuple[str, ...]]:
    """The medical and radiology vocabulary by first letter and length: the words a misspelling of a term that
    pyspellchecker's English list lacks ("demylination", "oropharynax") may stand for."""
    index: dict[tuple[str, int], list[str]] = {}
    for w in sorted(medical_words() | radiology_words()):
        if w.isalpha():
            index.setdefault((w[0], len(w)), []).append(w)
    return {k: tuple(v) for k, v in index.items()}


def _domain_only(word: str) -> bool:
    """A combining form ending in -o ("epicondylo-") that only the medical list corrects: no English word is near it
    (pyspellchecker corrects "inferio-medial", a misspelling of "infero-")."""
    return word.endswith("o") and not speller().candidates(word)


def _domain_correction(word: str) -> str | None:
    """The nearest medical word (Damerau-Levenshtein, jellyfish) within the distance the language pack allows a word
    this long (``non_word.domain_distance``), the first letter kept; ties to the longest shared beginning, then the
    alphabet. pyspellchecker looks only in its own list at distance 1, which lacks most anatomy and pathology terms.
    Another form of a medical word (:func:`_relatives`: "lymphoproliferative"/"lymphoproliferation") is no
    misspelling of it."""
    limit = max((d for n, d in _DOMAIN_DISTANCE if len(word) >= n), default=0)
    if not limit:
        return None
    index = _domain_by_start()
    best: tuple[int, int, str] | None = None
    for length in range(len(word) - limit, len(word) + limit + 1):
        for cand in index.get((word[0], length), ()):
            d = jellyfish.damerau_levenshtein_distance(word, cand)
            if d <= limit and not _relatives(word, cand):  # "radiocapitellum"/"radiocapitellar": a form, no typo
                shared = len(os.path.commonprefix((word, cand)))
                if best is None or (d, -shared, cand) < best:
                    best = (d, -shared, cand)  # the nearest; then the longest shared beginning
    return best[2] if best else None


@functools.lru_cache(maxsize=1)
def _domain_words() -> frozenset[str]:
    """Radiology vocabulary (the packaged list and the packaged model's words): the corrections a report means."""
    return radiology_words() | frozenset(packaged_lm().unigrams)


@declare(FlagSpec(id='repetition', type='transcription', family='transcription', reads=('findings', 'impression'), explains='this sentence repeats the one before it word for word', example='FINDINGS: The lungs are clear. The lungs are clear.\n\nIMPRESSION: Normal.', clean='FINDINGS: The lungs are clear. The heart is normal.\n\nIMPRESSION: Normal.'),
         FlagSpec(id='repetition_distant', type='transcription', family='transcription', reads=('findings', 'impression'), explains='this sentence repeats an earlier one word for word: {quote}', example='FINDINGS: The lungs are clear of any focal consolidation. No effusion. The lungs are clear of any focal consolidation.\n\nIMPRESSION: Normal.', clean='FINDINGS: The lungs are clear of any focal consolidation. No effusion.\n\nIMPRESSION: Normal.'))
def rule_repetition(a: Analysis, header: Any = None) -> list[Flag]:
    """A sentence repeated word for word: at once (dictation stutter), or later when it is a real sentence."""
    flags: list[Flag] = []
    plain = [s.text.lower().rstrip(".;!? ") for s in a.sentences]
    if len(set(plain)) == len(plain):
        return flags  # the common case: no sentence occurs twice
    seen: dict[tuple[str, str | None, str], int] = {}
    for i, sent in enumerate(a.sentences):
        if sent.section in ("indication", "comparison", "technique"):
            continue
        words = [w for w in sent.text.lower().rstrip(".;!? ").split() if "xxxx" not in w]
        if not words:
            continue  # de-identification tokens only
        key = (sent.section, sent.label, " ".join(words))  # organ sub-headings repeat "Unremarkable." by design
        if key in seen and seen[key] == i - 1:
            flags.append(make_flag("repetition", a.text, sent.start, sent.end,
                                   "this sentence repeats the one before it word for word"))
        elif key in seen and len(words) >= 5:
            flags.append(make_flag("repetition_distant", a.text, sent.start, sent.end,
                                   f"this sentence repeats an earlier one word for word: \"{a.sentences[seen[key]].text}\""))
        seen[key] = i
    return flags


# A word of any length, or two words, said twice in a row ("the the", "to the to the"); not a part of a hyphenated or
# slashed compound ("dual-port Port-A-Cath"). Letters only: numbers repeat in tables and fractions ("1 1/2").
_STUTTER = re.compile(r"(?<![-/])\b([A-Za-z]+(?:\s+[A-Za-z]+)?)\s+\1\b(?![-/])", re.I)
_NOT_STUTTER = frozenset(" ".join(w.lower().split()) for w in language_pack()["not_stutter"])
_STUTTER_LOWER = _for_lower_case(_STUTTER)  # the same spans on lower-cased plain ASCII text (plain_ascii), faster


_NOT_STUTTER_ASCII = frozenset(w for w in _NOT_STUTTER if w.isascii())  # the only ones the pre-test's words can be
# The de-identification token XXXX stands in runs ("XXXX XXXX", "XXXX and XXXX") in most IU reports: it is one of
# the legitimate doubles, so the pre-test passes over those runs (dropping it from the word list first cost more).


def _repeats(same: bytes, step: bytes, words: list[str]) -> bool:
    """Does ``same`` (1 where a word equals the one ``len(step)`` words on) mark a repeat of no legitimate double?"""
    i = same.find(step)
    while i >= 0:
        if words[i] not in _NOT_STUTTER_ASCII and words[i + len(step) - 1] not in _NOT_STUTTER_ASCII:
            return True
        i = same.find(step, i + 1)
    return False


def _may_stutter(a: Analysis) -> bool:
    """Could :data:`_STUTTER` find words to flag? Only if the word list holds a word equal to the next one, or two
    words equal to the next two, that are no legitimate double ("XXXX XXXX"). A pre-test at C speed (the regex with
    its back-reference costs several times more and runs only when this passes): the words equal to the one one (two)
    words on, kept by ``compress``, against the legitimate doubles; for two words then the equalities as bytes,
    searched for two 1s in a row. In non-ASCII text the
    case-insensitive regex knows letters that the ASCII split does not, so the regex decides."""
    if not a.text.isascii():
        return True
    words = a.word_list()  # the words of [a-z]+ (shared with the other rules: split once per analysis)
    eq = operator.eq  # faster through map than str.__eq__
    # one word: a word equal to the next that is no legitimate double, in one C pass (compress keeps the words equal
    # to the next; the double "XXXX XXXX" of most IU reports among them). Two words: their first word equals the word
    # two on and is no legitimate double (the same C pass), and only then the bytes of the equalities, searched for
    # two 1s in a row. islice, not a slice: no copy of the list
    return (not _NOT_STUTTER_ASCII.issuperset(compress(words, map(eq, words, islice(words, 1, None))))
            or (not _NOT_STUTTER_ASCII.issuperset(compress(words, map(eq, words, islice(words, 2, None))))
                and _repeats(bytes(map(eq, words, islice(words, 2, None))), b"\x01\x01", words)))


def _stutter(phrase: str) -> bool:
    """A repeated word or word pair that is a slip, not one of the language pack's legitimate doubles."""
    words = phrase.lower().split()
    return " ".join(words) not in _NOT_STUTTER and not any(w in _NOT_STUTTER for w in words)


@declare(FlagSpec(id='word_repetition', type='transcription', family='transcription', reads=('technique', 'findings', 'impression'), explains='{word} is repeated', example='FINDINGS: Left basilar atelectasis atelectasis.\n\nIMPRESSION: Atelectasis.', clean='FINDINGS: Left basilar atelectasis.\n\nIMPRESSION: Atelectasis.'))
def rule_word_repetition(a: Analysis, header: Any = None) -> list[Flag]:
    """The same word, or the same two words, twice in a row ("atelectasis atelectasis", "the the", "to the to the"):
    dictation stutter."""
    flags: list[Flag] = []
    if not _may_stutter(a):
        return flags  # the common case, decided on the word list
    pattern, searched = (_STUTTER_LOWER, a.lower_text()) if plain_ascii(a.text) else (_STUTTER, a.text)
    for sec in a.sections:  # the technique too: the radiologist dictates it ("prior to the to the scan")
        if sec.name in ("indication", "comparison"):
            continue  # the clinician's question; dates and prior studies
        for m in pattern.finditer(searched, sec.start, sec.end):
            said = a.text[m.start(1): m.end(1)]  # as written (the search may run on the lower-cased text)
            if _stutter(said):
                flags.append(make_flag("word_repetition", a.text, m.start(), m.end(),
                                       f"\"{' '.join(said.split())}\" is repeated"))
    return flags


@declare(FlagSpec(id='homophone', type='transcription', family='transcription', reads=('any',), explains='likely homophone error: {word} for {word meant}', example='FINDINGS: Their is a small left pleural effusion.\n\nIMPRESSION: Effusion.', clean='FINDINGS: There is a small left pleural effusion.\n\nIMPRESSION: Effusion.'),
         gate=(_HOMOPHONE_WORDS,))
def rule_homophone(a: Analysis, header: Any = None) -> list[Flag]:
    """Sound-alike words in a context where only the other word fits ("plural effusion")."""
    flags: list[Flag] = []
    entries: Any = range(len(_HOMOPHONES))  # the entries that may match (ASCII text: those the report's words need)
    low = a.lower_text()
    if _HOMOPHONE_WORDS is not None and a.text.isascii():
        words = a.lower_words()[1]
        if words.isdisjoint(_HOMOPHONE_WORDS):
            return flags  # the common case: one set test
        # the entries some word of the report is needed by, in the pack's order (one or two: not all 26 entries, nor
        # the cues of all of them searched in the whole text)
        entries = sorted({i for w in words & _HOMOPHONE_WORDS for i in _ENTRIES_OF[w]})
    elif not any(map(low.__contains__, _ANY_HOMOPHONE_CUE)):
        return flags  # no cue word at all (substring tests in C)
    lower = plain_ascii(a.text)  # search the lower-cased text with the ASCII patterns: the same spans, faster
    for i in entries:
        if not any(c in low for c in _HOMOPHONE_CUES[i]):  # cheap substring test before the regex
            continue
        (pattern, why), pattern_lower = _HOMOPHONES[i], _HOMOPHONES_LOWER[i]
        for m in pattern_lower.finditer(low) if lower else pattern.finditer(a.text):
            flags.append(make_flag("homophone", a.text, m.start(), m.end(), f"likely homophone error: {why}"))
    return flags


def _body_sections(a: Analysis) -> list:
    return [s for s in a.sections if s.name not in ("indication", "comparison", "technique")]


@functools.lru_cache(maxsize=65536)
def _non_word_fix(word: str, known: frozenset[str]) -> str | None:
    """The correction of a lower-case word that is no word (None for a word, a derived word, or no correction)."""
    if word in known or _derived(word, known):
        return None
    other = _us_spelling(word)  # "tumour", "haematoma", "calibre": known words spelt the British way
    if other != word and (other in known or _derived(other, known)):
        return None
    fix = _correction(word) or _run_together(word, known)
    return fix if fix and fix != word else None


_BRITISH = tuple((re.compile(pattern), repl) for pattern, repl in _NON_WORD.get("british_spellings") or ())


def _us_spelling(word: str) -> str:
    """``word`` with the pack's British spellings (``non_word.british_spellings``) made American."""
    for pattern, repl in _BRITISH:
        word = pattern.sub(repl, word)
    return word


_JOINED = frozenset(_NON_WORD.get("run_together") or ())


def _run_together(word: str, known: frozenset[str]) -> str | None:
    """Two words written without the space between them, one of the language pack's ``non_word.run_together``
    ("carinaand", "theterminal", "rightpulmonary", "atretrocaval"): the pair, the other word a known one of four
    letters or more. A two-letter word only in front: at the end they are Latin and name endings ("cornealis",
    "Woodson")."""
    for i in range(2, len(word) - 1):
        left, right = word[:i], word[i:]
        if (left in _JOINED and len(right) >= 4 and right in known) or \
                (len(right) > 2 and right in _JOINED and len(left) >= 4 and left in known):
            return f"{left} {right}"
    return None


_LOWER_WORD = re.compile(r"\b[a-z]{4,}\b")


@functools.lru_cache(maxsize=2)
def _sorted_vocabulary(known: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(known))


def _combining_form(word: str, known: frozenset[str]) -> bool:
    """Does some known word begin with ``word`` and go on (``teno`` of "tenosynovitis", ``nephro`` of
    "nephrolithiasis")? Then ``word`` written before a hyphen is that word's prefix split off ("teno-osseous")."""
    vocab = _sorted_vocabulary(known)
    i = bisect.bisect_right(vocab, word)
    return i < len(vocab) and vocab[i].startswith(word) and len(vocab[i]) >= len(word) + 3


def _eponym(text: str, start: int, end: int) -> bool:
    """Is ``text[start:end]`` a capitalised name joined by a hyphen to another capitalised name ("Killian-Jamieson",
    "Legg-Calve-Perthes")? Eponyms are names, in no word list; a misspelling is seldom capitalised on both sides."""
    if not text[start].isupper() or text[start:end].isupper():
        return False
    after = text[end + 1: end + 2] if text.startswith("-", end) else ""
    before = text[start - 2: start - 1] if start >= 2 and text[start - 1] == "-" else ""
    if after.isupper():
        return True
    if before.isalpha():
        i = start - 2
        while i > 0 and text[i - 1].isalpha():
            i -= 1
        return text[i].isupper()
    return False


_EPONYM_HEADS = frozenset(_NON_WORD.get("eponym_heads") or ())
_NEXT_WORD = re.compile(r"[ \t]+([a-z]+)\b")


def _named(text: str, start: int, end: int) -> bool:
    """Is the capitalised word ``text[start:end]`` a name ("Wegener's granulomatosis", "Batson's plexus", "a Kummell
    disease")? Possessive, or inside its sentence (after a lower-case word or a comma) before one of the pack's
    ``non_word.eponym_heads``. A misspelling is seldom capitalised there; one opening a sentence is, and is still
    flagged before a head noun ("Diveriticular disease")."""
    if not text[start].isupper() or text[start:end].isupper():
        return False
    if text.startswith(("'s", "\u2019s"), end) and not text[end + 2: end + 3].isalpha():
        return True
    m = _NEXT_WORD.match(text, end)
    if m is None or m.group(1) not in _EPONYM_HEADS:
        return False
    before = text[max(0, start - 40):start].rstrip(" \t")
    return bool(before) and (before[-1] == "," or before[-1].islower())


def _unknown_word(word: str, lm: ReportLM | None) -> bool:
    """The non-word rule's word gate: a word it reads (four letters or more) that no vocabulary knows."""
    return len(word) > 3 and word not in known_words(lm)


@declare(FlagSpec(id='non_word', type='transcription', family='transcription', reads=('findings', 'impression', 'model'), explains='{word} is not a word; did you mean {correction}?', example='FINDINGS: Small left pleural effusoin.\n\nIMPRESSION: Effusion.', clean='FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Effusion.'),
         word_gate=_unknown_word)
def rule_non_word(a: Analysis, header: Any = None, lm: ReportLM | None = None) -> list[Flag]:
    """A word in no vocabulary, not derived from a known word, with a correction at edit distance 1."""
    known = known_words(lm)
    words = a.lower_words()[1]
    if known.issuperset(words):  # the common case: one membership pass in C, no new set, no per-word work
        return []
    unknown = words - known
    if not any(_non_word_fix(w, known) for w in unknown):
        return []  # only words built from known ones ("bihilar"), or no correction: nothing to flag
    flags = []
    for sec in _body_sections(a):
        for m in _WORD.finditer(sec.text):
            w = m.group(0)
            lw = w.lower()
            if lw in known:
                continue  # a word (what _non_word_fix says first, without its call)
            fix = _non_word_fix(lw, known)
            if fix and sec.text.startswith("-", m.end()) and (_combining_form(lw, known) or _domain_only(lw)):
                continue  # "teno-osseous", "epicondylo-olecranon": a prefix split off at a hyphen
            if fix and (_eponym(sec.text, m.start(), m.end()) or _named(sec.text, m.start(), m.end())):
                continue  # "Killian-Jamieson diverticulum", "Wegener's granulomatosis": names
            if fix:
                s = sec.start + m.start()
                flags.append(make_flag("non_word", a.text, s, s + len(w), f"\"{w}\" is not a word; did you mean \"{fix}\"?"))
    return flags


def _close(word: str, target: str) -> bool:
    """Spelling/sound closeness of a dictation confusion: edit distance <= 2, or one word extends the other."""
    if word == target or abs(len(word) - len(target)) > 4:
        return False
    if word.startswith(target) and len(target) >= 5:
        return True  # "hilarious" for "hilar" (plurals and derivations are ruled out by the caller)
    limit = 3 if len(word) + len(target) >= 16 and min(len(word), len(target)) >= 7 else 2
    if len(set(word) ^ set(target)) > 2 * limit:  # cheap bound before the edit distance
        return False
    return _edit_distance(word, target, limit) <= limit


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, stopping early past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


_MIN_DOMAIN_COUNT = 3  # how often the expected word must occur in the model to be suggested
_MAX_ENGLISH_FREQUENCY = 20_000  # everyday words ("appear", "level") are what they say, not a misheard term
# endings of two forms of one word, prefixes that make another form of it ("abnormal"), and neighbours too common
# to say which word belongs between them: data (the pack's ``real_word``)
_REAL_WORD = language_pack()["real_word"]
_DERIVATIONS = tuple(_REAL_WORD["derivations"])
_WORD_PREFIXES = frozenset(_REAL_WORD["word_prefixes"])
_STRONG_SUPPORT = 10  # a common English word ("cute", "table") is flagged only in a context this typical of the term
_RARE_IN_MODEL = 3  # a radiology word seen this rarely may still be a confusion where its neighbours never occur
_FUNCTION_WORDS = frozenset(_REAL_WORD["function_words"])
_NOT_CONFUSIONS = frozenset(_REAL_WORD.get("not_confusions") or ())  # counts ("eighth rib"), never a misheard word
_OPPOSITES = frozenset(frozenset(pair) for pair in _REAL_WORD.get("opposites") or ())  # "inferior"/"superior"


def _stems(word: str) -> set[str]:
    return {word[: len(word) - len(suf)] for suf in _DERIVATIONS if word.endswith(suf) and len(word) - len(suf) >= 3}


def _bare_plus_e(word: str, target: str) -> bool:
    """"lung"/"lunge", "car"/"care": a final -e makes another word, not another form."""
    longer, shorter = (word, target) if len(word) > len(target) else (target, word)
    return longer == shorter + "e" or longer == shorter + "es"


_SPELLING_VARIANTS = tuple((re.compile(pattern), repl) for pattern, repl in _REAL_WORD["spelling_variants"])


@functools.lru_cache(maxsize=16384)
def _one_spelling(word: str) -> str:
    """``word`` in one spelling of each variant pair of the pack ("disk" for "disc", "edema" for "oedema")."""
    for pattern, repl in _SPELLING_VARIANTS:
        word = pattern.sub(repl, word)
    return word


def _relatives(word: str, target: str) -> bool:
    """"nodular"/"nodule", "lobar"/"lobe", "previous"/"previously", "disk"/"disc": one word, two forms."""
    if _one_spelling(word) == _one_spelling(target):
        return True
    common = _stems(word) & _stems(target)
    if common and not _bare_plus_e(word, target) \
            and not any({word, target} == {stem + "e", stem + "s"} for stem in common):  # not "lunge"/"lungs"
        return True
    longer, shorter = (word, target) if len(word) > len(target) else (target, word)
    return longer.endswith(shorter) and longer[: len(longer) - len(shorter)] in _WORD_PREFIXES


@functools.lru_cache(maxsize=8)
def _domain_index(lm: ReportLM) -> dict[int, list[str]]:
    """Frequent model words by length (the candidates a confusion can be mistaken for)."""
    out: dict[int, list[str]] = {}
    for w, n in lm.unigrams.items():
        if n >= _MIN_DOMAIN_COUNT and (len(w) >= 5 or (len(w) == 4 and w not in _FUNCTION_WORDS)):
            out.setdefault(len(w), []).append(w)
    return out


@functools.lru_cache(maxsize=8)
def _domain_vocab(lm: ReportLM) -> frozenset[str]:
    return frozenset(lm.unigrams)


def _deletions(word: str, depth: int) -> set[str]:
    """Every string made by deleting up to ``depth`` letters (the SymSpell candidate index)."""
    out, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:k] + w[k + 1:] for w in frontier for k in range(len(w))}
        out |= frontier
    return out


def _depth(word: str) -> int:
    return 3 if len(word) >= 7 else 2


@functools.lru_cache(maxsize=8)
def _deletion_index(lm: ReportLM) -> dict[str, tuple[str, ...]]:
    """deletion variant -> frequent radiology words it comes from (built once per model)."""
    index: dict[str, set[str]] = {}
    for words in _domain_index(lm).values():
        for t in words:
            for d in _deletions(t, _depth(t)):
                index.setdefault(d, set()).add(t)
    return {k: tuple(sorted(v)) for k, v in index.items()}


@functools.lru_cache(maxsize=16384)
def _close_targets(word: str, lm: ReportLM) -> tuple[str, ...]:
    """Frequent radiology words a dictation error could have turned into ``word`` (cached per word): candidates
    from the deletion index (edit distance <= 2, or 3 for long words), and words that ``word`` extends."""
    index = _deletion_index(lm)
    vocab = _domain_vocab(lm)
    cands = {t for d in _deletions(word, _depth(word)) for t in index.get(d, ())}
    cands |= {word[:k] for k in range(5, len(word)) if word[:k] in vocab and lm.count(word[:k]) >= _MIN_DOMAIN_COUNT}
    close = {t for t in cands if _close(word, t)}
    return tuple(sorted(close | _sound_alikes(word, lm)))


# Dictation software mishears a word as one that sounds alike, however it is spelled ("pleural" -> "floral",
# "silhouette" -> "salute", "aortic" -> "erotic"): a radiology word whose Metaphone key (jellyfish, the field's
# phonetic-key library) is one edit from the word's key is a candidate too, when the keys are long enough to say
# something (3+) and the spellings are not wholly unlike (edit distance at most half the longer word).
_MIN_KEY = 3


def _key(word: str) -> str:
    return jellyfish.metaphone(word)


@functools.lru_cache(maxsize=8)
def _key_index(lm: ReportLM) -> dict[str, tuple[str, ...]]:
    """Metaphone key and its one-deletion variants -> frequent radiology words with that key (once per model)."""
    index: dict[str, set[str]] = {}
    for words in _domain_index(lm).values():
        for t in words:
            k = _key(t)
            if len(k) >= _MIN_KEY:
                for d in _deletions(k, 1):
                    index.setdefault(d, set()).add(t)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def _sound_alikes(word: str, lm: ReportLM) -> set[str]:
    k = _key(word)
    if len(k) < _MIN_KEY:
        return set()
    index = _key_index(lm)
    cands = {t for d in _deletions(k, 1) for t in index.get(d, ())}
    return {t for t in cands if t != word and _edit_distance(k, _key(t), 1) <= 1
            and _edit_distance(word, t, max(len(word), len(t)) // 2) <= max(len(word), len(t)) // 2}


@functools.lru_cache(maxsize=8)
def _neighbours(lm: ReportLM) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """For each word of the model: the words seen before it and after it, with counts."""
    left: dict[str, dict[str, int]] = {}
    right: dict[str, dict[str, int]] = {}
    for pair, n in lm.bigrams.items():
        first, _, second = pair.partition(" ")
        left.setdefault(second, {})[first] = n
        right.setdefault(first, {})[second] = n
    return left, right


@dataclass(frozen=True)
class _Confusion:
    """What a word could be a confusion for: close radiology words, and the content neighbours that would say so
    (left neighbour -> (target, count); right neighbour -> (target, count))."""

    left: dict[str, tuple[str, int]]
    right: dict[str, tuple[str, int]]
    neighbours: frozenset[str] = frozenset()  # the keys of both (one C-level set test per report)

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbours", frozenset(self.left) | frozenset(self.right))


_NO_CONFUSION = _Confusion({}, {})
class _ConfusionCache:
    """Per model: the words decided to be no possible confusion (a set, for one C-level difference per report) and
    the possible confusions with what would say so."""

    def __init__(self, lm: ReportLM) -> None:
        self.lm = lm
        self.plain: set[str] = set()
        self.possible: dict[str, _Confusion] = {}
        self.possible_words: set[str] = set()  # the keys of ``possible`` (a set: set operations stay in C)
        self.seen: set[str] = set()  # plain | possible_words

    def may_confuse(self, word: str) -> bool:
        """May ``word`` be a confusion (decided once, as :meth:`candidates` does)?"""
        if word not in self.seen:
            self.candidates({word})
        return word in self.possible_words

    def candidates(self, words: set[str]) -> dict[str, _Confusion]:
        for w in () if self.seen.issuperset(words) else words - self.seen:  # words met for the first time (the
            # common case, none: one membership pass in C and no new set)
            c = _build_confusion(w, self.lm)
            if c is _NO_CONFUSION:
                self.plain.add(w)
            else:
                self.possible[w] = c
                self.possible_words.add(w)
            self.seen.add(w)
        out = {}
        for w in words & self.possible_words:
            c = self.possible[w]
            if not words.isdisjoint(c.neighbours):
                out[w] = c
        return out


@functools.lru_cache(maxsize=8)
def _confusion_cache(lm: ReportLM) -> _ConfusionCache:
    return _ConfusionCache(lm)


def _build_confusion(word: str, lm: ReportLM) -> _Confusion:
    seen = lm.count(word)
    english = english_words()
    is_english = word in english or (word.endswith("s") and word[:-1] in english)  # "granolas"
    if len(word) < 4 or seen >= _RARE_IN_MODEL or not is_english or word in radiology_words() \
            or word in _NOT_CONFUSIONS or _derived(word, _domain_vocab(lm)):
        return _NO_CONFUSION
    targets = [t for t in _close_targets(word, lm)
               if not _relatives(word, t) and frozenset((word, t)) not in _OPPOSITES]
    if not targets:
        return _NO_CONFUSION
    # an everyday word ("cute", "table"), or a rare radiology word, needs a strong left context ("no cute")
    strong = speller().word_frequency[word] > _MAX_ENGLISH_FREQUENCY or seen > 0
    lefts, rights = _neighbours(lm)
    left: dict[str, tuple[str, int]] = {}
    right: dict[str, tuple[str, int]] = {}
    for t in targets:
        for prev, n in lefts.get(t, {}).items():
            if prev not in _FUNCTION_WORDS and n >= (_STRONG_SUPPORT if strong else 1) and n > left.get(prev, ("", 0))[1]:
                left[prev] = (t, n)
        for nxt, n in rights.get(t, {}).items():  # a right neighbour alone is weaker evidence
            if nxt in _FUNCTION_WORDS or n <= right.get(nxt, ("", 0))[1]:
                continue
            # an everyday word the model never saw needs a right neighbour that the term nearly always stands before
            # ("cute cardiopulmonary": "cardiopulmonary" follows "acute" in the model 41 times of 41)
            if (n >= 2) if not strong else (seen == 0 and n >= _STRONG_SUPPORT
                                            and n >= _STRONG_RIGHT_SHARE * _right_totals(lm)[nxt]):
                right[nxt] = (t, n)
    return _Confusion(left, right) if left or right else _NO_CONFUSION


_TOKEN = re.compile(r"[A-Za-z]+|[.;:!?]")


def _neighbour_words(text: str, start: int, end: int, lo: int, hi: int) -> tuple[str | None, str | None]:
    """The words just before and after ``text[start:end]`` within [lo, hi), not across a sentence or XXXX."""
    before = _TOKEN.findall(text, max(lo, start - 40), start)
    after = _TOKEN.search(text, end, min(hi, end + 40))
    prev = before[-1] if before and before[-1][0].isalpha() and before[-1] != "XXXX" else None
    nxt = after.group(0) if after and after.group(0)[0].isalpha() and after.group(0) != "XXXX" else None
    return (prev.lower() if prev else None), (nxt.lower() if nxt else None)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what \w is to Python's regex engine


def _whole_word_starts(low: str, word: str, lo: int, hi: int) -> list[int]:
    """Where ``word`` (letters) stands as a whole word in ``low[lo:hi]`` (the matches of ``\bword\b`` in that
    slice, offsets in ``low``), found with str.find instead of a regex compiled per word."""
    out = []
    i = low.find(word, lo, hi)
    while i >= 0:
        j = i + len(word)
        if (i == lo or not _is_word_char(low[i - 1])) and (j == hi or not _is_word_char(low[j])):
            out.append(i)
            i = low.find(word, j, hi)
        else:
            i = low.find(word, i + 1, hi)
    return out


def _other_side_disagrees(lm: ReportLM, word: str, other: str | None, other_is_after: bool) -> bool:
    """Does the neighbour on the other side say ``word`` is no confusion? It does when it is a content word never seen
    in the model beside any radiology word ``word`` could stand for ("right inguinal hernia": "right internal" fits
    on the left, but the model has no "internal hernia")."""
    if other is None or other in _FUNCTION_WORDS:
        return False
    targets = [t for t in _close_targets(word, lm) if not _relatives(word, t)]
    return not any(lm.pair(t, other) if other_is_after else lm.pair(other, t) for t in targets)


@functools.lru_cache(maxsize=8)
def _left_totals(lm: ReportLM) -> dict[str, int]:
    """How often each word of the model stands before another word."""
    _, rights = _neighbours(lm)
    return {w: sum(after.values()) for w, after in rights.items()}


@functools.lru_cache(maxsize=8)
def _right_totals(lm: ReportLM) -> dict[str, int]:
    """How often each word of the model stands after another word."""
    lefts, _ = _neighbours(lm)
    return {w: sum(before.values()) for w, before in lefts.items()}


# the share of a right neighbour's word pairs that a term must open for an everyday word before it to be read as
# that term misheard (chosen on the tune split: "cardiopulmonary" after "acute" 41 of 41, not "fracture" 0.30; and on
# the CT/MR dev reports: "loss" after "weight" 11 of 15 made "height loss" a false alarm at 0.5)
_STRONG_RIGHT_SHARE = 0.8


def _predicts(lm: ReportLM, prev: str | None, target: str) -> float:
    """The share of ``prev``'s next words that are ``target`` ("pleural" -> "effusion" 0.63; "right" -> "internal"
    0.03): how strongly the word before says which term belongs here."""
    total = _left_totals(lm).get(prev or "", 0)
    return lm.pair(prev or "", target) / total if total else 0.0


# A medical word (``medical_words``: the installed medical dictionary) that the model has not seen is a domain word
# the model's text did not cover (CT/MR anatomy in a model of chest radiographs: "inguinal", "facial", "retention"),
# not yet a word out of place: it is flagged on a left neighbour only when that neighbour predicts the term this
# strongly ("pleural infusion"), or when the right neighbour does not contradict the term. Chosen on the tune split of
# the real CT/MR and IU dev reports (0.05 kept "no facial" -> "no focal", 0.08; 0.2 gave the same flags as 0.1).
_PREDICTS = 0.1


def _weak_left_evidence(lm: ReportLM, word: str, prev: str | None, nxt: str | None, target: str,
                        outside: bool = False) -> bool:
    """Outside the model's modality (``outside``) a medical word whose right neighbour the model never saw after the
    term is no confusion however strongly the left neighbour predicts the term: CT/MR anatomy the radiograph model
    lacks ("left femoral head" is no "left temporal head", "temporal bone fracture" no "temporal lobe fracture",
    "left pectoral muscle", "large collateral vessels"; MedPix and CDEStaging CT tune: 4 false alarms, no right flag)."""
    return word in medical_words() and (outside or _predicts(lm, prev, target) < _PREDICTS) \
        and _other_side_disagrees(lm, word, nxt, True)


# The modality groups (lexicon ``modality_group``) of the text the packaged model was built from (chest radiographs):
# in a report of another modality (CT, MR) the model has not seen the language, so a word it never saw ("right
# cheek" in a maxillofacial CT, "no erosions" in a foot MR) is no evidence of a confusion by itself. There the left
# neighbour must predict the term (``_PREDICTS``) or the right neighbour must be seen after it ("pleural infusion
# and" is not enough; "no infusion or pneumothorax" is). A site's own model (``--lm``) is built from its own reports
# and keeps the plain rule. Outside the modality a right-side hit also needs a word before it (not the sentence's
# start: "Inferior vena cava" -> "superior vena") that the model does not clearly avoid before the term ("RIGHT
# eighth rib" -> "right right rib"). Chosen on the tune split of the CT/MR corpora (MTSamples, CDEStaging chest CT,
# MedPix teaching text); radiograph reports keep the plain rule. Data: the pack's ``real_word.model_modalities``.
_MODEL_MODALITIES = frozenset(_REAL_WORD.get("model_modalities") or ())
_SIDE_WORDS = frozenset(_REAL_WORD.get("side_words") or ())  # say a paired structure follows, not which
_PART_NOUNS = frozenset(_REAL_WORD.get("part_nouns") or ())  # "frontal bone", "upper dome": places, outside the model


_MODALITY_NAMES = {k: re.compile(v) for k, v in lx.MODALITY_WORDS.items()}


def _study_group(a: Analysis, header: Any) -> str | None:
    """The modality group of the study: the header's, else the one the technique/examination line names
    ("EXAM: CT abdomen and pelvis"), else the one the first body sentence naming a study names when it names no other
    study ("Axial CT images of the brain demonstrate ..."; not "compared with the prior CT"), else None. Without a
    header, teaching-file CT text named its study only in its sentences (MedPix CT tune: 4 real_word false alarms on
    CT anatomy, "left femoral head", "temporal bone", read as radiograph text)."""
    modality = (getattr(header, "modality", None) or "").upper()
    if modality:
        return lx.MODALITY_GROUP.get(modality)
    for sent in a.sentences:
        if sent.section == "technique":
            for name, pat in _MODALITY_NAMES.items():
                if pat.search(sent.text):
                    return name
    for sent in a.sentences:
        if sent.section in ("findings", "impression"):
            named = [name for name, pat in _MODALITY_NAMES.items() if pat.search(sent.text)]
            if named:
                low = sent.text.lower()
                return named[0] if len(named) == 1 and not any(c in low for c in lx.OTHER_STUDY_CUES) else None
    return None


_OUTSIDE_CUES = re.compile(_REAL_WORD.get("outside_model_cues") or r"(?!)")
_OUTSIDE_HEADINGS = frozenset(" ".join(h.lower().split()) for h in _REAL_WORD.get("outside_model_headings") or ())


def _outside_model(lm: ReportLM, a: Analysis, header: Any) -> bool:
    """Is this report of a modality the packaged model's text does not cover? Unknown (no header, no study named):
    covered, unless its findings read as cross-sectional or non-chest text (the pack's ``outside_model_cues``,
    ``outside_model_headings``: "hypodense", "(3:93)", "LYMPH NODES:", "ilium")."""
    if not _MODEL_MODALITIES or lm is not packaged_lm():
        return False
    group = _study_group(a, header)
    if group is None:
        return any(s.section in ("findings", "impression") and (
            (s.label is not None and " ".join(s.label.lower().split()) in _OUTSIDE_HEADINGS)
            or _OUTSIDE_CUES.search(s.text) is not None) for s in a.sentences)
    return group not in _MODEL_MODALITIES


def _never_before(lm: ReportLM, prev: str, target: str) -> bool:
    """Has the model never seen ``prev`` before ``target`` though it would expect to (their counts make the pair
    likely: "right right" never, where "significant degenerative" is merely unseen by a small model)?"""
    if lm.pair(prev, target):
        return False
    total = _token_total(lm)
    return bool(total) and lm.count(prev) * lm.count(target) / total >= 1.0


@functools.lru_cache(maxsize=8)
def _token_total(lm: ReportLM) -> int:
    return sum(lm.unigrams.values())


def _weak_right_evidence(lm: ReportLM, word: str, prev: str | None, target: str, nxt: str | None) -> bool:
    """Outside the model's modalities, is a right neighbour too little to call a medical word the model never saw (CT/MR
    anatomy: "pineal") a confusion? It is when the term opens few of the model's pairs ending in that neighbour
    (under ``_PREDICTS``: "renal" before "cyst" 0.03; "mediastinal" before "lymph" 0.15, "pleural" before "effusion"
    0.66) and the left neighbour is never seen before any term the word could stand for ("small pineal cyst": no
    "small renal"). Chosen on the tune split of the CT/MR corpora (the chest CT sentences' injected "medicinal lymph
    nodes" stay flagged)."""
    total = _right_totals(lm).get(nxt, 0) if nxt else 0
    if nxt and total and lm.pair(target, nxt) >= _PREDICTS * total:
        return False
    return prev is None or _other_side_disagrees(lm, word, prev, False)


def _seen_after(lm: ReportLM, target: str, nxt: str | None) -> bool:
    """Is ``nxt`` a content word the model has seen after ``target`` (the right neighbour agreeing with the term)?"""
    return nxt is not None and nxt not in _FUNCTION_WORDS and lm.pair(target, nxt) > 0


def _unsupported_left(lm: ReportLM, prev: str | None, nxt: str | None, target: str) -> bool:
    """Outside the model's modality: a left neighbour that does not predict the term, with no right neighbour seen
    after it, is too little to call a word unseen by the model a confusion."""
    if _predicts(lm, prev, target) >= _PREDICTS:
        return False
    return nxt is None or nxt in _FUNCTION_WORDS or not lm.pair(target, nxt)


def _possible_confusion(word: str, lm: ReportLM | None) -> bool:
    """The real-word rule's word gate: a word it reads (four letters or more) that may stand for a radiology word
    (the rule then asks whether a neighbour says so)."""
    return len(word) > 3 and _confusion_cache(lm or packaged_lm()).may_confuse(word)


@declare(FlagSpec(id='real_word', type='transcription', family='transcription', reads=('findings', 'impression', 'model'), explains='{word} is a real word but unexpected here; radiology text has {phrase} (dictation error?)', example='FINDINGS: A calcified granola in the right lung.\n\nIMPRESSION: Granuloma.', clean='FINDINGS: A calcified granuloma in the right lung.\n\nIMPRESSION: Granuloma.'),
         word_gate=_possible_confusion)
def rule_real_word(a: Analysis, header: Any = None, lm: ReportLM | None = None) -> list[Flag]:
    """An English word the radiology model has never seen, where a similar radiology word fits the neighbours."""
    model = lm or packaged_lm()
    low, words = a.lower_words()
    cands = _confusion_cache(model).candidates(words)
    if not cands:
        return []  # the common case: no word that could be a confusion next to a word that would say so
    flags = []
    outside: bool | None = None  # the study's modality group, read only when a word has a neighbour that says so
    for sec in _body_sections(a):
        for w, conf in cands.items():
            for s in _whole_word_starts(low, w, sec.start, sec.end):
                e = s + len(w)
                prev, nxt = _neighbour_words(a.text, s, e, sec.start, sec.end)
                hit = conf.left.get(prev) if prev else None
                side = "left"
                if hit is None and nxt:
                    hit, side = conf.right.get(nxt), "right"
                if hit is None:
                    continue
                target = hit[0]
                if outside is None:
                    outside = _outside_model(model, a, header)
                if side == "right" and outside and (not prev or _never_before(model, prev, target)):
                    continue  # "Inferior vena cava ..." opening a sentence; "anterior right eighth rib"
                if side == "right" and outside and w in medical_words() and _weak_right_evidence(model, w, prev, target, nxt):
                    continue  # "small pineal cyst" in a brain MR: anatomy the model never read, no "renal cyst"
                if side == "left" and _weak_left_evidence(model, w, prev, nxt, target, outside):
                    continue  # "right inguinal hernia": "right internal" fits on the left, "internal hernia" not
                if side == "left" and outside and prev in _SIDE_WORDS and w in medical_words():
                    continue  # "the left pectoral and shoulder muscles" in a chest CT: no "left temporal"
                if side == "left" and outside and w in _PART_NOUNS and not _seen_after(model, target, nxt):
                    continue  # "the left frontal bone" in a head CT: a part of the skull, no "frontal lobe"
                if side == "left" and outside and _unsupported_left(model, prev, nxt, target):
                    continue  # "soft tissue swelling of the right cheek." in a CT of the face
                said = f"{prev} {target}" if side == "left" else f"{target} {nxt}"
                flags.append(make_flag("real_word", a.text, s, e,
                                       f"\"{a.text[s:e]}\" is a real word but unexpected here; radiology text has "
                                       f"\"{said}\" (dictation error?)"))
    return flags


TEXT_RULES = (rule_repetition, rule_word_repetition, rule_homophone, rule_non_word, rule_real_word)

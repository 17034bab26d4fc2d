"""Transcription rules: repeated sentences, homophones in context, non-words, real-word dictation errors.

Non-words: a word neither English nor radiology vocabulary (nor built from known parts: "bihilar",
"nodularity", "redemonstrated") that has a correction at edit distance 1.

Real words in the wrong place ("calcified granola", "hilarious lymph nodes", "pleural infusion"):
a word that the radiology plausibility model has never seen, close in spelling to a radiology word
that the model *has* seen next to the same neighbour. The model is counts of words and word pairs
(:class:`medmm.reports.language.ReportLM`); the rule names the word it would expect.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from medmm.reports.analysis import Analysis
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language import ReportLM, english_words, known_words, packaged_lm, radiology_words, speller

_HOMOPHONES = [
    (re.compile(r"\bplural\s+(?:effusions?|spaces?|fluid|thickening|based|surfaces?|catheter|drain)\b", re.I),
     "\"plural\" for \"pleural\""),
    (re.compile(r"\bwrite(?:-sided)?\s+(?!(?:a|an|the|up|down|this|that|it|to|back|in|out|of)\b)[a-z]+", re.I),
     "\"write\" for \"right\""),
    (re.compile(r"\bknow\s+(?:evidence|acute|focal|pneumothorax|effusion|consolidation|fracture|significant)\b", re.I),
     "\"know\" for \"no\""),
    (re.compile(r"\btheir\s+(?:is|are)\b", re.I), "\"their\" for \"there\""),
    (re.compile(r"\b(?:ilium|ileal)\s+(?:lobe|lung)\b", re.I), "a bone/bowel word in a lung context"),
    (re.compile(r"\bdiscreet\s+(?:nodule|mass|lesion|opacity)", re.I), "\"discreet\" for \"discrete\""),
    (re.compile(r"\bhart\b|\bheart\s+sighs?\b", re.I), "misheard \"heart size\""),
    (re.compile(r"\bloose\s+of\b", re.I), "\"loose\" for \"loss\""),
    (re.compile(r"\bcite\s+of\b|\bsight\s+of\s+(?:the\s+)?(?:fracture|injury|insertion)", re.I), "\"cite/sight\" for \"site\""),
]
_HOMOPHONE_CUES = (("plural",), ("write",), ("know",), ("their",), ("ilium", "ileal"), ("discreet",), ("hart", "sigh"),
                   ("loose",), ("cite", "sight"))
_WORD = re.compile(r"\b[A-Za-z][a-z]{3,}\b")
_PREFIXES = ("bi", "mid", "peri", "para", "intra", "infra", "supra", "sub", "post", "pre", "hyper", "hypo", "retro",
             "trans", "non", "pseudo", "micro", "macro", "multi", "inter", "anti", "re", "un", "semi", "extra", "endo",
             "epi", "costo", "cardio", "broncho", "pleuro", "osteo", "neuro", "vaso", "peri", "hemi", "pan", "poly",
             "mono", "dys", "over", "under", "well", "ill", "self", "co", "de", "dis", "mis", "out", "up", "down")
_SUFFIXES = (("ity", ""), ("ities", ""), ("ness", ""), ("ly", ""), ("ally", ""), ("ically", "ic"), ("ation", "ate"),
             ("ations", "ate"), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("es", ""), ("s", ""), ("r", ""),
             ("ic", "ia"), ("ic", "y"), ("al", ""), ("al", "a"), ("ar", "a"), ("ous", ""), ("ary", "a"), ("ial", "ium"),
             ("ae", "a"), ("i", "us"), ("ic", "is"), ("tic", "sis"), ("ies", "y"), ("ied", "y"), ("er", ""))
_MIN_STEM = 4


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
    """pyspellchecker's best correction at edit distance 1 (cached: the same unknown words recur)."""
    return speller().correction(word)


def rule_repetition(a: Analysis, header: Any = None) -> list[Flag]:
    """A sentence repeated word for word: at once (dictation stutter), or later when it is a real sentence."""
    flags = []
    seen: dict[tuple[str, str], int] = {}
    for i, sent in enumerate(a.sentences):
        if sent.section in ("indication", "comparison", "technique"):
            continue
        words = [w for w in sent.text.lower().rstrip(".;!? ").split() if "xxxx" not in w]
        if not words:
            continue  # de-identification tokens only
        key = (sent.section, " ".join(words))
        if key in seen and seen[key] == i - 1:
            flags.append(make_flag("repetition", a.text, sent.start, sent.end,
                                   "this sentence repeats the one before it word for word"))
        elif key in seen and len(words) >= 5:
            flags.append(make_flag("repetition_distant", a.text, sent.start, sent.end,
                                   f"this sentence repeats an earlier one word for word: \"{a.sentences[seen[key]].text}\""))
        seen[key] = i
    return flags


def rule_homophone(a: Analysis, header: Any = None) -> list[Flag]:
    """Sound-alike words in a context where only the other word fits ("plural effusion")."""
    low = a.text.lower()
    flags = []
    for (pattern, why), cue in zip(_HOMOPHONES, _HOMOPHONE_CUES):
        if not any(c in low for c in cue):  # cheap substring test before the regex
            continue
        for m in pattern.finditer(a.text):
            flags.append(make_flag("homophone", a.text, m.start(), m.end(), f"likely homophone error: {why}"))
    return flags


def _body_sections(a: Analysis) -> list:
    return [s for s in a.sections if s.name not in ("indication", "comparison", "technique")]


def rule_non_word(a: Analysis, header: Any = None, lm: ReportLM | None = None) -> list[Flag]:
    """A word in no vocabulary, not derived from a known word, with a correction at edit distance 1."""
    known = known_words(lm)
    flags = []
    for sec in _body_sections(a):
        candidates = {w for w in _WORD.findall(sec.text) if w.lower() not in known}
        if not candidates:  # the common case: one set difference, no per-word work
            continue
        for m in _WORD.finditer(sec.text):
            w = m.group(0)
            if w not in candidates:
                continue
            low = w.lower()
            if _derived(low, known):
                continue
            fix = _correction(low)
            if fix and fix != low:
                s = sec.start + m.start()
                flags.append(make_flag("non_word", a.text, s, s + len(w), f"\"{w}\" is not a word; did you mean \"{fix}\"?"))
    return flags


def _close(word: str, target: str) -> bool:
    """Spelling/sound closeness of a dictation confusion: edit distance <= 2, or one word extends the other."""
    if word == target or abs(len(word) - len(target)) > 4:
        return False
    if len(set(word) ^ set(target)) > 4:  # cheap bound before the edit distance
        return word.startswith(target) and len(target) >= 5
    if word.startswith(target) and len(target) >= 5:
        return True  # "hilarious" for "hilar", "effusions" handled as plural before this
    return _edit_distance(word, target, 2) <= 2


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
_DERIVATIONS = ("", "s", "es", "ly", "ar", "al", "e", "ed", "ing", "ion", "ions", "ation", "ity", "ial", "ies", "y", "ous",
                "ic", "ia", "ium", "ae", "a", "um", "us")


def _stems(word: str) -> set[str]:
    return {word[: len(word) - len(suf)] for suf in _DERIVATIONS if word.endswith(suf) and len(word) - len(suf) >= 3}


def _relatives(word: str, target: str) -> bool:
    """"nodular"/"nodule", "lobar"/"lobe", "previous"/"previously": one word, two forms."""
    common = len(next(iter([p for p in (word[:k] for k in range(min(len(word), len(target)), 0, -1))
                             if target.startswith(p)]), ""))
    return bool(_stems(word) & _stems(target)) or common >= 6 or word.endswith(target) or target.endswith(word)


@functools.lru_cache(maxsize=8)
def _domain_index(lm: ReportLM) -> dict[int, list[str]]:
    """Frequent model words by length (the candidates a confusion can be mistaken for)."""
    out: dict[int, list[str]] = {}
    for w, n in lm.unigrams.items():
        if n >= _MIN_DOMAIN_COUNT and len(w) >= 5:
            out.setdefault(len(w), []).append(w)
    return out


@functools.lru_cache(maxsize=8)
def _domain_vocab(lm: ReportLM) -> frozenset[str]:
    return frozenset(lm.unigrams)


@functools.lru_cache(maxsize=16384)
def _close_targets(word: str, lm: ReportLM) -> tuple[str, ...]:
    """Frequent radiology words a dictation error could have turned into ``word`` (cached per word)."""
    index = _domain_index(lm)
    pool = [w for n in range(len(word) - 4, len(word) + 3) for w in index.get(n, ())]
    return tuple(t for t in pool if _close(word, t))


def _expected(word: str, prev: str | None, nxt: str | None, lm: ReportLM) -> str | None:
    """A frequent radiology word close to ``word`` that the model has seen beside the same neighbour."""
    best, best_n = None, 0
    for target in _close_targets(word, lm):
        if _relatives(word, target):
            continue
        support = (lm.pair(prev, target) if prev else 0) + (lm.pair(target, nxt) if nxt else 0)
        if support > best_n:
            best, best_n = target, support
    return best


def rule_real_word(a: Analysis, header: Any = None, lm: ReportLM | None = None) -> list[Flag]:
    """An English word the radiology model has never seen, where a similar radiology word fits the neighbours."""
    model = lm or packaged_lm()
    english = english_words()
    freq = speller().word_frequency
    own = radiology_words()
    flags = []
    for sec in _body_sections(a):
        words = [(m.group(0).lower(), m.start()) for m in re.finditer(r"[A-Za-z]+", sec.text) if m.group(0) != "XXXX"]
        for i, (w, pos) in enumerate(words):
            if len(w) < 4 or model.count(w) or w not in english or w in own or freq[w] > _MAX_ENGLISH_FREQUENCY \
                    or _derived(w, _domain_vocab(model)):
                continue
            prev = words[i - 1][0] if i else None
            nxt = words[i + 1][0] if i + 1 < len(words) else None
            target = _expected(w, prev, nxt, model)
            if target:
                s = sec.start + pos
                flags.append(make_flag("real_word", a.text, s, s + len(w),
                                       f"\"{w}\" is a real word but unexpected here; radiology text has "
                                       f"\"{(prev + ' ') if prev and model.pair(prev, target) else ''}{target}"
                                       f"{(' ' + nxt) if nxt and model.pair(target, nxt) else ''}\" (dictation error?)"))
    return flags


TEXT_RULES = (rule_repetition, rule_homophone, rule_non_word, rule_real_word)

"""Offline word statistics of radiology text: the vocabulary and the plausibility model.

* :func:`known_words` — the words the non-word rule accepts: pyspellchecker's English list (MIT),
  ``radiology_words.txt`` and the plausibility model's vocabulary.
* :class:`ReportLM` — unigram and bigram counts of radiology text. The model that ships
  (``report_lm.json``) is built by ``scripts/build_report_lm.py`` from medmm's own hand-written
  reports, its synthetic reports and a hand-written phrase list — never from a licensed corpus
  (the IU collection is CC BY-NC-ND: no derived statistics in the package). A user can build one
  from their own reports with the same script and pass it to the checker (``RulesConfig.lm_path``).

All package data is read through :mod:`importlib.resources`, so an installed wheel works.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Iterable

from medmm.errors import InputError
from medmm.reports.language_pack import language_pack

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")


def tokens(text: str) -> list[str]:
    """Lower-case word tokens (numbers and punctuation dropped; the de-identification token XXXX too)."""
    return [t for t in _TOKEN.findall(text.lower()) if t != "xxxx"]


@functools.lru_cache(maxsize=1)
def radiology_words() -> frozenset[str]:
    text = resources.files("medmm.reports").joinpath("radiology_words.txt").read_text(encoding="utf-8")
    return frozenset(w.strip().lower() for w in text.splitlines() if w.strip() and not w.startswith("#"))


@functools.lru_cache(maxsize=1)
def speller():  # noqa: ANN201 - pyspellchecker's SpellChecker (imported lazily: ~0.3 s)
    """pyspellchecker's English word list (MIT) plus radiology words it lacks, at edit distance 1."""
    from spellchecker import SpellChecker

    spell = SpellChecker(distance=1)
    spell.word_frequency.load_words(radiology_words())
    return spell


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Every word pyspellchecker knows (plus the radiology list)."""
    return frozenset(speller().word_frequency.dictionary)


@dataclass(frozen=True, eq=False)  # hashed by identity: one model object, many cached lookups
class ReportLM:
    """Unigram and bigram counts (plain dicts: JSON in, JSON out; no pickle)."""

    unigrams: dict[str, int]
    bigrams: dict[str, int]  # "w1 w2" -> count
    source: str = ""

    @classmethod
    def from_texts(cls, texts: Iterable[str], source: str = "") -> "ReportLM":
        uni: Counter = Counter()
        bi: Counter = Counter()
        for text in texts:
            for sent in re.split(r"[.;:\n]+", text):
                toks = tokens(sent)
                uni.update(toks)
                bi.update(f"{x} {y}" for x, y in zip(toks, toks[1:]))
        return cls(dict(uni), dict(bi), source)

    @classmethod
    def load(cls, path: str | None = None) -> "ReportLM":
        """The packaged model (``path`` None) or a model file written by :meth:`save`."""
        try:
            if path is None:
                raw = json.loads(resources.files("medmm.reports").joinpath("report_lm.json").read_text(encoding="utf-8"))
            else:
                with open(path, encoding="utf-8") as fh:
                    raw = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"plausibility model {path or 'report_lm.json'}: cannot read it ({exc}); rebuild it with "
                             "scripts/build_report_lm.py") from exc
        return cls(raw["unigrams"], raw["bigrams"], raw.get("source", ""))

    def save(self, path: str) -> str:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"source": self.source, "unigrams": dict(sorted(self.unigrams.items())),
                       "bigrams": dict(sorted(self.bigrams.items()))}, fh, indent=0, sort_keys=False)
        return path

    def count(self, word: str) -> int:
        return self.unigrams.get(word, 0)

    def pair(self, first: str, second: str) -> int:
        return self.bigrams.get(f"{first} {second}", 0)


@functools.lru_cache(maxsize=4)
def packaged_lm() -> ReportLM:
    return ReportLM.load(None)


_DIC_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def read_word_list(path: str) -> frozenset[str]:
    """The lower-case words of a word list: one word a line, or a Hunspell ``.dic`` file (its first line the
    entry count, each entry ``word/AFFIX-FLAGS``; the flags are dropped: the non-word rule's own prefix and suffix
    lists derive the other forms). Multi-word and non-letter entries are skipped."""
    words = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            entry = line.split("/", 1)[0].strip().lower()
            if _DIC_WORD.fullmatch(entry):
                words.add(entry)
    return frozenset(words)


@functools.lru_cache(maxsize=1)
def medical_words() -> frozenset[str]:
    """Medical vocabulary from the word lists the language pack names (``non_word.word_lists``), those present on
    this machine: by default Debian's ``hunspell-en-med`` (OpenMedSpel, GPL-3+; read at run time from where apt puts
    it, never copied into medmm). Anatomy (musculoskeletal Latin, neuro-anatomy, eponyms), drugs and procedures that
    a general English list lacks. Empty when none is installed (the checker then knows less, and says more)."""
    words: set[str] = set()
    for path in language_pack()["non_word"].get("word_lists") or ():
        try:
            words |= read_word_list(str(path))
        except FileNotFoundError:
            continue  # not installed here: optional
        except OSError as exc:
            raise InputError(f"word list {path} (language pack non_word.word_lists): cannot read it ({exc}); fix "
                             "its permissions or remove it from the pack") from exc
    return frozenset(words)


@functools.lru_cache(maxsize=2)
def known_words(lm: ReportLM | None = None) -> frozenset[str]:
    """The accepted vocabulary (membership tests are the hot path): English, radiology, the model's words and the
    installed medical word lists (:func:`medical_words`)."""
    model = lm or packaged_lm()
    return english_words() | medical_words() | frozenset(model.unigrams) | {"xxxx"}  # XXXX: de-identification

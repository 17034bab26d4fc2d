"""Answer parsing: robust extraction, and each benchmark's reference parser reproduced exactly.

The robust parsers read the *first decisive word*: case-insensitive, punctuation-tolerant,
``invalid`` when the answer has neither word or both at the first decision point is ambiguous.
The ``compat`` parsers copy the reference rules of the published benchmarks so that numbers
are comparable with their tables, quirks included:

* ProbMed (``probmed-compat``): an answer counts as right for a "yes" question when it contains
  the substring ``Yes`` (case-sensitive) or is exactly ``yes``/``yes.`` in any case, and for a
  "no" question when it contains ``No`` or is exactly ``no``/``no.``. So "yes, there is" scores
  0 and "Normal" counts as No. This is a *judgement* against the truth, not a parse: an answer
  holding both ``Yes`` and ``No`` is right for either truth.
* MediConfusion (``mediconfusion-compat``): the answer (newlines turned into spaces) is split
  on single spaces; a letter is chosen when one of the tokens is exactly one of its accepted
  spellings (``A``, ``A:``, ``.A``, ``.A:``, ``A.``, ``A")``, ``("A":``, ``("A")``, ``("A").``);
  both letters or neither gives invalid.
"""

from __future__ import annotations

import re
from typing import Literal

from medmm.errors import InputError

INVALID: Literal["invalid"] = "invalid"
YESNO_PARSERS = ("robust", "probmed-compat")
LETTER_PARSERS = ("robust", "mediconfusion-compat")

YesNo = Literal["yes", "no", "invalid"]

_WORD = re.compile(r"[A-Za-z]+")
_YES = {"yes", "yeah", "yep", "true", "correct", "affirmative"}
_NO = {"no", "not", "nope", "false", "incorrect", "negative", "none", "absent"}


def parse_yes_no(text: str | None) -> YesNo:
    """The first yes/no word of ``text`` (robust rule); ``invalid`` when there is none.

    Words are compared case-insensitively after stripping punctuation, so ``"**Yes**, there is"``
    and ``"yes."`` are yes and ``"No:"`` is no. Words that merely start with yes/no ("Normal",
    "Nodule", "Yesterday") are not answers. A phrase that says both at once ("yes or no",
    "yes/no") is invalid.
    """
    if not text:
        return INVALID
    words = [w.lower() for w in _WORD.findall(text)]
    for i, w in enumerate(words):
        if w in _YES or w in _NO:
            nxt = words[i + 1: i + 3]
            if nxt[:1] == ["or"] and len(nxt) == 2 and (nxt[1] in _YES or nxt[1] in _NO):
                return INVALID
            if re.search(rf"\b{w}\s*/\s*(yes|no)\b", text, re.IGNORECASE):
                return INVALID
            return "yes" if w in _YES else "no"
    return INVALID


def probmed_compat_correct(response: str | None, truth: str) -> int:
    """1 when the ProbMed reference rule scores ``response`` right for ``truth`` (yes/no), else 0."""
    if truth not in ("yes", "no"):
        raise InputError(f"a ProbMed answer must be 'yes' or 'no', got {truth!r}")
    r = (response or "").strip()
    if truth == "yes":
        return int("Yes" in r or r.lower() in ("yes", "yes."))
    return int("No" in r or r.lower() in ("no", "no."))


def probmed_compat_answer(response: str | None) -> YesNo:
    """What the reference rule would accept: yes, no, or invalid (accepts both or neither)."""
    yes = probmed_compat_correct(response, "yes")
    no = probmed_compat_correct(response, "no")
    if yes == no:
        return INVALID
    return "yes" if yes else "no"


def yes_no_correct(response: str | None, truth: str, parser: str = "robust") -> int:
    """1 when ``response`` answers ``truth`` (yes/no) under ``parser`` (robust | probmed-compat)."""
    if parser == "robust":
        return int(parse_yes_no(response) == truth)
    if parser == "probmed-compat":
        return probmed_compat_correct(response, truth)
    raise InputError(f"unknown yes/no parser {parser!r}; use one of {', '.join(YESNO_PARSERS)}")


def yes_no_answer(response: str | None, parser: str = "robust") -> YesNo:
    if parser == "robust":
        return parse_yes_no(response)
    if parser == "probmed-compat":
        return probmed_compat_answer(response)
    raise InputError(f"unknown yes/no parser {parser!r}; use one of {', '.join(YESNO_PARSERS)}")


_EDGE = "\"'()[]{}*_#`.,:;!?"


def parse_letter(text: str | None, letters: str = "AB") -> str | None:
    """The option letter a free-text answer chooses (robust rule); ``None`` when invalid.

    Tokens are split on white space and stripped of surrounding quotes, brackets, asterisks and
    punctuation, so ``A``, ``(B)``, ``"A")``, ``**B**.``, ``Option A``, ``Answer: B`` and
    ``A: Terminating ...`` all choose their letter. The first decisive token wins. A capital
    ``A`` written bare before a lower-case word ("A mass is seen") is the article, not a choice;
    a lone lower-case letter counts only as the whole answer. "A or B" and "A/B" are invalid.
    """
    if not text:
        return None
    letters = letters.upper()
    raw = text.split()
    tokens = [t.strip(_EDGE) for t in raw]
    if len(tokens) == 1 and tokens[0].upper() in letters and len(tokens[0]) == 1:
        return tokens[0].upper()
    for i, tok in enumerate(tokens):
        both = re.fullmatch(r"([A-Z])\s*/\s*([A-Z])", tok)
        if both and both.group(1) in letters and both.group(2) in letters:
            return None
        if len(tok) != 1 or tok not in letters:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if nxt.lower() == "or" and i + 2 < len(tokens) and tokens[i + 2] in letters and len(tokens[i + 2]) == 1:
            return None
        if tok == "A" and raw[i] == "A" and nxt[:1].islower():
            continue  # the article
        return tok
    return None


_COMPAT_SPELLINGS = ("{}", "{}:", ".{}", ".{}:", "{}.", '{}")', "{}\n", "\n{}", '("{}":', '("{}")', '("{}").')


def mediconfusion_compat_letter(text: str | None, letters: str = "AB") -> str | None:
    """The MediConfusion reference letter rule (see the module docstring); ``None`` when invalid."""
    if text is None:
        return None
    tokens = text.replace("\n", " ").split(" ")
    hits = [la for la in letters if any(s.format(la) in tokens for s in _COMPAT_SPELLINGS)]
    return hits[0] if len(hits) == 1 else None


def letter_answer(text: str | None, parser: str = "robust", letters: str = "AB") -> str | None:
    """The chosen letter under ``parser`` (robust | mediconfusion-compat); ``None`` when invalid."""
    if parser == "robust":
        return parse_letter(text, letters)
    if parser == "mediconfusion-compat":
        return mediconfusion_compat_letter(text, letters)
    raise InputError(f"unknown letter parser {parser!r}; use one of {', '.join(LETTER_PARSERS)}")

"""The report checker's language pack: vocabulary, section names, negation/hedge triggers and rule phrases as data.

Two packaged English files, read through :mod:`medmm.config`:

* ``medmm/configs/reports/lexicon-en.yaml`` — the shared vocabulary (findings and their names, sides, lobes, zones,
  severities, interval words, modality and body-region words, plausible sizes), read by :mod:`medmm.reports.lexicon`
  for the checker *and* the error injector (:func:`lexicon_pack`);
* ``medmm/configs/reports/language-en.yaml`` — the checker's reading: section names, organ sub-headings, negation
  and hedge triggers, and the phrases of the rules (:func:`language_pack`). The injector's own error models never
  read it.

A site adds its own without code: a YAML file named by the ``MEDMM_REPORT_LANGUAGE`` environment variable, with
any keys of ``language-en.yaml`` and, under ``lexicon:``, any keys of ``lexicon-en.yaml``; its list entries are
appended to the packaged ones and its mappings merged (read once per process, at import of the checker).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Iterable, Iterator

from medmm.config import ConfigError, find_config, read_mapping

PACKAGED = "reports/language-en.yaml"
LEXICON = "reports/lexicon-en.yaml"
ENV = "MEDMM_REPORT_LANGUAGE"


def _merge(base: Any, extra: Any, where: str) -> Any:
    """``base`` with a site's ``extra``: mappings merged key by key, lists appended (entries not already there),
    anything else replaced."""
    if extra is None:
        return base
    if isinstance(base, dict):
        if not isinstance(extra, dict):
            raise ConfigError(f"{where}: expected a mapping in the site's language pack")
        out = {k: _merge(v, extra[k], f"{where}.{k}") if k in extra else v for k, v in base.items()}
        out.update({k: v for k, v in extra.items() if k not in base})
        return out
    if isinstance(base, list):
        if not isinstance(extra, list) or not all(isinstance(x, (str, dict, list)) for x in extra):
            raise ConfigError(f"{where}: expected a list (of strings, or of mappings or pairs like the packaged "
                              "entries) in the site's language pack")
        return base + [x for x in extra if x not in base]
    return extra


@functools.lru_cache(maxsize=1)
def _site() -> dict[str, Any]:
    """The site's additions (``$MEDMM_REPORT_LANGUAGE``), or an empty mapping."""
    extra_path = os.environ.get(ENV)
    return read_mapping(find_config(os.path.abspath(extra_path))) if extra_path else {}


@functools.lru_cache(maxsize=1)
def language_pack() -> dict[str, Any]:
    """The packaged pack, with the site's additions (``$MEDMM_REPORT_LANGUAGE``) appended."""
    site = {k: v for k, v in _site().items() if k != "lexicon"}
    return _merge(read_mapping(find_config(PACKAGED)), site or None, "language pack")


@functools.lru_cache(maxsize=1)
def lexicon_pack() -> dict[str, Any]:
    """The packaged vocabulary, with the site's ``lexicon:`` additions appended."""
    return _merge(read_mapping(find_config(LEXICON)), _site().get("lexicon"), "language pack lexicon")


# ---------------------------------------------------------------- patterns built from the pack's regex fragments
# The readers and rules build their patterns from the pack's fragments, and keep two speed-ups that depend on the
# words: a first-character lookahead (Python's regex engine otherwise tries every alternative at every position) and
# substring pre-tests (a clause without "prior", "history", ... needs no regex). Both are derived here from the
# fragments themselves, so a site that adds a word never has to update them: a fragment this reader cannot analyse
# (an unusual construct) gives no speed-up, never a wrong answer. Written here rather than taken from a library:
# the standard library's regex parser (re._parser) is private and changes between Python versions.

def _plain(s: str, j: int = 0) -> Iterator[int]:
    """The indices of ``s`` from ``j`` on that hold a character outside escapes and character classes."""
    while j < len(s):
        if s[j] == "\\":
            j += 2
        elif s[j] == "[":
            j = _class_end(s, j) + 1
        else:
            yield j
            j += 1


def _group_end(s: str, i: int) -> int:
    """The index of the ``)`` closing the group opened at ``s[i] == "("``."""
    depth = 0
    for j in _plain(s, i):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced group in pattern {s!r}")


def _class_end(s: str, i: int) -> int:
    """The index of the ``]`` closing the character class opened at ``s[i] == "["``."""
    j = i + 1
    if j < len(s) and s[j] == "^":
        j += 1
    if j < len(s) and s[j] == "]":
        j += 1
    while j < len(s) and s[j] != "]":
        j += 2 if s[j] == "\\" else 1
    if j >= len(s):
        raise ValueError(f"unbalanced character class in pattern {s!r}")
    return j


def _quantifier(s: str, j: int) -> tuple[bool, int]:
    """(may the element before ``s[j]`` be absent, how many characters the quantifier at ``j`` takes)."""
    if j >= len(s) or s[j] not in "?*+{":
        return False, 0
    if s[j] == "{":
        end = s.find("}", j)
        if end < 0:
            return False, 0
        lo = s[j + 1: end].split(",")[0].strip()
        n, optional = end - j + 1, lo in ("", "0")
    else:
        n, optional = 1, s[j] in "?*"
    if j + n < len(s) and s[j + n] in "?+":  # lazy or possessive
        n += 1
    return optional, n


def _alternatives(s: str) -> list[str]:
    """``s`` split at its top-level ``|``."""
    out, start, depth = [], 0, 0
    for j in _plain(s):
        c = s[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(s[start:j])
            start = j + 1
    out.append(s[start:])
    return out


def _group_body(inner: str) -> str | None:
    """The matching part of a group's text (``?:``, ``?P<name>`` or capturing); None for look-arounds and flags."""
    if not inner.startswith("?"):
        return inner
    if inner.startswith("?:"):
        return inner[2:]
    if inner.startswith("?P<"):
        return inner[inner.index(">") + 1:]
    return None


def required_substrings(pattern: str) -> frozenset[str] | None:
    """Lower-case strings one of which every match of ``pattern`` contains (for a substring pre-test on lower-cased
    text), or None when they cannot be read from the pattern."""
    keys: set[str] = set()
    for alt in _alternatives(pattern):
        k = _sequence_keys(alt)
        if not k:
            return None
        keys |= k
    return frozenset(keys)


def _sequence_keys(alt: str) -> frozenset[str] | None:
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            candidates.append(frozenset({"".join(run).lower()}))
            run.clear()

    i = 0
    while i < len(alt):
        c = alt[i]
        if c == "\\":
            flush()
            nxt = alt[i + 1: i + 2]
            optional, n = _quantifier(alt, i + 2)
            if nxt and not nxt.isalnum() and not optional:  # an escaped literal ("\.", "\?")
                run.append(nxt)
                if n:
                    flush()
            i += 2 + n
        elif c == "(":
            end = _group_end(alt, i)
            flush()
            body = _group_body(alt[i + 1: end])
            optional, n = _quantifier(alt, end + 1)
            if body is not None and not optional:
                k = required_substrings(body)
                if k:
                    candidates.append(k)
            i = end + 1 + n
        elif c == "[":
            flush()
            end = _class_end(alt, i)
            i = end + 1 + _quantifier(alt, end + 1)[1]
        elif c in ".^$":
            flush()
            i += 1 + _quantifier(alt, i + 1)[1]
        else:
            optional, n = _quantifier(alt, i + 1)
            if optional:
                flush()
            else:
                run.append(c)
                if n:
                    flush()
            i += 1 + n
    flush()
    if not candidates:
        return None
    # the most telling element: no key shorter than 5 characters ("has", "from", ",": in most texts) if it can, then
    # the fewest keys, then the longest
    return min(candidates, key=lambda k: (min(map(len, k)) < 5, len(k), -min(map(len, k))))


def substring_keys(fragments: list[str] | tuple[str, ...]) -> tuple[str, ...] | None:
    """Lower-case strings one of which every match of any of ``fragments`` contains, or None."""
    keys: set[str] = set()
    for f in fragments:
        k = required_substrings(f)
        if k is None:
            return None
        keys |= k
    return tuple(sorted(keys))


def lacks(low: str, keys: tuple[str, ...] | None) -> bool:
    """Does lower-cased ``low`` hold none of ``keys`` (so no match of the pattern they were derived from can be in
    it)? False when there are no keys (no pre-test: the pattern decides)."""
    if keys is None:
        return False
    for k in keys:  # a plain loop: called several times per report, twice as fast as any() over a generator
        if k in low:
            return False
    return True


def first_characters(pattern: str) -> frozenset[str] | None:
    """The characters a match of ``pattern`` can start with (None: unknown, or it may be empty)."""
    out: set[str] = set()
    for alt in _alternatives(pattern):
        f = _sequence_first(alt)
        if f is None:
            return None
        out |= f
    return frozenset(out)


def _sequence_first(alt: str) -> frozenset[str] | None:
    """First characters of one alternative: those of its first element, and of the next ones while the elements
    before them may be absent ("(?:pleural\\s+)?effusion": p or e). None when unknown or when all may be absent."""
    out: set[str] = set()
    i = 0
    while i < len(alt):
        c = alt[i]
        if alt.startswith("\\b", i) or c == "^":  # zero-width
            i += 2 if c == "\\" else 1
            continue
        if c == "(":
            end = _group_end(alt, i)
            body = _group_body(alt[i + 1: end])
            if body is None:  # a look-around: zero-width, what follows decides
                i = end + 1
                continue
            first, nxt = first_characters(body), end + 1
        elif c == "\\":
            e = alt[i + 1: i + 2]
            first, nxt = (frozenset({e}) if e and not e.isalnum() else None), i + 2
        elif c == "[":
            end = _class_end(alt, i)
            body = alt[i + 1: end]
            ok = body and body[0] != "^" and "\\" not in body and "-" not in body[1:-1]
            first, nxt = (frozenset(body) if ok else None), end + 1
        elif c in ".$|)":
            return None
        else:
            first, nxt = frozenset({c}), i + 1
        if first is None:
            return None
        out |= first
        optional, n = _quantifier(alt, nxt)
        if not optional:
            return frozenset(out)
        i = nxt + n
    return None


def first_char_lookahead(pattern: str) -> str:
    """``(?=[...])`` with the (case-folded) characters a match of ``pattern`` starts with, or ``""`` when unknown: put
    before the pattern, it changes no match and lets the regex engine skip to candidate positions."""
    chars = first_characters(pattern)
    if not chars:
        return ""
    both = sorted({x for c in chars for x in (c.lower(), c.upper())})
    return "(?=[" + "".join(re.escape(c) for c in both) + "])"


def alternation(fragments: list[str] | tuple[str, ...]) -> str:
    """``a|b|c`` in the pack's order (the order decides which alternative a regex takes where several match)."""
    return "|".join(fragments)


def longest_first(items: Iterable[str]) -> str:
    """``a|b|c`` longest first, whatever the order given (a longer word wins over its prefix: "lobes" before
    "lobe"); :func:`alternation` keeps the pack's order instead."""
    return "|".join(sorted(items, key=len, reverse=True))


# ------------------------------------------------------------------ alternations rewritten for the regex engine
_QUANTIFIERS = ("?", "*", "+", "{")


def literal_led(alt: str, depth: int = 0) -> list[str]:
    """One alternative of an alternation as alternatives that each open with a letter, in the order the regex engine
    tries them (so the same match wins): a leading ``(?:a|b)rest`` is ``arest|brest``, ``(?:a)?rest`` is
    ``arest|rest``, a look-behind before a letter goes after it (``(?<!x\\s)mass`` is ``m(?<!x\\sm)ass``). What it
    cannot rewrite it gives back unchanged."""
    if depth > 6 or not alt or alt[0].isalpha():
        return [alt]
    if alt.startswith("(?:"):
        end = _group_end(alt, 0)
        optional, n = _quantifier(alt, end + 1)
        if alt[end + 1: end + 1 + n] not in ("", "?"):  # only a plain group or a greedy optional one
            return [alt]
        rest = alt[end + 1 + n:]
        out = [a for g in _alternatives(alt[3:end]) for a in literal_led(g + rest, depth + 1)]
        return out + literal_led(rest, depth + 1) if optional else out
    if alt.startswith(("(?<!", "(?<=")):
        end = _group_end(alt, 0)
        c = alt[end + 1: end + 2]
        if c.isalpha() and c.isascii() and alt[end + 2: end + 3] not in _QUANTIFIERS:
            return [c + alt[:end] + c + ")" + alt[end + 2:]]
    return [alt]


_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def _first_literal(x: str) -> tuple[str, str] | None:
    """(its text, the character it matches) when ``x`` opens with one literal character that no quantifier follows."""
    if x[:1] == "\\":
        src = x[:2] if len(x) > 1 and not x[1].isalnum() else ""
    else:
        src = x[:1] if x[:1] and x[0] not in _REGEX_SPECIAL else ""
    return (src, src[-1]) if src and x[len(src): len(src) + 1] not in _QUANTIFIERS else None


def charset_led(body: str, fold: bool = True) -> str | None:
    """``body``, an alternation, written so that every alternative opens with a literal character (``\\bbut`` is
    ``b(?<=\\bb)ut``, ``[;:]`` is ``;|:``, a leading group as in :func:`literal_led`), grouped by that character in
    order (as :func:`by_first_letter`), or None when an alternative cannot be so written. The same matches; the
    regex engine then skips in C to the next position that holds one of these characters (a pattern that opens with
    a look-ahead or ``\\b`` is tried at every position)."""
    out: list[tuple[str, str, str]] = []
    for a in _alternatives(body):
        bound = a.startswith("\\b")
        rest = a[2:] if bound else a
        for x in literal_led(rest) if rest.startswith("(") else [rest]:
            xs = [x]
            if x.startswith("["):
                end = x.find("]")
                inner = x[1:end]
                if end < 0 or not inner or any(c in _REGEX_SPECIAL or c in "-^" for c in inner) \
                        or x[end + 1: end + 2] in _QUANTIFIERS:
                    return None
                xs = [c + x[end + 1:] for c in inner]
            for y in xs:
                first = _first_literal(y)
                if first is None:
                    return None
                src, c = first
                tail = y[len(src):]
                out.append((c.lower() if fold else c, src, "(?<=\\b" + src + ")" + tail if bound else tail))
    groups: dict[str, tuple[str, list[str]]] = {}
    for key, src, tail in out:
        groups.setdefault(key, (src, []))[1].append(tail)
    return "|".join(src + (tails[0] if len(tails) == 1 else "(?:" + "|".join(tails) + ")")
                    for src, tails in groups.values())


def by_first_letter(patterns: tuple[str, ...] | list[str], fold: bool = True) -> str:
    """``alternation(patterns)`` written as ``a(?:...)|b(?:...)|...``: the alternatives (:func:`literal_led`)
    grouped by their first letter (case-folded when ``fold``: for a case-insensitive pattern), in order within a
    group. Alternatives that open with different letters never match at one position, so the matches are the same;
    the regex engine skips a group whose letter is not the text's in one test, where it entered every alternative
    that opens with a group or a look-behind at every word start (callgrind: the finding-term scan of a cold pass
    takes about half the instructions). Unchanged when an alternative cannot be led by a letter."""
    alts = [a for p in patterns for x in _alternatives(p) for a in literal_led(x)]
    groups: dict[str, list[str]] = {}
    for a in alts:
        if not (a[:1].isascii() and a[:1].isalpha()) or a[1:2] in _QUANTIFIERS:
            return alternation(patterns)
        groups.setdefault(a[0].lower() if fold else a[0], []).append(a)
    return "|".join(ws[0][0] + "(?:" + "|".join(w[1:] for w in ws) + ")" for ws in groups.values())

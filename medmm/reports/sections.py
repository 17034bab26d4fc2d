"""Report sections and sentences, with character offsets into the original text.

Headers are found the way MIMIC-CXR's section parser does it (a capitalised word or two
followed by a colon) but typo-tolerant: a header candidate is matched to the known names with
difflib similarity >= 0.8 ("IMPRESION:", "FINDNGS:"). A report with no headers is one
FINDINGS section, and when it has several paragraphs the last one is taken as the impression (unless it opens
another study or part: "On CT, ...", "After 6 weeks of therapy:"; language pack ``sentences.other_study_opener``).

Structured CT and MR reports put organ sub-headings under (or instead of) FINDINGS: "LUNGS:",
"MEDIASTINUM:", "UPPER ABDOMEN:", "BRAIN:". Each becomes a ``findings`` section whose ``label``
names the organ, so a findings-only structured report is read as findings (never as an
impression), and rules compare its statements with the IMPRESSION when there is one.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from medmm.reports.language_pack import alternation, language_pack

_PACK = language_pack()  # section names: data (medmm/configs/reports/language-en.yaml, extensible by a site)
SECTION_NAMES: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _PACK["sections"].items()}
_ALL = {name: key for key, names in SECTION_NAMES.items() for name in names}
# Organ sub-headings of structured CT/MR reports: each is a findings section labelled with the organ.
ORGAN_HEADINGS = frozenset(" ".join(h.upper().split()) for h in _PACK["organ_headings"])
_SENTENCES = _PACK["sentences"]  # sentence ends, list markers, what a header looks like: data too
_HEADER_WORDS = re.compile(_SENTENCES["header_words"])
_LEVEL_HEADING = re.compile(_SENTENCES["level_heading"], re.I)
# a last paragraph that opens another study or part ("On CT, ...", "After 6 weeks of therapy:"): findings, no impression
_OTHER_STUDY = re.compile(_SENTENCES["other_study_opener"])
_HEADER_WINDOW = 64  # characters looked back from a colon for its header (a header has at most 30)
MAX_SENTENCE_CHARS = 600  # a longer run without a sentence end is read in pieces of at most this length


# Section and Sentence are never changed once made, but not frozen: a frozen dataclass takes five times longer to build
# (measured: 1.0 vs 0.2 us) and every check makes a few dozen of them (about 5 % of the checker's time). Hashable
# and compared by value as before.
@dataclass(slots=True, unsafe_hash=True)
class Section:
    name: str  # findings | impression | comparison | indication | technique | other
    start: int  # content start (after the header)
    end: int
    header_start: int | None
    text: str
    label: str | None = None  # an organ sub-heading of a structured report ("lungs", "mediastinum")


@dataclass(slots=True, unsafe_hash=True)
class Sentence:
    section: str
    start: int
    end: int
    text: str
    label: str | None = None  # the organ sub-heading it stands under, if any


@functools.lru_cache(maxsize=4096)
def _header_key(candidate: str) -> str | None:
    word = " ".join(candidate.upper().split())
    if word in _ALL:
        return _ALL[word]
    if not candidate.strip()[:1].isupper():
        return None
    best = difflib.get_close_matches(word, list(_ALL), n=1, cutoff=0.8)
    return _ALL[best[0]] if best else None


@functools.lru_cache(maxsize=4096)
def _heading(candidate: str) -> tuple[int, str, str | None] | None:
    """What the text between a line start (or ". ") and a colon is: (offset of the header in it, section name,
    organ label), or None when it is no header. Cached like the sentence spans: reports repeat their headers."""
    word = candidate.strip()
    if _LEVEL_HEADING.fullmatch(word):  # "C5-6:", "L4-L5:": a level of the spine, a sub-heading of its section
        return len(candidate) - len(candidate.lstrip()), "level", word.lower()
    if not (2 <= len(word) <= 30 and _HEADER_WORDS.fullmatch(word)):
        return None
    lead = len(candidate) - len(candidate.lstrip())
    organ = " ".join(word.upper().split())
    if organ in ORGAN_HEADINGS and word[0].isupper():
        return lead, "findings", organ.lower()
    key = _header_key(word)
    return (lead, key, None) if key else None


def split_sections(text: str) -> list[Section]:
    """Sections in order of appearance; text before the first header is ``other`` (or
    ``findings`` when there is no header at all)."""
    heads = []
    # Colon-driven: the words between the last line break (or ". ") and each ':' are a header candidate
    # (a report has few colons, so this is far cheaper than trying the header pattern at every position).
    pos = text.find(":")
    while pos >= 0:
        # a header is at most 30 letters after some white space: look back a bounded window only (an unbounded
        # look-back made a text of many colons quadratic)
        lo = pos - _HEADER_WINDOW if pos > _HEADER_WINDOW else 0
        window = text[lo:pos]  # searched as a string of its own: cheaper than two range searches of the text
        nl, dot = window.rfind("\n") + 1, window.rfind(". ") + 2
        if dot == 1:  # no ". "
            dot = 0
        start = lo + (nl if nl > dot else dot)
        head = _heading(window[start - lo:] if start > lo else window)
        if head:
            heads.append((start + head[0], pos + 1, head[1], head[2]))
        pos = text.find(":", pos + 1)
    sections: list[Section] = []
    if not heads:
        paragraphs = [m for m in re.finditer(r"\S(?:.|\n(?!\s*\n))*", text)]
        if len(paragraphs) >= 2 and not _OTHER_STUDY.match(paragraphs[-1].group(0)):
            last = paragraphs[-1]
            sections.append(Section("findings", paragraphs[0].start(), paragraphs[-2].end(), None,
                                    text[paragraphs[0].start(): paragraphs[-2].end()]))
            sections.append(Section("impression", last.start(), last.end(), None, last.group(0)))
        elif text.strip():
            s = len(text) - len(text.lstrip())
            sections.append(Section("findings", s, len(text.rstrip()), None, text.strip()))
        return sections
    if text[: heads[0][0]].strip():
        s = len(text) - len(text.lstrip())
        sections.append(Section("other", s, heads[0][0], None, text[s: heads[0][0]]))
    for i, (hstart, cstart, key, label) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        if key == "level":  # a spine level goes on with the findings or impression it stands in, else starts findings
            key = sections[-1].name if sections and sections[-1].name in ("findings", "impression") else "findings"
        sections.append(Section(key, cstart, end, hstart, text[cstart:end], label))
    return sections


# a sentence ends after . ! ? ; followed by white space (the mark stays in the sentence), at a blank line, or before
# a list item on a new line. The pattern opens with a character class so that the regex engine skips in C to the
# next candidate character; the lookbehinds then tell which one it was.
_MARKS = "".join(re.escape(c) for c in _SENTENCES["end_marks"])
_LIST_MARKER = alternation(_SENTENCES["list_markers"])
_SENT_END = re.compile(r"[" + _MARKS + r"\n](?:(?<=[" + _MARKS + r"])\s+|(?<=\n)(?:\s*\n|(?=\s*(?:" + _LIST_MARKER
                       + r")\s)))")
_ITEM = re.compile(r"\s*(?:" + _LIST_MARKER + r")\s+")
_LETTER = re.compile(r"[A-Za-z]")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


# The common shape of a section's text, whose sentence ends are found without the regex engine (_plain_ends): ASCII,
# sentences ended by ". " (a full stop and one space), no other end mark of the pack, no white space but single
# spaces, then nothing or line breaks. _OTHER_MARKS: the pack's other end marks; None: no such shortcut, because the
# pack's end marks leave out "." or hold a line break, or a list marker matches where it could stand after the line
# breaks of a text's end, or white space is not the nine characters _plain_ends tests.
_OTHER_MARKS: tuple[str, ...] | None = tuple(c for c in _SENTENCES["end_marks"] if c != ".")
if "." not in _SENTENCES["end_marks"] or "\n" in _SENTENCES["end_marks"] or \
        any(re.match("(?:" + _LIST_MARKER + ")", t) for t in ("", "\n", "\n\n")) or \
        {c for c in map(chr, range(128)) if re.match(r"\s", c)} != set(" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"):
    _OTHER_MARKS = None


def _plain_ends(section_text: str, out: list[tuple[int, int, str]] | None = None) -> list[tuple[int, int]] | None:
    """What :func:`_sentence_spans` reads from ``_SENT_END.finditer`` (where each sentence ends and the next piece
    starts), for a text of the common shape (see :data:`_OTHER_MARKS`), found with ``str.split``; None for any other
    text. (A regex scan costs about 50 instructions a character and 4,000 a match: most of the sentence split.)

    In that shape the pattern's matches are the occurrences of ". " (never followed by another white space; they
    cannot overlap) and, when the text ends in line breaks, these: from the last full stop when the last character
    before them is one (the full stop's branch, as at ". "), else from the first line break when there are two or
    more (a blank line); a single line break after another character ends nothing.

    With ``out``, the sentences are read too, as :func:`_sentence_spans` reads the pieces between these ends
    (:func:`_piece`; its common case written here, without a call), and appended to it."""
    core = section_text.rstrip("\n")
    # the other white space characters \s matches in ASCII text, tested one by one (each a memchr: cheaper than
    # isprintable or a loop over them)
    if _OTHER_MARKS is None or not core or core[-1] == " " or not core.isascii() or "\n" in core or "\t" in core \
            or "\r" in core or "\x0b" in core or "\x0c" in core or "\x1c" in core or "\x1d" in core or "\x1e" in core \
            or "\x1f" in core or ".  " in core:
        return None
    for mark in _OTHER_MARKS:
        if mark in core:
            return None
    n, c = len(section_text), len(core)
    tail = n - c >= 2 or (n > c and core[-1] == ".")  # an end from the line breaks of the text's end, at c
    parts = core.split(". ")
    if out is None:
        ends = []
        i = -2
        for part in parts[:-1]:
            i += len(part) + 2  # where this ". " stands
            ends.append((i + 1, i + 2))
        if tail:
            ends.append((c, n))
        return ends
    s = 0
    for part in parts[:-1]:  # the piece [s, e) ends with the full stop of a ". "; the next one starts after it
        e = s + len(part) + 1
        if section_text[s] in _ASCII_LETTERS and e - s <= MAX_SENTENCE_CHARS:  # no white space at its end
            out.append((s, e, section_text[s:e]))
        else:
            _piece(section_text, s, e, out)
        s = e + 1
    _piece(section_text, s, c if tail else n, out)  # the last piece (then, after a tail's end, nothing)
    return []


@functools.lru_cache(maxsize=16384)
def _sentence_spans(section_text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, text) of each sentence of one section's text, offsets relative to it (cached: technique,
    comparison and impression texts recur verbatim across reports)."""
    out: list[tuple[int, int, str]] = []
    ends = _plain_ends(section_text, out)
    if ends is None:  # done for the common shape (_plain_ends); else each piece between the pattern's matches
        piece_start = 0
        for m in _SENT_END.finditer(section_text):
            _piece(section_text, piece_start, m.start() + (section_text[m.start()] != "\n"), out)
            piece_start = m.end()
        _piece(section_text, piece_start, len(section_text), out)
    return tuple(out)


def _piece(section_text: str, s: int, e: int, out: list[tuple[int, int, str]]) -> None:
    """The sentence (or, past :data:`MAX_SENTENCE_CHARS`, the sentences) of ``section_text[s:e]``, a piece between two
    sentence ends, appended to ``out``: a list marker left out, white space stripped, none without a letter."""
    if s == e:  # nothing between two ends (the text's end right after the last one)
        return
    if e - s <= MAX_SENTENCE_CHARS:
        # most pieces open with a letter, or with one space and a letter (a section's first, after its header's
        # colon): no list marker, what the lines below do, in short
        if section_text[s] in _ASCII_LETTERS:
            body = section_text[s:e].rstrip()
            out.append((s, s + len(body), body))
            return
        if section_text[s] == " " and s + 1 < e and section_text[s + 1] in _ASCII_LETTERS:
            body = section_text[s + 1:e].rstrip()
            out.append((s + 1, s + 1 + len(body), body))
            return
    if not section_text[s:s + 1].isalpha():
        item = _ITEM.match(section_text, s, e)
        if item:
            s = item.end()
    if e - s > MAX_SENTENCE_CHARS:  # a run without a sentence end: read in bounded pieces
        for ps, pe in _pieces(section_text, s, e):
            _add_sentence(section_text, ps, pe, out)
        return
    piece = section_text[s:e]
    body = piece.strip()
    if body and (body[0] in _ASCII_LETTERS or _LETTER.search(body)):  # most sentences start with a letter
        s += len(piece) - len(piece.lstrip())
        out.append((s, s + len(body), body))


def _add_sentence(text: str, s: int, e: int, out: list[tuple[int, int, str]]) -> None:
    piece = text[s:e]
    body = piece.strip()
    if body and (body[0] in _ASCII_LETTERS or _LETTER.search(body)):
        s += len(piece) - len(piece.lstrip())
        out.append((s, s + len(body), body))


def _pieces(text: str, s: int, e: int) -> list[tuple[int, int]]:
    """``(s, e)``, or, for a run longer than :data:`MAX_SENTENCE_CHARS` (no sentence end: pasted tables, dictation
    without punctuation, adversarial input), pieces of at most that length cut at white space. A sentence is the
    unit every reading is bounded by (negation scope, clause, side): bounding its length keeps a check linear in
    the report's length. Real report sentences are far shorter (IU dev reports: under 400 characters)."""
    if e - s <= MAX_SENTENCE_CHARS:
        return [(s, e)]
    out = []
    while e - s > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", s + MAX_SENTENCE_CHARS // 2, s + MAX_SENTENCE_CHARS)
        cut = cut if cut > s else s + MAX_SENTENCE_CHARS
        out.append((s, cut))
        s = cut
    out.append((s, e))
    return out


def clear_caches() -> None:
    """Forget the section texts split and the headers read so far (benchmarks time a cold start with this)."""
    _sentence_spans.cache_clear()
    _heading.cache_clear()


def split_sentences(text: str, sections: list[Section] | None = None) -> list[Sentence]:
    """Sentences within each section (list markers such as "1." stay out of the sentence)."""
    out: list[Sentence] = []
    for sec in sections if sections is not None else split_sections(text):
        off, name, label = sec.start, sec.name, sec.label
        for s, e, sentence in _sentence_spans(sec.text):  # sec.text is text[sec.start:sec.end]
            out.append(Sentence(name, off + s, off + e, sentence, label))
    return out

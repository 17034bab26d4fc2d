"""The sentence split's shortcut for the common shape of a section's text (``sections._plain_ends``: sentence ends
found with ``str.split`` instead of the regex engine) finds what ``_SENT_END`` finds, on generated texts that mix
every end mark, white space character, list marker and line-break tail it must tell apart, and the spans of
``_sentence_spans`` are those of the regex path."""

from __future__ import annotations

import random

from medmm.reports import sections as se

_PIECES = ["The heart is normal", "lungs clear", "2.5 cm", "Dr.X", "e.g", ".", ". ", ".  ", "! ", "? ", "; ", "\n",
           "\n\n", " ", "  ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "1. ", "- ", "* ", "X", "é", "no", ":", "...",
           "a" * 700]


def _regex_ends(text: str) -> list[tuple[int, int]]:
    return [(m.start() + (text[m.start()] != "\n"), m.end()) for m in se._SENT_END.finditer(text)]


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        body = "".join(rng.choice(_PIECES[:5] + [". "] * 4 + _PIECES) for _ in range(rng.randint(0, 8)))
        out.append(rng.choice(["", " "]) + body + rng.choice(["", ".", ". ", "\n", "\n\n", "\n\n\n", ".\n", ".\n\n",
                                                              " \n", "\n \n"]))
    return out


def test_the_plain_shape_shortcut_finds_the_regex_sentence_ends():
    taken = 0
    for text in _texts(seed=3, n=4000):
        ends = se._plain_ends(text)
        if ends is not None:
            taken += 1
            assert ends == _regex_ends(text), repr(text)
    assert taken > 500  # the shortcut applied to many of them, and not to all
    assert se._plain_ends("Lungs clear.  Heart normal.") is None
    assert se._plain_ends("Lungs clear. Heart normal.\n\n") == [(12, 13), (26, 28)]


def test_sentence_spans_are_those_of_the_regex_path(monkeypatch):
    texts = _texts(seed=4, n=1500)
    fast = [se._sentence_spans.__wrapped__(t) for t in texts]
    monkeypatch.setattr(se, "_plain_ends", lambda text, out=None: None)
    assert fast == [se._sentence_spans.__wrapped__(t) for t in texts]

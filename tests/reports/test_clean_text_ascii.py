"""clean_text's test for unprintable characters in ASCII text (the bytes left once the printable ones, the line break
and the tab are deleted) decides as ``str.isprintable`` does on the text without line breaks and tabs: every ASCII
character, alone and among others, and a non-ASCII text (the str path)."""

from __future__ import annotations

from medmm.reports.checker import _CONTROL, clean_text


def _expected(text: str) -> str:
    return text if text.replace("\n", "").replace("\t", "").isprintable() else _CONTROL.sub(" ", text)


def test_every_ascii_character_is_kept_or_replaced_as_isprintable_says():
    for i in range(128):
        for text in (f"Lungs clear{chr(i)}\n\tHeart normal.", chr(i), f"a{chr(i)}{chr(127)}b"):
            if "\r" in text:
                continue  # line ends are normalised first
            assert clean_text(text, []) == _expected(text), i
    assert clean_text("No effusion\x0b.", []) == "No effusion ."
    assert clean_text("Kein Erguss\u00e9\x0c.", []) == "Kein Erguss\u00e9 ."

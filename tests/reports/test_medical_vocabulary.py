"""The non-word rule's medical vocabulary (issue 21 item 5): word lists named by the language pack
(``non_word.word_lists``, by default Debian's hunspell-en-med), and prefixes split off at a hyphen."""

from __future__ import annotations

from pathlib import Path

import pytest

from medmm.reports import build_checker
from medmm.reports.language import known_words, medical_words, read_word_list
from medmm.reports.rules_text import _combining_form

MED_DIC = Path("/usr/share/hunspell/en_med_glut.dic")


def test_a_hunspell_dic_is_read_as_lower_case_words_without_affix_flags(tmp_path):
    dic = tmp_path / "x.dic"
    dic.write_text("4\nlongus\nPeroneal/MS\nrigor mortis\nC3-4\n", encoding="utf-8")
    assert read_word_list(str(dic)) == {"longus", "peroneal"}


def test_a_prefix_split_off_at_a_hyphen_is_a_combining_form():
    known = frozenset({"tenosynovitis", "nephrolithiasis", "tent"})
    assert _combining_form("teno", known) and _combining_form("nephro", known)
    assert not _combining_form("tenn", known) and not _combining_form("ten", frozenset({"tent"}))


def test_a_split_prefix_is_no_non_word_but_a_typo_before_a_hyphen_is():
    checker = build_checker("rules")
    clean = "FINDINGS: The nephro-/ureterolithiasis is unchanged. Teno-osseous junction is intact.\n\nIMPRESSION: Stable."
    assert not [f for f in checker.check(clean).flags if f.rule == "non_word"]
    typo = "FINDINGS: Small left pleural effusoin-like density.\n\nIMPRESSION: Effusion."
    assert [f for f in checker.check(typo).flags if f.rule == "non_word"]


@pytest.mark.skipif(not MED_DIC.is_file(), reason=f"{MED_DIC} absent (apt-get install hunspell-en-med)")
def test_with_the_medical_dictionary_anatomy_is_known_and_typos_are_still_flagged():
    assert {"longus", "brevis", "clivus", "navicularis", "vastus"} <= medical_words() <= known_words()
    checker = build_checker("rules")
    clean = ("FINDINGS: The peroneus longus and brevis tendons are intact. The clivus is normal. Normal vastus "
             "medialis.\n\nIMPRESSION: Normal.")
    assert not [f for f in checker.check(clean).flags if f.rule == "non_word"]
    typo = "FINDINGS: Small left pleural effusoin.\n\nIMPRESSION: Effusion."
    assert [f for f in checker.check(typo).flags if f.rule == "non_word"]

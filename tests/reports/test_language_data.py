"""The reading vocabulary is data: sentence reading (analysis), sentence splitting (sections) and the transcription
rules' affix lists come from the language pack, a site's file extends them without code, and the speed-ups that
depend on the words (first-character lookaheads, substring pre-tests) are derived from the fragments, so an added
word can never be skipped by a stale pre-test."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medmm.reports import analysis, sections
from medmm.reports.language_pack import (first_char_lookahead, first_characters, language_pack, required_substrings,
                                         substring_keys)

ROOT = Path(__file__).resolve().parents[2]
PACK = language_pack()

PROBE = r"""
import json
from medmm.reports.analysis import analyze
from medmm.reports.checker import RulesChecker, RulesConfig
from medmm.reports.sections import split_sentences
ck = RulesChecker(RulesConfig(threshold=0.0))
affix = "FINDINGS: Small apleural effusion.\n\nIMPRESSION: Effusion."
past = "FINDINGS: Erstwhile pneumonia in the right lower lobe.\n\nIMPRESSION: Pneumonia."
items = "FINDINGS:\na) Small left effusion\nb) No pneumothorax\n\nIMPRESSION: Effusion."
clause = "FINDINGS: Right effusion plus pneumothorax.\n\nIMPRESSION: Effusion."
print(json.dumps({"affix": [f.rule for f in ck.check(affix).flags],
                  "past": [m.past for m in analyze(past).mentions],
                  "items": len(split_sentences(items)),
                  "clause": [m.side for m in analyze(clause).mentions][:2]}))
"""


def _probe(site: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MEDMM_REPORT_LANGUAGE"}
    if site is not None:
        env["MEDMM_REPORT_LANGUAGE"] = str(site)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def test_a_site_pack_extends_affixes_reading_words_and_list_markers(tmp_path):
    """One site file adds a prefix (the non-word rule accepts the derived word), a word of the past (the mention is
    read as history), a list marker (items split into sentences) and a clause cut (the side of the first finding no longer reaches the second).
    Both runs in fresh interpreters: the pack is read once per process."""
    site = tmp_path / "site.yaml"
    site.write_text("non_word:\n  prefixes: ['a']\nreading:\n  past: ['erstwhile']\n  clause_cuts: ['\\bplus\\b']\n"
                    "sentences:\n  list_markers: ['[a-h]\\)']\n", encoding="utf-8")
    base, extended = _probe(None), _probe(site)
    assert base["affix"] == ["non_word"] and extended["affix"] == []
    assert base["past"][0] is False and extended["past"][0] is True
    assert base["items"] == 2 and extended["items"] == 3
    assert base["clause"] == ["right", "right"] and extended["clause"] == ["right", None]


def test_a_site_pack_with_a_bad_list_is_one_clear_error(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("non_word:\n  prefixes: 5\n", encoding="utf-8")
    env = {**os.environ, "MEDMM_REPORT_LANGUAGE": str(site)}
    out = subprocess.run([sys.executable, "-c", "import medmm.reports.rules_text"], env=env, capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode != 0 and "non_word.prefixes: expected a list" in out.stderr


def test_the_reading_patterns_are_built_from_the_pack():
    read = PACK["reading"]
    assert analysis._PAST.pattern.count("|") == len(read["past"]) - 1
    assert "erstwhile" not in analysis._PAST.pattern
    assert all(w in analysis._HYPOTHETICAL.pattern for w in read["hypothetical"])
    assert analysis._LOBE.pattern == read["lobe"]
    assert analysis.ZONE_LEVELS == ("upper", "lower", "mid")
    assert analysis._side_word("Bibasilar") == "bilateral" and analysis._side_word("left") == "left"
    assert analysis._to_mm("2.5", "cm") == 25.0 and analysis._to_mm("3", "millimeters") == 3.0
    assert sections._ITEM.match("  2) ") and sections._ITEM.match("- ")


@pytest.mark.parametrize("pattern,firsts", [
    (r"\bbut\b|\bhowever\b|;|,\s+(?=(?:no|with)\b)", {"b", "h", ";", ","}),
    (r"(?:pleural\s+)?effusions?", {"p", "e"}),
    (r"(?:hemo|hydro)?pneumothora(?:x|ces)", {"h", "p"}),
    (r"(?:ICD|AICD|defibrillator)", {"I", "A", "d"}),
    (r"vs\.?|\?", {"v", "?"}),
    (r"a?b?", None),  # may match the empty string: no lookahead
    (r".x", None),
    (r"[^a]b", None),
])
def test_first_characters(pattern, firsts):
    got = first_characters(pattern)
    assert (set(got) if got is not None else None) == firsts


@pytest.mark.parametrize("pattern,keys", [
    (r"previous(?:ly)?", {"previous"}),
    (r"history\s+of", {"history"}),
    (r"\b(?:(left|right)\s+)?(upper|middle|lower)\s+lobes?\b|\b(lingula)r?\b", {"upper", "middle", "lower", "lingula"}),
    (r"(?:has|have)\s+(?:increased|decreased)|(?:smaller|larger)\s+(?:in\s+size|since|from)", {"increased", "decreased",
                                                                                              "smaller", "larger"}),
    (r"(?:is|are)\s+(?:absent|not\s+seen)", {"absent", "seen"}),
    (r":\s*(?:no|none)\b", {":"}),
    (r"bases?", {"base"}),
    (r"(?:bi)?apex", {"apex"}),
    (r"\d+\s*mm", {"mm"}),
    (r"x{0,2}y", {"y"}),
    (r"[abc]+", None),
])
def test_required_substrings(pattern, keys):
    got = required_substrings(pattern)
    assert (set(got) if got is not None else None) == keys


def test_derived_speedups_never_reject_a_match():
    """Every match of every pack fragment starts with a lookahead character and holds a pre-test key: sampled on the
    pack's own words and on random text around them."""
    rng = random.Random(0)
    groups = [PACK["negation"]["post"], PACK["negation"]["pre"], PACK["hedges"]["before"], PACK["reading"]["past"],
              PACK["reading"]["hypothetical"], PACK["reading"]["clause_cuts"], PACK["reading"]["interval_cues"],
              [w for ws in PACK["reading"]["zone_levels"].values() for w in ws], [PACK["reading"]["lobe"]],
              [p for ps in PACK["reading"]["size_units"].values() for p in ps]]
    words = ["no", "not", "is", "are", "absent", "seen", "left", "right", "upper", "lower", "lobe", "lobes", "base",
             "bases", "apex", "biapical", "mid", "lung", "zones", "history", "of", "previously", "cm", "mm", "3",
             "with", "but", ",", ";", ":", "new", "since", "the", "prior", "lingula", "lingular", "could", "be", "?"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(4000)]
    for group in groups:
        keys = substring_keys(group)
        for frag in group:
            pat = re.compile(frag, re.I)
            look = first_char_lookahead(frag)
            for t in texts:
                for m in pat.finditer(t):
                    if not m.group(0):
                        continue
                    if keys is not None:
                        assert any(k in m.group(0).lower() for k in keys), (frag, m.group(0), keys)
                    if look:
                        assert re.match(look, t[m.start():], re.I), (frag, m.group(0), look)


def test_a_site_pattern_brings_its_own_pretest(tmp_path):
    """The rules' substring pre-tests are derived from the pack's patterns, so a site that replaces a pattern (here the
    unnamed-acute statement, in German) is not cut short by an English pre-test ("acute" is in no German sentence)."""
    site = tmp_path / "site.yaml"
    site.write_text("rule_patterns:\n  acute_unnamed: '^\\W*akuter\\s+befund\\W*$'\n", encoding="utf-8")
    code = ("import json; from medmm.reports.checker import RulesChecker, RulesConfig; "
            "t = 'FINDINGS: Lungen frei.\\n\\nIMPRESSION: Akuter Befund.'; "
            "print(json.dumps([f.rule for f in RulesChecker(RulesConfig(threshold=0.0)).check(t).flags]))")
    env = {**os.environ, "MEDMM_REPORT_LANGUAGE": str(site)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert "dropped_negation" in json.loads(out.stdout)
    env.pop("MEDMM_REPORT_LANGUAGE")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert "dropped_negation" not in json.loads(out.stdout)


def test_the_interval_claim_word_list_covers_the_pattern():
    """interval_no_prior's pre-test looks the pack's interval_claim_words up in the report's word set (fast); every
    substring a match of interval_claim must hold (derived from the pattern) has to start one of those words, or the
    pre-test could skip a report the pattern would flag ("has grown" was missed so before 'grown' was listed)."""
    words = {w.lower() for w in PACK["interval_claim_words"]} | {w.lower() for w in PACK["change_openers"]}
    keys = substring_keys([PACK["rule_patterns"]["interval_claim"]])
    assert keys is not None
    uncovered = [k for k in keys if not any(w.startswith(k) for w in words)]
    assert set(uncovered) <= {"new", "now", "re-demonstrat"}, uncovered  # "new", "now": tested apart; the hyphen: rare

"""Vocabulary and rule phrases are data: a site's language pack adds a term and a flag changes, without code.

Each check runs in a fresh interpreter: the pack is read once per process, at import of the checker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from medmm.errors import ConfigError
from medmm.reports.language_pack import _merge, language_pack, lexicon_pack

_CODE = ("import json, sys; from medmm.reports.checker import RulesChecker, RulesConfig; "
         "c = RulesChecker(RulesConfig(threshold=0.0)); "
         "print(json.dumps([[f.rule for f in c.check(t).flags] for t in json.loads(sys.argv[1])]))")


def _rules(texts: list[str], site: str | None, tmp_path) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "MEDMM_REPORT_LANGUAGE"}
    if site is not None:
        path = tmp_path / "site.yaml"
        path.write_text(site, encoding="utf-8")
        env["MEDMM_REPORT_LANGUAGE"] = str(path)
    out = subprocess.run([sys.executable, "-c", _CODE, json.dumps(texts)], capture_output=True, text=True, env=env,
                         check=True).stdout
    return json.loads(out)


# medmm's own text: a finding named by a site's abbreviation, a site's grade word, a site's homophone
PTX = "FINDINGS: Small left ptx.\n\nIMPRESSION: Small right ptx."
GRADE = "FINDINGS: Wee 4 cm mass in the right upper lobe.\n\nIMPRESSION: Mass."
SOUND = "FINDINGS: The hart is normal. Clear lungs.\n\nIMPRESSION: Normal."
SITE = """
lexicon:
  findings:
    pneumothorax:
      patterns: ['ptx']
grade_sizes:
  at_least:
    wee: 20
homophones:
- pattern: 'clear\\s+lungs'
  says: 'a site phrase'
  cues: ['clear']
  words: ['clear']
"""


def test_a_site_pack_adding_terms_changes_the_flags(tmp_path):
    before = _rules([PTX, GRADE, SOUND], None, tmp_path)
    after = _rules([PTX, GRADE, SOUND], SITE, tmp_path)
    # a finding term (the shared lexicon): the two sides of "ptx" are now compared
    assert "laterality_sections" not in before[0] and "laterality_sections" in after[0]
    # a rule phrase (grade_sizes): "wee" is now a grade its 4 cm contradicts
    assert "severity_measure" not in before[1] and "severity_measure" in after[1]
    # a list of mappings (homophones) is appended to, the packaged entries stay ("hart" for "heart")
    assert before[2].count("homophone") == 1 and after[2].count("homophone") == 2


def test_the_packaged_files_hold_the_vocabulary_and_the_rule_phrases():
    lex, pack = lexicon_pack(), language_pack()
    assert "pneumothorax" in lex["findings"] and lex["lobes"]["middle lobe"] == ["right"]
    assert {"rule_patterns", "homophones", "phrase", "zones", "grade_sizes", "dropped_negation"} <= set(pack)
    assert "lexicon" not in pack


def test_a_bad_site_pack_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected a mapping"):
        _merge({"sections": {"findings": ["FINDINGS"]}}, {"sections": ["X"]}, "language pack")
    with pytest.raises(ConfigError, match="expected a list"):
        _merge({"zones_list": ["a"]}, {"zones_list": "b"}, "language pack")
    merged = _merge({"a": ["x"], "b": {"c": 1}, "d": [{"p": 1}]}, {"a": ["y"], "b": {"e": 2}, "d": [{"p": 2}]}, "t")
    assert merged == {"a": ["x", "y"], "b": {"c": 1, "e": 2}, "d": [{"p": 1}, {"p": 2}]}

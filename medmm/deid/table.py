"""The PS3.15 Annex E Basic Application Level Confidentiality Profile table (Table E.1-1),
shipped as package data (``ps3.15_annex_e.json``) and read with importlib.resources.

Each attribute carries the profile's action (``D`` dummy, ``Z`` zero-length or dummy, ``X`` remove,
``K`` keep, ``C`` clean, ``U`` replace UID consistently, and the compound choices ``X/Z``, ``X/D``,
``Z/D``, ``X/Z/D``, ``X/Z/U*``) and the option columns (e.g. ``rtnLongModifDatesOpt: C`` for the
Retain Longitudinal Temporal Information with Modified Dates Option).

Where the profile leaves a choice, medmm applies the one that keeps an object valid without knowing
whether the attribute is Type 1, 2 or 3 in its IOD (:func:`applied_action`): ``D`` over ``Z`` over
``X``. Masked rows (curves ``50xx,xxxx``, overlays ``60xx,3000``/``60xx,4000``, private tags) are
matched by :meth:`Table.lookup`.

The JSON was generated from innolitics/dicom-standard ``standard/confidentiality_profile_attributes.json``
(MIT licence; it is parsed from the DICOM standard's PS3.15 Table E.1-1) by :func:`build_table`;
its header names the source commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

TABLE_FILE = "ps3.15_annex_e.json"
ACTIONS = ("D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*")
_APPLIED = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U*"}

# Option column -> (code value, code meaning) of DeidentificationMethodCodeSequence (CID 7050)
OPTION_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "rtnLongModifDatesOpt": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "rtnPatCharsOpt": ("113108", "Retain Patient Characteristics Option"),
    "rtnSafePrivOpt": ("113111", "Retain Safe Private Option"),
}


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1."""

    tag: str  # 8 hex digits, upper case; masked rows use 'X' for any digit (e.g. '50XXXXXX')
    keyword: str | None
    name: str
    action: str
    options: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def matches(self, tag: int) -> bool:
        text = f"{tag:08X}"
        return all(p == "X" or p == c for p, c in zip(self.tag, text))


def applied_action(action: str) -> str:
    """The action medmm applies for a profile action (compound choices resolved: D over Z over X)."""
    return _APPLIED.get(action, action)


@dataclass(frozen=True)
class Table:
    source: str
    rules: tuple[Rule, ...]

    @property
    def exact(self) -> dict[int, Rule]:
        return _exact(self)

    def lookup(self, tag: int) -> Rule | None:
        """The rule for ``tag``: exact rows first, then masked rows (curves, overlays); private tags
        (odd groups) are the caller's (see :mod:`medmm.deid.core`)."""
        rule = self.exact.get(tag)
        if rule is not None:
            return rule
        for r in self.rules:
            if "X" in r.tag and not r.tag.startswith("G") and r.matches(tag):
                return r
        return None


@lru_cache(maxsize=None)
def _exact(table: Table) -> dict[int, Rule]:
    return {int(r.tag, 16): r for r in table.rules if all(c in "0123456789ABCDEF" for c in r.tag)}


@lru_cache(maxsize=1)
def load_table() -> Table:
    """The packaged table."""
    raw = json.loads(resources.files("medmm.deid").joinpath(TABLE_FILE).read_text(encoding="utf-8"))
    rules = tuple(Rule(a["tag"], a.get("keyword"), a["name"], a["action"], dict(a.get("options", {})))
                  for a in raw["attributes"])
    return Table(raw["source"], rules)


def build_table(innolitics_rows: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """The package-data JSON from innolitics' ``confidentiality_profile_attributes.json`` rows.

    Kept here so the table can be regenerated for a new edition of the standard:
    ``json.dump(build_table(json.load(open(path)), "<source and commit>"), open(TABLE_FILE, "w"), indent=1)``.
    """
    from pydicom.datadict import keyword_for_tag

    out = []
    for row in innolitics_rows:
        tag_text = row["tag"].strip("()").replace(",", "").upper()
        if "WHERE" in tag_text:  # "(GGGG,EEEE) WHERE GGGG IS ODD": private attributes
            tag_text = "GGGGEEEE"
        keyword = None
        if all(c in "0123456789ABCDEF" for c in tag_text):
            keyword = keyword_for_tag(int(tag_text, 16)) or None
        action = row["basicProfile"].strip()
        if action not in ACTIONS:
            raise ValueError(f"{row['tag']}: unknown action {action!r}")
        options = {k: v for k, v in row.items() if k.endswith("Opt")}
        out.append({"tag": tag_text, "keyword": keyword, "name": row["name"], "action": action, "options": options})
    out.sort(key=lambda a: a["tag"])
    return {
        "source": source,
        "licence": "MIT (innolitics/dicom-standard); the table content is DICOM PS3.15 Table E.1-1 (NEMA)",
        "profile": "Basic Application Level Confidentiality Profile (DICOM PS3.15 Annex E, Table E.1-1)",
        "actions": {"D": "replace with a non-zero-length dummy value", "Z": "zero-length or dummy value",
                    "X": "remove", "K": "keep", "C": "clean", "U": "replace UID consistently",
                    "X/Z/U*": "remove, empty, or replace the UIDs inside the sequence"},
        "attributes": out,
    }

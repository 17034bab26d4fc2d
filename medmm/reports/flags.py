"""What a checker returns (:class:`Flag`, :class:`CheckResult`) and where a flag's confidence comes from.

A rule never writes a confidence of its own: every flag names its rule, and its confidence is
read from the calibration table (``calibration.json``, package data next to the taxonomy, one
table per rule family). ``scripts/calibrate_report_rules.py`` writes that table from measured
precision on the dev corpus; a rule missing from it falls back to its family's prior, which the
table also holds. The default report threshold is the table's ``threshold`` (chosen there for a
precision of at least the table's ``min_precision``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from typing import Any, Iterator, Mapping, Sequence

from medmm.reports.taxonomy import ERROR_TYPES

CALIBRATION_FILE = "calibration.json"

class _Rules(Mapping[str, tuple[str, str]]):
    """flag id -> (calibration family, taxonomy type), read from the rule registry on first use
    (:mod:`medmm.reports.registry`: every rule declares its flag ids next to its function)."""

    def _table(self) -> dict[str, tuple[str, str]]:
        from medmm.reports.registry import flag_specs

        return {k: (s.family, s.type) for k, s in flag_specs().items()}

    def __getitem__(self, key: str) -> tuple[str, str]:
        return _rules_table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_rules_table())

    def __len__(self) -> int:
        return len(_rules_table())


@functools.lru_cache(maxsize=1)
def _rules_table() -> dict[str, tuple[str, str]]:
    return _Rules()._table()


RULES: Mapping[str, tuple[str, str]] = _Rules()


@dataclass(frozen=True)
class Span:
    """Another place in the report a flag rests on (the other side of a conflict)."""

    start: int
    end: int
    text: str

    @staticmethod
    def coerce(value: Any) -> "Span":
        """A span from a :class:`Span`, a ``{"start", "end", "text"}`` mapping (JSON, the store) or a triple."""
        if isinstance(value, Span):
            return value
        if isinstance(value, Mapping):
            return Span(int(value["start"]), int(value["end"]), str(value.get("text", "")))
        start, end, text = value
        return Span(int(start), int(end), str(text))


@dataclass(frozen=True)
class Flag:
    """One finding of a checker: ``text[start:end]`` is where it points (the statement a rule judges wrong or, for a
    conflict, the one it read second); ``related`` are the other statements of a conflict (text alone cannot tell
    which side was edited, so a conflict shows both). A flag about one statement (a typo, an impossible size) has
    no related span.

    Provenance of a flag raised from the image (issue 18 item 6): ``model`` names the model that raised it (its
    spec, e.g. ``hf:runs/synth-checker/model``, and fingerprint; ``""`` for the rules) and ``region`` is the decoded
    box it points at, a :meth:`medmm.regions.Box.to_dict` (``image``: which of the study's images, in the frame of
    the view the checker was given, e.g. the picture's pixels or a display plane), or None. Both travel with the
    flag through ``check --json``, the audit store (schema v9) and exports, and the review app draws the region."""

    type: str
    start: int
    end: int
    text: str
    explanation: str
    confidence: float
    evidence: str = "text"  # text | header | image
    rule: str = ""
    related: tuple[Span, ...] = ()
    model: str = ""
    region: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.type not in ERROR_TYPES:
            raise ValueError(f"unknown flag type {self.type!r}")
        if not isinstance(self.related, tuple) or any(not isinstance(r, Span) for r in self.related):
            object.__setattr__(self, "related", tuple(Span.coerce(r) for r in self.related or ()))
        if self.region is not None and not isinstance(self.region, Mapping):
            raise ValueError(f"a flag's region is a box dict (medmm.regions.Box.to_dict), not {type(self.region).__name__}")

    def spans(self) -> list[tuple[int, int]]:
        """The primary span and the related ones, ``(start, end)`` each."""
        return [(self.start, self.end)] + [(r.start, r.end) for r in self.related]

    def as_dict(self) -> dict[str, Any]:
        """What ``check --json`` prints: every field but the internal rule id; ``related`` as
        ``[{"start", "end", "text"}]``, ``model`` (``""`` for rules) and ``region`` (a box dict or None)."""
        d = asdict(self)
        d.pop("rule")
        d["related"] = [dict(r) for r in d["related"]]
        d["region"] = dict(self.region) if self.region is not None else None
        return d

    def to_dict(self) -> dict[str, Any]:
        """Every field, the rule id included (the audit's result cache): :meth:`from_dict` reads it back."""
        return {**self.as_dict(), "rule": self.rule}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Flag":
        """A flag from :meth:`to_dict` / :meth:`as_dict` output (JSON: related spans as mappings); fields a
        newer medmm wrote are ignored, fields an older one did not write take their defaults."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["related"] = tuple(Span.coerce(r) for r in (d.get("related") or ()))
        kw["model"] = str(d.get("model") or "")
        kw["region"] = dict(d["region"]) if d.get("region") else None
        return cls(**kw)


@dataclass
class CheckResult:
    has_error: bool
    score: float
    flags: list[Flag]
    checker: str = "rules"
    notes: list[str] = field(default_factory=list)  # input problems, failed rules, and how they were handled

    def as_dict(self) -> dict[str, Any]:
        return {"has_error": self.has_error, "score": round(self.score, 4), "flags": [f.as_dict() for f in self.flags]}


@dataclass(frozen=True)
class Calibration:
    """The packaged calibration table: per rule family, per rule, a confidence (and its evidence)."""

    threshold: float
    min_precision: float
    families: dict[str, dict[str, Any]]
    source: str = ""

    def confidence(self, rule: str) -> float:
        family, _ = RULES[rule]
        table = self.families.get(family, {})
        entry = table.get("rules", {}).get(rule)
        if entry is not None:
            return float(entry["confidence"])
        return float(table["prior"])

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "min_precision": self.min_precision, "source": self.source,
                "families": self.families}


@functools.lru_cache(maxsize=1)
def calibration() -> Calibration:
    """The calibration table shipped with medmm (read once)."""
    raw = json.loads(resources.files("medmm.reports").joinpath(CALIBRATION_FILE).read_text(encoding="utf-8"))
    return Calibration(float(raw["threshold"]), float(raw["min_precision"]), raw["families"], raw.get("source", ""))


def make_flag(rule: str, text: str, start: int, end: int, why: str, evidence: str = "text",
              table: Calibration | None = None, related: Sequence[tuple[int, int]] = ()) -> Flag:
    """A flag of ``rule`` over ``text[start:end]`` with the rule's calibrated confidence; ``related``: the other
    statements of a conflict (``(start, end)`` each; one equal to the primary span is left out)."""
    cal = table or calibration()
    rel = tuple(Span(s, e, text[s:e]) for s, e in dict.fromkeys(related) if (s, e) != (start, end) and s < e)
    return Flag(RULES[rule][1], start, end, text[start:end], why, round(cal.confidence(rule), 3), evidence, rule, rel)

"""The rule registry: every rule of the rule checker is declared once, next to its function.

A rule is a function ``rule(analysis, header[, lm]) -> list[Flag]`` in a module named ``rules_*.py`` of this
package, decorated with :func:`declare`, which names the flag ids it raises. Each flag id is a
:class:`FlagSpec`: its taxonomy type, its calibration family, the sections (or the header, or the plausibility
model) it reads, what its explanation says, and its own test — an ``example`` report that must raise it and a
``clean`` look-alike that must not (``tests/reports/test_registry.py`` runs them all).

The declaration is the one record of which ids a rule raises: the rule's code may build its flags through a
shared loop (:mod:`medmm.reports.rule_loop`) that takes the id as an argument, and the tests run every rule on every
declared example (and on the real dev reports when ``../shared`` has them) and fail when a rule returns an id it did
not declare (:func:`undeclared_ids`) or its own example does not raise an id it declared.

Everything else discovers the rules here: the checker (:func:`rule_functions`), the calibration table and its
script (:func:`flag_specs`), evaluation and the app's legend (the taxonomy type of each id), and the README's rule
table (:func:`rule_table`). Adding a rule is one ``rules_<name>.py`` file and, if it needs more than its declared
example, a test; ``tests/reports/test_registry.py`` fails when an id has no example or no measured confidence in
``calibration.json``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from medmm.reports.taxonomy import ERROR_TYPES

__all__ = ["FlagSpec", "declare", "flag_specs", "rule_functions", "Gate", "rule_gate", "rule_table", "undeclared_ids", "FAMILIES"]

# calibration families (one table each in calibration.json) and the confidence a rule of the family gets before
# it is measured
FAMILIES: dict[str, float] = {"sections": 0.8, "within": 0.6, "single": 0.8, "interval": 0.7, "transcription": 0.8,
                              "header": 0.85}
READS = ("findings", "impression", "comparison", "technique", "indication", "any", "header", "model")


@dataclass(frozen=True)
class FlagSpec:
    """One flag id of a rule."""

    id: str
    type: str  # taxonomy id (medmm.reports.taxonomy)
    family: str  # calibration family (FAMILIES)
    reads: tuple[str, ...]  # sections read ("any": every body section), "header", "model" (plausibility model)
    explains: str  # what the flag's explanation says, with {placeholders} for what the rule fills in
    example: str  # a report that raises this flag id
    clean: str  # a report like the example that must not raise it
    header: tuple[tuple[str, str], ...] = ()  # header facts of both examples (header rules)
    rule: str = ""  # the function that raises it (filled in by declare)

    def __post_init__(self) -> None:
        if self.type not in ERROR_TYPES:
            raise ValueError(f"flag {self.id}: unknown taxonomy type {self.type!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"flag {self.id}: unknown calibration family {self.family!r}")
        bad = [r for r in self.reads if r not in READS]
        if bad:
            raise ValueError(f"flag {self.id}: reads {bad}; use {', '.join(READS)}")

    def header_dict(self) -> dict[str, str] | None:
        return dict(self.header) or None


_SPECS: dict[str, FlagSpec] = {}
_FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[FlagSpec, ...]]] = {}


@dataclass(frozen=True)
class Gate:
    """What a rule declared a report must hold for it to flag anything (see :func:`declare`); the default is nothing."""

    words: tuple[tuple[str, ...], ...] = ()  # groups of strings, one of each in the lower-cased text
    word_test: Callable[[str, Any], bool] | None = None  # a test of one word with the checker's model
    needs: str | None = None  # a fact of the report's finding mentions (medmm.reports.rule_gate.FACTS)
    needs_unless: tuple[str, ...] | None = None  # strings one of which in the text waives ``needs``


_GATES: dict[str, Gate] = {}


def declare(*specs: FlagSpec, gate: Sequence[Iterable[str] | None] = (),
            needs: str | None = None, needs_unless: Iterable[str] | None = None,
            word_gate: Callable[[str, Any], bool] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a rule function and the flag ids it raises.

    ``gate``: groups of lower-case strings, each group a *necessary* condition of any flag of the rule on an ASCII
    report — one of its strings stands in the lower-cased text (the rule's own first pre-test, from the same data).
    The checker tests every gate of every rule on the report's words at once (:mod:`medmm.reports.rule_gate`) and
    does not call a rule whose gate fails; the rule keeps its own pre-test (it is called directly too). A group that
    is None (a pack without that data) is no condition. ``needs``: a fact of the report's finding mentions without
    which the rule flags nothing (one of :data:`medmm.reports.rule_gate.FACTS`, e.g. "positive finding": the rules
    that compare what the report states present), tested once per report for all the rules that name it;
    ``needs_unless``: strings one of which in the text makes the rule run without that fact (a rule with a second,
    word-led part, such as "right greater than left").
    ``word_gate(word, lm)``: a test of one lower-case word (a run of letters a-z) with the checker's plausibility
    model, true for a word that may make the rule flag; an ASCII report none of whose words passes it is not given to
    the rule (decided once per distinct word, like ``gate``)."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        _GATES[fn.__name__] = Gate(tuple(tuple(g) for g in gate if g is not None), word_gate, needs,
                                   tuple(needs_unless) if needs is not None and needs_unless is not None else None)
        done = []
        for s in specs:
            if s.id in _SPECS and _SPECS[s.id].rule != fn.__name__:
                raise ValueError(f"flag id {s.id} declared twice ({_SPECS[s.id].rule} and {fn.__name__})")
            spec = FlagSpec(**{**s.__dict__, "rule": fn.__name__})
            _SPECS[spec.id] = spec
            done.append(spec)
        _FUNCTIONS[fn.__name__] = (fn, tuple(done))
        return fn
    return wrap


@functools.lru_cache(maxsize=1)
def _discover() -> tuple[str, ...]:
    """Import every ``rules_*`` module of this package (their ``declare`` calls fill the registry), in name order."""
    import medmm.reports as pkg

    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("rules_"))
    for name in names:
        importlib.import_module(f"medmm.reports.{name}")
    return tuple(names)


def flag_specs() -> dict[str, FlagSpec]:
    """flag id -> its declaration, for every rule of the package."""
    _discover()
    return dict(_SPECS)


def rule_functions() -> list[tuple[Callable[..., Any], tuple[FlagSpec, ...]]]:
    """(function, its flag ids) of every rule, in module order and, within a module, in declaration order."""
    _discover()
    return list(_FUNCTIONS.values())


def rule_gate(name: str) -> Gate:
    """The gate a rule declared (see :func:`declare`); :class:`Gate` ``()`` for a rule that declared none."""
    _discover()
    return _GATES.get(name, Gate())


def undeclared_ids(specs: tuple[FlagSpec, ...], flags: Any) -> set[str]:
    """The flag ids among ``flags`` (what a rule returned) that the rule did not declare (``specs``): what
    ``tests/reports/test_registry.py`` asserts is empty for every rule on every example and on the real reports.
    The ids a rule raises are data of its declaration, not literals of its code (shared loops such as
    :func:`medmm.reports.rule_loop.sentence_flags` take the id as an argument), so they are checked on the output."""
    declared = {s.id for s in specs}
    return {f.rule for f in flags} - declared


def needs_header(specs: tuple[FlagSpec, ...]) -> bool:
    return all("header" in s.reads for s in specs)


def needs_model(specs: tuple[FlagSpec, ...]) -> bool:
    return any("model" in s.reads for s in specs)


def rule_table(calibration: Any = None) -> str:
    """The README's rule table (Markdown), generated from the registry and the calibration table: id, type, what
    it reads, measured precision (the confidence), the weighted tp/fp it rests on and the flags behind them, and the
    calibration row's note where it has one (a row resting on few flags, or mostly on the authors' edits, says so)."""
    from medmm.reports.flags import calibration as packaged

    cal = calibration or packaged()
    lines = ["| flag id | type | reads | measured precision (weighted tp/fp; flags tp/fp) | what the explanation says | "
             "how far the measurement goes |",
             "|---|---|---|---|---|---|"]
    for spec in sorted(flag_specs().values(), key=lambda s: (s.type, s.id)):
        row = cal.families.get(spec.family, {}).get("rules", {}).get(spec.id)
        if row is None:
            measured = "not measured (prior)"
        else:
            flags = f"; flags {row['flags_tp']}/{row['flags_fp']}" if "flags_tp" in row else ""
            measured = f"{row['confidence']:.3f} ({row['tp']:g}/{row['fp']:g}{flags})"
        note = (row or {}).get("note", "")
        lines.append(f"| `{spec.id}` | {spec.type} | {', '.join(spec.reads)} | {measured} | "
                     f"{spec.explains.replace('|', '/')} | {note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"

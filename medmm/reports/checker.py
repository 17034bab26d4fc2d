"""The rule checker (no model): build it once, check many reports.

:func:`build_checker` returns a :class:`RulesChecker` (or, with a model, the VLM/ensemble checker of
:mod:`medmm.reports`) whose ``.check(text, header)`` returns a :class:`CheckResult`. The rules live
in :mod:`~medmm.reports.rules_sections` (statements compared), :mod:`~medmm.reports.rules_single`
(one statement, the header) and :mod:`~medmm.reports.rules_text` (transcription); each flag's
confidence comes from the calibration table (:mod:`medmm.reports.flags`). The report score combines
flag confidences by noisy-OR; ``has_error`` is ``score >= threshold`` (the calibrated default).

A rule that raises does not lose the others' flags, and is never dropped silently: the failure
is a note of the result (``CheckResult.notes``, saved by the review store) — or, with
``RulesConfig(strict=True)``, the check fails.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from medmm.imaging.volume import HeaderFacts
from medmm.reports.analysis import MAX_COMPARED_MENTIONS, Analysis, analyze
from medmm.reports.flags import CheckResult, Flag, calibration
from medmm.reports.language import ReportLM, known_words, packaged_lm
from medmm.reports.registry import needs_header, needs_model, rule_functions, rule_gate
from medmm.reports.rule_gate import FACTS, RuleGates

__all__ = ["CheckResult", "Flag", "RulesChecker", "RulesConfig", "check_rules", "clean_text", "combine", "dedupe",  # noqa: F822
           "DEFAULT_THRESHOLD", "RULES_VERSION"]  # DEFAULT_THRESHOLD: module __getattr__ (the calibrated threshold)

MAX_REPORT_CHARS = 200_000  # longer input is checked on its first 200,000 characters (noted)
MAX_FLAGS_PER_RULE = 20  # more flags of one rule in one report are counted in a note (see cap_flags)
_MAX_RUNS = 4096  # gate-bit patterns whose runnable rules a checker keeps (RulesChecker.analyze_flags)
RULES_VERSION = "5"  # part of a run's identity: bump when a rule changes what it flags
Rule = Callable[..., list[Flag]]
# every rule of the registry (medmm.reports.registry discovers the rules_* modules), with what it reads
_DECLARED = rule_functions()
RULES: tuple[Rule, ...] = tuple(fn for fn, _ in _DECLARED)
_NEEDS_LM = {fn.__name__ for fn, specs in _DECLARED if needs_model(specs)}
_HEADER_ONLY = {fn.__name__ for fn, specs in _DECLARED if needs_header(specs)}


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_THRESHOLD":  # the calibrated threshold (read from the packaged table)
        return calibration().threshold
    raise AttributeError(name)


@functools.lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """The accepted vocabulary (kept under this name: medmm._warm pre-loads it into worker processes)."""
    return known_words(packaged_lm())


@dataclass(frozen=True)
class RulesConfig:
    """What decides the rule checker's result (part of a run's identity)."""

    threshold: float | None = None  # None: the calibrated default
    lm_path: str | None = None  # a plausibility model built by scripts/build_report_lm.py (None: the packaged one)
    disabled: tuple[str, ...] = ()  # rule function names to skip
    strict: bool = False  # a rule that raises fails the check instead of becoming a note

    def identity(self) -> dict[str, Any]:
        from medmm.reports.flags import CALIBRATION_FILE

        return {"checker": "rules", "rules_version": RULES_VERSION, "threshold": self.resolved_threshold(),
                "lm": self.lm_path or "packaged", "disabled": list(self.disabled), "calibration": CALIBRATION_FILE,
                "calibration_source": calibration().source}

    def resolved_threshold(self) -> float:
        return calibration().threshold if self.threshold is None else float(self.threshold)


def as_header(data: Any, notes: list[str] | None = None) -> HeaderFacts | None:
    """The one header type (:class:`medmm.imaging.HeaderFacts`) from a HeaderFacts, a mapping or None."""
    return HeaderFacts.from_mapping(data, notes)


def _needs(rule: Rule) -> str | None:
    name = rule_gate(rule.__name__).needs
    if name is not None and name not in FACTS:
        raise ValueError(f"rule {rule.__name__} needs {name!r}: not a fact of medmm.reports.rule_gate.FACTS")
    return name


class RulesChecker:
    """The rule checker, built once (plausibility model loaded, rules chosen), used for many reports."""

    kind = "rules"

    def __init__(self, config: RulesConfig | None = None) -> None:
        self.config = config or RulesConfig()
        self.lm: ReportLM = ReportLM.load(self.config.lm_path) if self.config.lm_path else packaged_lm()
        self.rules = tuple(r for r in RULES if r.__name__ not in self.config.disabled)
        self.threshold = self.config.resolved_threshold()
        # (rule, needs the plausibility model) decided once; without a header the header rules have nothing to
        # compare and return no flag, so they are not called
        # and a rule whose gate (registry.declare) the report's words fail cannot flag it: not called either
        # one plan entry per rule: (rule, needs the model, gate bits, fact needed, bits that waive it)
        self._gates = RuleGates([rule_gate(r.__name__) for r in self.rules], self.lm)
        plan = []
        for r, need, unless in zip(self.rules, self._gates.need, self._gates.unless):
            needs = _needs(r) if unless is not None else None  # a waiver the words cannot tell: no fact gate
            plan.append((r, r.__name__ in _NEEDS_LM, need, needs, unless or 0))
        self._plan = tuple(plan)
        self._plan_without_header = tuple(p for p in self._plan if p[0].__name__ not in _HEADER_ONLY)
        # (with a header, the report's gate bits) -> (the plan they were taken from, its entries whose gate they pass):
        # reports share a few hundred bit patterns, so most reports skip the gate tests of the rules that cannot run
        self._runs: dict[tuple[bool, int], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}

    def analyze_flags(self, a: Analysis, header: HeaderFacts | None, notes: list[str]) -> list[Flag]:
        flags: list[Flag] = []
        lm = self.lm
        plan = self._plan if header is not None else self._plan_without_header
        bits = self._gates.bits(a)
        facts: dict[str, bool] = {}
        known = self._runs.get((header is not None, bits))
        if known is not None and known[0] is plan:
            run = known[1]
        else:  # the rules whose gate the report's words pass (the others cannot flag this report), in plan order
            run = tuple(p for p in plan if bits & p[2] == p[2])
            if len(self._runs) < _MAX_RUNS:
                self._runs[(header is not None, bits)] = (plan, run)
        for rule, needs_lm, need, needs, unless in run:
            if needs is not None and not bits & unless:
                ok = facts.get(needs)
                if ok is None:
                    ok = facts[needs] = FACTS[needs](a)
                if not ok:
                    continue  # the report's mentions lack what the rule needs
            try:
                found = rule(a, header, lm) if needs_lm else rule(a, header)
                if found:
                    flags.extend(found)
            except Exception as exc:  # recorded in the result (stored with it), never dropped silently
                if self.config.strict:
                    raise
                notes.append(f"rule {rule.__name__} failed ({type(exc).__name__}: {exc}); its flags are missing")
        return cap_flags(dedupe(flags), notes) if flags else flags

    def check(self, report: Any, header: Any = None) -> CheckResult:
        """Check one report; never raises on bad input (problems are in ``notes``)."""
        notes: list[str] = []
        text = clean_text(report, notes)
        hdr = as_header(header, notes)
        if not text or text.isspace():
            return CheckResult(False, 0.0, [], "rules", notes)
        a = analyze(text)
        flags = self.analyze_flags(a, hdr, notes)
        if a.cache.get("capped"):
            notes.append(f"a section names more than {MAX_COMPARED_MENTIONS} findings; the first "
                         f"{MAX_COMPARED_MENTIONS} were compared")
        score = combine(f.confidence for f in flags) if flags else 0.0
        if score < self.threshold - 1e-9:  # below the calibrated threshold nothing is raised (flagged or not)
            return CheckResult(False, score, [], "rules", notes)
        return CheckResult(True, score, flags, "rules", notes)


@functools.lru_cache(maxsize=4)
def default_checker(config: RulesConfig | None = None) -> RulesChecker:
    """One shared rule checker per configuration (building one loads the plausibility model)."""
    return RulesChecker(config)


# ------------------------------------------------------------------ input hygiene
_RTF = re.compile(r"\\[a-z]+-?\d* ?|[{}]")
_CONTROL = re.compile(r"[^\S\n\t ]|[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_TAG = re.compile(r"<[^>]{1,200}>")
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\n\t"  # what clean_text keeps as it is in ASCII text


def clean_text(report: Any, notes: list[str]) -> str:
    """Decode bytes, strip RTF/HTML remnants and control characters; never raises."""
    if report is None:
        notes.append("empty report: nothing to check")
        return ""
    if isinstance(report, (bytes, bytearray)):
        try:
            report = bytes(report).decode("utf-8")
        except UnicodeDecodeError:
            report = bytes(report).decode("cp1252", errors="replace")
            notes.append("report was not UTF-8; decoded as Windows-1252 (check accented characters)")
    if not isinstance(report, str):
        notes.append(f"report must be text, got {type(report).__name__}")
        return ""
    text = report
    if text.startswith("{\\rtf") or (text[:1].isspace() and text.lstrip().startswith("{\\rtf")):
        text = _RTF.sub("", text).replace("\\par", "\n")
        notes.append("RTF markup removed")
    if "<" in text and _TAG.search(text) and re.search(r"</?(?:p|br|div|span|b|i|html|body|font)\b", text, re.I):
        import html

        text = html.unescape(_TAG.sub(lambda m: "\n" if re.match(r"</?(?:p|br|div)", m.group(0), re.I) else " ", text))
        notes.append("HTML markup removed")
    plain = text.isascii()
    if not plain:
        text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # every character _CONTROL matches is unprintable, and it never matches a newline or a tab: text that is
    # printable once those two are set aside (almost every report) has nothing to replace. In ASCII text the printable
    # characters are those from the space to "~": deleted from its bytes with the two (one C loop), nothing is left
    # (a third of the instructions of isprintable on the text without them)
    if (text.encode("ascii").translate(None, _PRINTABLE_ASCII) if plain
            else not text.replace("\n", "").replace("\t", "").isprintable()):
        text = _CONTROL.sub(" ", text)
    if len(text) > MAX_REPORT_CHARS:
        notes.append(f"report is {len(text):,} characters; checked the first {MAX_REPORT_CHARS:,}")
        text = text[:MAX_REPORT_CHARS]
    if not text or text.isspace():
        notes.append("empty report: nothing to check")
    return text


def combine(confidences: Iterable[float]) -> float:
    p = 1.0
    for c in confidences:
        p *= 1.0 - max(0.0, min(1.0, c))
    return 1.0 - p


def dedupe(flags: list[Flag]) -> list[Flag]:
    """One flag per (type, span); overlapping flags of one type keep the most confident.

    The flags kept of one type never overlap one another, so sorted by start their ends are sorted too, and a new
    flag overlaps a kept one exactly when the kept flag that starts last before the new one's end reaches past the
    new one's start: one bisection per flag (a pairwise test was quadratic: 25,000 flags took 110 s)."""
    kept: dict[str, tuple[list[int], list[int]]] = {}  # type -> (starts, ends) of the kept flags, sorted
    out: list[Flag] = []
    for f in sorted(flags, key=lambda f: (-f.confidence, f.start)):
        starts, ends = kept.setdefault(f.type, ([], []))
        i = bisect.bisect_left(starts, f.end)  # kept flags before i start before f ends
        if i and ends[i - 1] > f.start:
            continue
        j = bisect.bisect_right(starts, f.start)
        starts.insert(j, f.start)
        ends.insert(j, f.end)
        out.append(f)
    return sorted(out, key=lambda f: (f.start, f.type))


def cap_flags(flags: list[Flag], notes: list[str]) -> list[Flag]:
    """At most :data:`MAX_FLAGS_PER_RULE` flags of one rule (the first ones in the text): a report with a hundred
    flags of one kind is garbage input or one systematic slip, and a reviewer reads the first few; the rest is a
    note, never dropped silently."""
    counts: dict[str, int] = {}
    for f in flags:
        counts[f.rule] = counts.get(f.rule, 0) + 1
    if max(counts.values()) <= MAX_FLAGS_PER_RULE:
        return flags
    seen: dict[str, int] = {}
    out = []
    for f in flags:
        seen[f.rule] = seen.get(f.rule, 0) + 1
        if seen[f.rule] <= MAX_FLAGS_PER_RULE:
            out.append(f)
    for rule, n in sorted(counts.items()):
        if n > MAX_FLAGS_PER_RULE:
            notes.append(f"rule {rule} raised {n} flags; the first {MAX_FLAGS_PER_RULE} are shown")
    return out


def check_rules(report: Any, header: Any = None, threshold: float | None = None) -> CheckResult:
    """Check one report with the shared rule checker (see :class:`RulesChecker`)."""
    return default_checker(RulesConfig(threshold=threshold)).check(report, header)

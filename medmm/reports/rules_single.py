"""Rules that judge one statement on its own, or against the DICOM header.

* ``size_plausibility``: a measurement outside what the structure it names can measure (a 5.7 mm
  pulmonary artery, a 3.6 mm "mass", a 45 mm "nodule") — sizes from :data:`lexicon.STRUCTURE_SIZE_MM`.
* ``nonexistent_lobe``: a lobe that does not exist on the side named ("left middle lobe").
* ``interval_no_prior``: interval language ("unchanged", "new", "again seen") when COMPARISON (or, in a
  report without one, a sentence such as "There are no comparison studies.") says there is no prior — unless the
  sentence names its own prior, or the word is descriptive ("increased lung markings", "increased opacity compared
  to the left").
* header rules: modality, body part, patient sex, image laterality and view position.
"""

from __future__ import annotations

import re
from typing import Any

from medmm.reports import lexicon as lx
from medmm.reports.analysis import UNIT_KEYS, Analysis, _for_lower_case, per_sentence, prior_status, unit_mm
from medmm.reports.findings_sizes import SIZE, lower_search, plain_ascii
from medmm.reports.flags import Flag, make_flag
from medmm.reports.language_pack import lacks, language_pack, longest_first, substring_keys
from medmm.reports.registry import FlagSpec, declare
from medmm.reports.sections import Sentence

_RP: dict[str, str] = language_pack()["rule_patterns"]  # the rules' phrases: data (language-en.yaml)

_STRUCTURES = [(re.compile(r"\b(?:" + pat + r")\b", re.I), lo, hi) for pat, (lo, hi) in lx.STRUCTURE_SIZE_MM.items()]
_ANY_STRUCTURE = re.compile(r"\b(?:" + "|".join(lx.STRUCTURE_SIZE_MM) + r")\b", re.I)  # one test before the 13
_DISTANCE = re.compile(_RP["distance"], re.I)
_DIGIT = re.compile(r"\d")
_DIGIT_ASCII = re.compile(r"\d", re.ASCII)
_UNITS = UNIT_KEYS  # a SIZE match holds one of these (in ASCII text, lower-cased; None: no pre-test)
_TINY = re.compile(_RP["tiny"], re.I)
_NARROWED_TO = re.compile(_RP["narrowed_to"], re.I)


_LOCATING = re.compile(_RP["locating"], re.I)
_DIMENSION_OF = re.compile(_RP["dimension_of"], re.I)  # "diameter of the": the structure after it is measured


def _dimension_of(window: str, before: list[str]) -> bool:
    """Whether the words before a structure that make it a place (``window``, the last of the words ``before`` the
    measurement: "of the") name a dimension of it instead ("the AP diameter of the central canal": the three words
    before the window are read too)."""
    return _DIMENSION_OF.search(f"{' '.join(before[-8:-5])} {window}") is not None


def _structure_near(text: str, start: int, end: int, lo: int, hi: int) -> tuple[str, float, float] | None:
    """The structure a measurement measures: named within 4 words after it ("5 mm nodule"), else within 5
    words before it ("the pulmonary artery measures 5.7 mm") unless the structure only says where
    something else is ("a mass over the right heart, 3 cm"; "the largest 3 cm in the right kidney"). A structure right
    before a finding noun or a part of it only says where that finding is ("3 mm left kidney stone", "the thyroid
    isthmus measures 3 mm"): the noun is what is measured (the pack's structure_modified); an organ sub-heading
    ("KIDNEYS: 4 mm stone") names no structure measured."""
    # bounded windows (4 or 5 words of a report are far under 160 characters): splitting the whole rest of a long
    # sentence for each measurement was quadratic
    words_after = " ".join(text[end:min(hi, end + 160)].split()[:4])
    before = text[max(lo, start - 160):start].split()
    words_before = " ".join(before[-5:])
    for window, after in ((words_after, True), (words_before, False)):
        if not _ANY_STRUCTURE.search(window):
            continue
        best = None
        for pat, mn, mx in _STRUCTURES:
            m = pat.search(window)
            if m and (best is None or m.start() < best[0]) and (not _LOCATING.search(window[: m.start()])
                                                                   or (not after and _dimension_of(window[: m.start()], before))):
                best = (m.start(), m.group(0), mn, mx, m.end())
        if best and window.startswith(":", best[4]):
            continue  # "KIDNEYS: 4 mm stone": a sub-heading
        if best and _MODIFIED.match(window, best[4]):
            rest = window[best[4]:]  # "kidney stone": the stone's size; "kidney cyst": the cyst's
            found = _structure_in(rest) if _ANY_STRUCTURE.search(rest) else None
            return _structure_state(text, lo, hi, start, end, *found, after) if found else None
        if best:
            return _structure_state(text, lo, hi, start, end, best[1], best[2], best[3], after)
    return None


_MODIFIED = re.compile(_RP["structure_modified"], re.I)
_ORGAN_STATES = re.compile(r"(?:" + _RP["organ_states"] + r")$", re.I)
_ORGAN_SMALLER = re.compile(_RP["organ_smaller"], re.I)
_ORGAN_LARGER = re.compile(_RP["organ_larger"], re.I)
_LARGER_FACTOR = float(_RP["organ_larger_factor"])
# structure name -> (sites, least, most): the pack's structure_at_site
_AT_SITE = {name: (re.compile(sites, re.I), float(least), float(most))
            for name, sites, least, most in language_pack()["rule_patterns"]["structure_at_site"]}
_SITE_BREAK = re.compile(_RP["site_clause_break"], re.I)


def _structure_state(text: str, lo: int, hi: int, start: int, end: int, name: str, mn: float, mx: float,
                     after: bool) -> tuple[str, float, float]:
    """A structure's bounds where its sentence (``text[lo:hi]``) says more of it: an organ qualified as small
    ("accessory spleen", "atrophic left kidney") has no least size, one said to be enlarged a larger most
    (``organ_*``); a structure at a site of the pack's ``structure_at_site`` in the measurement's clause ("a 4 mm mass
    in the pituitary", "a 3.5 cm nodule in the adrenal") that site's bounds."""
    if _ORGAN_STATES.match(name):
        at = text.find(name, end, hi) if after else text.rfind(name, lo, start)
        if at >= 0 and _ORGAN_SMALLER.search(text, max(lo, at - 60), at):
            mn = 0.0
        if _ORGAN_LARGER.search(text, lo, hi):
            mx *= _LARGER_FACTOR
        return name, mn, mx
    for key, (sites, least, most) in _AT_SITE.items():
        if re.fullmatch(key, name, re.I):
            head = text[max(lo, start - (40 if after else 80)):start]  # before: the structure is in it too
            cuts = [c.end() for c in _SITE_BREAK.finditer(head)]
            tail = text[end:min(hi, end + 100)]
            cut = _SITE_BREAK.search(tail)
            if sites.search((head[cuts[-1]:] if cuts else head) + " " + (tail[:cut.start()] if cut else tail)):
                return name, least, most
            break
    return name, mn, mx


_ANAPHOR = re.compile(_RP["anaphor"], re.I)


def _structure_in(text: str) -> tuple[str, float, float] | None:
    """The first named structure of a sentence (what "the largest" / "it" of the next sentence refers to); one
    before a finding noun or a part ("kidney stone", "thyroid isthmus") names where the next one is, if any."""
    pos = 0
    for _ in range(3):  # "kidney stone": at most a few hops (bounded on adversarial text)
        best = None
        for pat, mn, mx in _STRUCTURES:
            m = pat.search(text, pos)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), m.group(0), mn, mx, m.end())
        if best is None or not _MODIFIED.match(text, best[4]):
            return (best[1], best[2], best[3]) if best else None
        pos = best[4]
    return None


# "<finding> in the left upper lung measuring (approximately) <size>": the finding is the head of its phrase, up to 12
# words before "measuring" and after the last word that hands the size to another finding (the pack's
# measured_gap_breaks, or a comma/semicolon)
_MEASURED_BEFORE = re.compile(language_pack()["findings_rules"]["measured_by"] + r"$", re.I)
_HEAD_BREAK = re.compile(r"[,;]|\b(?:" + "|".join(language_pack()["findings_rules"]["measured_gap_breaks"]) + r")\b",
                         re.I)


def _measured_head(before: str) -> tuple[str, float, float] | None:
    """The structure a "measuring" after ``before`` (its sentence up to that word) measures, else None."""
    words = before.split()[-12:]
    window = " ".join(words)
    cuts = [b.end() for b in _HEAD_BREAK.finditer(window)]
    return _structure_in(window[cuts[-1]:] if cuts else window)


@declare(FlagSpec(id='size_plausibility', type='measurement', family='single', reads=('findings', 'impression'), explains='{size} is too small/large for a {structure} (at least/most {limit} mm); unit or value wrong?', example='FINDINGS: A 45 mm nodule in the right upper lobe.\n\nIMPRESSION: Nodule.', clean='FINDINGS: A 4.5 mm nodule in the right upper lobe.\n\nIMPRESSION: Nodule.'),
         gate=(_UNITS,))
def rule_plausibility(a: Analysis, header: Any = None) -> list[Flag]:
    """A measurement the named structure cannot have (or a "tiny" finding of 3 cm and more)."""
    flags: list[Flag] = []
    if _UNITS is not None and a.text.isascii() and not any(map(a.lower_text().__contains__, _UNITS)):
        return flags  # the common case: no unit, so no measurement (decided by substring tests)
    digit = _DIGIT_ASCII if a.text.isascii() else _DIGIT  # (on ASCII text a digit is 0-9: a table look-up)
    if not digit.search(a.text):
        return flags
    for i, sent in enumerate(a.sentences):
        if sent.section in ("indication", "comparison", "technique") or not digit.search(a.text, sent.start, sent.end):
            continue
        prev = a.sentences[i - 1] if i and a.sentences[i - 1].section == sent.section else None
        for m in SIZE.finditer(a.text, sent.start, sent.end):
            if _DISTANCE.match(a.text, m.end()):
                continue
            scale = unit_mm(m.group(4))
            dims = [float(g) * scale for g in m.groups()[:3] if g]
            found = near = _structure_near(a.text, m.start(), m.end(), sent.start, sent.end)
            if found is None and prev is not None and _ANAPHOR.match(sent.text):  # "The largest measures 3.5 cm."
                found = _structure_in(prev.text)
            if found is None and a.text.find("measur", max(sent.start, m.start() - 40), m.start()) >= 0 \
                    and (by := _MEASURED_BEFORE.search(a.text, max(sent.start, m.start() - 40), m.start())):
                found = _measured_head(a.text[sent.start:by.start()])  # "nodular opacity in the ... measuring 7 cm"
            if found is None:
                continue
            if found is not near:  # named farther back: its state and site as _structure_near reads them
                found = _structure_state(a.text, sent.start, sent.end, m.start(), m.end(), *found, after=False)
            name, lo, hi = found
            why = None
            if max(dims) < lo and not _NARROWED_TO.search(a.text, max(sent.start, m.start() - 60), m.start()):
                why = f"{m.group(0)} is too small for a {name.lower()} (at least {lo:g} mm); unit or value wrong?"
            elif max(dims) > hi:
                why = f"{m.group(0)} is too large for a {name.lower()} (at most {hi:g} mm); unit or value wrong?"
            elif max(dims) >= 30 and not _ORGAN_STATES.match(name) \
                    and (tiny := _TINY.search(a.text, max(sent.start, m.start() - 40), m.start())):
                why = f"\"{tiny.group(0)}\" but {m.group(0)}"
            if why:
                flags.append(make_flag("size_plausibility", a.text, m.start(), m.end(), why))
    return flags


_NO_SUCH_LOBE = re.compile(_RP["no_such_lobe"], re.I)
_NO_SUCH_LOBE_LOWER = _for_lower_case(_NO_SUCH_LOBE)
MIRRORED = re.compile(language_pack()["sided_anatomy"]["mirrored"], re.I)  # situs inversus: one-sided lobes swap
MIRRORED_KEYS = substring_keys([language_pack()["sided_anatomy"]["mirrored"]])  # its cheap pre-test


@declare(FlagSpec(id='nonexistent_lobe', type='laterality', family='single', reads=('any',), explains='the {side} lung has no {lobe}: it is on the other side', example='FINDINGS: Opacity in the left middle lobe.\n\nIMPRESSION: Pneumonia.', clean='FINDINGS: Opacity in the right middle lobe.\n\nIMPRESSION: Pneumonia.'),
         gate=(("middle lobe", "lingul"),))
def rule_nonexistent_lobe(a: Analysis, header: Any = None) -> list[Flag]:
    """"left middle lobe" or "right lingula": the side (or the lobe) is wrong."""
    flags: list[Flag] = []
    low = a.lower_text()
    if "middle lobe" not in low and "lingul" not in low:
        return flags
    if not lacks(low, MIRRORED_KEYS) and MIRRORED.search(low):
        return flags  # situs inversus: a left middle lobe is the mirrored anatomy
    # the side is lower-cased below: on plain ASCII the lower-cased text's matches give the same flags
    for m in _NO_SUCH_LOBE_LOWER.finditer(low) if plain_ascii(a.text) else _NO_SUCH_LOBE.finditer(a.text):
        # odd groups: a left middle lobe ("left middle lobe", "middle lobe ... of the left lung"); even: a right lingula
        groups = m.groups()
        middle = any(groups[i] for i in range(0, len(groups), 2))
        side = next(g for g in groups if g).lower()
        flags.append(make_flag("nonexistent_lobe", a.text, m.start(), m.end(),
                               f"the {side} lung has no {'middle lobe' if middle else 'lingula'}: "
                               f"{'a middle lobe' if middle else 'a lingula'} is on the {'right' if middle else 'left'}"))
    return flags


# every interval claim has one of these words (or "new", or "now" after a space and before one: the pack's patterns
# say "now" only before a word), checked apart: the pack's interval_claim_words
_INTERVAL_CUES = frozenset(w.lower() for w in language_pack()["interval_claim_words"]) | frozenset(
    language_pack()["change_openers"])
_WEAK_CLAIM = tuple(w.lower() for w in language_pack()["weak_interval_claims"])  # also said of a normal structure
_INTERVAL_CLAIM = re.compile(_RP["interval_claim"], re.I)
_INTERVAL_CLAIM_LOWER = _for_lower_case(_INTERVAL_CLAIM)  # the same spans on the lower-cased plain ASCII text, faster
# a prior named specifically in the sentence (a date, an outside or other-modality study): the sentence then
# brings its own comparison, whatever COMPARISON says. Not "since <date>": "stable since XXXX" under COMPARISON
# "None" claims the very prior the COMPARISON line denies (blind set 3's miss; tune5 edits 0/3 -> 3/3)
_PRIOR_IN_SENTENCE = re.compile(_RP["prior_in_sentence"], re.I)
_NOT_A_CLAIM = re.compile(_RP["not_a_claim"], re.I)


# a sentence opening with a change said of a finding ("Increased right pleural effusion."): a claim about a prior;
# the descriptive uses ("Increased interstitial markings") are not (both lists: the language pack)
_PACK = language_pack()
_DESCRIPTIVE = longest_first(_PACK["change_descriptive"])
_OPENER = re.compile(r"^\W*(?:\d+[.)]\s*)?(" + longest_first(_PACK["change_openers"])
                     + r")\s+(?!(?:" + _DESCRIPTIVE + r")\b)", re.I)
# looked up among the report's words of four letters or more (None: a shorter opener, so no such pre-test)
_OPENER_WORDS = frozenset(w.lower() for w in _PACK["change_openers"]) \
    if all(len(w) >= 4 and w.isalpha() for w in _PACK["change_openers"]) else None
_OPENER_DESCRIPTIVE = re.compile(r"(?:(?:[a-z]+\s+){0,2})(?:" + _DESCRIPTIVE + r")\b", re.I)
_LESION = re.compile(r"\b(?:" + "|".join(p for k, (_, pats) in lx.FINDINGS.items() if k != "opacity" for p in pats)
                     + r")\b", re.I)


@per_sentence
def _opener(sentence: str) -> re.Match | None:
    """The change word opening ``sentence`` when a finding follows within four words (else None)."""
    m = _OPENER.match(sentence)
    if m is None:
        return None
    head = " ".join(sentence[m.end(): m.end() + 80].split()[:4])
    return m if _LESION.search(head) and not _OPENER_DESCRIPTIVE.match(head) else None


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` without the white space at either end."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@declare(FlagSpec(id='interval_no_prior', type='interval', family='interval', reads=('comparison', 'findings', 'impression'), explains='interval language {word} but COMPARISON (or a sentence of the report) says there is no prior ({comparison})', example='COMPARISON: None.\n\nFINDINGS: New right pleural effusion.\n\nIMPRESSION: Effusion.', clean='COMPARISON: None.\n\nFINDINGS: Right pleural effusion.\n\nIMPRESSION: Effusion.'),
         FlagSpec(id='interval_no_prior_weak', type='interval', family='interval', reads=('comparison', 'findings', 'impression'), explains='interval language {stable/persistent} but COMPARISON (or a sentence of the report) says there is no prior ({comparison})', example='COMPARISON: None.\n\nFINDINGS: Stable right pleural effusion.\n\nIMPRESSION: Effusion.', clean='COMPARISON: None.\n\nFINDINGS: Right pleural effusion.\n\nIMPRESSION: Effusion.'),
         gate=((*sorted(_INTERVAL_CUES), "new", " now "),))  # the rule's own word pre-test (below), as its gate
def rule_interval(a: Analysis, header: Any = None) -> list[Flag]:
    """Interval language in a report whose COMPARISON (or, without one, a sentence of its own) says there is no
    prior study."""
    comp = a.section("comparison")
    statement = None
    if comp is None:
        statement = _no_prior_stated(a)
        if statement is None:
            return []  # no COMPARISON section and no sentence about priors: nothing contradicts
    elif prior_status(a) != "none":
        return []
    flags: list[Flag] = []
    low, words = a.lower_words()
    # the set and ASCII tests before the whole-text search (they decide most reports; the same truth value)
    if (words.isdisjoint(_INTERVAL_CUES) and "new" not in low and " now " not in low) or not (
            _OPENER_WORDS is None or not _OPENER_WORDS.isdisjoint(words) or not a.text.isascii()
            or (_INTERVAL_CLAIM_LOWER.search(low, comp.end if comp is not None else 0) if plain_ascii(a.text)
                else _INTERVAL_CLAIM.search(a.text, comp.end if comp is not None else 0))):
        return flags
    # what says there is no prior (the flags quote it): only now, the common case has returned
    if comp is not None:
        said, who = _stripped(a.text, comp.start, comp.end), "COMPARISON"
    elif statement is not None:  # (always, without a COMPARISON section: it returned above otherwise)
        said, who = (statement.start, statement.end), "the report"
    for sent in a.sentences:
        if sent.section not in ("findings", "impression") or sent is statement:
            continue
        word = _claim(sent.text)
        if word is None:
            continue
        weak = word.strip().lower() in _WEAK_CLAIM
        flags.append(make_flag("interval_no_prior_weak" if weak else "interval_no_prior", a.text, sent.start, sent.end,
                               f"interval language \"{word.strip()}\" but {who} says there is no prior "
                               f"(\"{a.text[said[0]:said[1]].strip()[:40]}\")", related=[said]))
    return flags


_CLAIM_SEARCH = lower_search(_INTERVAL_CLAIM)
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))  # lower-case ASCII letters kept, all else a space
_PRIOR_IN_SENTENCE_SEARCH = lower_search(_PRIOR_IN_SENTENCE)
_NOT_A_CLAIM_SEARCH = lower_search(_NOT_A_CLAIM)


@per_sentence
def _claim(sentence: str) -> str | None:
    """The interval claim of one sentence as written (its words), unless the sentence names its own prior, is not a
    claim, or is a recommendation or hypothetical; else None (cached: reports repeat their sentences)."""
    low = sentence.lower()
    if sentence.isascii() and "new" not in low and "now" not in low and "re-demonstrat" not in low \
            and _INTERVAL_CUES.isdisjoint(low.encode().translate(_LETTERS_ONLY).decode().split()):
        return None  # none of the words a claim or an opener holds: the report's pre-test, for one sentence
    m = _CLAIM_SEARCH(sentence)
    if m is not None:
        word = sentence[m.start():m.end()]
    else:
        o = _opener(sentence)
        if o is None:
            return None
        word = o.group(0)
    if _PRIOR_IN_SENTENCE_SEARCH(sentence) or _NOT_A_CLAIM_SEARCH(sentence):
        return None
    if any(c in sentence.lower() for c in ("recommend", "follow", "consider", " if ", "would", "needed", "could")):
        return None
    return word


_NO_PRIOR_STATED = re.compile(language_pack()["findings_rules"]["no_prior_stated"], re.I)
_NO_PRIOR_CUE = re.compile(r"\bno\s+(?:prior|previous|old|comparison)\b")  # every no_prior_stated match holds one


def _no_prior_stated(a: Analysis) -> Sentence | None:
    """The first sentence saying there is no prior study ("There are no comparison studies."), else None. Read
    here, not in analysis.prior_status: only this rule asks, and only for a report without a COMPARISON section."""
    low = a.lower_text()
    if "no prior" not in low and "no previous" not in low and "no comparison" not in low and "no old" not in low \
            and ("no\n" not in low and "no  " not in low and "no\t" not in low or _NO_PRIOR_CUE.search(low) is None):
        return None  # substring tests decide almost every report; other white space after "no": the regex
    return next((s for s in a.sentences if _NO_PRIOR_STATED.match(s.text)), None)


# ------------------------------------------------------------------ header
_MODALITY = {k: re.compile(v) for k, v in lx.MODALITY_WORDS.items()}
_REGIONS = {k: re.compile(v, re.I) for k, v in lx.REGION_WORDS.items()}
_FEMALE = re.compile(lx.FEMALE_ANATOMY, re.I)
_MALE = re.compile(lx.MALE_ANATOMY, re.I)
_VIEWS = {k: re.compile(v) for k, v in lx.VIEW_WORDS.items()}


def _other_study(sentence: str) -> bool:
    low = sentence.lower()
    return any(c in low for c in lx.OTHER_STUDY_CUES)


_PRIOR_WORDS = re.compile(_RP["prior_words"], re.I)


def _this_study(a: Analysis) -> list:
    """Sentences about the study itself: the technique line (unless it names a prior), and body sentences
    without a prior, a recommendation or a hypothetical (once per analysis: three header rules ask, one per region)."""
    hit = a.cache.get("this_study")
    if hit is None:
        hit = a.cache["this_study"] = [s for s in a.sentences if s.section not in ("comparison", "indication")
                                       and not (_PRIOR_WORDS.search(s.text) if s.section == "technique"
                                                else _other_study(s.text))]
    return hit


_OTHER_EXAM = re.compile(_RP["other_exam"], re.I)
_GUIDED_BY = re.compile(_RP["guided_by"], re.I)
_COVERAGE = re.compile(_RP["coverage"], re.I)


@declare(FlagSpec(id='header_modality', type='metadata', family='header', reads=('header', 'technique', 'findings', 'impression'), explains='the report describes a {modality} study but the DICOM Modality is {header modality}', example='EXAMINATION: CT chest.\n\nFINDINGS: No effusion.\n\nIMPRESSION: Normal.', clean='EXAMINATION: Chest radiograph.\n\nFINDINGS: No effusion.\n\nIMPRESSION: Normal.', header=(('modality', 'DX'), ('body_part', 'CHEST'))))
def rule_header_modality(a: Analysis, header: Any = None) -> list[Flag]:
    """The study named as another modality where the report names *this* study: the technique/examination
    line, or a sentence that opens with the modality ("CT of the chest shows ...")."""
    group = lx.MODALITY_GROUP.get((getattr(header, "modality", None) or "").upper())
    if not group:
        return []
    flags = []
    for sent in _this_study(a):
        for name, pat in _MODALITY.items():
            m = pat.search(sent.text)
            if m and sent.section != "technique" and _OTHER_EXAM.search(sent.text[: m.start()]):
                continue
            if m and _GUIDED_BY.match(sent.text, m.end()):
                continue  # "status post CT-guided biopsy": how a procedure was guided, not this study
            if m and name != group:
                s = sent.start + m.start()
                flags.append(make_flag("header_modality", a.text, s, s + len(m.group(0)),
                                       f"the report describes a {name} study but the DICOM Modality is "
                                       f"{header.modality}", "header"))
    if group in _SIGNAL:
        flags += _signal_words(a, group, header.modality)
    return flags


_SIGNAL = {k: re.compile(v) for k, v in lx.MODALITY_SIGNAL_WORDS.items()}
_SIGNAL_KEYS = {k: substring_keys([v]) for k, v in lx.MODALITY_SIGNAL_WORDS.items()}
_OWN_TECHNIQUE: dict[str, str] = language_pack()["rule_patterns"].get("own_technique_near") or {}
_OWN_NEAR = {k: re.compile(v) for k, v in _OWN_TECHNIQUE.items()}  # group -> its own sequence/window names


def _signal_words(a: Analysis, group: str, modality: str) -> list[Flag]:
    """Signal words of the other cross-sectional modality ("hyperintense", "FLAIR" in a CT; "hyperdense",
    "Hounsfield" in an MR) in a sentence about this study that names no other modality."""
    flags = []
    for name, pat in _SIGNAL.items():
        if name == group or lacks(a.lower_text(), _SIGNAL_KEYS[name]):
            continue
        for sent in _this_study(a):
            m = pat.search(sent.text)
            if m is None or any(p.search(sent.text) for n, p in _MODALITY.items() if n != group):
                continue  # "the T2 hyperintensity seen on MRI": the sentence names the study it speaks of
            if group in _OWN_NEAR and _OWN_NEAR[group].search(sent.text):
                continue  # "T1 and T2 hypodensity", "per T2 weighted sequence, ... no hyperdense ..." in an MR: this
                # study's images named in the sentence, in another modality's word
            s = sent.start + m.start()
            flags.append(make_flag("header_modality", a.text, s, s + len(m.group(0)),
                                   f"the report describes a {name} study (\"{m.group(0)}\" is {name} language) but "
                                   f"the DICOM Modality is {modality}", "header"))
    return flags


@declare(FlagSpec(id='header_body_part', type='metadata', family='header', reads=('header', 'any'), explains='{word} belongs to the {region}, but BodyPartExamined is {body part}', example='FINDINGS: No intracranial hemorrhage.\n\nIMPRESSION: Normal brain.', clean='FINDINGS: No pleural effusion.\n\nIMPRESSION: Normal chest.', header=(('modality', 'DX'), ('body_part', 'CHEST'))))
def rule_header_body_part(a: Analysis, header: Any = None) -> list[Flag]:
    body = lx.BODY_GROUP.get((getattr(header, "body_part", None) or "").upper())
    if not body:
        return []
    for region, pat in _REGIONS.items():
        if region == body:
            continue
        for sent in _this_study(a):
            m = pat.search(sent.text)
            if m and any(c.start() <= m.start() < c.end() for c in _COVERAGE.finditer(sent.text)):
                m = None  # the scan's extent ("from the vertex to the upper abdomen")
            if m:
                s = sent.start + m.start()
                return [make_flag("header_body_part", a.text, s, s + len(m.group(0)),
                                  f"\"{m.group(0)}\" belongs to the {region.lower()}, but BodyPartExamined is "
                                  f"{header.body_part}", "header")]
    return []


@declare(FlagSpec(id='header_sex', type='metadata', family='header', reads=('header', 'any'), explains='{word} does not fit PatientSex {sex}', example='FINDINGS: The prostate is enlarged.\n\nIMPRESSION: Prostatomegaly.', clean='FINDINGS: The bladder is normal.\n\nIMPRESSION: Normal.', header=(('patient_sex', 'F'),)))
def rule_header_sex(a: Analysis, header: Any = None) -> list[Flag]:
    sex = (getattr(header, "patient_sex", None) or "").upper()
    wrong = _FEMALE if sex == "M" else _MALE if sex == "F" else None
    m = wrong.search(a.text) if wrong is not None else None
    if m is None:
        return []
    return [make_flag("header_sex", a.text, m.start(), m.end(), f"\"{m.group(0)}\" does not fit PatientSex {sex}",
                      "header")]


_SIDE_WORD = re.compile(r"\b(?:left|right)\b", re.I)


@declare(FlagSpec(id='header_laterality', type='metadata', family='header', reads=('header', 'findings', 'impression'), explains='the report describes the {side} side but ImageLaterality is {laterality}', example='FINDINGS: Right pleural effusion.\n\nIMPRESSION: Right effusion.', clean='FINDINGS: Left pleural effusion.\n\nIMPRESSION: Left effusion.', header=(('laterality', 'L'),)))
def rule_header_laterality(a: Analysis, header: Any = None) -> list[Flag]:
    lat = (getattr(header, "laterality", None) or "").upper()
    if lat not in ("L", "R"):
        return []
    want = "left" if lat == "L" else "right"
    sided = [m for m in a.mentions if m.positive and m.side in lx.SIDES]
    if not sided or any(m.side == want for m in sided):
        return []
    m = sided[0]
    # the flag lies on the side word of the mention's sentence (the words to change), the finding as related span
    sent = a.sentences[m.sentence]
    words = [w for w in _SIDE_WORD.finditer(a.text, sent.start, sent.end) if w.group(0).lower() == m.side]
    s, e = (min(words, key=lambda w: abs(w.start() - m.start)).span() if words else (m.start, m.end))
    return [make_flag("header_laterality", a.text, s, e,
                      f"the report describes the {m.side} side but ImageLaterality is {lat}", "header",
                      related=[(m.start, m.end)])]


@declare(FlagSpec(id='header_view', type='metadata', family='header', reads=('header', 'any'), explains='the report describes an {view} view but ViewPosition is {header view}', example='EXAMINATION: Portable AP chest.\n\nFINDINGS: No effusion.\n\nIMPRESSION: Normal.', clean='EXAMINATION: PA chest.\n\nFINDINGS: No effusion.\n\nIMPRESSION: Normal.', header=(('view_position', 'PA'),)))
def rule_header_view(a: Analysis, header: Any = None) -> list[Flag]:
    view = (getattr(header, "view_position", None) or "").upper()
    if view not in ("PA", "AP"):
        return []
    other = "AP" if view == "PA" else "PA"
    for sent in _this_study(a):
        m = _VIEWS[other].search(sent.text)
        if m and not _VIEWS[view].search(sent.text):
            s = sent.start + m.start()
            return [make_flag("header_view", a.text, s, s + len(m.group(0)),
                              f"the report describes an {other} view but ViewPosition is {view}", "header")]
    return []


SINGLE_RULES = (rule_plausibility, rule_nonexistent_lobe, rule_interval)
HEADER_RULES = (rule_header_modality, rule_header_body_part, rule_header_sex, rule_header_laterality, rule_header_view)

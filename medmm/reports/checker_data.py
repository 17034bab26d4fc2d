"""Error-checking instruction data (``medmm checker-data``): SIMPLE and COMPLEX samples with provenance.

For each study, the clean report and versions of it with one error each become

* **SIMPLE** samples — "Does this report contain an error?" → ``yes`` / ``no`` (clean : error 1:1 by
  default), and
* **COMPLEX** samples — "Which error does this report contain?" → the error's taxonomy id, the wrong
  sentence in quotes, and, where the truth has one, the region of the finding the error is about (its
  acquisition-frame box; the text of the box is written per model family at training time, in the
  pixels that family receives, as region tasks are).

Error models. Beside the text-detectable ones of ``medmm inject`` (:func:`medmm.reports.inject.inject_one`),
the **image-only** ones no text rule can see, because the report stays consistent with itself:
side swapped in every mention , lobe/zone swapped in every mention, every
size changed by the same factor, a present finding removed from the whole report, an absent finding
added consistently (findings and impression), severity changed everywhere. They are this module's own
(independent of the checker: only the public vocabulary and sentence splitter are used), and each sample
keeps its provenance: error model, type, COMPLEX class, ``text_detectable``, span, original and edited
sentence, region.

Splits are by study — and by patient where the source knows the patient — through a hash
(:func:`split_for`), so no study is in two splits. Exports: medmm JSONL (:func:`write_jsonl`),
LLaMA-Factory ShareGPT and InternVL JSONL (:func:`export_sharegpt`, :func:`export_internvl`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from medmm.errors import InputError
from medmm.reports.sections import split_sentences
from medmm.reports.taxonomy import TYPE_IDS, complex_class

CHECKER_TASKS = ("simple", "complex")
SIMPLE_PROMPT = "Here is a radiology report for the image.\n\n{report}\n\nDoes this report contain an error? Answer yes or no."
COMPLEX_PROMPT = ("Here is a radiology report for the image that contains an error.\n\n{report}\n\n"
                  "Which error is it? Answer with its type ({types}), the wrong sentence in quotes and the region.")
IMAGE_ONLY_MODELS = ("side swap (every mention)", "location swap (every mention)", "size changed everywhere",
                     "finding removed everywhere", "finding added consistently", "severity changed everywhere")
TEXT_MODEL = "medmm inject"
SPLITS = ("train", "calib", "eval")


@dataclass(frozen=True)
class CheckerError:
    """Provenance of one error (the same keys as ``medmm inject``'s rows, plus ``region``)."""

    type: str
    complex: str
    original_sentence: str
    edited_sentence: str
    start: int
    end: int
    detail: str = ""
    model: str = ""
    text_detectable: bool = False
    region: dict[str, Any] | None = None  # a regions.Box dict (acquisition frame of the study's image `image`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CheckerError":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class CheckerSample:
    """One SIMPLE or COMPLEX sample: a report, the study's images, the answer, and where it came from."""

    id: str
    task: str  # simple | complex
    report: str
    images: tuple[str, ...]  # paths relative to the JSONL's folder, or absolute
    has_error: bool
    study_id: str
    error: CheckerError | None = None
    patient_id: str | None = None
    modality: str | None = None
    header: dict[str, Any] | None = None
    split: str | None = None
    source: str = ""
    focus_slices: tuple[int | None, ...] = ()  # per image: the slice the truth points at (volumes; training views)

    def __post_init__(self) -> None:
        if self.task not in CHECKER_TASKS:
            raise InputError(f"sample {self.id}: unknown checker task {self.task!r}; use simple or complex")
        if self.task == "complex" and self.error is None:
            raise InputError(f"sample {self.id}: a COMPLEX sample needs its error")

    @property
    def answer(self) -> str:
        """The answer as text, without the region (the region is written per model family: :func:`answer_text`)."""
        return answer_text(self, None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["images"] = list(self.images)
        d["focus_slices"] = list(self.focus_slices)
        d["error"] = self.error.to_dict() if self.error else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CheckerSample":
        try:
            err = d.get("error")
            return cls(id=str(d["id"]), task=str(d["task"]), report=str(d["report"]), images=tuple(d.get("images") or ()),
                       has_error=bool(d["has_error"]), study_id=str(d.get("study_id") or d["id"]),
                       error=CheckerError.from_dict(err) if err else None, patient_id=d.get("patient_id"),
                       modality=d.get("modality"), header=d.get("header"), split=d.get("split"),
                       source=d.get("source") or "", focus_slices=tuple(d.get("focus_slices") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a checker sample ({type(exc).__name__}: {exc}); expected the keys id, task, "
                             "report, images, has_error") from None


def prompt_text(sample: CheckerSample, max_chars: int = 4000) -> str:
    """The question of a sample (the same words the VLM checker asks at inference)."""
    report = sample.report[:max_chars]
    if sample.task == "simple":
        return SIMPLE_PROMPT.format(report=report)
    return COMPLEX_PROMPT.format(report=report, types=", ".join(TYPE_IDS))


def answer_text(sample: CheckerSample, region_text: str | None) -> str:
    """SIMPLE: ``yes``/``no``. COMPLEX: ``TYPE: "wrong sentence"`` and the region's box text when given."""
    if sample.task == "simple":
        return "yes" if sample.has_error else "no"
    e = sample.error
    assert e is not None
    quote = (e.edited_sentence or e.original_sentence).strip()
    out = f'{e.type}: "{quote}"' if quote else e.type
    return f"{out} {region_text}" if region_text else out


# ------------------------------------------------------------------ the image-only error models
_SIDE = re.compile(r"\b(left|right)\b", re.I)
_LOC_SWAP = {"upper lobe": "lower lobe", "lower lobe": "upper lobe", "apex": "base", "base": "apex",
             "apical": "basilar", "basilar": "apical", "upper zone": "lower zone", "lower zone": "upper zone"}
_LOC = re.compile(r"\b(" + "|".join(sorted(_LOC_SWAP, key=len, reverse=True)) + r")\b", re.I)
_SEV_SWAP = {"small": "large", "large": "small", "moderate": "small", "mild": "severe", "severe": "mild",
             "trace": "large"}
_SEV = re.compile(r"\b(" + "|".join(_SEV_SWAP) + r")\b", re.I)
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(mm|cm)\b")
# absent findings a report can deny, and how a present one is written (a side is chosen at random)
_ADDABLE = {"pneumothorax": ("pneumothorax", "{sev} {side} pneumothorax."),
            "effusion": ("effusion", "{sev} {side} pleural effusion."),
            "consolidation": ("consolidation", "Consolidation in the {side} lower lobe.")}
_TERMS = {"nodule": r"nodules?", "mass": r"mass(?:es)?", "cyst": r"cysts?", "effusion": r"effusions?",
          "pneumothorax": r"pneumothorax", "consolidation": r"consolidation", "fracture": r"fracture"}
_NEG = re.compile(r"\b(no|without|free of|negative for)\b", re.I)


def _case(new: str, old: str) -> str:
    if old.isupper():
        return new.upper()
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _sub_all(text: str, pattern: re.Pattern[str], table: Callable[[str], str]) -> tuple[str, list[tuple[int, int]]]:
    """Replace every match; returns the text and the spans of the replacements in the new text."""
    out, spans, last, shift = [], [], 0, 0
    for m in pattern.finditer(text):
        new = _case(table(m.group(0).lower()), m.group(0))
        out.append(text[last:m.start()])
        start = m.start() + shift
        out.append(new)
        spans.append((start, start + len(new)))
        shift += len(new) - len(m.group(0))
        last = m.end()
    out.append(text[last:])
    return "".join(out), spans


def _sentence_at(text: str, pos: int) -> str:
    for s in split_sentences(text):
        if s.start <= pos < s.end:
            return s.text
    return ""


def _error(kind: str, model: str, old_text: str, new_text: str, spans: list[tuple[int, int]], detail: str,
           region: dict[str, Any] | None) -> tuple[str, CheckerError]:
    start, end = spans[0]
    edited = _sentence_at(new_text, start)
    original = _sentence_at(old_text, start) if len(old_text) == len(new_text) else ""
    return new_text, CheckerError(kind, complex_class(kind), original, edited, start, end, detail, model, False, region)


def _region(study: Mapping[str, Any], want: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any] | None:
    for f in study.get("findings") or []:
        if want(f) and f.get("boxes"):
            return dict(f["boxes"][0])
    return None


def err_side_all(study: Mapping[str, Any], text: str, rng: np.random.Generator) -> tuple[str, CheckerError] | None:
    if not _SIDE.search(text):
        return None
    new, spans = _sub_all(text, _SIDE, lambda w: "right" if w == "left" else "left")
    region = _region(study, lambda f: f.get("side") in ("left", "right") and f.get("category") != "device")
    return _error("laterality", IMAGE_ONLY_MODELS[0], text, new, spans, "left <-> right in every mention", region)


def err_location_all(study: Mapping[str, Any], text: str, rng: np.random.Generator) -> tuple[str, CheckerError] | None:
    if not _LOC.search(text):
        return None
    new, spans = _sub_all(text, _LOC, lambda w: _LOC_SWAP[w])
    region = _region(study, lambda f: bool(f.get("location")) and _LOC.search(f["location"] or "") is not None)
    return _error("location", IMAGE_ONLY_MODELS[1], text, new, spans, "lobe/zone swapped in every mention", region)


def err_size_all(study: Mapping[str, Any], text: str, rng: np.random.Generator) -> tuple[str, CheckerError] | None:
    if not _SIZE.search(text):
        return None
    factor = float(rng.choice([0.4, 2.5]))

    def scale(m: re.Match[str]) -> str:
        v = float(m.group(1)) * factor
        return f"{v:.1f} {m.group(2)}" if m.group(2) == "cm" else f"{max(1, round(v))} {m.group(2)}"

    out, spans, last, shift = [], [], 0, 0
    for m in _SIZE.finditer(text):
        new = scale(m)
        out.append(text[last:m.start()])
        spans.append((m.start() + shift, m.start() + shift + len(new)))
        out.append(new)
        shift += len(new) - len(m.group(0))
        last = m.end()
    out.append(text[last:])
    region = _region(study, lambda f: f.get("size_mm") is not None)
    return _error("measurement", IMAGE_ONLY_MODELS[2], text, "".join(out), spans, f"every size x{factor}", region)


def err_severity_all(study: Mapping[str, Any], text: str, rng: np.random.Generator) -> tuple[str, CheckerError] | None:
    if not _SEV.search(text):
        return None
    new, spans = _sub_all(text, _SEV, lambda w: _SEV_SWAP[w])
    region = _region(study, lambda f: bool(f.get("severity")))
    return _error("severity", IMAGE_ONLY_MODELS[5], text, new, spans, "severity changed in every mention", region)


def _drop_sentences(text: str, keep: Callable[[str], bool]) -> tuple[str, list[str]]:
    out, removed, last = [], [], 0
    for s in split_sentences(text):
        if not keep(s.text):
            out.append(text[last:s.start])
            removed.append(s.text)
            last = s.end
    out.append(text[last:])
    new = re.sub(r"[ \t]+\n", "\n", re.sub(r"  +", " ", "".join(out)))
    return new, removed


def err_remove_finding(study: Mapping[str, Any], text: str, rng: np.random.Generator) -> tuple[str, CheckerError] | None:
    present = [f for f in study.get("findings") or [] if f.get("category") == "lesion" and f.get("type") in _TERMS]
    if not present:
        return None
    f = present[int(rng.integers(len(present)))]
    term = re.compile(r"\b" + _TERMS[f["type"]] + r"\b", re.I)
    if sum(1 for x in present if x["type"] == f["type"]) > 1:
        return None  # two findings of one type: the sentences cannot be told apart here
    new, removed = _drop_sentences(text, lambda s: not (term.search(s) and not _NEG.search(s)))
    if not removed:
        return None
    new = re.sub(r"IMPRESSION:\s*(?:\d\.\s*)?$", "IMPRESSION: No acute cardiopulmonary process.\n", new.rstrip() + "\n")
    new = re.sub(r"IMPRESSION:\s*\n", "IMPRESSION: No acute cardiopulmonary process.\n", new)
    at = max(0, min(new.find("FINDINGS:") + 9, len(new) - 1)) if "FINDINGS:" in new else 0
    region = dict(f["boxes"][0]) if f.get("boxes") else None
    err = CheckerError("omission", complex_class("omission"), removed[0], "", at, at + 1,
                       f"{f['type']} removed from the whole report", IMAGE_ONLY_MODELS[3], False, region)
    return new, err


def err_add_finding(study: Mapping[str, Any], text: str, rng: np.random.Generator) -> tuple[str, CheckerError] | None:
    present = {f.get("type") for f in study.get("findings") or []}
    options = []
    for kind, (word, template) in _ADDABLE.items():
        if kind in present:
            continue
        for s in split_sentences(text):
            if re.search(r"\b" + word, s.text, re.I) and _NEG.search(s.text) and not _SIDE.search(s.text):
                options.append((kind, template, s))
                break
    if not options:
        return None
    kind, template, s = options[int(rng.integers(len(options)))]
    side = str(rng.choice(["left", "right"]))
    sentence = template.format(sev=str(rng.choice(["Small", "Moderate", "Large"])), side=side)
    sentence = sentence[:1].upper() + sentence[1:]
    new = text[: s.start] + sentence + text[s.end:]
    start = s.start
    if "IMPRESSION:" in new and re.search(r"IMPRESSION:\s*(No acute|Normal)", new):
        new = re.sub(r"(IMPRESSION:\s*)(No acute[^\n]*|Normal[^\n]*)", lambda m: m.group(1) + sentence, new, count=1)
    elif "IMPRESSION:" in new:
        new = new.rstrip("\n") + " " + sentence + "\n"
    err = CheckerError("insertion", complex_class("insertion"), s.text, sentence, start, start + len(sentence),
                       f"{side} {kind} added in findings and impression", IMAGE_ONLY_MODELS[4], False, None)
    return new, err


IMAGE_ONLY: dict[str, Callable[[Mapping[str, Any], str, np.random.Generator], tuple[str, CheckerError] | None]] = {
    IMAGE_ONLY_MODELS[0]: err_side_all, IMAGE_ONLY_MODELS[1]: err_location_all, IMAGE_ONLY_MODELS[2]: err_size_all,
    IMAGE_ONLY_MODELS[3]: err_remove_finding, IMAGE_ONLY_MODELS[4]: err_add_finding,
    IMAGE_ONLY_MODELS[5]: err_severity_all,
}


def text_error(study: Mapping[str, Any], text: str, rng: np.random.Generator) -> tuple[str, CheckerError] | None:
    """One text-detectable error of ``medmm inject`` (header errors excluded: the checker data has no header edits)."""
    from medmm.reports.inject import inject_one

    types = tuple(t for t in TYPE_IDS if t != "metadata")
    edit = inject_one(text, study.get("header"), rng, types)
    if edit is None:
        return None
    new, _, e = edit
    return new, CheckerError(e.type, e.complex, e.original_sentence, e.edited_sentence, e.start, e.end, e.detail,
                             f"{TEXT_MODEL}: {e.model}", bool(e.text_detectable), None)


# ------------------------------------------------------------------ studies -> samples
@dataclass(frozen=True)
class CheckerDataConfig:
    """How samples are made (part of a training run's identity)."""

    error_models: dict[str, float] = field(default_factory=lambda: {**{m: 1.0 for m in IMAGE_ONLY_MODELS},
                                                                    TEXT_MODEL: 1.0})
    clean_per_error: float = 1.0  # clean : error SIMPLE samples
    errors_per_study: int = 1
    complex: bool = True
    seed: int = 0
    splits: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train / calib / eval shares (by study or patient)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.error_models) - set(IMAGE_ONLY_MODELS) - {TEXT_MODEL})
        if unknown:
            raise InputError(f"unknown error model(s) {unknown}; use {list(IMAGE_ONLY_MODELS) + [TEXT_MODEL]}")
        if not self.error_models or min(self.error_models.values()) < 0 or sum(self.error_models.values()) <= 0:
            raise InputError("error_models: give each model a non-negative weight, at least one positive")
        if abs(sum(self.splits) - 1.0) > 1e-6 or min(self.splits) < 0:
            raise InputError("splits: three non-negative shares (train, calib, eval) that sum to 1")


def split_for(key: str, shares: Sequence[float] = (0.7, 0.1, 0.2)) -> str:
    """The split of a study (or patient) key, fixed by the SHA-256 of the key."""
    u = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 0x100000000
    acc = 0.0
    for name, share in zip(SPLITS, shares):
        acc += share
        if u < acc:
            return name
    return SPLITS[-1]


def _error_for(study: Mapping[str, Any], text: str, rng: np.random.Generator, cfg: CheckerDataConfig
               ) -> tuple[str, CheckerError] | None:
    names = [m for m, w in cfg.error_models.items() if w > 0]
    weights = np.array([cfg.error_models[m] for m in names], dtype=float)
    for idx in rng.choice(len(names), size=len(names), replace=False, p=weights / weights.sum()):
        name = names[int(idx)]
        made = text_error(study, text, rng) if name == TEXT_MODEL else IMAGE_ONLY[name](study, text, rng)
        if made is not None and made[0] != text:
            return made
    return None


def samples_for_study(study: Mapping[str, Any], cfg: CheckerDataConfig, split: str | None = None,
                      source: str = "") -> list[CheckerSample]:
    """Clean and error SIMPLE samples (and COMPLEX ones for the errors) of one study record
    (``study_id``, ``report``, ``images``, optional ``patient_id``, ``modality``, ``findings`` with boxes)."""
    sid = str(study["study_id"])
    rng = np.random.default_rng([cfg.seed, int(hashlib.sha256(sid.encode()).hexdigest()[:8], 16)])
    text = str(study["report"])
    images = tuple(study.get("images") or ())
    base: dict[str, Any] = dict(study_id=sid, images=images, patient_id=study.get("patient_id"), modality=study.get("modality"),
                header=study.get("header"), split=split, source=source,
                focus_slices=tuple(study.get("focus_slices") or ()))
    out: list[CheckerSample] = []
    errors = []
    for k in range(cfg.errors_per_study):
        made = _error_for(study, text, rng, cfg)
        if made is not None:
            errors.append(made)
    n_clean = int(round(cfg.clean_per_error * len(errors))) if errors else int(cfg.clean_per_error > 0)
    for k in range(max(n_clean, 0)):
        out.append(CheckerSample(id=f"{sid}#clean{k}", task="simple", report=text, has_error=False, **base))
    for k, (new, err) in enumerate(errors):
        out.append(CheckerSample(id=f"{sid}#e{k}", task="simple", report=new, has_error=True, error=err, **base))
        if cfg.complex:
            out.append(CheckerSample(id=f"{sid}#e{k}c", task="complex", report=new, has_error=True, error=err, **base))
    return out


def build_samples(studies: Iterable[Mapping[str, Any]], cfg: CheckerDataConfig = CheckerDataConfig(),
                  source: str = "", split: str | None = None) -> list[CheckerSample]:
    """Samples of many studies, each in the split of its patient (or study): :func:`split_for`,
    unless ``split`` names one for all."""
    out: list[CheckerSample] = []
    for st in studies:
        key = str(st.get("patient_id") or st["study_id"])
        out.extend(samples_for_study(st, cfg, split or split_for(key, cfg.splits), source))
    return out


# ------------------------------------------------------------------ sources
# Every source is read through medmm.studies (the one study record); this section only turns a Study into the
# plain study dict the error models take: study_id, report, images (paths relative to the input file's folder,
# or absolute for a corpus folder), modality, header, findings (truth, with boxes), focus_slices, patient_id.
CORPORA = ("synth", "rows", "mimic-cxr", "iu-xray")


def _modality_kind(mod: str) -> str:
    return {"DX": "cxr", "CR": "cxr"}.get(mod, mod.lower())


def _focus_slices(study: Any, n_images: int) -> list[int | None]:
    """Per image, the acquired slice holding most truth boxes (None when none): the training view's slice."""
    if study.truth is None:
        return []
    boxes = [b for f in study.truth.findings for b in f.boxes]
    out: list[int | None] = []
    for i in range(n_images):
        sl = [b.slice for b in boxes if int(b.image or 0) == i and b.slice is not None]
        out.append(max(set(sl), key=sl.count) if sl else None)
    return out


def study_for_checker(study: Any, base: str | None = None, patient: bool = True) -> dict[str, Any]:
    """The study dict of :func:`samples_for_study` from a :class:`medmm.studies.Study`: image paths relative to
    ``base`` when given (else as the reader made them), the truth's findings, the header's modality and body part,
    and the patient (``patient``: the split keeps a patient's studies together)."""
    paths = [os.path.relpath(p, base) if base else p for p in study.image_paths]
    header = study.header
    mod = str(getattr(header, "modality", None) or "")
    findings = [f.to_dict() for f in (study.truth.findings if study.truth else ())]  # boxes as Box dicts
    out: dict[str, Any] = {"study_id": study.study_id, "report": study.report, "modality": mod or None,
                           "images": paths, "findings": findings, "focus_slices": _focus_slices(study, len(paths)),
                           "header": {"modality": mod or None, "body_part": getattr(header, "body_part", None)}
                           if header is not None else None}
    if patient and study.patient_key:
        out["patient_id"] = study.patient_key
    return out


def studies_from_synth_manifest(manifest: str, kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Study records from a ``medmm synth`` manifest, read through :func:`medmm.studies.iter_manifest` (paths
    relative to the manifest's folder). The split stays by study: the synthetic patient key repeats across
    unrelated studies (see datasets/synthetic.md)."""
    from medmm.studies import iter_manifest

    if not os.path.isfile(manifest):
        raise InputError(f"{manifest}: manifest not found (write one with `medmm synth`)")
    base = os.path.dirname(os.path.abspath(manifest))
    out = []
    for study in iter_manifest(manifest):
        if study.problem:
            raise InputError(f"{manifest}: study {study.study_id}: {study.problem}")
        d = study_for_checker(study, base, patient=False)
        if kinds and _modality_kind(d["modality"] or "") not in kinds:
            continue
        out.append(d)
    return out


def studies_from_rows(path: str, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Study records from an audit-style manifest (JSONL/CSV with ``id``/``study_id``, ``report`` and ``images``;
    optional ``patient_id``/``patient_key``, ``modality``), read through :func:`medmm.studies.iter_manifest`
    (paths confined to the file's folder, kept relative to it). A row without report or images, or with a
    problem (a path leaving the folder), is left out and its reason appended to ``problems``."""
    from medmm.studies import iter_manifest

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for study in iter_manifest(path):
        why = study.problem or ("no report" if not study.report else "no image" if not study.image_paths else None)
        if why:
            if problems is not None:
                problems.append(f"{study.study_id}: {why}")
            continue
        out.append(study_for_checker(study, base))
    return out


def sample_key(study_id: str) -> str:
    """The order of ``--n-reports`` / ``--paper-protocol``'s fixed sample: SHA-256 of the study id."""
    return hashlib.sha256(str(study_id).encode()).hexdigest()


def studies_from_corpus(path: str, kind: str, reports: str | None = None, metadata: str | None = None,
                        images: str | None = None, problems: list[str] | None = None,
                        limit: int | None = None) -> list[dict[str, Any]]:
    """Study records of a public corpus folder (``kind``: ``mimic-cxr`` or ``iu-xray``, see
    :mod:`medmm.studies.public`), absolute image paths. A study with a problem (no report, no image, a file
    refused) is left out and its reason appended to ``problems``. ``limit``: the first ``limit`` usable studies in
    :func:`sample_key` order — the same sample as taking every study and then the first ``limit`` by that key,
    without reading the rest of a 227,000-report release."""
    from medmm.studies.public import iter_iu_xray, iter_mimic_cxr

    order = sample_key if limit else None
    if kind == "mimic-cxr":
        it = iter_mimic_cxr(path, reports=reports, metadata=metadata, order=order)
    elif kind == "iu-xray":
        it = iter_iu_xray(path, images=images, order=order)
    else:
        raise InputError(f"unknown corpus {kind!r}: use one of mimic-cxr, iu-xray")
    out: list[dict[str, Any]] = []
    for study in it:
        if limit and len(out) >= limit:
            break
        if study.problem:
            if problems is not None:
                problems.append(f"{study.study_id}: {study.problem}")
            continue
        out.append(study_for_checker(_frontal_only(study)))
    return out


def _frontal_only(study: Any) -> Any:
    """A study without its named lateral views when it has a named frontal one: the checker's rule
    (:mod:`medmm.reports.checker_views`), which it cannot apply itself to JPEG/PNG files (they carry no view)."""
    from medmm.studies.public import FRONTAL_VIEWS

    def frontal(view: str | None) -> bool:
        return (view or "").upper() in FRONTAL_VIEWS

    if not any(i.view and frontal(i.view) for i in study.images):
        return study
    return replace(study, images=tuple(i for i in study.images if not i.view or frontal(i.view)))


# ------------------------------------------------------------------ files
def write_jsonl(samples: Sequence[CheckerSample], path: str) -> str:
    from medmm.runs import write_atomic  # the one atomic writer

    return write_atomic(path, "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in samples))


def read_jsonl(path: str) -> tuple[list[CheckerSample], list[str]]:
    """Checker samples of a medmm JSONL (lines of other tasks are left to their readers)."""
    out, problems = [], []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                if d.get("task") in CHECKER_TASKS:
                    out.append(CheckerSample.from_dict(d))
            except (json.JSONDecodeError, InputError) as exc:
                problems.append(f"line {n}: {exc}")
    return out, problems


def _region_text(sample: CheckerSample, codec: Any, root: str | None) -> str | None:
    """The region of a COMPLEX answer as codec text on the full image (exports: no model resize)."""
    e = sample.error
    if sample.task != "complex" or e is None or not e.region or not codec or not sample.images:
        return None
    from medmm.regions.box import Box
    from medmm.regions.tasks import image_size

    path = sample.images[int(e.region.get("image", 0) or 0)] if len(sample.images) > int(e.region.get("image", 0) or 0) \
        else sample.images[0]
    try:
        w, h = image_size(path if os.path.isabs(path) or root is None else os.path.join(root, path))
    except InputError:
        return None
    b = Box.from_dict(e.region)
    from medmm.regions.codecs import RefBoxes

    return codec.encode([RefBoxes("region", (b.as_tuple(),))], (w, h))


def _exported(sample: CheckerSample, root: str | None, out_dir: str, cache: dict[str, list[str]],
              max_views: int = 1) -> list[str]:
    """The checker's views of a study rendered once to PNG under ``out_dir/images`` (paths relative to
    ``out_dir``): what other tools can open, and the same images medmm's checker is given."""
    from medmm.reports.checker_views import checker_views

    key = "|".join(sample.images)
    if key not in cache:
        folder = os.path.join(out_dir, "images")
        os.makedirs(folder, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:16]
        paths = []
        for k, v in enumerate(checker_views(list(sample.images), root, max_views=max_views,
                                            focus_slices=list(sample.focus_slices) or None)):
            rel = os.path.join("images", f"{name}_{k}.png")
            v.image.save(os.path.join(out_dir, rel))
            paths.append(rel)
        cache[key] = paths
    return cache[key]


def export_sharegpt(samples: Sequence[CheckerSample], path: str, codec: Any = None, root: str | None = None) -> str:
    """LLaMA-Factory ShareGPT: ``messages`` (``<image>`` per image) and ``images`` (the checker's views as PNG)."""
    recs = []
    out_dir = os.path.dirname(os.path.abspath(path))
    cache: dict[str, list[str]] = {}
    for s in samples:
        images = _exported(s, root, out_dir, cache)
        tags = "<image>" * len(images)
        recs.append({"messages": [{"role": "user", "content": tags + prompt_text(s)},
                                  {"role": "assistant", "content": answer_text(s, _region_text(s, codec, root))}],
                     "images": images})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(recs, fh, ensure_ascii=False, indent=1)
    return path


def export_internvl(samples: Sequence[CheckerSample], path: str, codec: Any = None, root: str | None = None) -> str:
    """InternVL JSONL: ``id``, ``image`` (one PNG path or a list: the checker's views), ``conversations``."""
    out_dir = os.path.dirname(os.path.abspath(path))
    cache: dict[str, list[str]] = {}
    with open(path, "w", encoding="utf-8") as fh:
        for s in samples:
            images = _exported(s, root, out_dir, cache)
            image: Any = images[0] if len(images) == 1 else images
            tags = "".join("<image>\n" for _ in images)
            fh.write(json.dumps({"id": s.id, "image": image, "conversations": [
                {"from": "human", "value": tags + prompt_text(s)},
                {"from": "gpt", "value": answer_text(s, _region_text(s, codec, root))}]}, ensure_ascii=False) + "\n")
    return path


def to_eval_rows(samples: Sequence[CheckerSample]) -> list[dict[str, Any]]:
    """SIMPLE samples as ``medmm inject``-style rows with ``images`` (what ``medmm check-eval`` reads)."""
    rows = []
    for s in samples:
        if s.task != "simple":
            continue
        rows.append({"id": s.id, "report": s.report, "header": s.header, "has_error": s.has_error,
                     "errors": [s.error.to_dict()] if s.error else [], "images": list(s.images),
                     "injector": "medmm checker-data", "study_id": s.study_id})
    return rows


def with_split(samples: Sequence[CheckerSample], split: str) -> list[CheckerSample]:
    return [replace(s, split=split) for s in samples]

"""Annotated image collections for building probes: synthetic manifests and CSV/JSONL tables.

Both builders (negation pairs, confusion pairs) need the same thing: 2-D images with their
modality, body part and findings (name, position, box). :func:`read_collection` gives one
:class:`AnnotatedImage` per image from

* a synthetic ``manifest.jsonl`` (``medmm synth``): the ``attributes`` record of each study
  plus its finding boxes; the first image of the study is rendered to a PNG at the acquired
  slice that shows the most lesions (boxes converted to that PNG's pixels through
  :mod:`medmm.regions`). Devices are not findings; a study is normal when no lesion is shown;
* a CSV or JSONL table with columns ``image, modality, body_part, findings, positions``
  (optional ``id``, ``label``, ``normal``): ``findings``/``positions`` are ``;``-separated and
  aligned (an empty position means unknown); in JSONL ``findings`` may also be a list of
  ``{"name", "location", "box": [x1, y1, x2, y2]}``. Image paths are relative to the table.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import yaml

from medmm.errors import ConfigError, InputError

VOCAB_KEYS = ("modalities", "body_parts", "finding_names", "templates")
BODY_PART_KEYS = ("article", "display", "aliases", "alternatives", "findings", "locations")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Vocabulary:
    """The word lists of adversarial questions (``medmm/probe/vocabulary.yaml`` or a user's copy)."""

    modalities: Mapping[str, Mapping[str, Any]]
    body_parts: Mapping[str, Mapping[str, Any]]
    finding_names: Mapping[str, str]
    templates: Mapping[str, str]
    source: str = "packaged"

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> "Vocabulary":
        if path is None:
            from medmm.config import read_text

            text, source = read_text("probe/vocabulary.yaml"), "packaged"
        else:
            if not os.path.isfile(path):
                raise InputError(f"{path}: vocabulary file not found")
            with open(path, encoding="utf-8") as fh:
                text, source = fh.read(), os.fspath(path)
        raw = yaml.safe_load(text) or {}
        problems = [f"unknown key {k!r}" for k in raw if k not in VOCAB_KEYS]
        problems += [f"missing key {k!r}" for k in VOCAB_KEYS if k not in raw]
        for name, part in (raw.get("body_parts") or {}).items():
            problems += [f"body_parts.{name}: unknown key {k!r}" for k in part if k not in BODY_PART_KEYS]
            problems += [f"body_parts.{name}.alternatives: {a!r} is not a body part" for a in part.get("alternatives", [])
                         if a not in raw["body_parts"]]
        if problems:
            raise ConfigError(f"vocabulary {source}: " + "; ".join(problems))
        return cls(raw["modalities"], raw["body_parts"], raw["finding_names"] or {}, raw["templates"], source)

    def modality_code(self, value: str) -> str:
        v = str(value).strip()
        if v.upper() in self.modalities:
            return v.upper()
        for code, m in self.modalities.items():
            if v.lower() in [a.lower() for a in m.get("aliases", [])] or v.lower() == m["name"].lower():
                return code
        raise InputError(f"modality {value!r} is not in the vocabulary; known: {', '.join(self.modalities)} "
                         "(add it to a copy of medmm/probe/vocabulary.yaml and pass --vocabulary)")

    def body_part(self, value: str) -> str:
        v = str(value).strip().lower()
        if v in self.body_parts:
            return v
        for key, part in self.body_parts.items():
            if v in [a.lower() for a in part.get("aliases", [])]:
                return key
        raise InputError(f"body part {value!r} is not in the vocabulary; known: {', '.join(self.body_parts)}")

    def finding_name(self, kind: str) -> str:
        return self.finding_names.get(kind, kind.replace("_", " "))


@dataclass(frozen=True)
class Finding:
    name: str
    location: str | None = None
    box: tuple[float, float, float, float] | None = None  # pixels of the image file (x2, y2 exclusive)


@dataclass(frozen=True)
class AnnotatedImage:
    """One 2-D image with its attributes; ``image`` is a path to an image file."""

    image_id: str
    image: str
    modality: str  # vocabulary code
    body_part: str  # vocabulary key
    findings: tuple[Finding, ...] = ()
    normal: bool = True
    label: str = "normal"
    extra: Mapping[str, Any] = field(default_factory=dict)


def read_collection(path: str | os.PathLike[str], images_out: str, vocab: Vocabulary) -> list[AnnotatedImage]:
    """Annotated images of a synthetic manifest or a CSV/JSONL table (see the module docstring).

    ``images_out`` is where rendered PNGs of volumes go (only volumes are rendered).
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise InputError(f"{p}: no such file; give a synthetic manifest.jsonl or a CSV/JSONL of annotated images")
    if p.lower().endswith(".jsonl"):  # a synthetic manifest is read by the one study reader (medmm.studies)
        from medmm.studies import iter_manifest

        studies = list(iter_manifest(p))
        if studies and all(st.truth is not None and st.truth.attributes is not None and st.images for st in studies):
            return [_from_study(st, images_out, vocab) for st in studies]
    rows = list(_rows(p))  # a table of annotated images (CSV/JSONL: image, modality, body_part, findings)
    if not rows:
        raise InputError(f"{p}: no rows")
    base = os.path.dirname(os.path.abspath(p))
    return [_from_row(r, i, base, images_out, vocab, p) for i, r in enumerate(rows)]


def _rows(path: str) -> Iterator[dict[str, Any]]:
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
        return
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: line {n} is not JSON ({exc.msg})") from None


def render_to_png(source: str, out: str, index: int | None = None, axis: str | None = None) -> str:
    """Render a volume (DICOM, NIfTI) slice to ``out`` (auto window); returns ``out``."""
    from medmm.imaging.io import load_volume
    from medmm.models.base import ImageView
    from medmm.regions import Geometry

    vol = load_volume(source)
    view = ImageView(vol, window="auto", index=index, axis=axis or Geometry.of(vol).acquisition_axis())
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    view.to_pil().save(out)
    return out


def _best_slice(findings: Sequence[Any]) -> int | None:
    """The acquisition slice of image 0 that shows the most findings (``medmm.studies.TruthFinding``)."""
    counts: dict[int, int] = {}
    for f in findings:
        for s in {b.slice for b in f.boxes if (b.image or 0) == 0 and b.slice is not None}:
            counts[s] = counts.get(s, 0) + 1
    if not counts:
        return None
    return max(sorted(counts), key=lambda s: counts[s])


def _from_study(study: Any, images_out: str, vocab: Vocabulary) -> AnnotatedImage:
    """One synthetic study (a :class:`medmm.studies.Study`) as an annotated image: the slice with most lesions."""
    from medmm.imaging.io import load_volume
    from medmm.regions import Geometry

    if study.problem or study.truth is None or not study.images:
        raise InputError(f"study {study.study_id}: {study.problem or 'no truth or no image in the manifest line'}")
    attrs = study.truth.attributes or {}
    sid = study.study_id
    lesions = [f for f in study.truth.findings if f.category == "lesion"]
    source = study.images[0].path
    vol = load_volume(source)
    geom = Geometry.of(vol)
    acq_slice = _best_slice(lesions)
    shown: list[Finding] = []
    display_index = None
    for f in lesions:
        boxes = [b for b in f.boxes if (b.image or 0) == 0 and (acq_slice is None or b.slice == acq_slice)]
        if not boxes:
            continue  # this finding is not on the rendered slice
        d = boxes[0].to_display(geom)
        display_index = d.slice
        shown.append(Finding(vocab.finding_name(f.type), f.location, d.as_tuple()))
    out = os.path.join(images_out, f"{sid}.png")
    render_to_png(source, out, index=display_index, axis=geom.acquisition_axis())
    label = shown[0].name if shown else "normal"
    return AnnotatedImage(sid, out, vocab.modality_code(attrs["modality"]), vocab.body_part(attrs["body_part"]),
                          tuple(shown), not shown, label, {"study_id": sid})


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).split(";")] if str(value).strip() else []


def _from_row(rec: Mapping[str, Any], i: int, base: str, images_out: str, vocab: Vocabulary, path: str) -> AnnotatedImage:
    for key in ("image", "modality", "body_part"):
        if not rec.get(key):
            raise InputError(f"{path}: row {i + 1} lacks {key!r}; columns are image, modality, body_part, findings, positions")
    image = rec["image"] if os.path.isabs(rec["image"]) else os.path.join(base, rec["image"])
    if not os.path.exists(image):
        raise InputError(f"{path}: row {i + 1}: image {rec['image']} not found (paths are relative to the table)")
    image_id = str(rec.get("id") or os.path.splitext(os.path.basename(rec["image"]))[0])
    if not image.lower().endswith(IMAGE_SUFFIXES):
        image = render_to_png(image, os.path.join(images_out, f"{image_id}.png"))
    raw = rec.get("findings")
    findings: list[Finding] = []
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        for f in raw:
            box = tuple(float(v) for v in f["box"]) if f.get("box") else None
            findings.append(Finding(str(f["name"]), f.get("location") or None, box))  # type: ignore[arg-type]
    else:
        names, positions = _split(raw), _split(rec.get("positions"))
        if positions and len(positions) != len(names):
            raise InputError(f"{path}: row {i + 1}: {len(names)} finding(s) but {len(positions)} position(s); "
                             "give one position per finding (empty for unknown)")
        findings = [Finding(n, (positions[k] or None) if positions else None) for k, n in enumerate(names) if n]
    normal_raw = rec.get("normal")
    normal = (not findings) if normal_raw in (None, "") else str(normal_raw).lower() in ("1", "true", "yes")
    label = str(rec.get("label") or (findings[0].name if findings else "normal"))
    return AnnotatedImage(image_id, image, vocab.modality_code(rec["modality"]), vocab.body_part(rec["body_part"]),
                          tuple(findings), normal, label)

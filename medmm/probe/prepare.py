"""``medmm probe prepare``: check a downloaded copy of a published probe benchmark and write its manifest.

A user downloads ProbMed or MediConfusion themselves (medmm never downloads). ``prepare`` finds
the question file in the usual layouts, reads it with the runner's own reader (so what passes
here runs), counts images and questions per image type / question type (ProbMed) or pairs and
category occurrences (MediConfusion) against the published figures, lists missing images by id,
checks checksums where known, and writes ``manifest.json``. ``medmm probe run --data
manifest.json`` then runs on exactly that copy (its data file, image root and layout).

Published figures (the papers and their repositories):

* ProbMed: 6,303 images, 57,132 questions (README of github.com/eric-ai-lab/ProbMed); the
  per-image-type and per-question-type counts found are listed, with no published figure per type
  to compare against (the paper gives none in machine-readable form);
* MediConfusion: 176 pairs; category occurrences (``category_1 + category_2`` per pair, the
  denominators of its per-category scores) from its ``data/statistics.json``; the SHA-256 of
  ``dataset.json`` as released (MIT licence).

A count that differs from the published one is reported (``ok: false`` and a reason) but does not
stop ``prepare``: a subset is a legitimate thing to run, as long as the numbers say it is one.
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from medmm.errors import InputError
from medmm.probe._io import write_json
from medmm.runs import file_fingerprint

MANIFEST = "manifest.json"
PROBMED_PUBLISHED = {"images": 6303, "questions": 57132}
PROBMED_FILES = ("probmed.json", "test.json", "ProbMed.json", "data/probmed.json", "data/test.json")
MEDICONFUSION_PUBLISHED: dict[str, Any] = {
    "pairs": 176,
    "category_occurrences": {"Cerebral": 79, "Vascular": 73, "Head and Neck": 67, "Spinal": 51, "Musculoskeletal": 42,
                             "Cardiac": 52, "Gastrointestinal": 43, "Pulmonary": 20, "Nuclear Medicine": 14},
    "dataset_sha256": "36e5052ebe370aac7446f29cb1425fa47b1795b40e2e7a72462c93b5472c0d5f",
}
MEDICONFUSION_FILES = ("dataset.json", "data/dataset.json")
MEDICONFUSION_IMAGE_DIRS = ("images", "data/images", ".")


@dataclass
class Prepared:
    """What ``prepare`` found: the manifest the runner reads, plus the comparison with the published copy."""

    bench: str  # negation (ProbMed) | confusion (MediConfusion)
    benchmark: str
    data: str
    images: str
    layout: str
    counts: dict[str, Any]
    published: dict[str, Any]
    missing_images: dict[str, list[str]] = field(default_factory=dict)  # id -> missing files
    checksums: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing_images

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "medmm-probe-manifest", **asdict(self), "ok": self.ok}

    def lines(self) -> list[str]:
        out = [f"{self.benchmark}: {self.data}", f"  images under {self.images}"]
        for k, v in self.counts.items():
            if isinstance(v, dict):
                out.append(f"  {k}: " + ", ".join(f"{n} {c}" for n, c in v.items()))
            else:
                pub = self.published.get(k)
                out.append(f"  {k}: {v:,}" + (f" (published {pub:,})" if isinstance(pub, int) else ""))
        if self.missing_images:
            ids = sorted(self.missing_images)
            out.append(f"  missing images for {len(ids)} id(s): {', '.join(ids[:20])}"
                       + (f" and {len(ids) - 20} more" if len(ids) > 20 else ""))
        for name, c in self.checksums.items():
            out.append(f"  sha256 {name}: {c['sha256'][:16]}... " + (
                "matches the published file" if c.get("match") else "no published checksum" if c.get("match") is None
                else "DIFFERS from the published file"))
        out += [f"  problem: {p}" for p in self.problems]
        out.append("  ok" if self.ok else "  NOT the published copy (see above); runs will say so in their manifest")
        return out


def _find(root: str, names: tuple[str, ...], what: str) -> str:
    if not os.path.isdir(root):
        raise InputError(f"{root}: no such folder; give --root the folder you downloaded {what} into")
    for name in names:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
    raise InputError(f"{root}: no {what} question file found (looked for {', '.join(names)}); "
                     f"download {what} and give --root the folder that holds it")


def prepare_probmed(root: str) -> Prepared:
    """Check a ProbMed download (question file + images relative to it)."""
    from medmm.probe.negation import read_questions

    data = _find(root, PROBMED_FILES, "ProbMed")
    questions = read_questions(data)
    base = os.path.dirname(os.path.abspath(data))
    images: dict[str, str] = {}
    per_type: collections.Counter[str] = collections.Counter()
    per_question: collections.Counter[str] = collections.Counter()
    missing: dict[str, list[str]] = {}
    for q in questions:
        key = f"{q.image_type}|{json.dumps(q.id)}"
        per_question[_question_type(q.qa_type)] += 1
        if key in images:
            continue
        if not q.image:
            raise InputError(f"{data}: image {q.id} ({q.image_type}) names no image file; a ProbMed question has "
                             "'image' (a path relative to the question file)")
        images[key] = q.image
        per_type[q.image_type] += 1
        path = q.image if os.path.isabs(q.image) else os.path.join(base, q.image)
        if not os.path.isfile(path):
            missing[str(q.id)] = [q.image]
    counts = {"images": len(images), "questions": len(questions), "images_per_image_type": dict(sorted(per_type.items())),
              "questions_per_question_type": dict(sorted(per_question.items()))}
    problems = [f"{k}: {counts[k]:,} found, {v:,} published" for k, v in PROBMED_PUBLISHED.items() if counts[k] != v]
    checksums = {os.path.basename(data): {"sha256": file_fingerprint(data), "match": None}}
    return Prepared("negation", "ProbMed", data, base, "relative", counts, dict(PROBMED_PUBLISHED), missing,
                    checksums, problems)


def _question_type(qa_type: str) -> str:
    """``entity_gt_3`` -> ``entity_gt`` (the index is per image)."""
    parts = qa_type.split("_")
    return "_".join(parts[:-1]) if parts[-1].isdigit() else qa_type


def prepare_mediconfusion(root: str, layout: str = "auto") -> Prepared:
    """Check a MediConfusion download (``dataset.json`` + the released images ``<n>.jpg``, or ROCO paths)."""
    from medmm.probe.confusion import read_dataset

    data = _find(root, MEDICONFUSION_FILES, "MediConfusion")
    pairs = read_dataset(data, layout=layout)
    base = os.path.dirname(os.path.abspath(data))
    folder = next((os.path.join(base, d) for d in MEDICONFUSION_IMAGE_DIRS
                   if os.path.isdir(os.path.join(base, d)) and _holds_any(os.path.join(base, d), pairs)),
                  os.path.join(base, "images"))
    occ: collections.Counter[str] = collections.Counter()
    missing: dict[str, list[str]] = {}
    for p in pairs:
        occ.update(p.category_1 + p.category_2)
        gone = [ref for ref in (p.image_1, p.image_2) if not os.path.isfile(os.path.join(folder, ref))]
        if gone:
            missing[p.pair_id] = gone
    n_images = len({p.image_1 for p in pairs} | {p.image_2 for p in pairs})
    counts = {"pairs": len(pairs), "distinct_images": n_images, "category_occurrences": dict(occ)}
    published = MEDICONFUSION_PUBLISHED
    problems = []
    if counts["pairs"] != published["pairs"]:
        problems.append(f"pairs: {counts['pairs']} found, {published['pairs']} published")
    diff = {c: (occ.get(c, 0), n) for c, n in published["category_occurrences"].items() if occ.get(c, 0) != n}
    if diff:
        problems.append("category occurrences differ from the published statistics.json: "
                        + ", ".join(f"{c} {a} vs {b}" for c, (a, b) in diff.items()))
    if pairs and len(missing) == len(pairs):
        problems.append(f"no image of any pair under {folder}: the released images are <im_k_local>.jpg in data/images "
                        "(MediConfusion's download script); for ROCO paths use --layout roco with the ROCO data folder")
    sha = file_fingerprint(data)
    match = sha == published["dataset_sha256"]
    if not match:
        problems.append("dataset.json differs from the released file (SHA-256); scores are not comparable with the "
                        "paper's unless the change is known")
    return Prepared("confusion", "MediConfusion", data, folder, layout, counts,
                    {k: v for k, v in published.items() if k != "dataset_sha256"}, missing,
                    {"dataset.json": {"sha256": sha, "match": match, "published": published["dataset_sha256"]}},
                    problems)


def _holds_any(folder: str, pairs: Any) -> bool:
    return any(os.path.isfile(os.path.join(folder, p.image_1)) for p in list(pairs)[:20])


PREPARERS: dict[str, Callable[..., Prepared]] = {"probmed": prepare_probmed, "mediconfusion": prepare_mediconfusion}


def prepare(benchmark: str, root: str, out: str | None = None, layout: str = "auto") -> tuple[Prepared, str]:
    """Check ``root`` and write ``manifest.json`` (into ``out``, default ``root``); returns it and its path."""
    if benchmark not in PREPARERS:
        raise InputError(f"unknown benchmark {benchmark!r}; use {' or '.join(PREPARERS)}")
    prepared = prepare_mediconfusion(root, layout) if benchmark == "mediconfusion" else prepare_probmed(root)
    path = os.path.join(out or root, MANIFEST)
    write_json(path, prepared.to_dict())
    return prepared, path


def read_manifest(path: str) -> dict[str, Any] | None:
    """The manifest ``prepare`` wrote, or None when ``path`` is not one (a plain data file)."""
    if not path.endswith(".json") or not os.path.isfile(path) or os.path.getsize(path) > 1 << 20:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (OSError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) and obj.get("kind") == "medmm-probe-manifest" else None

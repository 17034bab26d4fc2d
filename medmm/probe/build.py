"""Build ProbMed-style negation pairs for any annotated collection.

Every true question gets an adversarial twin whose attribute is hallucinated from the
vocabulary (:class:`~medmm.probe.collection.Vocabulary`), seeded per image so adding images
never changes the questions of the others:

* modality: another modality of the same family (CT -> MRI or PET; X-ray -> mammogram...);
* body part: one of the body part's listed neighbours (chest -> abdomen, neck, shoulder);
* condition: a finding of the same body part that is absent from the image (no finding of the
  image shares a word with it); a normal image gets one lone made-up finding (``entity_hallu``);
* position: the same finding on the wrong side (left <-> right) or the wrong lobe
  (upper <-> lower), else another location of the body part; never a place where a finding of
  that name is, and never a part of a bilateral finding's place.

Questions use ProbMed's wording (``templates`` in the vocabulary) and its file format; the
rendered image, the finding box (for the region check) and the attribute each question asks
about go under the ``"medmm"`` key.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from typing import Any, Sequence

from medmm.errors import InputError
from medmm.probe.collection import AnnotatedImage, Finding, Vocabulary, read_collection
from medmm.probe.negation import NegationQuestion, write_questions

SIDES = {"left": "right", "right": "left"}
LOBES = {"upper": "lower", "lower": "upper", "middle": "upper"}
_WORDS = re.compile(r"[a-z]+")
_SIDE_WORDS = {"left", "right", "bilateral"}


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


def _swap(location: str, table: dict[str, str]) -> str | None:
    words = location.split()
    for i, w in enumerate(words):
        if w.lower() in table:
            return " ".join(words[:i] + [table[w.lower()]] + words[i + 1:])
    return None


def wrong_location(finding: Finding, same_name_locations: Sequence[str], candidates: Sequence[str],
                   rng: random.Random) -> str | None:
    """A plausible wrong place for ``finding`` (rules in the module docstring); None when none is left."""
    assert finding.location is not None
    taken = {loc.lower() for loc in same_name_locations}
    core = _words(finding.location) - _SIDE_WORDS
    bilateral = "bilateral" in _words(finding.location)

    def allowed(loc: str | None) -> bool:
        if not loc or loc.lower() in taken or loc.lower() == finding.location.lower():  # type: ignore[union-attr]
            return False
        return not (bilateral and core and core <= _words(loc) | _SIDE_WORDS)

    near = [c for c in (_swap(finding.location, SIDES), _swap(finding.location, LOBES)) if allowed(c)]
    if near:
        return rng.choice(near)
    far = [c for c in candidates if allowed(c)]
    return rng.choice(far) if far else None


def absent_findings(image: AnnotatedImage, vocab: Vocabulary) -> list[str]:
    """The body part's findings that share no word with any finding of ``image``."""
    present = set().union(*(_words(f.name) for f in image.findings)) if image.findings else set()
    generic = {"of", "the", "in", "lesion", "lesions"}
    return [f for f in vocab.body_parts[image.body_part]["findings"] if not (_words(f) - generic) & (present - generic)]


def _q(image: AnnotatedImage, image_path: str, image_type: str, qa_type: str, text: str, answer: str,
       **extra: Any) -> NegationQuestion:
    return NegationQuestion(image.image_id, image_path, image_type, qa_type, text, answer,
                            {k: v for k, v in extra.items() if v is not None})


def questions_for(image: AnnotatedImage, vocab: Vocabulary, seed: int, image_path: str) -> list[NegationQuestion]:
    """The ProbMed question set of one image (true + adversarial per attribute)."""
    rng = random.Random(f"{seed}:{image.image_id}")
    mod = vocab.modalities[image.modality]
    part = vocab.body_parts[image.body_part]
    t = vocab.templates
    image_type = f"{mod['name'].lower()}_{image.body_part}"
    fmt = {"modality_lower": mod["name"].lower(), "organ": image.body_part}
    out = []

    family = [c for c, m in vocab.modalities.items() if m.get("family") == mod.get("family") and m["name"] != mod["name"]]
    others = family or [c for c, m in vocab.modalities.items() if m["name"] != mod["name"]]
    alt = vocab.modalities[rng.choice(sorted(others))]
    out.append(_q(image, image_path, image_type, "modality_gt",
                  t["modality"].format(article=mod["article"], modality=mod["name"]), "yes", attribute=mod["name"]))
    out.append(_q(image, image_path, image_type, "modality_hallu",
                  t["modality"].format(article=alt["article"], modality=alt["name"]), "no", attribute=alt["name"]))

    alt_part = vocab.body_parts[rng.choice(sorted(part["alternatives"]))]
    out.append(_q(image, image_path, image_type, "body_part_gt",
                  t["body_part"].format(article=part["article"], body_part=part["display"]), "yes", attribute=part["display"]))
    out.append(_q(image, image_path, image_type, "body_part_hallu",
                  t["body_part"].format(article=alt_part["article"], body_part=alt_part["display"]), "no",
                  attribute=alt_part["display"]))
    out.append(_q(image, image_path, image_type, "abnormality", t["abnormality"].format(**fmt),
                  "no" if image.normal else "yes"))

    absent = absent_findings(image, vocab)
    rng.shuffle(absent)
    names = list(dict.fromkeys(f.name for f in image.findings))
    if image.normal or not names:
        if absent:
            out.append(_q(image, image_path, image_type, "entity_hallu",
                          t["entity"].format(finding=absent[0], **fmt), "no", attribute=absent[0]))
        return out
    for k, name in enumerate(names):
        box = next((f.box for f in image.findings if f.name == name and f.box), None)
        out.append(_q(image, image_path, image_type, f"entity_gt_{k}", t["entity"].format(finding=name, **fmt), "yes",
                      attribute=name, box=list(box) if box else None))
        if k < len(absent):
            out.append(_q(image, image_path, image_type, f"entity_hallu_{k}",
                          t["entity"].format(finding=absent[k], **fmt), "no", attribute=absent[k]))
    return out + _position_pairs(image, vocab, rng, image_path, image_type, fmt)


def _position_pairs(image: AnnotatedImage, vocab: Vocabulary, rng: random.Random, image_path: str, image_type: str,
                    fmt: dict[str, str]) -> list[NegationQuestion]:
    """``grounding_gt_k`` / ``grounding_hallu_k`` for each finding with a known place."""
    out: list[NegationQuestion] = []
    template = vocab.templates["grounding"]
    for f in image.findings:
        if not f.location:
            continue
        same = [g.location for g in image.findings if g.name == f.name and g.location]
        wrong = wrong_location(f, same, vocab.body_parts[image.body_part]["locations"], rng)  # type: ignore[arg-type]
        if wrong is None:
            continue
        k = len(out) // 2
        box = list(f.box) if f.box else None
        out.append(_q(image, image_path, image_type, f"grounding_gt_{k}",
                      template.format(finding=f.name, location=f.location, **fmt), "yes",
                      attribute=f.location, finding=f.name, box=box))
        out.append(_q(image, image_path, image_type, f"grounding_hallu_{k}",
                      template.format(finding=f.name, location=wrong, **fmt), "no",
                      attribute=wrong, finding=f.name, box=box))
    return out


@dataclass(frozen=True)
class BuildResult:
    out: str
    n_images: int
    n_questions: int
    images_dir: str


def build_negation(source: str | os.PathLike[str], out: str | os.PathLike[str], seed: int = 0,
                   vocabulary: str | os.PathLike[str] | None = None) -> BuildResult:
    """Write a ProbMed question file for a manifest or table; rendered images go to ``<out stem>_images/``.

    Image paths in the file are relative to the file's folder (``medmm probe run`` resolves them there).
    """
    vocab = Vocabulary.load(vocabulary)
    out = os.fspath(out)
    if not out.endswith(".json"):
        raise InputError(f"{out}: the question file is JSON (ProbMed format): give a name ending in .json")
    out_dir = os.path.dirname(os.path.abspath(out))
    images_dir = os.path.splitext(os.path.abspath(out))[0] + "_images"
    images = read_collection(source, images_dir, vocab)
    questions = []
    for img in images:
        rel = os.path.relpath(os.path.abspath(img.image), out_dir)
        questions += questions_for(img, vocab, seed, rel)
    write_questions(questions, out)
    return BuildResult(out, len(images), len(questions), images_dir)

"""The work of a probe run: one :class:`Sample` per model query, for the main run and each control.

A sample is an image (a file, possibly blanked, noised, cropped or marked), a prompt and a
query kind (``generate``, ``options`` to score, or ``judge``). Its :attr:`Sample.key` is a
hash of everything that decides its answer apart from the model (benchmark, unit, variant,
prompt, the image file's content, options, box), so the result cache keys a result by prompt
hash and model fingerprint (the run configuration): an image replaced in place is asked again,
an image folder moved elsewhere is not.

Controls (``--controls``):

* ``blind``: the same prompts with no image at all (``none``: MMStar's control, the question
  alone; the model input holds no image), a blank (black) image and a noise image of the same
  size (``blank``, ``noise``: a different question to a model, kept beside it);
* ``text``: the same question with a misleading hint that states the wrong answer (Words or
  Vision); the text-preference ratio counts which of hint and image the answer follows;
* ``llm`` (with a language model given to the run, ``--llm``): the question alone asked of the
  language model without its vision part; with ``none`` it gives MMStar's multimodal leakage
  ML = max(0, score without the image - score of the language model alone);
* ``region`` (negation pairs with boxes): position questions asked with the full image plus the
  finding's region cropped with context (``crop``, ViCrop's two images) or with the region
  outlined on the image (``draw``, :func:`medmm.regions.draw`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np
import yaml
from PIL import Image

from medmm.errors import InputError
from medmm.probe.confusion import ConfusionPair
from medmm.probe.negation import NegationQuestion, QAType
from medmm.runs import file_fingerprint, item_key

VARIANTS = ("image", "none", "blank", "noise", "text", "crop", "draw", "llm")
CONTROLS = {"blind": ("none", "blank", "noise"), "text": ("text",), "region": ("crop", "draw")}
BLIND = CONTROLS["blind"]  # the blind variants, in the order metrics.json and the report show them


@lru_cache(maxsize=1)
def prompts() -> dict[str, Any]:
    """The packaged prompts (``medmm/probe/prompts.yaml``)."""
    from medmm.config import read_text

    return yaml.safe_load(read_text("probe/prompts.yaml"))


@dataclass(frozen=True)
class Sample:
    bench: str
    unit: str  # one question (negation: "<image key>/<qa_type>") or one image slot ("<pair id>/<slot>")
    group: str  # the bootstrap unit: an image (negation) or a pair (confusion)
    variant: str
    image_ref: str  # the image as the data file names it
    image: str  # resolved path
    prompt: str
    query: str  # generate | options | judge
    options: tuple[str, ...] = ()
    box: tuple[float, float, float, float] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    image_sha: str = ""  # the image file's content hash: a changed image is a new sample, a moved one is not

    @property
    def key(self) -> str:
        return item_key(self.bench, self.unit, self.variant, self.prompt, self.image_sha or self.image_ref,
                        list(self.options), list(self.box) if self.box else None)


def parse_controls(text: str | None) -> tuple[str, ...]:
    names = tuple(c.strip() for c in (text or "").split(",") if c.strip())
    unknown = [c for c in names if c not in CONTROLS]
    if unknown:
        raise InputError(f"unknown control(s) {', '.join(unknown)}; use blind, text, region (comma-separated)")
    return names


def check_mode(bench: str, mode: str) -> None:
    from medmm.probe.tasks import get_task

    modes = get_task(bench).modes  # the task registry: an unknown benchmark is refused there
    if mode not in modes:
        raise InputError(f"mode {mode!r} does not apply to {bench} pairs; use one of {', '.join(modes)}")


def _resolve(ref: str, root: str) -> str:
    return ref if os.path.isabs(ref) else os.path.join(root, ref)


def image_key(image_type: str, image_id: Any) -> str:
    """The bootstrap unit of a negation question: its image (type and id)."""
    return f"{image_type}|{json.dumps(image_id)}"


def negation_samples(questions: Sequence[NegationQuestion], root: str, mode: str,
                     controls: Sequence[str]) -> list[Sample]:
    """Samples of a ProbMed question set: every question, then each control's variants."""
    p = prompts()
    out: list[Sample] = []
    for q in questions:
        if not q.image:
            raise InputError(f"question {q.qa_type} of image {q.id} names no image")
        group = image_key(q.image_type, q.id)
        meta = {"id": q.id, "image_type": q.image_type, "qa_type": q.qa_type, "question": q.question,
                "gt_ans": q.answer, "hint": "no" if q.answer == "yes" else "yes"}
        query, options = ("generate", ()) if mode == "mc" else ("options", ("yes", "no"))
        base = Sample("negation", f"{group}/{q.qa_type}", group, "image", q.image, _resolve(q.image, root),
                      p["probmed"][mode].format(question=q.question), query, options, None, meta)
        out.append(base)
        out += _control_variants(base, controls, p["controls"]["text_hint_negation"].format(hint=meta["hint"]))
        box = q.extra.get("box")
        if "region" in controls and box and QAType.parse(q.qa_type).category == "position":
            for v in CONTROLS["region"]:
                out.append(_variant(base, v, box=tuple(float(x) for x in box)))
    return out


def confusion_samples(pairs: Sequence[ConfusionPair], mode: str, controls: Sequence[str],
                      refs: Mapping[str, tuple[str, str]] | None = None) -> list[Sample]:
    """Samples of confusion pairs (images already resolved): each image of each pair, then the controls."""
    p = prompts()["mediconfusion"]
    out: list[Sample] = []
    for pair in pairs:
        fields = {"question": pair.question, "option_a": pair.option_a, "option_b": pair.option_b}
        prompt = p[mode].format(**fields)
        query, options = {"mc": ("generate", ()), "greedy": ("options", ("A", "B")),
                          "prefix": ("options", pair.options), "judge": ("judge", ())}[mode]
        for slot in (1, 2):
            truth = pair.correct(slot)
            wrong = "B" if truth == "A" else "A"
            ref = (refs or {}).get(pair.pair_id, (pair.image_1, pair.image_2))[slot - 1]
            meta = {"pair_id": pair.pair_id, "image": slot, "truth": truth, "hint": wrong,
                    "categories": list(pair.categories(slot)), "question": pair.question,
                    "options": list(pair.options)}
            base = Sample("confusion", f"{pair.pair_id}/{slot}", pair.pair_id, "image", ref, pair.image(slot), prompt,
                          query, options, None, meta)
            out.append(base)
            hint_text = pair.option_a if wrong == "A" else pair.option_b
            out += _control_variants(base, controls, prompts()["controls"]["text_hint_confusion"].format(hint=hint_text))
    return out


def _variant(base: Sample, variant: str, prompt: str | None = None, box: Any = None) -> Sample:
    return replace(base, variant=variant, prompt=prompt if prompt is not None else base.prompt, box=box)


def with_image_hashes(samples: Sequence[Sample]) -> list[Sample]:
    """Samples carrying the SHA-256 of their image file (each file read once); a missing file keeps
    its path in the key and fails when the sample runs."""
    digests: dict[str, str] = {}
    for path in dict.fromkeys(s.image for s in samples):
        try:
            digests[path] = file_fingerprint(path)
        except (InputError, OSError):
            digests[path] = ""
    return [replace(s, image_sha=digests[s.image]) for s in samples]


def _control_variants(base: Sample, controls: Sequence[str], hint_prefix: str) -> list[Sample]:
    out = []
    if "blind" in controls:
        out += [_variant(base, v) for v in CONTROLS["blind"]]
    if "text" in controls:
        out.append(_variant(base, "text", prompt=hint_prefix + base.prompt))
    return out


# ------------------------------------------------------------------ images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def load_image(path: str) -> Image.Image:
    """An image file as RGB, or the middle slice of a volume (DICOM/NIfTI) with the auto window."""
    if not os.path.exists(path):
        raise InputError(f"{path}: image not found")
    if path.lower().endswith(IMAGE_SUFFIXES):
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except OSError as exc:
            raise InputError(f"{path}: not a readable image ({exc})") from None
    from medmm.imaging.io import load_volume
    from medmm.models.base import ImageView

    return ImageView(load_volume(path), window="auto").to_pil()


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def variant_images(sample: Sample, image: Image.Image) -> list[Image.Image]:
    """The images the model sees for ``sample``: the original for the image and text variants; for
    ``crop`` the full image and the region cropped with context (ViCrop's ``[full image, crop]``,
    :func:`medmm.models.vicrop.crop_with_margin`); for ``draw`` the region outlined."""
    if sample.variant in ("none", "llm"):  # MMStar: the question alone (llm: asked of the language model alone)
        return []
    if sample.variant == "blank":
        return [Image.new("RGB", image.size, (0, 0, 0))]
    if sample.variant == "noise":
        rng = np.random.default_rng(_seed(sample.unit))
        return [Image.fromarray(rng.integers(0, 256, size=(image.height, image.width, 3), dtype=np.uint8))]
    if sample.variant == "crop":
        from medmm.models.vicrop import crop_with_margin

        return [image, image.crop(crop_with_margin(sample.box, image.size))]  # type: ignore[arg-type]
    if sample.variant == "draw":
        from medmm.regions import draw

        return [draw(image, [sample.box])]  # type: ignore[list-item]
    return [image]

"""Mine MediConfusion-style confusion pairs from any labelled image collection.

MediConfusion kept image pairs that a medical CLIP model finds alike (BiomedCLIP similarity
>= ~0.90) while a vision-only self-supervised model (DINOv2) does not, then wrote a question
whose answer differs between the two images. medmm does the same with two encoders the user
names:

* ``--semantic-encoder``: e.g. a local CLIP-like checkpoint (``hf:PATH``) or the VLM's own
  vision tower (``vlm:tiny:llava``, ``vlm:hf:PATH``);
* ``--visual-encoder``: e.g. a self-supervised checkpoint (``hf:PATH``, DINOv2-like);
* offline defaults need no weights: ``pixels:layout`` (an 8x8 thumbnail: where things are) as
  the semantic stand-in and ``pixels:texture`` (intensity histogram + gradient statistics) as the
  visual one. They only make the pipeline runnable offline; real mining wants real encoders.

A pair is kept when its labels differ and it is more alike to the semantic encoder than to the
visual one (rules in :func:`select_pairs`); each image is used once. The
question and options come from templates and the file is MediConfusion's ``dataset.json``
format (``semantic_sim`` / ``visual_sim`` in place of ``BiomedCLIP_sim`` / ``DINO_sim``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from medmm.errors import InputError
from medmm.probe.collection import AnnotatedImage, Vocabulary, read_collection
from medmm.probe.confusion import ConfusionPair, write_dataset

QUESTION = "Which finding does this {modality} of the {body_part} show?"
NORMAL_OPTION = "No abnormality"


class Encoder(Protocol):
    @property
    def name(self) -> str: ...

    def fingerprint(self) -> str: ...

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray: ...


def _gray(image: Image.Image, size: int) -> np.ndarray:
    return np.asarray(image.convert("L").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class PixelEncoder:
    """Pixel statistics: ``layout`` = an 8x8 thumbnail; ``texture`` = a 32-bin intensity histogram
    plus gradient-magnitude histogram (no weights, no download)."""

    kind: str = "texture"

    @property
    def name(self) -> str:
        return f"pixels:{self.kind}"

    def fingerprint(self) -> str:
        return f"pixels:{self.kind}:v1"

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = []
        for im in images:
            if self.kind == "layout":
                g = _gray(im, 8)
                rows.append((g - g.mean()).ravel())
                continue
            g = _gray(im, 64)
            hist = np.histogram(g, bins=32, range=(0, 1))[0].astype(np.float32)
            gy, gx = np.gradient(g)
            grad = np.histogram(np.hypot(gx, gy), bins=16, range=(0, 0.5))[0].astype(np.float32)
            rows.append(np.concatenate([hist / max(hist.sum(), 1), grad / max(grad.sum(), 1)]))
        return np.stack(rows)


class VisionTowerEncoder:
    """Mean-pooled last hidden state of a medmm model's vision tower (LLaVA families)."""

    def __init__(self, spec: str) -> None:
        from medmm.models import UnsupportedError, load

        self.vlm = load(spec)
        inner = getattr(self.vlm, "model", None)
        self.tower = getattr(inner, "vision_tower", None) or getattr(getattr(inner, "model", None), "vision_tower", None)
        if self.tower is None:
            raise UnsupportedError(f"{spec}: no vision_tower to encode with (LLaVA-family models have one); "
                                   "use hf:PATH with a vision checkpoint instead")
        self.name = f"vlm:{spec}"

    def fingerprint(self) -> str:
        return f"vlm:{self.vlm.fingerprint()}"

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        proc = self.vlm.processor.image_processor  # type: ignore[attr-defined]
        pix = proc([im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.tower(pix.to(self.vlm.device, dtype=next(self.tower.parameters()).dtype))  # type: ignore[attr-defined,misc,union-attr]
        return out.last_hidden_state.mean(dim=1).float().cpu().numpy()


class HFVisionEncoder:
    """A local transformers vision checkpoint: CLIP-like models through ``get_image_features``,
    others (DINOv2-like) through the mean of the last hidden state. Safetensors only."""

    def __init__(self, path: str) -> None:
        from transformers import AutoImageProcessor, AutoModel

        from medmm.models.hf import check_weights

        if not os.path.isdir(path):
            raise InputError(f"{path}: encoder checkpoint folder not found")
        check_weights(path, allow_pickle=False, what="encoder checkpoint")
        self.path = path
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).eval()
        self.name = f"hf:{path}"

    def fingerprint(self) -> str:
        from medmm.runs import file_fingerprint

        return f"hf:{file_fingerprint(self.path)[:16]}"

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        pix = self.processor([im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            if hasattr(self.model, "get_image_features"):
                feats = self.model.get_image_features(pixel_values=pix)
                feats = getattr(feats, "pooler_output", feats)
            else:
                feats = self.model(pixel_values=pix).last_hidden_state.mean(dim=1)
        return feats.float().cpu().numpy()


def load_encoder(spec: str) -> Encoder:
    """``pixels:layout`` | ``pixels:texture`` | ``vlm:MODEL_SPEC`` | ``hf:PATH``."""
    if spec in ("pixels", "pixels:texture", "pixels:layout"):
        return PixelEncoder("layout" if spec.endswith("layout") else "texture")
    if spec.startswith("vlm:"):
        return VisionTowerEncoder(spec[4:])
    if spec.startswith("hf:"):
        return HFVisionEncoder(spec[3:])
    raise InputError(f"encoder {spec!r}: use pixels:layout, pixels:texture, vlm:MODEL (e.g. vlm:tiny:llava) or hf:PATH")


def cosine_matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1, norms)
    return x @ x.T


@dataclass(frozen=True)
class MinedPair:
    i: int
    j: int
    semantic: float
    visual: float


def _ranks(values: np.ndarray) -> np.ndarray:
    """Percentile ranks in [0, 1] (ties share the mean rank)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values))
    for v in np.unique(values):
        m = values == v
        ranks[m] = ranks[m].mean()
    return ranks / max(len(values) - 1, 1)


def select_pairs(labels: Sequence[str], semantic: np.ndarray, visual: np.ndarray, min_semantic: float | None = None,
                 max_visual: float | None = None, max_pairs: int | None = None) -> list[MinedPair]:
    """Pairs with different labels that are relatively more alike to the semantic encoder than to the
    visual one, ranked by (semantic rank - visual rank); each image used once.

    With ``min_semantic`` / ``max_visual`` (cosine values, e.g. 0.90 / 0.75 as MediConfusion),
    pairs must pass them. Without, a pair must rank in the upper half of semantic similarity and
    lower in visual than in semantic similarity (percentile ranks over all pairs), because the
    two encoders' cosine scales are not comparable.
    """
    n = len(labels)
    iu = np.triu_indices(n, k=1)
    sem, vis = semantic[iu], visual[iu]
    r_sem, r_vis = _ranks(sem), _ranks(vis)
    cands = []
    for k, (i, j) in enumerate(zip(*iu)):
        if labels[int(i)] == labels[int(j)]:
            continue
        ok_sem = sem[k] >= min_semantic if min_semantic is not None else r_sem[k] >= 0.5
        ok_vis = vis[k] <= max_visual if max_visual is not None else r_vis[k] < r_sem[k]
        if ok_sem and ok_vis:
            cands.append((r_sem[k] - r_vis[k], MinedPair(int(i), int(j), float(sem[k]), float(vis[k]))))
    cands.sort(key=lambda c: (-c[0], c[1].i, c[1].j))
    used: set[int] = set()
    out: list[MinedPair] = []
    for _, p in cands:
        if p.i in used or p.j in used:
            continue
        out.append(p)
        used |= {p.i, p.j}
        if max_pairs is not None and len(out) >= max_pairs:
            break
    return out


def _option(image: AnnotatedImage) -> str:
    return NORMAL_OPTION if image.normal or image.label == "normal" else image.label[:1].upper() + image.label[1:]


@dataclass(frozen=True)
class MineResult:
    out: str
    n_images: int
    n_pairs: int
    semantic_encoder: str
    visual_encoder: str


def mine_confusion(source: str | os.PathLike[str], out: str | os.PathLike[str], semantic: str = "pixels:layout",
                   visual: str = "pixels:texture", seed: int = 0, min_semantic: float | None = None,
                   max_visual: float | None = None, max_pairs: int | None = None,
                   vocabulary: str | os.PathLike[str] | None = None) -> MineResult:
    """Write a MediConfusion ``dataset.json`` of mined pairs; images are referenced relative to it."""
    from medmm.probe.samples import load_image

    out = os.fspath(out)
    vocab = Vocabulary.load(vocabulary)
    out_dir = os.path.dirname(os.path.abspath(out))
    images = read_collection(source, os.path.splitext(os.path.abspath(out))[0] + "_images", vocab)
    if len(images) < 2:
        raise InputError(f"{source}: at least two images are needed to mine pairs")
    pil = [load_image(im.image) for im in images]
    sem_enc, vis_enc = load_encoder(semantic), load_encoder(visual)
    s_sim, v_sim = cosine_matrix(sem_enc.encode(pil)), cosine_matrix(vis_enc.encode(pil))
    labels = [_option(im) for im in images]
    chosen = select_pairs(labels, s_sim, v_sim, min_semantic, max_visual, max_pairs)
    pairs = []
    for k, p in enumerate(chosen):
        a, b = images[p.i], images[p.j]
        rng = random.Random(f"{seed}:{a.image_id}:{b.image_id}")
        first_is_a = rng.random() < 0.5
        opts = (labels[p.i], labels[p.j]) if first_is_a else (labels[p.j], labels[p.i])
        mod = vocab.modalities[a.modality]["name"] if a.modality == b.modality else "image"
        question = QUESTION.format(modality=mod, body_part=a.body_part if a.body_part == b.body_part else "body")
        cat = lambda im: [vocab.body_parts[im.body_part]["display"]]  # noqa: E731
        rel = lambda im: os.path.relpath(os.path.abspath(im.image), out_dir)  # noqa: E731
        extra = {"im_1": rel(a), "im_2": rel(b), "cap_1": labels[p.i], "cap_2": labels[p.j],
                 "semantic_sim": round(p.semantic, 6), "visual_sim": round(p.visual, 6),
                 "semantic_encoder": sem_enc.fingerprint(), "visual_encoder": vis_enc.fingerprint(),
                 "source_1": a.image_id, "source_2": b.image_id}
        pairs.append(ConfusionPair(str(10001 + k), question, opts[0], opts[1], "A" if first_is_a else "B",
                                   "B" if first_is_a else "A", str(extra["im_1"]), str(extra["im_2"]), tuple(cat(a)),
                                   tuple(cat(b)), extra))
    write_dataset(pairs, out)
    return MineResult(out, len(images), len(pairs), sem_enc.name, vis_enc.name)

"""The vision warm-up of the checker's curriculum (``data.checker.vision_warmup``).

A tiny model built from a config starts with a random vision tower. A side swap is an exclusive-or of the side
the report names and the side the image shows; before the language model can learn that comparison, the image
tokens must carry the side of each finding, and learning that *through* the language model from random weights
is slow and unreliable on 2 CPU cores (measured: "which side is the effusion?" at chance after 400 steps in some
runs, 0.88 in others). A real checkpoint's vision tower comes pretrained (CLIP on web images; a medical tower on
CXR labels); this stage gives the tiny tower the same kind of start, the way medical vision encoders are commonly
pretrained on classification labels: a linear head on the mean of the projected image tokens (what the language
model receives) is trained, with the tower and the projector, to tell the side of each visible finding type
(:data:`medmm.checkertrain.tasks.VISIBLE`: left, right; "absent" and "both" carry no side and are not scored).
The labels are the synthetic training studies' truth (never the held-out seed); the head is thrown away.

The warmed tower and projector are saved in ``output_dir/vision-warmup.safetensors`` with the run identity, so a
resumed run (or a second run of the same config) loads them instead of training again; the held-out accuracy of
the head is logged (``event: vision_warmup``). Only models whose ``get_image_features`` returns the projected
tokens of each image (the LLaVA family) are supported.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from medmm.errors import ConfigError, InputError
from medmm.finetune.inputs import IGNORE

SIDES = ("left", "right")


def one_sided_findings(study: dict[str, Any], types: Sequence[str]) -> dict[str, str]:
    """The finding types of ``types`` that ``study``'s truth has on one side only (left or right), with that side."""
    sides: dict[str, set[str]] = {}
    for f in study.get("findings") or []:
        sides.setdefault(str(f.get("type")), set()).add(str(f.get("side")))
    return {t: next(iter(v)) for t, v in sides.items() if t in types and len(v) == 1 and v <= set(SIDES)}


def vision_labels(study: dict[str, Any], types: Sequence[str]) -> list[int]:
    """Per finding type: 0 (left) or 1 (right) when the study has it on one side only, else ``IGNORE``."""
    one = one_sided_findings(study, types)
    return [SIDES.index(one[t]) if t in one else IGNORE for t in types]


def write_vision_labels(studies: Sequence[dict[str, Any]], types: Sequence[str], path: str) -> str:
    """One line per training study with at least one one-sided visible finding: its images and labels."""
    with open(path, "w", encoding="utf-8") as fh:
        for st in studies:
            labels = vision_labels(st, types)
            if any(x != IGNORE for x in labels) and st.get("images"):
                fh.write(json.dumps({"study_id": st["study_id"], "images": list(st["images"]), "types": list(types),
                                     "labels": labels}) + "\n")
    return path


def read_vision_labels(path: str) -> list[dict[str, Any]]:
    root = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                d["images"] = [p if os.path.isabs(p) else os.path.normpath(os.path.join(root, p)) for p in d["images"]]
                out.append(d)
    return out


def vision_modules(model: Any) -> dict[str, torch.nn.Module]:
    """The vision tower and projector of a LLaVA-family model (``model.model.vision_tower`` / ``multi_modal_projector``)."""
    inner = getattr(model, "model", None)
    mods = {k: getattr(inner, k, None) for k in ("vision_tower", "multi_modal_projector")}
    if any(m is None for m in mods.values()) or not hasattr(inner, "get_image_features"):
        raise ConfigError("data.checker.vision_warmup needs a LLaVA-family model (a vision_tower, a "
                          "multi_modal_projector and get_image_features); set it to 0 for this model")
    return mods  # type: ignore[return-value]


def pooled_image_features(model: Any, pixel_values: torch.Tensor) -> torch.Tensor:
    """The mean of the projected image tokens of each image (batch x hidden): what the language model reads."""
    z = model.model.get_image_features(pixel_values=pixel_values)
    feats = getattr(z, "pooler_output", z)
    if isinstance(feats, (list, tuple)):
        return torch.stack([f.mean(0) for f in feats])
    if isinstance(feats, torch.Tensor) and feats.dim() == 3:
        return feats.mean(1)
    raise ConfigError("data.checker.vision_warmup: this model's get_image_features does not return image tokens")


def view_pixels(vlm: Any, studies_images: Sequence[Sequence[str]], max_views: int = 1) -> torch.Tensor:
    """The pixel values of each study's first checker view, prepared as training encodes it (one row per study)."""
    from medmm.finetune.inputs import prepare_image
    from medmm.reports.checker_views import checker_images

    out = []
    for paths in studies_images:
        im = prepare_image(vlm, checker_images(list(paths), None, max_views=max_views)[0])
        out.append(vlm.processor.image_processor(im, return_tensors="pt")["pixel_values"][0])
    return torch.stack(out)


def _augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, shift: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A mirrored copy (left and right labels swapped with it) for half the batch, and a shift of up to ``shift``
    pixels: a few hundred training studies are learnt by heart otherwise (held-out side accuracy 0.77 at a training
    loss of 0.09). The mirror puts the heart on the other side too: the side is read from where the finding lies
    in the picture, not from a fixed anatomy."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    y = torch.where(flip[:, None] & (y != IGNORE), 1 - y, y)
    dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1)), y


def fit_vision(model: Any, pv: torch.Tensor, y: torch.Tensor, steps: int, lr: float, seed: int,
               batch_size: int = 32) -> dict[str, Any]:
    """Train ``model``'s vision tower and projector with a linear side head on the pooled image tokens
    (``pv``: pixel values, ``y``: per finding type 0 left / 1 right / ``IGNORE``); a tenth of the images (at least
    one) is held out and the head's side accuracy on them returned. The parameters' ``requires_grad`` are restored."""
    mods = vision_modules(model)
    n_types = y.shape[1]
    order = np.random.default_rng([seed, 11]).permutation(len(pv))
    n_test = max(1, len(pv) // 10)
    test, train = order[:n_test], order[n_test:]
    gen = torch.Generator().manual_seed(seed)
    hidden = int(pooled_image_features(model, pv[:1]).shape[-1])
    head = torch.nn.Linear(hidden, 2 * n_types).to(pv.device)
    params = [p for m in mods.values() for p in m.parameters()] + list(head.parameters())
    was = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    def logits(x: torch.Tensor) -> torch.Tensor:
        return head(pooled_image_features(model, x)).view(len(x), n_types, 2)

    losses = []
    for _ in range(steps):
        idx = train[torch.randint(0, len(train), (batch_size,), generator=gen).numpy()]
        x, t = _augment(pv[idx], y[idx], gen)
        loss = F.cross_entropy(logits(x).reshape(-1, 2), t.reshape(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    for p, w in zip(params, was):
        p.requires_grad_(w)
    with torch.no_grad():
        pred = logits(pv[test]).argmax(-1)
    scored = y[test] != IGNORE
    acc = float((pred[scored] == y[test][scored]).float().mean()) if bool(scored.any()) else float("nan")
    return {"held_out_studies": int(n_test), "held_out_side_accuracy": round(acc, 4),
            "final_loss": round(float(np.mean(losses[-20:])), 4) if losses else None}


def warm_up_vision(recipe: Any, labels_path: str, steps: int, lr: float, batch_size: int = 32) -> dict[str, Any]:
    """Train (or load) the warm-up of ``recipe``'s vision tower and projector; returns what it logged."""
    from safetensors.torch import load_file, save_file

    from medmm.runs import stable_hash

    model = recipe.model
    mods = vision_modules(model)
    path = os.path.join(recipe.out, "vision-warmup.safetensors")
    key = stable_hash(recipe._identity(), chars=64)
    if os.path.isfile(path):
        from safetensors import safe_open

        with safe_open(path, "pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("identity") == key:
            state = load_file(path)
            with torch.no_grad():
                for name, mod in mods.items():
                    for k, p in mod.named_parameters():
                        p.copy_(state[f"{name}.{k}"].to(p.dtype))
            info = {"event": "vision_warmup", "loaded": path, **json.loads(meta.get("info", "{}"))}
            recipe._log(info)
            return info
    records = read_vision_labels(labels_path)
    if len(records) < 8:
        raise InputError(f"{labels_path}: {len(records)} training studies with a one-sided visible finding; the "
                         "vision warm-up needs more (raise data.checker.n_per_seed or set vision_warmup: 0)")
    t0 = time.perf_counter()
    pv = view_pixels(recipe.vlm, [r["images"] for r in records], recipe.checker_config.max_views).to(recipe.device)
    y = torch.tensor([r["labels"] for r in records], dtype=torch.long, device=recipe.device)
    info = {"event": "vision_warmup", "steps": steps, "lr": lr, "studies": len(records),
            **fit_vision(model, pv, y, steps, lr, int(recipe.cfg.train.seed), batch_size),
            "seconds": round(time.perf_counter() - t0, 1)}
    if recipe.is_main:
        state = {f"{name}.{k}": p.detach().cpu().contiguous() for name, m in mods.items() for k, p in m.named_parameters()}
        save_file(state, path, metadata={"identity": key, "info": json.dumps(info)})
    recipe._log(info)
    return info

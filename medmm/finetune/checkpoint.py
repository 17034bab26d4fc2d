"""Training checkpoints for exact resume, in safetensors and JSON only (no pickle).

A checkpoint folder ``checkpoints/step_000200/`` holds

* ``trainable.safetensors`` — every parameter that trains (LoRA weights, saved modules, or all);
* ``optimizer.safetensors`` + the param groups in ``state.json`` — AdamW's moments and step;
* ``rng.safetensors`` — the torch CPU (and CUDA) generator states;
* ``state.json`` — the step, the config identity, the loss history and the scheduler step.

The data order is a pure function of (seed, epoch) and the step (see the recipe), so the step is
all a resumed run needs to continue with the same batches; with the same weights, moments and
RNG the next losses are the same as in the uninterrupted run. Folders are written under a
temporary name and renamed, so a run killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from medmm.errors import InputError

STATE = "state.json"


def step_dir(root: str, step: int) -> str:
    return os.path.join(root, "checkpoints", f"step_{step:06d}")


def list_checkpoints(root: str) -> list[str]:
    """Complete checkpoints under ``root``, oldest first."""
    found = [d for d in glob.glob(os.path.join(root, "checkpoints", "step_*"))
             if os.path.isfile(os.path.join(d, STATE)) and not d.endswith(".tmp")]
    return sorted(found)


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of an FSDP shard (a collective: every rank calls it in the same order)."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def like(value: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``value`` (a whole tensor) laid out as ``ref``: sharded again when ``ref`` is an FSDP shard."""
    if hasattr(ref, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(value.to(ref.device, ref.dtype), ref.device_mesh, ref.placements)
    return value.to(ref.device)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """AdamW's state as whole CPU tensors ``"{param index}.{name}"`` (collective under FSDP)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx in sorted(sd["state"]):
        for k, v in sorted(sd["state"][idx].items()):
            t = full(v) if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"{idx}.{k}"] = t.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def save_checkpoint(root: str, step: int, trainable: dict[str, torch.Tensor],
                    optimizer: tuple[dict[str, torch.Tensor], list[dict[str, Any]]],
                    state: dict[str, Any], keep: int = 2) -> str:
    """Write the checkpoint of ``step`` atomically and keep only the newest ``keep``. ``trainable`` and
    ``optimizer`` (:func:`optimizer_tensors`) are whole tensors (gathered first under FSDP). The checkpoint is
    a folder of several files, written in full beside its final name and renamed as one: the folder
    counterpart of :func:`medmm.runs.write_atomic` (which writes one file)."""
    final = step_dir(root, step)
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file({k: v.detach().cpu().contiguous() for k, v in trainable.items()}, os.path.join(tmp, "trainable.safetensors"))
    opt_tensors, groups = optimizer
    save_file(opt_tensors, os.path.join(tmp, "optimizer.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda{i}"] = s
    save_file(rng, os.path.join(tmp, "rng.safetensors"))
    with open(os.path.join(tmp, STATE), "w", encoding="utf-8") as fh:
        json.dump({**state, "step": step, "param_groups": groups}, fh)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The trainable tensors and the state of a checkpoint; loads the optimizer and RNG states in place."""
    if not os.path.isfile(os.path.join(path, STATE)):
        raise InputError(f"{path}: not a medmm training checkpoint (no {STATE})")
    with open(os.path.join(path, STATE), encoding="utf-8") as fh:
        state = json.load(fh)
    trainable = load_file(os.path.join(path, "trainable.safetensors"))
    flat = load_file(os.path.join(path, "optimizer.safetensors"))
    params = [p for g in optimizer.param_groups for p in g["params"]]
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in flat.items():
        idx, name = key.split(".", 1)
        ref = params[int(idx)]
        opt_state.setdefault(int(idx), {})[name] = like(t, ref) if t.shape == ref.shape else t
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    rng = load_file(os.path.join(path, "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda"))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    return trainable, state

"""The region-aware fine-tuning recipe: ``setup`` / ``train`` / ``cleanup`` (torchtune style).

One readable loop, no framework: the config (:mod:`medmm.finetune.config`) is data, validated
in full before anything runs; :meth:`FinetuneRecipe.setup` loads the model (any ``hf``/``tiny``
spec), applies LoRA to the language model (regex targets, optional ``modules_to_save`` such as
the projector) or makes the chosen parts trainable for full fine-tuning, encodes the data and
resumes from the latest checkpoint; :meth:`train` runs the steps (gradient accumulation, cosine
schedule with warm-up, gradient clipping, bf16 autocast on GPU, optional gradient
checkpointing, JSONL logs, a progress bar, eval loss every N steps, checkpoints every N steps);
:meth:`cleanup` writes the final adapter (or model), the optional merged model, the loss curve,
and the grounding evaluation next to the weights.

**Data order and exact resume.** Step ``s`` uses the samples ``permutation(seed, epoch)[...]``
with ``epoch = s // steps_per_epoch``: a pure function of the step, so a run resumed from the
checkpoint of step ``s`` sees the same batches, and with the saved weights, AdamW moments and
RNG states computes the same losses as the uninterrupted run.

**Several processes.** Launched by ``torchrun`` or ``accelerate launch`` (``WORLD_SIZE`` > 1),
the recipe joins the process group (NCCL on GPUs, gloo on CPUs), wraps the model in
``DistributedDataParallel`` and gives each rank its slice of every global batch; the loss is the
token mean over the global batch (the same number a single process computes), rank 0 logs,
saves and evaluates. No code changes between one process and many.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medmm.errors import ConfigError, InputError
from medmm.finetune.checkpoint import full, like, list_checkpoints, load_checkpoint, optimizer_tensors, save_checkpoint
from medmm.finetune.config import FinetuneConfig
from medmm.finetune.data import prepare_data, read_samples
from medmm.finetune.plugins import owner, task_plugins
from medmm.finetune.inputs import Example, collate, default_codec, encode_example, model_type
from medmm.regions.tasks import Sample, load_image


@dataclass(frozen=True)
class TrainResult:
    start_step: int
    end_step: int
    losses: tuple[float, ...]  # per step run in this call
    output_dir: str


def _dist() -> tuple[int, int, int]:
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def lr_factor(step: int, warmup: int, total: int, schedule: str, min_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then constant or cosine down to ``min_ratio``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class FinetuneRecipe:
    """``FinetuneRecipe(cfg).setup(); .train(); .cleanup()`` (or :func:`run`)."""

    def __init__(self, cfg: FinetuneConfig) -> None:
        self.cfg = cfg
        self.world, self.rank, self.local_rank = _dist()
        self.out = cfg.resolve(cfg.output_dir)
        self.step = 0
        self.is_main = self.rank == 0
        self._ready = False

    # ------------------------------------------------------------------ setup
    def setup(self) -> "FinetuneRecipe":
        cfg = self.cfg
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = self._device()
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        os.makedirs(self.out, exist_ok=True)
        torch.manual_seed(cfg.train.seed)
        self.train_path, self.eval_path = self._data_paths()
        self._load_model()
        self.codec = default_codec(self.vlm, cfg.model.codec)
        self.train_examples = self._encode(self.train_samples, "train")
        self.eval_examples = self._encode(self.eval_samples[: cfg.data.eval_max_samples], "eval") if self.eval_samples else []
        self.global_batch = cfg.train.batch_size * cfg.train.grad_accum * self.world
        self.steps_per_epoch = len(self.train_examples) // self.global_batch
        if self.steps_per_epoch < 1:
            raise InputError(f"{len(self.train_examples)} training examples cannot fill one global batch of "
                             f"{self.global_batch} (batch_size x grad_accum x processes); add data or lower the batch")
        self._stages()
        for plugin in task_plugins():  # e.g. the checker's vision warm-up, before the optimizer sees the weights
            prepare = getattr(plugin, "prepare_model", None)
            if prepare is not None:
                prepare(self)
        if cfg.train.fsdp:
            self._shard()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        decay = cfg.optim.weight_decay
        # fused AdamW (one kernel for all parameters, CPU and CUDA) unless the parameters are FSDP shards
        fused = {} if cfg.train.fsdp else {"fused": True}
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), weight_decay=decay,
                                           **fused)
        self._resume()
        self.ddp = self.model
        if self.world > 1 and not cfg.train.fsdp:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        self._ready = True
        return self

    def _stages(self) -> None:
        """The example indices each stage of ``train.stages`` draws from (:func:`stage_spans`)."""
        from medmm.finetune.config import stage_spans

        self.stage_pools: list[tuple[int, int, np.ndarray]] = []
        have = sorted({e.task for e in self.train_examples})
        for i, (first, end, tasks) in enumerate(stage_spans(self.cfg.train)):
            pool = np.array([k for k, e in enumerate(self.train_examples) if e.task in tasks], dtype=np.int64)
            if len(pool) < self.global_batch:
                raise ConfigError(f"train.stages[{i}] (tasks {list(tasks)}): {len(pool)} training examples cannot "
                                  f"fill one global batch of {self.global_batch}; the examples' tasks are {have}")
            self.stage_pools.append((first, end, pool))

    def _shard(self) -> None:
        """FSDP2: each transformer block, then the whole model, sharded across the processes."""
        from torch.distributed.fsdp import fully_shard

        if self.world < 2:
            raise ConfigError("train.fsdp shards a model across processes: launch with torchrun or accelerate "
                              "launch and several processes, or set train.fsdp: false")
        blocks = [m for _, m in self.model.named_modules() if type(m).__name__.endswith(("DecoderLayer", "EncoderLayer"))]
        for block in blocks:
            fully_shard(block)
        fully_shard(self.model)

    def _device(self) -> torch.device:
        want = self.cfg.train.device
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda"):
            if not torch.cuda.is_available():
                raise ConfigError(f"train.device {self.cfg.train.device!r} but CUDA is not available; use device: cpu")
            return torch.device("cuda", self.local_rank if self.world > 1 else (torch.device(want).index or 0))
        return torch.device("cpu")

    def _data_paths(self) -> tuple[str, str | None]:
        data_dir = os.path.join(self.out, "data")
        if self.world > 1 and self.cfg.synth is not None:  # one process generates, the others wait
            if self.is_main:
                paths = prepare_data(self.cfg, data_dir)
            torch.distributed.barrier()
            if not self.is_main:
                paths = prepare_data(self.cfg, data_dir)
        else:
            paths = prepare_data(self.cfg, data_dir)
        self.train_samples, self.train_problems = read_samples(paths[0], self.cfg.data.tasks) if paths[0] else ([], [])
        self.eval_samples: list[Any] = read_samples(paths[1])[0] if paths[1] else []
        self._plugin_data(data_dir)  # tasks of registered plugins (the checker's SIMPLE / COMPLEX), mixed in
        if not self.train_samples:
            raise InputError(f"no training samples of tasks {list(self.cfg.data.tasks)}")
        return paths

    def _plugin_data(self, data_dir: str) -> None:
        """Samples of the task plugins (e.g. the report checker's SIMPLE / COMPLEX: medmm.checkertrain)."""
        from medmm.finetune.plugins import task_plugins

        self.calib_samples: list[Any] = []
        for plugin in task_plugins():
            plugin.load(self, data_dir)

    def _load_model(self) -> None:
        from medmm.models import load

        cfg = self.cfg
        self.vlm = load(cfg.model.spec, **dict(cfg.model.options))
        model = self.vlm.model
        self.model_type = model_type(self.vlm)
        self.base_dir = getattr(self.vlm, "path", None)
        if self.base_dir is None and self.is_main:  # a model built in memory: save the base before any adapter
            self.base_dir = os.path.join(self.out, "base")
            if not os.path.isfile(os.path.join(self.base_dir, "config.json")):
                self.vlm.save(self.base_dir)
        self.base_dir = self.base_dir or os.path.join(self.out, "base")
        if cfg.peft.method == "lora":  # the frozen base stays in the dtype it was loaded in; peft keeps adapters fp32
            model = self._lora(model)
        else:  # full fine-tuning: fp32 master weights (bf16 autocast on GPU)
            model.to(torch.float32)
            vision = re.compile(r"(^|\.)(vision_tower|visual)\.")
            for name, p in model.named_parameters():
                p.requires_grad_(cfg.peft.train_vision or not vision.search(name))
        if cfg.train.gradient_checkpointing:
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            enable = getattr(base, "activation_checkpointing_enable", None)  # transformers >= 5.x name
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if hasattr(base, "enable_input_require_grads"):
                base.enable_input_require_grads()
        self.model = model.to(self.device)
        self.model.train()

    def _lora(self, model: Any) -> Any:
        from peft import LoraConfig, get_peft_model

        p = self.cfg.peft
        names = [n for n, _ in model.named_modules() if re.fullmatch(p.target_modules, n)]
        if not names:
            raise ConfigError(f"peft.target_modules {p.target_modules!r} matches no module of {self.cfg.model.spec}; "
                              "module names look like model.language_model.layers.0.self_attn.q_proj")
        for m in p.modules_to_save:
            if not any(n.endswith(m) for n, _ in model.named_modules()):
                raise ConfigError(f"peft.modules_to_save: no module named {m!r} in {self.cfg.model.spec}")
        lc = LoraConfig(r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=p.target_modules,
                        modules_to_save=list(p.modules_to_save) or None, bias="none")
        return get_peft_model(model, lc)

    def _encode(self, samples: list[Sample], what: str) -> list[Example]:
        root = None
        path = self.train_path if what == "train" else self.eval_path
        root = os.path.dirname(os.path.abspath(path)) if path else None
        out, dropped, unreadable, cache = [], 0, [], {}
        for s in samples:
            plugin = owner(s) if not isinstance(s, Sample) else None
            if plugin is not None:  # a task plugin's sample (e.g. the checker's SIMPLE / COMPLEX)
                try:
                    ex = plugin.encode(self, s)
                except InputError as exc:
                    unreadable.append(f"{s.id}: {exc}")
                    continue
                if len(ex) > self.cfg.data.max_length:
                    dropped += 1
                else:
                    ex.task = str(getattr(s, "task", ""))
                    out.append(ex)
                continue
            key = (s.image, s.slice, s.window)
            try:  # one unreadable image is skipped and logged, never the end of the run
                if key not in cache:
                    cache[key] = load_image(s, root)
                ex = encode_example(self.vlm, s, self.codec, root=root, system=self.cfg.model.system_prompt,
                                    image=cache[key])
            except InputError as exc:
                unreadable.append(f"{s.id}: {exc}")
                continue
            if len(ex) > self.cfg.data.max_length:
                dropped += 1
                continue
            ex.task = s.task
            out.append(ex)
        if dropped:
            self._log({"event": "dropped_long_examples", "split": what, "n": dropped, "max_length": self.cfg.data.max_length})
        if unreadable:
            self._log({"event": "unreadable_samples", "split": what, "n": len(unreadable), "first": unreadable[:5]})
        if samples and not out:
            raise InputError(f"no usable {what} example: {len(unreadable)} unreadable, {dropped} longer than "
                             f"data.max_length ({self.cfg.data.max_length})" + (f"; first: {unreadable[0]}" if unreadable else ""))
        return out

    # ------------------------------------------------------------------ resume
    def _identity(self) -> dict[str, Any]:
        """The run identity from content (:func:`medmm.runs.run_identity`): the config, the SHA-256 of every data
        file it reads and the code version. A data file changed under the same path is another run: resume
        refuses its checkpoints instead of continuing silently."""
        if getattr(self, "_identity_cache", None) is None:
            from medmm.runs import run_identity

            d = self.cfg.data
            files = {"train": d.train, "eval": d.eval, "checker_calib": getattr(d, "checker_calib", None)}
            self._identity_cache = run_identity(self.cfg.identity(),
                                                {k: self.cfg.resolve(v) if v else None for k, v in files.items()})
        return self._identity_cache

    def _resume(self) -> None:
        how = self.cfg.checkpoint.resume
        if how == "never":
            return
        if how == "auto":
            found = list_checkpoints(self.out)
            if not found:
                return
            path = found[-1]
        else:
            path = self.cfg.resolve(how)
        trainable, state = load_checkpoint(path, self.optimizer)
        if state.get("identity") != json.loads(json.dumps(self._identity())):
            raise ConfigError(f"{path}: this checkpoint was trained with another configuration (model, data, peft, "
                              "optim or batch settings, a data file's content or the medmm version differ); use "
                              "another output_dir or checkpoint.resume: never")
        named = self._trainable_named()
        missing = sorted(set(named) - set(trainable))
        if missing:
            raise InputError(f"{path}: checkpoint lacks {len(missing)} trainable tensor(s), e.g. {missing[0]}")
        with torch.no_grad():
            for k, p in named.items():
                p.copy_(like(trainable[k].to(p.dtype), p))
        self.step = int(state["step"])
        if self.is_main:
            self._truncate_log(self.step)

    def _trainable_named(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    # ------------------------------------------------------------------ train
    def batches_for_step(self, step: int) -> list[list[int]]:
        """This rank's micro-batches (example indices) of ``step``: a pure function of the step."""
        tb = self.cfg.train
        pools = getattr(self, "stage_pools", [])
        stage = next((k for k, (first, end, _) in enumerate(pools) if first <= step < end), None)
        if stage is not None:  # a curriculum stage: a permutation of its tasks' examples, epochs of its own
            first, _, pool = pools[stage]
            epoch, pos = divmod(step - first, len(pool) // self.global_batch)
            perm = pool[np.random.default_rng([tb.seed, 1 + stage, epoch]).permutation(len(pool))]
        else:  # the mixture of every task, after the stages
            epoch, pos = divmod(step - (pools[-1][1] if pools else 0), self.steps_per_epoch)
            perm = np.random.default_rng([tb.seed, epoch]).permutation(len(self.train_examples))
        chunk = perm[pos * self.global_batch:(pos + 1) * self.global_batch]
        mine = chunk[self.rank * tb.batch_size * tb.grad_accum:(self.rank + 1) * tb.batch_size * tb.grad_accum]
        return [mine[i * tb.batch_size:(i + 1) * tb.batch_size].tolist() for i in range(tb.grad_accum)]

    def _batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        tok = self.vlm.tokenizer
        b = collate(examples, tok.pad_token_id, getattr(self.vlm.processor, "image_token_id", None),
                    family=self.vlm.family)
        return {k: v.to(self.device) for k, v in b.items()}

    def _autocast(self) -> Any:
        dt = self.cfg.train.dtype
        if self.device.type == "cuda" and dt in ("auto", "bfloat16"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _token_loss(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy over the assistant tokens of a batch, and their number."""
        labels = batch.pop("labels")
        with self._autocast():
            logits = model(**batch).logits
        # shift the labels, not the logits: no copy of the (batch x length x vocabulary) logits
        shift_labels = F.pad(labels[:, 1:], (0, 1), value=-100)
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), shift_labels.reshape(-1),
                               ignore_index=-100, reduction="sum")
        return loss, int((shift_labels != -100).sum())

    def _all_sum(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return float(t.item())

    def train_step(self) -> float:
        """One optimizer step; returns the global token-mean loss."""
        cfg = self.cfg
        micro = self.batches_for_step(self.step)
        batches = [self._batch([self.train_examples[i] for i in idx]) for idx in micro]
        n_tokens = self._all_sum(sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches))
        total = 0.0
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            if self.cfg.train.fsdp:
                self.model.set_requires_gradient_sync(last)
            sync = self.ddp.no_sync() if self.world > 1 and not self.cfg.train.fsdp and not last else nullcontext()
            with sync:
                loss_sum, _ = self._token_loss(self.ddp, batch)
                (loss_sum * self.world / n_tokens).backward()
            total += float(loss_sum.detach())
        factor = lr_factor(self.step, cfg.optim.warmup_steps, cfg.train.max_steps, cfg.optim.schedule, cfg.optim.min_lr_ratio)
        for g in self.optimizer.param_groups:
            g["lr"] = cfg.optim.lr * factor
        self.grad_norm = float(full(torch.nn.utils.clip_grad_norm_(self.params, cfg.optim.max_grad_norm)))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return self._all_sum(total) / n_tokens

    @torch.no_grad()
    def eval_loss(self) -> float | None:
        if not self.eval_examples:
            return None
        self.model.eval()
        total, n = 0.0, 0
        bs = self.cfg.train.batch_size
        for i in range(0, len(self.eval_examples), bs):
            loss, k = self._token_loss(self.model, self._batch(self.eval_examples[i:i + bs]))
            total, n = total + float(loss), n + k
        self.model.train()
        return total / max(n, 1)

    def train(self, until: int | None = None) -> TrainResult:
        """Run to ``train.max_steps`` (or only up to step ``until``, as if the run were stopped there)."""
        if not self._ready:
            self.setup()
        cfg = self.cfg
        last = cfg.train.max_steps if until is None else min(until, cfg.train.max_steps)
        start = self.step
        losses: list[float] = []
        bar = self._progress(start)
        t0, seen = time.perf_counter(), 0
        while self.step < last:
            loss = self.train_step()
            losses.append(loss)
            seen += self.global_batch
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
            if self.step % cfg.train.log_every == 0 or self.step == cfg.train.max_steps:
                dt = time.perf_counter() - t0
                self._log({"step": self.step, "loss": loss, "lr": self.optimizer.param_groups[0]["lr"],
                           "grad_norm": self.grad_norm, "samples_per_s": seen / dt if dt else None, "elapsed_s": dt})
            if cfg.eval.every and self.step % cfg.eval.every == 0:
                ev = self.eval_loss()
                self._log({"step": self.step, "eval_loss": ev})
            if cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        return TrainResult(start, self.step, tuple(losses), self.out)

    def full_trainable(self) -> dict[str, torch.Tensor]:
        """Every trainable tensor whole (gathered from the shards under FSDP: all ranks must call it)."""
        return {k: full(p.detach()).cpu() for k, p in self._trainable_named().items()}

    def save_checkpoint(self) -> str | None:
        path = None
        sharded = self.cfg.train.fsdp
        trainable = self.full_trainable() if sharded or self.is_main else {}
        opt = optimizer_tensors(self.optimizer) if sharded or self.is_main else ({}, [])
        if self.is_main:
            state = {"identity": self._identity(), "train_examples": len(self.train_examples),
                     "codec": self.codec.config()}
            path = save_checkpoint(self.out, self.step, trainable, opt, state, keep=self.cfg.checkpoint.keep)
        if self.world > 1:
            torch.distributed.barrier()
        return path

    def _progress(self, start: int) -> Any:
        if not (self.cfg.train.progress and self.is_main):
            return None
        from medmm.runs import progress  # the one progress helper

        return progress(self.cfg.train.max_steps, "finetune", "step", initial=start)

    # ------------------------------------------------------------------ logs
    @property
    def log_path(self) -> str:
        return os.path.join(self.out, "log.jsonl")

    def _log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def _truncate_log(self, step: int) -> None:
        """Drop log lines of steps after the resumed checkpoint (they are about to be redone)."""
        if not os.path.isfile(self.log_path):
            return
        with open(self.log_path, encoding="utf-8") as fh:
            keep = [line for line in fh if json.loads(line).get("step", 0) <= step]
        from medmm.runs import write_atomic  # a crash mid-rewrite never loses the log

        write_atomic(self.log_path, "".join(keep))
        self._log({"event": "resumed", "step": step})

    def read_log(self) -> list[dict[str, Any]]:
        if not os.path.isfile(self.log_path):
            return []
        with open(self.log_path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    # ------------------------------------------------------------------ cleanup
    def cleanup(self) -> dict[str, Any]:
        """Final weights, loss curve and (rank 0) the grounding evaluation; leaves the process group."""
        from medmm.finetune.outputs import finish

        info: dict[str, Any] = {}
        state = None
        if self._ready and self.cfg.train.fsdp:  # gather the sharded weights (all ranks), rank 0 writes them
            state = {k: full(v.detach()).cpu() for k, v in self.model.state_dict().items()}
        if self.is_main and self._ready:
            info = finish(self, state)
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        return info


def run(cfg: FinetuneConfig) -> dict[str, Any]:
    """setup → train → cleanup; returns what cleanup wrote (paths, metrics)."""
    recipe = FinetuneRecipe(cfg)
    recipe.setup()
    recipe.train()
    return recipe.cleanup()

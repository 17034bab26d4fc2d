"""Resumable probe runs on any model, through the shared result cache (:mod:`medmm.runs`).

Every sample's answer is stored in a :class:`~medmm.runs.ResultCache` under
``(sample.key, config.key)``: the sample key hashes the prompt, image and options, the
configuration hashes the model fingerprint, the mode, the generation settings and the judge.
A run killed at any moment resumes with no repeated work (each batch commits as it finishes)
and recomputes what failed or came back empty (the cache never returns those as done). Batches
go to the backend in one call: the ``hf``/``tiny`` backends batch them on the device, the
``http`` backend sends them concurrently (its ``concurrency`` option).

Outputs in ``--out DIR``: ``run.json`` (configuration, prompts, versions, counts, missing
pairs), ``samples.jsonl`` (every answer with its sample), ``metrics.json`` (scores, variants,
controls), ``responses.json`` (negation: ProbMed response format) or ``predictions.jsonl``
(confusion: ``{"pair_id", "image", "answer"}``), and ``cache.sqlite`` unless ``cache`` names a
shared one.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from medmm import tasks as registry
from medmm.errors import InputError, MedmmError
from medmm.probe._io import write_json, write_jsonl
from medmm.probe.samples import Sample, check_mode, load_image, prompts, variant_images
from medmm.probe.tasks import get_task
from medmm.runs import ResultCache, RunConfig, file_fingerprint

TEMPERATURE = 0.0


@dataclass(frozen=True)
class GenerationOptions:
    """How the model answers: passed to every backend's ``generate`` (``hf``/``tiny``: transformers' generate with
    stop strings and a seed; ``http``: the OpenAI request fields of the same names) and recorded in the run
    identity (a changed option is another configuration: nothing cached under the old one is reused).
    ``system`` is the system prompt of every question (option scoring included)."""

    system: str | None = None
    temperature: float = TEMPERATURE
    top_p: float | None = None
    max_new_tokens: int = 32
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0 or (self.top_p is not None and not 0 < self.top_p <= 1) or self.max_new_tokens < 1:
            raise InputError("generation options: temperature >= 0, 0 < top-p <= 1 and max new tokens >= 1")

    def extra(self) -> dict[str, Any]:
        """The options beyond max_new_tokens/temperature that are set (backends get only these)."""
        out: dict[str, Any] = {}
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.stop:
            out["stop"] = list(self.stop)
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    def identity(self) -> dict[str, Any]:
        """The run-identity parts: max_new_tokens and temperature always, the rest when set (so a run with the
        defaults keeps the identity it had before these options existed)."""
        out: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature}
        if self.system is not None:
            out["system"] = self.system
        return out | self.extra()


@dataclass(frozen=True)
class RunResult:
    out: str
    n_samples: int
    n_computed: int
    n_cached: int
    n_failed: int
    metrics: dict[str, Any]
    missing_pairs: dict[str, list[str]]


class _Images:
    """A small LRU of decoded images (one image serves all questions about it)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.items: "OrderedDict[str, Any]" = OrderedDict()

    def get(self, path: str) -> Any:
        if path in self.items:
            self.items.move_to_end(path)
            return self.items[path]
        img = load_image(path)
        self.items[path] = img
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return img


def load_samples(bench: str, data: str, images: str | None, mode: str, controls: Sequence[str],
                 limit: int | None = None, layout: str = "auto") -> tuple[list[Sample], dict[str, list[str]]]:
    """The samples of a data file (and the confusion pairs left out for missing images)."""
    check_mode(bench, mode)
    from medmm.probe.prepare import read_manifest

    manifest = read_manifest(data)
    if manifest is not None:  # written by `medmm probe prepare`: its data file, image root and layout
        if manifest["bench"] != bench:
            raise InputError(f"{data} prepares {manifest['benchmark']} ({manifest['bench']} pairs), not {bench}")
        data, images = str(manifest["data"]), images or str(manifest["images"])
        if layout == "auto" and manifest.get("layout") not in (None, "relative"):
            layout = str(manifest["layout"])
    root = images or os.path.dirname(os.path.abspath(data))
    return get_task(bench).load(data, root, mode, controls, limit, layout)  # the task's reader and prompts


def check_backend(model: Any, mode: str) -> None:
    """Refuse a mode the backend cannot do right (rather than score every option -inf and pick B)."""
    from medmm.models import UnsupportedError
    from medmm.models.http import HTTPVLM

    if mode == "prefix" and isinstance(model, HTTPVLM):
        raise UnsupportedError("prefix mode scores each option's whole text, but an OpenAI-compatible server returns "
                               "log-probabilities of the first answer token only: use --mode mc, greedy or judge with "
                               "http: models, or run prefix with an hf: model")


def in_shard(samples: Sequence[Sample], k: int, n: int) -> list[Sample]:
    """The samples of shard ``k`` of ``n`` (whole images or pairs, by a stable hash of the group)."""
    if n < 1 or not 0 <= k < n:
        raise InputError(f"shard {k}/{n}: use K/N with 0 <= K < N")
    from medmm.runs import stable_hash

    return [s for s in samples if int(stable_hash(s.group), 16) % n == k]


def _judge_prompt(sample: Sample, answer: str) -> str:
    p = prompts()["mediconfusion"]
    role = p["judge_role"]
    a, b = sample.meta["options"]
    return (f"[Question]\n{sample.meta['question']}\n\n[Answer A]\n{a}\n\n[Answer B]\n{b}\n\n"
            f"[{role}]\n{answer}\n\n[End of {role}]\n\n[System]\n{p['judge_instruction']}\n\n")


def _finite(v: float) -> float | None:
    return float(v) if v == v and abs(v) != float("inf") else None


def _query(model: Any, judge: Any, samples: Sequence[Sample], requests: list[Any], gen: GenerationOptions
           ) -> list[tuple[Any, str | None]]:
    """(value, error) per sample; an empty answer is an error (never cached as done)."""
    from medmm.models import Request

    query = samples[0].query
    if query == "options":
        details = model.score_option_details(requests, [list(s.options) for s in samples])
        return [({"logprobs": [_finite(d.logprob) for d in row], "n_tokens": [d.n_tokens for d in row]}, None)
                for row in details]
    gens = model.generate(requests, max_new_tokens=gen.max_new_tokens, temperature=gen.temperature, **gen.extra())
    texts = [g.text for g in gens]
    if query == "generate":
        return [({"text": t}, None if t.strip() else "empty answer") for t in texts]
    system = prompts()["mediconfusion"]["judge_system"]
    todo = [i for i, t in enumerate(texts) if t.strip()]
    verdicts = judge.generate([Request(prompt=_judge_prompt(samples[i], texts[i]), system=system) for i in todo],
                              max_new_tokens=gen.max_new_tokens, temperature=TEMPERATURE) if todo else []
    out: list[tuple[Any, str | None]] = [({"text": t}, "empty answer") for t in texts]
    for i, v in zip(todo, verdicts):
        out[i] = ({"text": texts[i], "judge": v.text}, None if v.text.strip() else "empty judge answer")
    return out


def answer_batch(model: Any, judge: Any, batch: Sequence[Sample], images: _Images, gen: GenerationOptions | int
                 ) -> list[tuple[str, Any, str | None]]:
    """``(sample key, value, error)`` rows for one batch. A bad image fails its sample only; a model
    error on a batch is retried sample by sample so one bad item cannot sink the others."""
    from medmm.models import Request

    if isinstance(gen, int):  # max_new_tokens alone (the defaults otherwise)
        gen = GenerationOptions(max_new_tokens=gen)
    rows: list[tuple[str, Any, str | None]] = []
    ready: list[tuple[Sample, Any]] = []
    for s in batch:
        try:
            ready.append((s, Request(images=variant_images(s, images.get(s.image)), prompt=s.prompt, system=gen.system)))
        except MedmmError as exc:
            rows.append((s.key, None, str(exc)))
    if not ready:
        return rows
    try:
        results = _query(model, judge, [s for s, _ in ready], [r for _, r in ready], gen)
    except MedmmError as exc:
        if len(ready) == 1:
            return rows + [(ready[0][0].key, None, f"{type(exc).__name__}: {exc}")]
        for s, _ in ready:
            rows += answer_batch(model, judge, [s], images, gen)
        return rows
    return rows + [(s.key, v, e) for (s, _), (v, e) in zip(ready, results)]


def run_config(bench: str, mode: str, model: Any, judge: Any, gen: GenerationOptions | int,
               llm: Any = None) -> RunConfig:
    """What decides an answer besides the sample: the model, the mode and the generation settings (and the
    language model that answers the ``llm`` variant, when there is one)."""
    if isinstance(gen, int):
        gen = GenerationOptions(max_new_tokens=gen)
    extra = {"llm": llm.fingerprint()} if llm is not None else {}
    return RunConfig.build("probe", bench=bench, mode=mode, model=model.fingerprint(),
                           judge=judge.fingerprint() if judge is not None else None, **gen.identity(), **extra)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("medmm", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _progress(total: int, enabled: bool) -> Any:
    from medmm.runs import progress

    return progress(total, "probe", "sample", enabled)


@dataclass(frozen=True)
class ProbeOptions:
    """How a probe run asks and scores (everything but the models and the paths): one object instead of a
    long parameter list, recorded in ``run.json``. ``generation`` sets the system prompt, temperature, top-p,
    stop strings, seed and max new tokens (default: greedy, 32 tokens); ``shard=(k, n)`` answers only the
    images (pairs) whose stable hash is ``k`` modulo ``n`` (run ``n`` shards against one shared ``cache``,
    then one run without a shard finds every answer cached and writes the outputs)."""

    images: str | None = None
    mode: str = "mc"
    controls: tuple[str, ...] = ()
    parser: str = "robust"
    batch_size: int = 8
    prefix_reduction: str = "mean"
    seed: int = 0
    cache: str | None = None
    limit: int | None = None
    progress: bool = True
    shard: tuple[int, int] | None = None
    layout: str = "auto"
    generation: GenerationOptions = GenerationOptions()

    def __post_init__(self) -> None:
        object.__setattr__(self, "controls", tuple(self.controls))
        if self.prefix_reduction not in ("mean", "sum"):
            raise InputError("prefix reduction must be mean (the reference's geometric mean per token) or sum")
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")

    @classmethod
    def of(cls, base: "ProbeOptions | None" = None, **changes: Any) -> "ProbeOptions":
        """``base`` (default: the defaults) with ``changes``: field names, or ``max_new_tokens`` (a generation
        option, kept as a keyword of its own for the callers of the older ``run_probe`` signature)."""
        from dataclasses import fields, replace

        base = base or cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(changes) - known - {"max_new_tokens"})
        if unknown:
            raise TypeError(f"run_probe: unknown option(s) {unknown}; ProbeOptions has {sorted(known)}")
        tokens = changes.pop("max_new_tokens", None)
        if tokens is not None and "generation" not in changes:
            changes["generation"] = replace(base.generation, max_new_tokens=int(tokens))
        return replace(base, **changes)


def run_probe(bench: str, data: str, model: Any, out: str, options: ProbeOptions | None = None, *,
              judge: Any = None, llm: Any = None, model_spec: str | None = None, judge_spec: str | None = None,
              on_batch: Callable[[int], None] | None = None, **legacy: Any) -> RunResult:
    """Run a probe (see the module docstring); ``model``/``judge``/``llm`` are loaded models or spec strings.

    ``options`` (:class:`ProbeOptions`) says how to ask and score; the older keyword form
    (``run_probe(..., mode="greedy", batch_size=4, max_new_tokens=8)``) still works and is the same as
    ``options=ProbeOptions.of(mode="greedy", ...)``. ``llm`` (a local model run on text alone: ``llm:PATH``)
    answers every question without its image as the ``llm`` variant; with the ``none`` variant (added when
    missing) it gives MMStar's multimodal leakage. ``on_batch(n_done)`` is called after each batch.
    """
    opts = ProbeOptions.of(options, **legacy) if legacy else (options or ProbeOptions())
    gen = opts.generation
    from medmm.models import load

    if opts.mode == "judge" and judge is None:
        raise InputError("mode judge needs --judge MODEL (a model that rates the free answer against each option)")
    allowed = get_task(bench).parsers
    if opts.parser not in allowed:
        raise InputError(f"parser {opts.parser!r} does not apply to {bench} pairs; use {' or '.join(allowed)}")
    samples, missing = load_samples(bench, data, opts.images, opts.mode, opts.controls, opts.limit, opts.layout)
    if opts.shard is not None:
        samples = in_shard(samples, *opts.shard)
        if not samples:  # a small data set can leave a shard empty: nothing to do, nothing to write
            return RunResult(out, 0, 0, 0, 0, {}, missing)
    if not samples:
        raise InputError(f"{data}: nothing to run (no questions, or every pair misses an image)")
    if llm is not None:  # MMStar's leakage needs the model without the image (none) and the language model alone (llm)
        from dataclasses import replace as _replace

        have = {(s.unit, s.variant) for s in samples}
        samples = samples + [_replace(s, variant=v) for v in ("none", "llm") for s in samples
                             if s.variant == "image" and (s.unit, v) not in have]
        llm = load(llm) if isinstance(llm, str) else llm
        check_backend(llm, opts.mode)
    model_spec = str(model_spec or (model if isinstance(model, str) else getattr(model, "name", "vlm")))
    judge_spec = judge_spec or (judge if isinstance(judge, str) else None)
    model = load(model) if isinstance(model, str) else model
    judge = load(judge) if isinstance(judge, str) else judge
    check_backend(model, opts.mode)
    config = run_config(bench, opts.mode, model, judge, gen, llm)
    os.makedirs(out, exist_ok=True)
    started = time.time()
    with ResultCache(opts.cache or os.path.join(out, "cache.sqlite")) as store:
        key = store.register(config)
        done = store.done_keys(key)
        todo = list({s.key: s for s in samples if s.key not in done}.values())
        step = max(1, opts.batch_size, getattr(model, "concurrency", 1))
        images_lru = _Images()
        computed = 0
        with _progress(len(todo), opts.progress) as bar:
            for start in range(0, len(todo), step):
                batch = todo[start:start + step]
                for who, part in ((model, [s for s in batch if s.variant != "llm"]),
                                  (llm, [s for s in batch if s.variant == "llm"])):
                    if part:  # the llm variant goes to the language model alone
                        store.put_many(answer_batch(who, judge, part, images_lru, gen), key)
                computed += len(batch)
                bar.update(len(batch))
                if on_batch:
                    on_batch(computed)
        records = _records(samples, store, key)
    run = _Run(bench, data, out, opts, config, model_spec, judge_spec, started)
    return _finish(run, records, missing, computed, len(samples) - len(todo))


@dataclass(frozen=True)
class _Run:
    """What the outputs of a run describe (``run.json``)."""

    bench: str
    data: str
    out: str
    options: ProbeOptions
    config: RunConfig
    model_spec: str
    judge_spec: str | None
    started: float


def _records(samples: Sequence[Sample], store: ResultCache, key: str) -> list[dict[str, Any]]:
    out = []
    for s in samples:
        value = store.get(s.key, key)
        status = store.status(s.key, key) or {}
        out.append({"bench": s.bench, "unit": s.unit, "group": s.group, "variant": s.variant, "image": s.image_ref,
                    "prompt": s.prompt, "options": list(s.options), "box": list(s.box) if s.box else None,
                    "key": s.key, "meta": dict(s.meta), "value": value,
                    "status": "ok" if value is not None else "failed", "error": status.get("error")})
    return out


def _finish(run: _Run, records: list[dict[str, Any]], missing: dict[str, list[str]], computed: int, cached: int
            ) -> RunResult:
    from medmm.probe.scoring import parsed_answer, summary

    o, bench, out = run.options, run.bench, run.out
    kw = {"prefix_reduction": o.prefix_reduction, "judge_margin": prompts()["mediconfusion"]["judge_margin"]}
    for r in records:
        r["answer"] = parsed_answer(r, o.mode, o.parser, **kw)
    metrics = summary(records, bench, o.mode, o.parser, **kw)
    write_jsonl(os.path.join(out, "samples.jsonl"), records)
    _write_predictions(bench, out, records, o.mode, kw)
    n_failed = sum(r["status"] == "failed" for r in records)
    cache = os.path.abspath(o.cache or os.path.join(out, "cache.sqlite"))
    info = {"bench": bench, "data": os.path.abspath(run.data), "data_sha256": file_fingerprint(run.data),
            "images": os.path.abspath(o.images) if o.images else None, "model": run.model_spec,
            "judge": run.judge_spec, "mode": o.mode, "controls": list(o.controls), "parser": o.parser,
            "prefix_reduction": o.prefix_reduction, "seed": o.seed, "config_key": run.config.key,
            "config": run.config.to_dict(), "prompts": registry.get(bench, "probe").prompt(),
            "control_prompts": prompts()["controls"], "versions": _versions(), "cache": cache,
            "n_samples": len(records), "n_computed": computed, "n_cached": cached, "n_failed": n_failed,
            "missing_pairs": missing, "started": run.started, "finished": time.time()}
    write_json(os.path.join(out, "run.json"), info)
    write_json(os.path.join(out, "metrics.json"), metrics)
    return RunResult(out, len(records), computed, cached, n_failed, metrics, missing)


def _write_predictions(bench: str, out: str, records: Sequence[dict[str, Any]], mode: str, kw: dict[str, Any]) -> None:
    from medmm.probe.negation import NegationResponse, write_responses
    from medmm.probe.scoring import response_of

    main = [r for r in records if r["variant"] == "image"]
    if bench == "negation":
        write_responses([NegationResponse(r["meta"]["id"], r["meta"]["qa_type"], r["meta"]["image_type"],
                                          r["meta"]["question"], r["meta"]["gt_ans"], response_of(r, mode, **kw))
                         for r in main], os.path.join(out, "responses.json"))
        return
    write_jsonl(os.path.join(out, "predictions.jsonl"),
                 [{"pair_id": r["meta"]["pair_id"], "image": r["meta"]["image"], "answer": r["answer"]} for r in main])


def read_run(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(run.json, samples.jsonl records)`` of a run folder."""
    run_file, samples_file = os.path.join(path, "run.json"), os.path.join(path, "samples.jsonl")
    if not (os.path.isfile(run_file) and os.path.isfile(samples_file)):
        raise InputError(f"{path}: not a probe run folder (run.json and samples.jsonl are written by medmm probe run)")
    with open(run_file, encoding="utf-8") as fh:
        run = json.load(fh)
    with open(samples_file, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return run, records

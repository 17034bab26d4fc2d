"""``medmm audit``: check many (study, report) pairs into the review store, resumably.

Inputs: a folder with one sub-folder per study (images + one report ``.txt``), a manifest
CSV/JSONL (``study_id``, ``report`` text or ``report_path``, ``images`` / ``image_paths``), or a
synthetic ``manifest.jsonl`` — each read as :class:`medmm.studies.Study` records (manifest paths
confined to the audited folder); a hospital's PACS and report feed go through
:mod:`medmm.audit.hospital`, which hands the same records to :func:`check_items`.

**Who does what (issue 19: 2 workers at least 1.85x one).** The audit is cut into work units
(:func:`plan_units`: line slices of a JSONL manifest, groups of study folders, or studies already
built) without parsing the input. With a process pool (``--workers``) each worker takes a unit,
lists its studies, skips those already done under the run (one indexed lookup per unit), checks the
rest and writes them in ONE transaction of its own (:func:`_unit_job`; SQLite serialises the
writers, and the hash chain's triggers link each row to the previous one whichever process wrote
it); the parent only hands out units and adds up counts. A single writing parent spent about
0.5-0.8 ms of CPU per study on listing and writing, serial work that competed with the two workers
for the two cores. With one worker everything runs in this process and the :class:`BatchWriter`
commits one transaction per :data:`WRITE_BATCH` studies or :data:`WRITE_SECONDS`, whichever comes
first. On Ray (``--engine ray``: workers may run on other machines, without the store) the parent
lists the input and writes what the tasks send back, through the same BatchWriter. Either way a
run killed at any moment has lost nothing it committed and repeats at most the uncommitted
units/batch (results are keyed by study and configuration: nothing is written twice); the same
command run again skips every study already done under the same configuration (checker, model
fingerprint, config).

**Result cache.** Every check also goes through the shared result cache
(:class:`medmm.runs.ResultCache`, the one probes and grounding evaluation use), keyed by the run
identity and by what the check reads — the report text, the header facts and, for checkers that
look at pixels, the image files (path, size, modification time): an unchanged (study, report,
configuration) is not checked again, even in another store (a store rebuilt, a second team's
store, a cache shared on a file system). Workers read and write the cache themselves (one
transaction per work unit).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator

from medmm.audit.store import Store, StudyRecord
from medmm._pool import exit_with_parent, pool_context
from medmm.errors import InputError, MedmmError
from medmm.runs import RunConfig, write_atomic
from medmm.studies import Study, iter_studies
from medmm.studies.readers import (ManifestSlice, folder_names, folder_study, input_kind, iter_manifest,
                                   iter_manifest_slice, manifest_slices)

IMAGE_SUFFIXES = (".dcm", ".dicom", ".nii", ".nii.gz", ".png", ".jpg", ".jpeg")


StudyInput = Study  # the audit's work item is the one study record (medmm.studies); older name kept


def iter_inputs(path: str) -> Iterator[Study]:
    """Studies of an audit input, in a stable order (:func:`medmm.studies.iter_studies`).

    Study folders are walked with the imaging file policy (:func:`medmm.imaging.files.walk`, rooted
    at the study folder); a manifest's report and image paths are confined to the audited folder:
    a symlink or path out of it (another patient's report, a password file) is the study's problem
    and is never opened.
    """
    return iter_studies(path)


# ------------------------------------------------------------------ work done in workers
_CHECKERS: dict[RunConfig, Any] = {}  # per process: checkers by run (a frozen RunConfig hashes fast; its .key
# is a SHA-256 over its canonical JSON, ~28 us, which two lookups per study paid)
_VLMS: dict[str, Any] = {}  # per process: loaded models by spec (the run identity's fingerprint and the checker share one)


def _vlm(spec: str) -> Any:
    """A model loaded once per process: run_config() fingerprints it and checker_for() checks with it."""
    if spec not in _VLMS:
        from medmm.models import load

        _VLMS[spec] = load(spec)
    return _VLMS[spec]


def process(item: Study, run: RunConfig, cache: Any = None) -> dict[str, Any]:
    """Check one study with the configuration ``run``; never raises (a failure comes back with its stage
    and reason). The checker kind, threshold and VLM config are read from ``run``, the object whose
    hash keys the result, so what is recorded is what was used. With ``cache`` (a
    :class:`~medmm.runs.ResultCache`) a result cached under the same key is used instead of checking
    (``"cached": True``); a new one comes back with ``"cache_put"`` for the caller to store."""
    out: dict[str, Any] = {"item": item}
    if item.problem:
        return {**out, "failure": ("input", item.problem)}
    stage = "report"
    try:
        if item.report is not None:
            raw: bytes | str = item.report
        elif item.report_path:
            from medmm.imaging.files import REPORT_MAX_BYTES, read_limited

            raw = read_limited(item.report_path, REPORT_MAX_BYTES)  # no FIFO, device or huge file, even if swapped
        else:
            return {**out, "failure": ("report", "no report text or report path")}
        from medmm.imaging.io import header_facts
        from medmm.reports.checker import clean_text

        text = clean_text(raw, [])
        if not text.strip():
            return {**out, "failure": ("report", "empty report")}
        stage = "header"
        header = header_facts(list(item.image_paths)) or item.header
        stage = "check"
        if cache is not None:
            ckey = result_cache_key(run, text, header, tuple(item.image_paths))
            hit = cache.get(ckey, _run_key(run))
            if hit is not None:
                return {**out, "text": text, "header": header, "result": result_from_dict(hit), "cached": True}
            result = checker_for(run).check(text, header, images=list(item.image_paths) or None)
            return {**out, "text": text, "header": header, "result": result, "cache_key": ckey, "cache_put": True}
        result = checker_for(run).check(text, header, images=list(item.image_paths) or None)  # VLM: the study's views
        return {**out, "text": text, "header": header, "result": result}
    except MedmmError as exc:
        return {**out, "failure": (stage, str(exc))}
    except Exception as exc:  # a bug in one study must not end the audit
        return {**out, "failure": (stage, f"{type(exc).__name__}: {exc}")}


def _file_sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@functools.lru_cache(maxsize=32)
def _run_key(run: RunConfig) -> str:
    """``run.key`` computed once per run (it is a hash over the whole configuration)."""
    return run.key


def checker_for(run: RunConfig) -> Any:
    """The checker of a run, built once per process (a VLM loads once per worker) from the run's own
    parts, so the object that checks is the one the identity describes."""
    checker = _CHECKERS.get(run)
    if checker is not None:
        return checker
    from medmm.reports import build_checker
    from medmm.reports.checker import RulesConfig

    kind, model, config = run["checker"], None, None
    if kind != "rules":
        from medmm.reports.vlm_checker import VLMCheckerConfig

        model = _vlm(run["model_spec"])
        config = VLMCheckerConfig(**run["vlm_config"])
    checker = _CHECKERS[run] = build_checker(kind, model=model, config=config,
                                             rules_config=RulesConfig(threshold=run["threshold"]))
    return checker


def _process_batch(batch: list[Study], run: RunConfig, cache: str | None = None,
                   slim: bool = False) -> list[dict[str, Any]]:
    """Check a work batch; with ``cache`` (a :class:`~medmm.runs.ResultCache` file) each check is looked up
    first and new results are put back in one transaction at the end of the batch. ``slim`` (a worker
    process): the answers leave out what the parent already holds (see :func:`_slim`)."""
    if not cache:
        out = [process(i, run) for i in batch]
        return [_slim(r) for r in out] if slim else out
    from medmm.runs import ResultCache

    store = _CACHES.get(cache)
    if store is None:
        store = _CACHES[cache] = ResultCache(cache)
        store.register(run)
    out, new = [], []
    for item in batch:
        r = process(item, run, cache=store)
        if r.pop("cache_put", None) is not None:
            new.append((r["cache_key"], result_to_dict(r["result"]), None))
        out.append(r)
    if new:
        store.put_many(new, _run_key(run))
    return [_slim(r) for r in out] if slim else out


def _slim(r: dict[str, Any]) -> dict[str, Any]:
    """A worker's answer without the study it was sent (the parent has it) and without the report text when
    it is the study's own (the common case): pickling them back made the parent, the single writer on a
    two-core machine, the bottleneck of two workers. :func:`_attach` puts them back."""
    item = r.pop("item")
    if r.get("text") is not None and r["text"] == item.report:
        del r["text"]
        r["text_is_report"] = True
    return r


def _for_worker(batch: list[Study]) -> list[Study]:
    """The studies as a worker needs them: without the evaluation truth and the region boxes (only the
    parent stores them; unpickling a synthetic study's truth cost more than checking its report)."""
    from dataclasses import replace

    return [replace(i, truth=None, regions=()) if (i.truth is not None or i.regions) else i for i in batch]


def _attach(r: dict[str, Any], item: Study) -> dict[str, Any]:
    r["item"] = item
    if r.pop("text_is_report", False):
        r["text"] = item.report
    return r


_CACHES: dict[str, Any] = {}  # per process: open result caches by path


def result_cache_key(run: RunConfig, text: str, header: Any, images: tuple[str, ...] = ()) -> str:
    """The cache key of one check: what the check reads (the run identity is the cache's config key). For a
    checker that reads pixels (not ``rules``), each image file's path, size and modification time too."""
    import hashlib

    from medmm.runs import item_key

    facts = header.to_dict() if hasattr(header, "to_dict") else header
    files: list[Any] = []
    if run.get("checker", "rules") != "rules":
        for p in images:
            try:
                st = os.stat(p)
                files.append([p, st.st_size, st.st_mtime_ns])
            except OSError:
                files.append([p, None, None])
    return item_key("report-check", hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(), facts, files)


def result_to_dict(result: Any) -> dict[str, Any]:
    """A check result as the cache stores it (every flag field, whatever the checker added)."""
    from dataclasses import asdict

    return {"has_error": bool(result.has_error), "score": float(result.score), "checker": result.checker,
            "flags": [asdict(f) for f in result.flags], "notes": list(result.notes)}


def result_from_dict(d: dict[str, Any]) -> Any:
    from medmm.reports.flags import CheckResult, Flag

    return CheckResult(bool(d["has_error"]), float(d["score"]), [Flag(**f) for f in d["flags"]],
                       d.get("checker", "rules"), list(d.get("notes") or []))


@functools.lru_cache(maxsize=1)
def rules_fingerprint() -> str:
    """A hash of the report checker's code and data (rules, lexicons, calibration tables): the rules'
    version. Any change to them — an upgrade, a recalibration — gives a new run identity."""
    import hashlib
    from importlib.resources import files

    h = hashlib.sha256()
    root = files("medmm.reports")
    stack = [root]
    entries = []
    while stack:
        node = stack.pop()
        for child in node.iterdir():
            if child.is_dir():
                if child.name != "__pycache__":
                    stack.append(child)
            elif child.name.endswith((".py", ".txt", ".json", ".yaml", ".yml", ".tsv", ".csv")):
                entries.append(child)
    for child in sorted(entries, key=lambda c: str(c)):
        h.update(str(child).rsplit("medmm", 1)[-1].encode() + b"\0" + child.read_bytes())
    return h.hexdigest()[:16]


def run_config(checker: str = "rules", model: str | None = None, threshold: float | None = None,
               vlm_config: Any = None) -> RunConfig:
    """The identity of an audit run, built from what the checking code will use.

    Parts: checker kind, the rules' fingerprint, the threshold actually passed, and for the VLM and
    ensemble checkers the model's fingerprint (weights, adapter, template, dtype) and the whole VLM
    checker configuration (prompts, calibrated threshold, ensemble weight).
    """
    from medmm.reports import CHECKERS
    from medmm.reports.checker import RulesConfig

    if checker not in CHECKERS:
        raise InputError(f"checker {checker!r}: use one of {', '.join(CHECKERS)}")
    rules = RulesConfig(threshold=threshold)
    parts: dict[str, Any] = {"checker": checker, "rules": rules_fingerprint(), "rules_config": rules.identity(),
                             "threshold": rules.resolved_threshold()}
    if checker != "rules":
        if not model:
            raise InputError(f"--checker {checker} needs --model SPEC")
        from medmm.reports.vlm_checker import VLMCheckerConfig

        from medmm.reports.ensemble import stacker_path
        from medmm.reports.vlm_checker import trained_config

        # a model trained with checker tasks brings its own checker config and ensemble stacker (next to it)
        cfg = vlm_config if vlm_config is not None else (trained_config(model) or VLMCheckerConfig.load())
        stacker = stacker_path(model) if checker == "ensemble" else None
        parts.update(model=_vlm(model).fingerprint(), model_spec=model, vlm_config=cfg,
                     stacker=_file_sha256(stacker) if stacker else None)
    return RunConfig.build("report-check", **parts)


# ------------------------------------------------------------------ the audit
@dataclass
class AuditSummary:
    run_id: int
    studies: int = 0
    skipped_done: int = 0
    flagged: int = 0
    failures: int = 0
    duplicates: int = 0
    by_type: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    cached: int = 0  # of ``studies``: results taken from the result cache (same text, header, configuration)
    worker_cpu: float = 0.0  # CPU seconds spent in worker processes (0 when the audit ran in this process)

    def add(self, part: "AuditSummary") -> None:
        """Count a worker's part of the run (:func:`_unit_job`) into this summary."""
        self.studies += part.studies
        self.skipped_done += part.skipped_done
        self.flagged += part.flagged
        self.failures += part.failures
        self.duplicates += part.duplicates
        self.cached += part.cached
        self.by_type.update(part.by_type)
        self.worker_cpu += part.worker_cpu

    def line(self) -> str:
        rate = self.studies / self.seconds if self.seconds else 0.0
        types = ", ".join(f"{t} {n}" for t, n in self.by_type.most_common()) or "none"
        cached = f" ({self.cached} from the result cache)" if self.cached else ""
        return (f"run {self.run_id}: {self.studies} studies checked{cached} ({rate:.1f}/s), {self.skipped_done} "
                f"already done, {self.flagged} flagged, {self.failures} failed; flags by type: {types}")


def audit(input_path: str, db: str, checker: str = "rules", model: str | None = None, workers: int | None = None,
          engine: str = "local", ray_address: str | None = None, limit: int | None = None, progress: bool = True,
          batch_size: int | None = None, threshold: float | None = None,
          cache: str | None | bool = True) -> AuditSummary:
    """Run (or resume) an audit of ``input_path`` into the store at ``db``. The input is planned before the run
    is recorded: an input that cannot be read leaves no run row behind. ``cache``: the result cache file
    (``True``: :func:`default_cache` beside the store; ``None``/``False``: none). ``batch_size``: studies per
    work unit (default :func:`default_batch_size`).

    Locally (``engine="local"``) a JSONL manifest is cut into line slices and a folder input into groups of
    study folders (:func:`plan_units`): whoever runs a unit lists it, skips what is already done, checks the
    rest and writes it, so no process does serial work per study for the others. With ``--engine ray`` or
    ``limit`` this process lists the input first (the old way)."""
    if engine not in ("local", "ray"):
        raise InputError(f"engine {engine!r}: use local or ray")
    run = run_config(checker, model, threshold)
    size = batch_size or default_batch_size(checker)
    units = plan_units(input_path, size) if engine == "local" and limit is None else None  # raises on a bad input
    studies = iter_inputs(input_path) if units is None else None  # ... before the store is opened
    store = Store(db)
    try:
        items: list[Study] = []
        skipped = 0
        if studies is not None:
            done = store.finished_sources(run.key)
            for item in studies:
                if store.source_hash(_source_id(item)) in done:
                    skipped += 1
                    continue
                items.append(item)
                if limit is not None and len(items) >= limit:
                    break
        run_id, config_key = store.start_run(run)
        summary = AuditSummary(run_id, skipped_done=skipped)
        cache_path = default_cache(db) if cache is True else (cache or None)
        try:
            if units is not None:
                run_units(store, run, run_id, config_key, units, summary, workers=workers, progress=progress,
                          cache=cache_path)
            else:
                check_items(store, run, run_id, config_key, items, summary, workers=workers, engine=engine,
                            ray_address=ray_address, progress=progress, batch_size=size, cache=cache_path)
        finally:
            store.finish_run(run_id)
    finally:
        store.close()
    return summary


def default_batch_size(checker: str = "rules") -> int:
    """Studies per work unit: 64 for the rules checker (about 0.1 s of work: a unit's task, commit and lookups
    cost little beside it), 8 for checkers that run a model (seconds per study: units small enough to keep
    every worker busy to the end)."""
    return 64 if checker == "rules" else 8


def default_cache(db: str) -> str:
    """The result cache an audit uses unless told otherwise: ``audit.cache.sqlite`` beside ``audit.sqlite``
    (created 0600: cached flags quote report text)."""
    root, _ = os.path.splitext(db)
    return root + ".cache.sqlite"


def check_items(store: Store, run: RunConfig, run_id: int, config_key: str, items: list[Study], summary: AuditSummary,
                *, workers: int | None = None, engine: str = "local", ray_address: str | None = None,
                progress: bool = True, batch_size: int = 8, cache: str | None = None) -> None:
    """Check ``items`` under ``run`` and write the results, through the result cache ``cache`` when given.
    Locally the studies go in units of ``batch_size`` to :func:`run_units` (each worker writes its own units);
    on Ray the results come back to this process, which writes them in batched transactions
    (:class:`BatchWriter`). A study's store identity is ``item.extra["source_id"]`` when a source sets it (a
    report version), else its ``study_id``; ``item.extra["supersedes"]`` names the store key of the report
    version it corrects. The caller has already left out what is done (nothing is skipped here)."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if engine != "ray":
        units = [WorkUnit(studies=tuple(items[i:i + batch_size]), skip_done=False)
                 for i in range(0, len(items), batch_size)]
        run_units(store, run, run_id, config_key, units, summary, workers=workers, progress=progress, cache=cache)
        return
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    t0 = time.perf_counter()
    bar = _bar(len(items)) if progress else None
    writer = BatchWriter(store, run_id, config_key, summary, on_commit=bar.update if bar is not None else None)
    try:
        _ensure_cache(cache, workers, len(batches))
        for results in _run_ray(batches, run, workers, ray_address, cache):
            for r in results:
                writer.add(r)
        writer.flush()
    finally:
        if bar is not None:
            bar.close()
        summary.seconds += time.perf_counter() - t0


def _bar(total: int) -> Any:
    from medmm.runs import progress  # the one progress helper

    return progress(total, "audit", "study")


def _ensure_cache(cache: str | None, workers: int, units: int) -> None:
    if cache and workers > 1 and units > 1:
        from medmm.runs import ResultCache

        ResultCache(cache).conn.close()  # the file, its WAL mode and tables exist before the workers open it


@dataclass(frozen=True)
class WorkUnit:
    """One task of an audit: studies already built (a PACS source, a CSV manifest, ``--limit``), a line slice
    of a JSONL manifest, or a group of study folders of a folder input. Slices and folders are listed by
    whoever runs the unit, so the process that plans the audit never parses the input."""

    studies: tuple[Study, ...] = ()
    slice: ManifestSlice | None = None
    folder: str | None = None
    names: tuple[str, ...] = ()
    skip_done: bool = True  # studies already finished under the run are counted as skipped, not checked

    @property
    def size(self) -> int:
        """Records in the unit (manifest lines, study folders or studies): the progress bar's steps."""
        return self.slice.lines if self.slice is not None else len(self.names) if self.folder else len(self.studies)

    def read(self) -> list[Study]:
        """The unit's studies (without the evaluation truth, which an audit never stores)."""
        if self.slice is not None:
            return list(iter_manifest_slice(self.slice, truth=False))
        if self.folder is not None:
            return [folder_study(self.folder, n) for n in self.names]
        return list(self.studies)


def plan_units(input_path: str, size: int) -> list[WorkUnit]:
    """An audit input as work units of ``size`` records, without parsing it: a JSONL manifest (or a folder
    holding ``manifest.jsonl``) by line slices, a folder input by groups of sub-folders; a CSV manifest is read
    here (a quoted field may hold a line break, so it cannot be cut by lines). Paths are made absolute (a
    worker process may not share this process's working folder). Raises :class:`InputError` on a missing or
    unknown input."""
    kind, where, root = input_kind(input_path)
    where = os.path.abspath(where)
    if kind == "jsonl":
        quarter = manifest_slices(where, max(1, size // 4), os.path.abspath(root) if root else None)
        return [WorkUnit(slice=_joined(g)) for g in _tapered(quarter, 4)]
    if kind == "folder":
        names = folder_names(where)
        return [WorkUnit(folder=where, names=tuple(n for part in g for n in part))
                for g in _tapered([names[i:i + max(1, size // 4)] for i in range(0, len(names), max(1, size // 4))], 4)]
    studies = [_without_truth(s) for s in iter_manifest(where, root=root)]
    return [WorkUnit(studies=tuple(studies[i:i + size])) for i in range(0, len(studies), size)]


_TAIL = 8  # the last quarter-units stay single: two workers' last units then end within ~1/8 of a unit of each other


def _tapered(parts: list[Any], k: int) -> list[list[Any]]:
    """``parts`` grouped ``k`` at a time, except the last :data:`_TAIL`, one at a time (the run's tail in small
    units: no worker waits long for the other's last unit)."""
    head = len(parts) - min(len(parts), _TAIL)
    return [parts[i:min(i + k, head)] for i in range(0, head, k)] + [[p] for p in parts[head:]]


def _joined(slices: list[ManifestSlice]) -> ManifestSlice:
    """Consecutive slices of one manifest as one slice."""
    from dataclasses import replace

    return replace(slices[0], end=slices[-1].end, lines=sum(s.lines for s in slices))


def _without_truth(item: Study) -> Study:
    from dataclasses import replace

    return replace(item, truth=None) if item.truth is not None else item


def _source_id(item: Study) -> str:
    """A study's identity in the store: the source's ``extra["source_id"]`` (a report version), else its id."""
    return str(item.extra.get("source_id") or item.study_id)


def _unit_answers(unit: WorkUnit, run: RunConfig, cache: str | None,
                  store: Store) -> tuple[list[dict[str, Any]], int]:
    """The checked studies of a unit and how many it skipped as already done under ``run`` (one indexed lookup
    for the whole unit)."""
    studies = unit.read()
    skipped = 0
    if unit.skip_done and studies:
        hashes = [store.source_hash(_source_id(i)) for i in studies]
        done = store.finished_among(_run_key(run), hashes)
        if done:
            kept = [i for i, h in zip(studies, hashes) if h not in done]
            skipped, studies = len(studies) - len(kept), kept
    return _process_batch(studies, run, cache), skipped


_STORES: dict[str, Store] = {}  # per worker process: the store it writes, by path
# The pool's writers take turns through this lock (set by _init_worker): a worker waiting for it wakes the moment
# the other one commits, where SQLite's busy handler would poll with sleeps of 1, 2, 5, 10 ... ms. Other writers
# (a second audit, the review app) still queue on SQLite's lock and busy timeout.
_WRITE_LOCK: Any = None


def _init_worker(lock: Any) -> None:
    global _WRITE_LOCK
    _WRITE_LOCK = lock
    exit_with_parent()  # a killed audit must not leave its workers (holding the store open) behind


# What the audit pool's forkserver imports once before forking workers: the runner, the DICOM header reader
# (pydicom and what it pulls in: about 0.35 s of CPU that each worker paid on its first study), the report
# checker's warm caches (medmm._warm) and, last, gc.freeze() of all that (medmm.audit._fork_freeze: a worker's
# collections would otherwise copy every inherited memory page).
_PRELOAD = ["medmm.audit.runner", "medmm.imaging.io", "medmm._warm", "medmm.audit._fork_freeze"]


def _unit_job(unit: WorkUnit, run: RunConfig, cache: str | None, db: str, run_id: int,
              config_key: str) -> AuditSummary:
    """A worker process's whole share of one unit: list, skip what is done, check, and write the results in
    ONE transaction of its own (the store serialises writers; a kill loses at most this open unit). Returns
    the unit's counts and the CPU it took."""
    t0 = time.process_time()
    store = _STORES.get(db)
    if store is None:
        store = _STORES[db] = Store(db)
    answers, skipped = _unit_answers(unit, run, cache, store)
    part = AuditSummary(run_id, skipped_done=skipped)
    if answers:
        entries = [_entry(r) for r in answers]
        with _WRITE_LOCK if _WRITE_LOCK is not None else contextlib.nullcontext():
            statuses = store.record_batch(run_id, config_key, entries)
        for r, status in zip(answers, statuses):
            _count(part, r, status)
    part.worker_cpu = time.process_time() - t0
    return part


def run_units(store: Store, run: RunConfig, run_id: int, config_key: str, units: list[WorkUnit],
              summary: AuditSummary, *, workers: int | None = None, progress: bool = True,
              cache: str | None = None) -> None:
    """Run the units of an audit. With one worker (or one unit) in this process: results are written by the
    :class:`BatchWriter` (a transaction per :data:`WRITE_BATCH` studies or :data:`WRITE_SECONDS`). With a
    process pool: each worker lists, checks and writes its own units (:func:`_unit_job`), so this process only
    hands out units and adds up counts — the writing no longer waits on one process (issue 19: a single
    writer made two workers 1.5x one)."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    t0 = time.perf_counter()
    bar = _bar(sum(u.size for u in units)) if progress else None
    try:
        _ensure_cache(cache, workers, len(units))
        if workers <= 1 or len(units) <= 1:
            writer = BatchWriter(store, run_id, config_key, summary)
            for unit in units:
                answers, skipped = _unit_answers(unit, run, cache, store)
                summary.skipped_done += skipped
                for r in answers:
                    writer.add(r)
                if bar is not None:
                    bar.update(unit.size)
            writer.flush()
            return
        ctx = pool_context(preload=_PRELOAD)  # forkserver, never fork (medmm/_pool.py)
        db = os.path.abspath(store.path)
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(ctx.Lock(),)) as pool:
            futures = [pool.submit(_unit_job, u, run, cache, db, run_id, config_key) for u in units]
            try:
                for unit, fut in zip(units, futures):
                    summary.add(fut.result())
                    if bar is not None:
                        bar.update(unit.size)
            except BaseException:
                for f in futures:  # a failed unit ends the run: the units not started are not run
                    f.cancel()
                raise
    finally:
        if bar is not None:
            bar.close()
        summary.seconds += time.perf_counter() - t0


def study_record(item: Study, header: Any, text: str | None, source_id: str | None = None,
                 supersedes: str | None = None) -> StudyRecord:
    """What the store keeps of a study: its identity columns, header facts, images and regions.

    Image paths are stored resolved (``realpath``, checked inside the audited folder by the readers), so the
    viewer can tell a file swapped for a symlink after the audit (:func:`medmm.audit.store.image_path_problem`)."""
    return StudyRecord(source_id or item.study_id, item.source_path, header, text,
                       tuple(os.path.realpath(i.path) for i in item.images if i.role != "label_map"),
                       tuple(b.to_dict() for b in item.regions), source=item.source,
                       accession_number=item.accession_number, study_instance_uid=item.study_instance_uid,
                       exam_date=item.exam_date, exam_time=item.exam_time, exam_description=item.exam_description,
                       supersedes=supersedes, report_status=item.report_status)


WRITE_BATCH = 256  # results per transaction of the single writer ...
WRITE_SECONDS = 0.5  # ... or the time since its last commit, whichever comes first


class BatchWriter:
    """The single writer: results are committed in one transaction per :data:`WRITE_BATCH` studies or
    :data:`WRITE_SECONDS` (checked as results arrive; :meth:`flush` at the end). A process killed
    between two commits loses only the studies of the open batch, which the next run checks again
    (nothing committed is lost, nothing is written twice: results are keyed by study and configuration)."""

    def __init__(self, store: Store, run_id: int, config_key: str, summary: AuditSummary,
                 max_items: int | None = None, max_seconds: float | None = None, on_commit: Any = None) -> None:
        self.store, self.run_id, self.config_key, self.summary = store, run_id, config_key, summary
        self.max_items = max_items if max_items is not None else WRITE_BATCH
        self.max_seconds = max_seconds if max_seconds is not None else WRITE_SECONDS
        self.on_commit = on_commit
        self.pending: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def add(self, r: dict[str, Any]) -> None:
        self.pending.append(r)
        if len(self.pending) >= self.max_items or time.monotonic() - self.last >= self.max_seconds:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            entries = [_entry(r) for r in self.pending]
            statuses = self.store.record_batch(self.run_id, self.config_key, entries)
            for r, status in zip(self.pending, statuses):
                _count(self.summary, r, status)
            if self.on_commit is not None:
                self.on_commit(len(self.pending))
            self.pending = []
        self.last = time.monotonic()


def _entry(r: dict[str, Any]) -> tuple[StudyRecord, Any, tuple[str, str] | None]:
    """A worker's answer as a store entry (record, result, failure)."""
    item: Study = r["item"]
    source_id, supersedes = item.extra.get("source_id") or item.study_id, item.extra.get("supersedes")
    if "failure" in r:
        return study_record(item, item.header, None, source_id, supersedes), None, tuple(r["failure"])
    return study_record(item, r.get("header"), r["text"], source_id, supersedes), r["result"], None


def _count(summary: AuditSummary, r: dict[str, Any], status: str) -> None:
    if status == "result":
        res = r["result"]
        summary.studies += 1
        summary.cached += int(bool(r.get("cached")))
        summary.flagged += int(res.has_error)
        summary.by_type.update(f.type for f in res.flags)
    elif status == "failure":
        summary.failures += 1
    else:
        summary.duplicates += 1


def _run_ray(batches: list[list[StudyInput]], run: RunConfig, workers: int,
             ray_address: str | None, cache: str | None = None) -> Iterator[list[dict[str, Any]]]:
    try:
        import ray
    except ImportError as exc:
        raise InputError("--engine ray needs Ray: pip install 'medmm[distributed]'") from exc
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
        if ray_address:
            kwargs["address"] = ray_address
        else:
            kwargs["num_cpus"] = workers
        ray.init(**kwargs)
        started = True
    try:
        remote = ray.remote(_process_batch)
        # the cache is used where its file is reachable (a shared file system on a cluster)
        pending = [remote.remote(_for_worker(b), run, cache, True) for b in batches]
        for b, ref in zip(batches, pending):  # results come back to this process, the only writer
            yield [_attach(r, item) for r, item in zip(ray.get(ref), b)]
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------ export
EXPORT_COLUMNS = ["study_key", "modality", "type", "start", "end", "text", "explanation", "confidence", "evidence",
                  "decision", "reviewer", "flag_id", "run_id", "config_key",
                  "model", "region", "related"]  # store v9: the flag's model, region and related spans (JSON)
REDACT_DROP = ("text", "explanation", "reviewer", "related")  # related spans quote the report
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


DEID_TEXT_COLUMNS = ("text", "explanation", "related")  # the columns that quote the report


def export(db: str, out: str, reviewed_only: bool = False, redact: bool = False, with_paths: bool = False,
           config_key: str | None = None, deid_text: bool = False) -> int:
    """One row per flag (with the latest review decision) to CSV, Parquet or JSONL; returns the row count.

    No path leaves the store unless ``with_paths`` (study folders are often named after the patient).
    ``redact`` also drops the columns that quote the report or name a person: the flagged text, the
    explanation (which quotes the report) and the reviewer. Real de-identification of DICOM is
    ``medmm deid``; this only chooses columns. ``config_key`` limits the rows to one configuration.
    ``deid_text`` passes the report-derived columns (flagged text, explanation) through
    :func:`medmm.deid.text.scrub_with_context` (names, dates, IDs, phones, addresses, ages over 89 found in the
    whole report are replaced in each fragment).
    """
    import pandas as pd

    low = out.lower()
    if not low.endswith((".csv", ".parquet", ".jsonl")):
        raise InputError(f"{out}: export to .csv, .parquet or .jsonl")
    with Store(db) as store:
        rows = store.flag_rows(reviewed_only=reviewed_only, with_paths=with_paths, config_key=config_key)
        reports = dict(store.conn.execute("SELECT study_key, text FROM reports")) if deid_text else {}
    columns = EXPORT_COLUMNS + (["source_path"] if with_paths else [])
    cols = [c for c in columns if not (redact and c in REDACT_DROP)]
    table = pd.DataFrame(rows, columns=columns)[cols]
    if deid_text:  # each fragment scrubbed with its whole report as context (a flagged word may be a name)
        from medmm.deid.text import scrub_with_context

        for c in DEID_TEXT_COLUMNS:
            if c in table.columns:
                table[c] = [scrub_with_context(v, reports.get(k, "")) if isinstance(v, str) else v
                            for v, k in zip(table[c], table["study_key"])]
    # Exports quote reports and name reviewers: owner-only (N14), written all or nothing by the one atomic
    # writer (a fresh 0600 temporary file renamed over ``out``: a symlink planted there is replaced, never followed).
    write_atomic(out, _export_bytes(table, low), mode=0o600)
    return len(table)


def _export_bytes(table: Any, low: str) -> bytes:
    import io

    import pandas as pd

    if low.endswith(".csv"):
        # spreadsheet formula injection: report text can start with "=" (OWASP: prefix a quote)
        for c in table.columns:
            if table[c].dtype == object or pd.api.types.is_string_dtype(table[c]):  # pandas 3: dtype "str"
                table[c] = table[c].map(lambda v: "'" + v if isinstance(v, str) and v.lstrip().startswith(_FORMULA_START)
                                        else v)
        return str(table.to_csv(index=False)).encode("utf-8")
    if low.endswith(".parquet"):
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        return buf.getvalue()
    return "".join(json.dumps(rec, ensure_ascii=False, default=str) + "\n"
                   for rec in table.to_dict(orient="records")).encode("utf-8")

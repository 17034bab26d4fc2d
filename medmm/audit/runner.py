"""``medmm audit``: check many (study, report) pairs into the review store, resumably.

Inputs: a folder with one sub-folder per study (images + one report ``.txt``), a manifest
CSV/JSONL (``study_id``, ``report`` text or ``report_path``, ``images`` / ``image_paths``), or a
synthetic ``manifest.jsonl``. Work runs in a process pool (``--workers``) or on Ray
(``--engine ray``); in both cases the parent process is the **only writer**: each study's
result and flags are committed in one transaction, so a run killed at any moment has lost
nothing it committed, and the same command run again skips every study already done under
the same configuration (checker, model fingerprint, config).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from medmm.audit.store import Store, StudyRecord
from medmm._pool import pool_context
from medmm.errors import InputError, MedmmError

IMAGE_SUFFIXES = (".dcm", ".dicom", ".nii", ".nii.gz", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class StudyInput:
    source_id: str
    source_path: str | None
    report_text: str | None = None
    report_path: str | None = None
    images: tuple[str, ...] = ()
    header: dict[str, Any] | None = None
    problem: str | None = None  # found while listing the input (e.g. two report files)
    regions: tuple[dict[str, Any], ...] = ()  # known boxes (synthetic truth), shown by the review app


def iter_inputs(path: str) -> Iterator[StudyInput]:
    """Studies of an audit input, in a stable order."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        manifest = os.path.join(path, "manifest.jsonl")
        if os.path.isfile(manifest):
            yield from iter_inputs(manifest)
            return
        for name in sorted(os.listdir(path)):
            folder = os.path.join(path, name)
            if not os.path.isdir(folder) or name.startswith("."):
                continue
            files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
            reports = [f for f in files if f.lower().endswith(".txt")]
            images = tuple(f for f in files if f not in reports)
            problem = None
            if not reports:
                problem = "no report .txt in the study folder"
            elif len(reports) > 1:
                problem = f"{len(reports)} report .txt files in the study folder; expected one"
            yield StudyInput(name, folder, report_path=reports[0] if len(reports) == 1 else None, images=images,
                             problem=problem)
        return
    low = path.lower()
    base = os.path.dirname(os.path.abspath(path))
    if low.endswith((".jsonl", ".json")):
        from medmm.reports.corpus import iter_jsonl

        for n, rec, problem in iter_jsonl(path):
            if problem:
                yield StudyInput(f"{os.path.basename(path)}:{n}", path, problem=problem)
                continue
            yield _from_record(rec, base, f"{os.path.basename(path)}:{n}")
        return
    if low.endswith(".csv"):
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                rec = dict(row)
                if rec.get("image_paths"):
                    rec["images"] = [p for p in rec["image_paths"].split(";") if p]
                yield _from_record(rec, base, f"{os.path.basename(path)}:{n}")
        return
    raise InputError(f"{path}: use a folder (one sub-folder per study), a manifest .csv/.jsonl or a synthetic manifest")


def _from_record(rec: dict[str, Any], base: str, where: str) -> StudyInput:
    sid = rec.get("study_id") or rec.get("id")
    if not sid:
        return StudyInput(where, None, problem="no study_id")
    images = rec.get("images") or []
    paths = []
    for im in images:
        p = im.get("path") if isinstance(im, dict) else im
        if p:
            paths.append(p if os.path.isabs(p) else os.path.join(base, p))
    header = rec.get("header") if isinstance(rec.get("header"), dict) else None
    if header is None and "modality" in rec:  # synthetic manifests carry the header facts
        view = next((i.get("view") for i in images if isinstance(i, dict) and i.get("view")), None)
        header = {"modality": rec.get("modality"), "body_part": rec.get("body_part"), "sex": rec.get("sex"),
                  "view_position": view, "laterality": None}
    report_path = rec.get("report_path")
    if report_path and not os.path.isabs(report_path):
        report_path = os.path.join(base, report_path)
    regions = tuple(rec.get("regions") or ())
    if not regions and isinstance(rec.get("findings"), list):  # synthetic manifests: the truth boxes
        regions = tuple({**b, "label": f.get("type")} for f in rec["findings"] if isinstance(f, dict)
                        for b in f.get("boxes", []))
    return StudyInput(str(sid), base, report_text=rec.get("report"), report_path=report_path, images=tuple(paths),
                      header=header, regions=regions)


# ------------------------------------------------------------------ work done in workers
_MODELS: dict[str, Any] = {}


def _header_from_images(images: Iterable[str]) -> dict[str, Any] | None:
    """Header facts from the first DICOM file (headers only: no pixel decoding)."""
    from medmm.imaging.dicom import read_header
    from medmm.imaging.series import iter_files

    for path in images:
        candidates = [path]
        if os.path.isdir(path):
            candidates = [p for p, reason in iter_files(path) if reason is None][:5]
        for c in candidates:
            if c.lower().endswith((".nii", ".nii.gz", ".png", ".jpg", ".jpeg", ".txt")):
                continue
            try:
                f = read_header(c).facts
            except MedmmError:
                continue
            return {"modality": f.modality, "body_part": f.body_part, "laterality": f.laterality,
                    "view_position": f.view_position, "sex": f.patient_sex}
    return None


def process(item: StudyInput, checker: str = "rules", model: str | None = None) -> dict[str, Any]:
    """Check one study; never raises (a failure comes back with its stage and reason)."""
    out: dict[str, Any] = {"item": item}
    if item.problem:
        return {**out, "failure": ("input", item.problem)}
    stage = "report"
    try:
        if item.report_text is not None:
            raw: bytes | str = item.report_text
        elif item.report_path:
            with open(item.report_path, "rb") as fh:
                raw = fh.read()
        else:
            return {**out, "failure": ("report", "no report text or report path")}
        from medmm.reports import check
        from medmm.reports.checker import clean_text

        text = clean_text(raw, [])
        if not text.strip():
            return {**out, "failure": ("report", "empty report")}
        stage = "header"
        header = _header_from_images(item.images) or item.header
        stage = "check"
        vlm = None
        if checker != "rules":
            if model not in _MODELS:
                from medmm.models import load

                _MODELS[model or ""] = load(model) if model else None
            vlm = _MODELS[model or ""]
        result = check(text, header=header, checker=checker, model=vlm)
        return {**out, "text": text, "header": header, "result": result}
    except MedmmError as exc:
        return {**out, "failure": (stage, str(exc))}
    except Exception as exc:  # a bug in one study must not end the audit
        return {**out, "failure": (stage, f"{type(exc).__name__}: {exc}")}


def _process_batch(batch: list[StudyInput], checker: str, model: str | None) -> list[dict[str, Any]]:
    return [process(i, checker, model) for i in batch]


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

    def line(self) -> str:
        rate = self.studies / self.seconds if self.seconds else 0.0
        types = ", ".join(f"{t} {n}" for t, n in self.by_type.most_common()) or "none"
        return (f"run {self.run_id}: {self.studies} studies checked ({rate:.1f}/s), {self.skipped_done} already done, "
                f"{self.flagged} flagged, {self.failures} failed; flags by type: {types}")


def audit(input_path: str, db: str, checker: str = "rules", model: str | None = None, workers: int | None = None,
          engine: str = "local", ray_address: str | None = None, limit: int | None = None, progress: bool = True,
          batch_size: int = 8) -> AuditSummary:
    """Run (or resume) an audit of ``input_path`` into the store at ``db``."""
    if engine not in ("local", "ray"):
        raise InputError(f"engine {engine!r}: use local or ray")
    store = Store(db)
    fingerprint = None
    if checker != "rules":
        if not model:
            raise InputError(f"--checker {checker} needs --model SPEC")
        from medmm.models import load

        fingerprint = load(model).fingerprint()
    config = {"checker": checker, "model": model, "threshold": 0.5}
    run_id, config_key = store.start_run(checker, config, fingerprint)
    done = store.finished_sources(config_key)
    items: list[StudyInput] = []
    summary = AuditSummary(run_id)
    for item in iter_inputs(input_path):
        if store.source_hash(item.source_id) in done:
            summary.skipped_done += 1
            continue
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    workers = workers if workers is not None else (os.cpu_count() or 1)
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), unit="study", file=sys.stderr, dynamic_ncols=True, desc="audit")
    try:
        for results in _run_batches(batches, checker, model, workers, engine, ray_address):
            for r in results:
                _write(store, run_id, config_key, r, summary)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        summary.seconds = time.perf_counter() - t0
        store.finish_run(run_id)
        store.close()
    return summary


def _write(store: Store, run_id: int, config_key: str, r: dict[str, Any], summary: AuditSummary) -> None:
    item: StudyInput = r["item"]
    if "failure" in r:
        stage, reason = r["failure"]
        rec = StudyRecord(item.source_id, item.source_path, item.header, None, item.images, item.regions)
        if store.record_failure(run_id, config_key, rec, stage, reason):
            summary.failures += 1
        else:
            summary.duplicates += 1
        return
    res = r["result"]
    rec = StudyRecord(item.source_id, item.source_path, r.get("header"), r["text"], item.images, item.regions)
    if store.record_result(run_id, config_key, rec, res):
        summary.studies += 1
        summary.flagged += int(res.has_error)
        summary.by_type.update(f.type for f in res.flags)
    else:
        summary.duplicates += 1


def _run_batches(batches: list[list[StudyInput]], checker: str, model: str | None, workers: int, engine: str,
                 ray_address: str | None) -> Iterator[list[dict[str, Any]]]:
    if engine == "ray":
        yield from _run_ray(batches, checker, model, workers, ray_address)
        return
    if workers <= 1 or len(batches) <= 1:
        for b in batches:
            yield _process_batch(b, checker, model)
        return
    ctx = pool_context()  # forkserver, never fork (see medmm/_pool.py)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_process_batch, b, checker, model) for b in batches]
        for fut in futures:  # in submission order: progress and writes stay deterministic
            yield fut.result()


def _run_ray(batches: list[list[StudyInput]], checker: str, model: str | None, workers: int,
             ray_address: str | None) -> Iterator[list[dict[str, Any]]]:
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
        pending = [remote.remote(b, checker, model) for b in batches]
        for ref in pending:  # results come back to this process, the only writer
            yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------ export
EXPORT_COLUMNS = ["study_key", "modality", "type", "start", "end", "text", "explanation", "confidence", "evidence",
                  "decision", "reviewer", "flag_id", "run_id", "source_path"]
DEIDENTIFIED_DROP = ("source_path", "text", "explanation", "reviewer")


def export(db: str, out: str, reviewed_only: bool = False, deidentified: bool = False) -> int:
    """One row per flag (with the latest review decision) to CSV, Parquet or JSONL; returns the row count.

    ``deidentified`` drops the columns that can carry identifying text: the source path, the
    flagged report text and the explanation (which quotes the report), and the reviewer's name.
    """
    import pandas as pd

    low = out.lower()
    if not low.endswith((".csv", ".parquet", ".jsonl")):
        raise InputError(f"{out}: export to .csv, .parquet or .jsonl")
    with Store(db) as store:
        rows = store.flag_rows(reviewed_only=reviewed_only)
    cols = [c for c in EXPORT_COLUMNS if not (deidentified and c in DEIDENTIFIED_DROP)]
    table = pd.DataFrame(rows, columns=EXPORT_COLUMNS)[cols]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if low.endswith(".csv"):
        table.to_csv(out, index=False)
    elif low.endswith(".parquet"):
        table.to_parquet(out, index=False)
    else:
        with open(out, "w", encoding="utf-8") as fh:
            for rec in table.to_dict(orient="records"):
                fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
    return len(table)

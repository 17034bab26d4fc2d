"""``medmm audit --pacs ... --reports ...``: a nightly, incremental audit of a hospital's studies.

Order of work (what a PACS administrator and a quality team expect):

1. **Authenticate before anything is written.** The PACS is asked one question; a refused password
   ends the command with one line naming the server and user (exit 2) and the store is not opened
   — no file, no run row. The report feed is read next (a missing file fails here too).
2. **Only what is new.** Each report version has an identity computed from the report alone
   (:func:`medmm.hospital.match.report_source_id`); versions already checked under the same
   configuration are skipped without a PACS call, so the same command run again checks 0 studies.
   A watermark per source (the newest report time, the newest exam date) narrows the next run;
   ``--since`` sets the window instead.
3. **Match** each new report to its PACS study by accession number, then Study Instance UID
   (:mod:`medmm.hospital.match`). An unmatched report is recorded as a failure under its own
   identity (``unmatched:...``), so it is tried again on the next run; a study in the window without
   any report is recorded the same way (``no-report:...``).
4. **Check and write in chunks** (header facts from the PACS metadata; pixels fetched only when the
   checker reads images). A corrected report (status C, or a new text) is a new version: it is checked,
   its row points at the version it corrects (``report_versions``), and the earlier result stays as history.
5. **An outage** (the PACS restarts mid-run) stops the run after the retries with everything already
   checked committed and the watermarks unmoved; the same command run again resumes: nothing is lost,
   nothing is checked twice.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from medmm.audit.runner import AuditSummary, check_items, default_cache, run_config
from medmm.audit.store import Store
from medmm.errors import InputError
from medmm.hospital import Credentials, RetryPolicy, open_pacs
from medmm.hospital.match import Index, report_source_id
from medmm.hospital.reports import ReportMessage, iter_feed
from medmm.studies import ImageRef, Study

__all__ = ["audit_hospital"]


def _date(value: str | None) -> str | None:
    """``YYYY-MM-DD`` (or longer ISO) -> ``YYYYMMDD``."""
    if not value:
        return None
    digits = value.replace("-", "")[:8]
    if len(digits) != 8 or not digits.isdigit():
        raise InputError(f"--since {value}: give a date as YYYY-MM-DD")
    return digits


def _feed_name(spec: str) -> str:
    kind, _, where = spec.partition(":")
    return f"{kind}:{os.path.realpath(where)}" if where and not where.startswith("http") else spec


def audit_hospital(db: str, *, pacs: str, reports: str, credentials: Credentials | None = None,
                   checker: str = "rules", model: str | None = None, threshold: float | None = None,
                   since: str | None = None, until: str | None = None, workers: int | None = 1,
                   engine: str = "local", progress: bool = True, batch_size: int = 8, limit: int | None = None,
                   policy: RetryPolicy = RetryPolicy(), ca_bundle: str | None = None, ae_title: str = "MEDMM",
                   image_cache: str | None = None, reports_credentials: Credentials | None = None) -> AuditSummary:
    """Audit the new and corrected reports of ``reports`` against the studies of ``pacs`` into ``db``."""
    run = run_config(checker, model, threshold)
    client = open_pacs(pacs, credentials, policy=policy, ca_bundle=ca_bundle, ae_title=ae_title)
    client.check_access()  # 1. a wrong password ends here: nothing written
    since_date, until_date = _date(since), _date(until)
    if reports in ("pacs-sr", "sr"):  # report documents stored in the same PACS
        from medmm.hospital.sr_reports import read_pacs_sr

        messages = list(read_pacs_sr(client, since_date, until_date))
        feed = f"sr:{client.name}"
    elif reports.startswith(("fhir:http://", "fhir:https://")):  # a FHIR server's DiagnosticReport search
        from medmm.hospital.fhir_server import read_fhir_server

        messages = list(read_fhir_server(reports[5:], reports_credentials, policy=policy, ca_bundle=ca_bundle,
                                         since=since_date))
        feed = _feed_name(reports)
    else:
        messages = list(iter_feed(reports))
        feed = _feed_name(reports)
    store = Store(db)
    try:
        return _audit(store, run, client, messages, feed, since_date, until_date, checker, workers, engine, progress,
                      batch_size, limit, image_cache)
    finally:
        store.close()


def _window(store: Store, name: str, since_date: str | None) -> str | None:
    return since_date or (store.watermark(name) or "").replace("-", "")[:8] or None


def _audit(store: Store, run: Any, client: Any, messages: list[ReportMessage], feed: str, since_date: str | None,
           until_date: str | None, checker: str, workers: int | None, engine: str, progress: bool, batch_size: int,
           limit: int | None, image_cache: str | None) -> AuditSummary:
    done = store.finished_sources(run.key)
    report_from = _window(store, f"reports:{feed}", since_date)
    pending: list[ReportMessage] = []
    skipped = 0
    for msg in messages:
        written = (msg.written_at or "").replace("-", "")[:8]
        if report_from and written and written < report_from and not store.has_source("unmatched:" + _source_id(msg)):
            skipped += 1  # older than the window / watermark (an unmatched report is tried again until it matches)
            continue
        if until_date and written and written > until_date:
            continue
        if store.source_hash(_source_id(msg)) in done:
            skipped += 1
            continue
        pending.append(msg)
        if limit is not None and len(pending) >= limit:
            break
    study_from = _window(store, f"pacs:{client.name}", since_date)
    listed = client.find_studies(date_from=study_from, date_to=until_date) if study_from else []
    index = Index(listed, client.find_studies)
    run_id, config_key = store.start_run(run)
    summary = AuditSummary(run_id, skipped_done=skipped)
    cache = None
    if checker != "rules":  # the checker reads pixels: instances are fetched beside the store (the app shows them)
        cache = image_cache or os.path.abspath(store.path) + ".images"
        os.makedirs(cache, mode=0o700, exist_ok=True)  # PHI, as the store is
    chunk = max(1, batch_size * max(1, workers or 1))
    matched_uids: set[str] = set()
    try:
        for i in range(0, len(pending), chunk):
            items = [_study(store, client, index, m, checker, cache, matched_uids) for m in pending[i:i + chunk]]
            check_items(store, run, run_id, config_key, items, summary, workers=workers, engine=engine,
                        progress=progress, batch_size=batch_size, cache=default_cache(store.path))  # shared result cache
        items = _studies_without_report(store, client, listed, matched_uids, done)
        if items:
            check_items(store, run, run_id, config_key, items, summary, workers=1, progress=False)
    finally:
        store.finish_run(run_id)
    # only a run that went through moves the watermarks (an outage raised above leaves them for the resume)
    newest_report = max((m.written_at or "" for m in pending), default="")
    if newest_report:
        store.set_watermark(f"reports:{feed}", newest_report[:10])
    newest_study = max((h.exam_date or "" for h in index.by_uid.values()), default="")
    if newest_study:
        store.set_watermark(f"pacs:{client.name}", newest_study)
    return summary


def _source_id(msg: ReportMessage) -> str:
    return report_source_id(msg) if not msg.problem else f"bad-report:{msg.feed}:{msg.report_id}"


def _study(store: Store, client: Any, index: Index, msg: ReportMessage, checker: str, cache: str | None,
           matched: set[str]) -> Study:
    """The study record of one report: matched, with header facts from the PACS (and images when needed)."""
    sid = _source_id(msg)
    base = Study(msg.accession_number or msg.study_instance_uid or msg.report_id, source=client.kind,
                 source_path=client.name, report=msg.text, report_status=msg.status, report_id=msg.report_id,
                 accession_number=msg.accession_number, study_instance_uid=msg.study_instance_uid,
                 extra={"source_id": sid})
    if msg.problem:
        return replace(base, problem=f"report {msg.feed} message not usable: {msg.problem}")
    m = index.match(msg, client.name)
    if m.hit is None:
        return replace(base, problem=m.problem, extra={"source_id": "unmatched:" + sid})
    hit = m.hit
    matched.add(hit.study_instance_uid)
    header, series = client.header(hit.study_instance_uid)
    images: tuple[ImageRef, ...] = ()
    if checker != "rules" and cache is not None:
        refs = []
        for s in series:
            dest = os.path.join(cache, hit.study_instance_uid, s["uid"])
            paths = client.fetch_series(hit.study_instance_uid, s["uid"], dest)
            if paths:
                refs.append(ImageRef(dest if len(paths) > 1 else paths[0], view=s.get("view"),
                                     format="dicom-series" if len(paths) > 1 else "dicom-file",
                                     series_instance_uid=s["uid"], description=s.get("description")))
        images = tuple(refs)
    previous = store.current_version(hit.study_instance_uid)
    extra: dict[str, Any] = {"source_id": sid, "matched_by": m.how}
    if previous is not None and previous != store.study_key(sid):
        extra["supersedes"] = previous
    return replace(base, study_id=hit.accession_number or hit.study_instance_uid, images=images, header=header,
                   accession_number=hit.accession_number, study_instance_uid=hit.study_instance_uid,
                   exam_date=hit.exam_date, exam_time=hit.exam_time, exam_description=hit.study_description,
                   extra=extra)


def _studies_without_report(store: Store, client: Any, listed: list[Any], matched: set[str],
                            done: set[str]) -> list[Study]:
    """Studies of the window with no report received (and none checked before): recorded as failures."""
    out = []
    for hit in listed:
        if hit.study_instance_uid in matched or store.current_version(hit.study_instance_uid) is not None:
            continue
        sid = f"no-report:{hit.study_instance_uid}"
        if store.source_hash(sid) in done:
            continue
        out.append(Study(hit.accession_number or hit.study_instance_uid, source=client.kind, source_path=client.name,
                         accession_number=hit.accession_number, study_instance_uid=hit.study_instance_uid,
                         exam_date=hit.exam_date, exam_time=hit.exam_time, exam_description=hit.study_description,
                         problem="no report received for this study from the report feed (as of this run)",
                         extra={"source_id": sid}))
    return out


def audit_from_args(args: Any) -> AuditSummary:
    """``medmm audit --pacs ... --reports ...`` (the CLI's parsed arguments)."""
    from medmm.hospital.cli import credentials_from, policy_from

    if not args.pacs or not args.reports:
        raise InputError("a hospital audit needs both --pacs SPEC and --reports FEED")
    if args.input:
        raise InputError("give either an input folder/manifest or --pacs with --reports, not both")
    if args.engine != "local":
        raise InputError("--pacs audits run with --engine local")
    return audit_hospital(args.db, pacs=args.pacs, reports=args.reports, credentials=credentials_from(args),
                          checker=args.checker, model=args.model, threshold=args.threshold, since=args.since,
                          until=args.until, workers=args.workers if args.workers is not None else 1,
                          progress=not args.quiet, limit=args.limit, policy=policy_from(args),
                          ca_bundle=args.pacs_ca_bundle, ae_title=args.ae_title, image_cache=args.image_cache,
                          reports_credentials=Credentials.from_options(args.reports_user, args.reports_password_env,
                                                                       args.reports_password_file))

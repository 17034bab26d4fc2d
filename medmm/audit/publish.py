"""``medmm publish``: audit results back where clinicians look — the PACS (DICOM SR) or an EHR (FHIR).

``--to dicomweb:URL`` (or ``dimse:AET@HOST:PORT``) writes one Comprehensive SR per audited study
(:mod:`medmm.hospital.sr`) into that study: idempotent (the SR's UID is derived from the study and
the result's content, and the PACS is asked whether it already holds it), and a changed result is a
new version in the same series that names the earlier one as its predecessor. Each publication is
recorded in the store (``publications``: study, target, content hash, SOP Instance UID, version).
``--format fhir --to FILE.json`` writes a FHIR Bundle of Observations and DetectedIssues
(:mod:`medmm.hospital.fhir_out`). As in the audit, the PACS is asked first: a wrong password
changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

from medmm.audit.store import Store
from medmm.errors import InputError

__all__ = ["PublishSummary", "publish_fhir", "publish_sr"]


@dataclass
class PublishSummary:
    written: int = 0
    replaced: int = 0
    unchanged: int = 0
    skipped: int = 0  # no instance of the study in the PACS to attach the SR to

    def line(self) -> str:
        return (f"{self.written} SR(s) written ({self.replaced} replacing an earlier version), {self.unchanged} "
                f"already published unchanged, {self.skipped} skipped (study not in the PACS)")


def publish_sr(db: str, pacs: Any, config_key: str | None = None) -> PublishSummary:
    """Write the SR of every audited study of ``db`` (current report versions) to ``pacs`` (a client of
    :func:`medmm.hospital.open_pacs`, already constructed)."""
    from medmm.hospital.sr import build_sr, content_sha256, sr_series_uid, sr_uid
    from pydicom import Dataset

    if not os.path.isfile(db):
        raise InputError(f"{db}: no review store there")
    pacs.check_access()
    summary = PublishSummary()
    target = pacs.name
    with Store(db) as store:
        for res in store.results_to_publish(config_key):
            uid = res["study_instance_uid"]
            sha = content_sha256(res)
            sop = sr_uid(uid, sha)
            history = store.publications(res["study_key"], target, "sr")
            if history and history[-1]["content_sha256"] == sha and pacs.has_instance(uid, sop):
                summary.unchanged += 1
                continue
            if pacs.has_instance(uid, sop):  # published from another store, or the record was lost
                store.record_publication(res["study_key"], res["config_key"], target, "sr", sha, sop)
                summary.unchanged += 1
                continue
            evidence = [ds for ds in pacs.instance_metadata(uid) if str(getattr(ds, "Modality", "")) != "SR"]
            if not evidence:
                summary.skipped += 1
                continue
            previous = []
            for h in history:  # every earlier version this one replaces
                prev = Dataset()
                prev.StudyInstanceUID, prev.SeriesInstanceUID = uid, sr_series_uid(uid)
                prev.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR Storage
                prev.SOPInstanceUID = h["sop_instance_uid"]
                previous.append(prev)
            sr = build_sr(evidence, res, version=len(history) + 1, previous=previous[-1:])
            pacs.store([sr])
            store.record_publication(res["study_key"], res["config_key"], target, "sr", sha, str(sr.SOPInstanceUID))
            summary.written += 1
            summary.replaced += int(bool(history))
    return summary


def publish_fhir(db: str, out: str, config_key: str | None = None) -> int:
    """Write the FHIR Bundle of the results to ``out``; returns the number of studies."""
    from medmm.hospital.fhir_out import results_bundle

    if not os.path.isfile(db):
        raise InputError(f"{db}: no review store there")
    if not out.lower().endswith(".json"):
        raise InputError(f"--to {out}: a FHIR Bundle is written to a .json file")
    with Store(db) as store:
        results = store.results_to_publish(config_key)
    bundle = results_bundle(results)
    from medmm.runs import write_json  # the one atomic writer; owner-only: the bundle quotes report sentences

    write_json(out, bundle, indent=1, mode=0o600)
    return len(results)


def _cmd_publish(args: argparse.Namespace) -> int:
    from medmm.hospital import open_pacs
    from medmm.hospital.cli import credentials_from, policy_from

    if args.format == "fhir":
        n = publish_fhir(args.db, args.to, args.config_key)
        print(f"wrote {args.to}: a FHIR Bundle of {n} studies' results", file=sys.stderr)
        return 0
    pacs = open_pacs(args.to, credentials_from(args), policy=policy_from(args), ca_bundle=args.pacs_ca_bundle,
                     ae_title=args.ae_title)
    summary = publish_sr(args.db, pacs, args.config_key)
    print(summary.line(), file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from medmm.hospital.cli import add_pacs_arguments

    p = sub.add_parser("publish", help="write audit results back: a DICOM SR per study into the PACS, or a FHIR Bundle")
    p.add_argument("--db", required=True, help="the review store")
    p.add_argument("--to", required=True, metavar="TARGET",
                   help="dicomweb:URL or dimse:AET@HOST:PORT (--format sr), or FILE.json (--format fhir)")
    p.add_argument("--format", choices=("sr", "fhir"), default="sr", help="DICOM Comprehensive SR (default) or FHIR")
    p.add_argument("--config-key", default=None, help="publish this configuration's results (default: the newest)")
    add_pacs_arguments(p, spec=False)
    p.set_defaults(func=_cmd_publish)

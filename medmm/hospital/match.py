"""Pairing a RIS report with its PACS study: by accession number first, then by Study Instance UID.

An accession number is what the RIS orders, the modality stamps into every image and the report
carries (HL7 OBR-3, FHIR identifier ``ACSN``); the Study Instance UID is the fall-back when a feed
carries it. A report matches nothing (the study is not in the PACS yet, a typo in the RIS), or an
accession number is shared by several studies (a merge gone wrong): both are said with the
reason, never guessed. Each report version gets a store identity from the report alone
(:func:`report_source_id`), so the same report received twice is checked once and a corrected one
is a new version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from medmm.hospital.reports import ReportMessage

__all__ = ["Index", "Match", "report_source_id"]


def report_source_id(msg: ReportMessage) -> str:
    """The store identity of one report version (accession | UID # text digest): no PACS call needed."""
    return f"report:{msg.accession_number or ''}|{msg.study_instance_uid or ''}#{msg.digest}"


@dataclass(frozen=True)
class Match:
    hit: Any | None  # a StudyHit
    how: str | None = None  # "accession" | "study_instance_uid"
    problem: str | None = None


class Index:
    """Studies already listed (a date window), with a lookup in the PACS for what the window lacks."""

    def __init__(self, hits: list[Any], find: Callable[..., list[Any]]) -> None:
        self.find = find
        self.by_accession: dict[str, list[Any]] = {}
        self.by_uid: dict[str, Any] = {}
        for h in hits:
            self.add(h)

    def add(self, hit: Any) -> None:
        if hit.study_instance_uid in self.by_uid:
            return
        self.by_uid[hit.study_instance_uid] = hit
        if hit.accession_number:
            self.by_accession.setdefault(hit.accession_number, []).append(hit)

    def match(self, msg: ReportMessage, pacs_name: str) -> Match:
        acc, uid = msg.accession_number, msg.study_instance_uid
        if acc:
            hits = self.by_accession.get(acc)
            if hits is None:
                found = self.find(accession_number=acc)
                for h in found:
                    self.add(h)
                hits = [h for h in found if h.accession_number == acc] or ([] if found else None)
            if hits and len(hits) > 1:
                if uid and any(h.study_instance_uid == uid for h in hits):
                    return Match(next(h for h in hits if h.study_instance_uid == uid), "study_instance_uid")
                return Match(None, problem=f"{len(hits)} studies in {pacs_name} share the report's accession number; "
                                           "not matched (fix the accession in the RIS or PACS)")
            if hits:
                return Match(hits[0], "accession")
        if uid:
            hit = self.by_uid.get(uid)
            if hit is None:
                found = [h for h in self.find(study_instance_uid=uid) if h.study_instance_uid == uid]
                hit = found[0] if found else None
                if hit is not None:
                    self.add(hit)
            if hit is not None:
                return Match(hit, "study_instance_uid")
        what = " or ".join(w for w, v in (("accession number", acc), ("Study Instance UID", uid)) if v)
        return Match(None, problem=f"no study in {pacs_name} has the report's {what}; recorded as unmatched "
                                   "(checked again on the next run, when the study may have arrived)")

"""Reports that live in the PACS as DICOM SR documents (Basic Text, Enhanced or Comprehensive SR).

Many RIS/PACS installations store the signed report as an SR in the study itself. ``--reports pacs-sr``
reads them from the ``--pacs`` being audited: every SR series of the studies in the window (medmm's
own result SRs, series "medmm report check", are left out), each document's TEXT content items in
document order joined by newlines (headings as ``HEADING:`` lines, the way a plain-text report reads).
The accession number and Study Instance UID come from the SR itself; an SR with a Predecessor
Documents Sequence (an amended report) is status C, one marked PARTIAL or UNVERIFIED is P.
"""

from __future__ import annotations

from typing import Any, Iterator

from medmm.hospital.reports import ReportMessage
from medmm.hospital.sr import SERIES_DESCRIPTION

__all__ = ["read_pacs_sr", "sr_text"]


# concept names of report sections (DCM codes 121060-121073 and their usual meanings) -> the heading a report uses
_HEADINGS = {"finding": "FINDINGS", "findings": "FINDINGS", "impression": "IMPRESSION", "impressions": "IMPRESSION",
             "conclusion": "CONCLUSION", "conclusions": "CONCLUSION", "history": "HISTORY",
             "clinical information": "INDICATION", "indication": "INDICATION", "comparison": "COMPARISON",
             "current procedure descriptions": "TECHNIQUE", "technique": "TECHNIQUE"}


def _walk(items: Any, out: list[str]) -> None:
    for item in items or []:
        vt = str(getattr(item, "ValueType", ""))
        name = ""
        seq = getattr(item, "ConceptNameCodeSequence", None)
        if seq:
            name = str(getattr(seq[0], "CodeMeaning", "") or "")
        if vt == "TEXT" and getattr(item, "TextValue", None):
            text = str(item.TextValue).strip()
            heading = _HEADINGS.get(name.strip().lower())
            out.append(f"{heading}: {text}" if heading and not text.upper().startswith(heading) else text)
        _walk(getattr(item, "ContentSequence", None), out)


def sr_text(ds: Any) -> str | None:
    """The report text of an SR document (TEXT items in document order), or None when it has none."""
    out: list[str] = []
    _walk(getattr(ds, "ContentSequence", None), out)
    return "\n".join(out) if out else None


def _status(ds: Any) -> str:
    if getattr(ds, "PredecessorDocumentsSequence", None):
        return "C"
    if str(getattr(ds, "CompletionFlag", "COMPLETE")) == "PARTIAL" or \
            str(getattr(ds, "VerificationFlag", "VERIFIED")) == "UNVERIFIED":
        return "P"
    return "F"


def read_pacs_sr(client: Any, date_from: str | None = None, date_to: str | None = None) -> Iterator[ReportMessage]:
    """Report SRs of the studies of ``client`` in a date window (all studies without one)."""
    for hit in client.find_studies(date_from=date_from, date_to=date_to):
        for s in client.series(hit.study_instance_uid):
            if s["modality"] != "SR" or (s.get("description") or "") == SERIES_DESCRIPTION:
                continue
            for ds in client.series_datasets(hit.study_instance_uid, s["uid"]):
                text = sr_text(ds)
                date, time = str(getattr(ds, "ContentDate", "") or ""), str(getattr(ds, "ContentTime", "") or "")
                written = (f"{date[:4]}-{date[4:6]}-{date[6:8]}T{time[:2] or '00'}:{time[2:4] or '00'}:{time[4:6] or '00'}"
                           if len(date) == 8 else None)
                yield ReportMessage("sr", str(ds.SOPInstanceUID), text,
                                    str(getattr(ds, "AccessionNumber", "") or "") or hit.accession_number,
                                    str(ds.StudyInstanceUID), _status(ds), written,
                                    None if text else "SR without TEXT content items")

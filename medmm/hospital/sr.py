"""An audit result as a DICOM Comprehensive SR (highdicom), to be stored next to the study in the PACS.

One SR per audited study: same patient and Study Instance UID (copied by highdicom from the
study's own instances, given as evidence and listed in the Current Requested Procedure Evidence
Sequence, so the SR references the images it is about), in a series of its own
(``SeriesDescription`` "medmm report check", one series UID per study). The content tree::

    CONTAINER  (99MEDMM, RQC, "Radiology report error check")
      CONTAINS TEXT  "Checker"                  rules / vlm / ensemble and the configuration key
      CONTAINS CODE  "Error suspected"          (SCT 373066001 Yes | 373067005 No)
      CONTAINS NUM   "Report error score"       0..1 {no units}
      CONTAINS CONTAINER "Report error flag"    one per flag:
          CONTAINS CODE "Error type"            (99MEDMM, laterality | omission | ...)
          CONTAINS TEXT "Quoted sentence"       the flagged text, as in the report
          CONTAINS NUM  "Confidence"            0..1 {no units}
          CONTAINS TEXT "Explanation"
          CONTAINS SCOORD "Image Region"        when the flag has a region: a closed POLYLINE in
                                                the image's pixels, SELECTED FROM that instance

The codes of the local scheme ``99MEDMM`` (a private coding scheme, "99" prefix per PS3.16) are in
:data:`CODES`. The SOP Instance UID is derived from the study and the content's hash: the same
result gives the same UID (publishing twice adds nothing); a changed result gives a new instance in
the same series, with the next InstanceNumber and the earlier SR in its Predecessor Documents
Sequence (the DICOM way for a document to replace another).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

from medmm.errors import InputError

__all__ = ["CODES", "build_sr", "content_sha256", "sr_series_uid", "sr_uid"]

SCHEME = "99MEDMM"
CODES: dict[str, tuple[str, str]] = {  # name -> (code value, meaning) in the 99MEDMM scheme
    "root": ("RQC", "Radiology report error check"),
    "checker": ("RQC-CHECKER", "Checker"),
    "suspected": ("RQC-SUSPECTED", "Error suspected"),
    "score": ("RQC-SCORE", "Report error score"),
    "flag": ("RQC-FLAG", "Report error flag"),
    "type": ("RQC-TYPE", "Error type"),
    "sentence": ("RQC-SENTENCE", "Quoted sentence"),
    "confidence": ("RQC-CONFIDENCE", "Confidence"),
    "explanation": ("RQC-EXPLANATION", "Explanation"),
}
SERIES_DESCRIPTION = "medmm report check"


def _code(name: str) -> Any:
    from highdicom.sr import CodedConcept

    value, meaning = CODES[name]
    return CodedConcept(value, SCHEME, meaning)


def content_sha256(result: dict[str, Any]) -> str:
    """Hash of what the SR says (configuration, decision, score, flags): equal results, equal SRs."""
    flags = [{k: f.get(k) for k in ("type", "start", "end", "text", "confidence", "explanation", "region")}
             for f in result.get("flags") or []]
    payload = {"config_key": result.get("config_key"), "has_error": bool(result.get("has_error")),
               "score": round(float(result.get("score") or 0.0), 6), "flags": flags}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def sr_series_uid(study_uid: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[study_uid, "medmm-report-check-series"])


def sr_uid(study_uid: str, sha: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[study_uid, "medmm-report-check", sha])


def _image_of(region: dict[str, Any], images: Sequence[Any]) -> Any | None:
    """The evidence instance a region box points at: ``image`` = series index (in series-number order),
    ``slice`` = instance index in that series (instance-number order), 0 for a radiograph."""
    series: dict[str, list[Any]] = {}
    for ds in images:
        series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    ordered = sorted(series.values(), key=lambda xs: int(getattr(xs[0], "SeriesNumber", 0) or 0))
    try:
        members = sorted(ordered[int(region.get("image") or 0)], key=lambda d: int(getattr(d, "InstanceNumber", 0) or 0))
        return members[int(region.get("slice") or 0)]
    except (IndexError, ValueError, TypeError):
        return None


def _flag_item(flag: dict[str, Any], images: Sequence[Any]) -> Any:
    import numpy as np
    from highdicom.sr import (CodeContentItem, CodedConcept, ContainerContentItem, ImageRegion, NumContentItem,
                              SourceImageForRegion, TextContentItem)

    unit = CodedConcept("1", "UCUM", "no units")
    item = ContainerContentItem(_code("flag"), relationship_type="CONTAINS")
    children = [
        CodeContentItem(_code("type"), CodedConcept(str(flag["type"]), SCHEME, str(flag["type"]).replace("_", " ")),
                        relationship_type="CONTAINS"),
        TextContentItem(_code("sentence"), str(flag.get("text") or "")[:10000] or "(no text)", relationship_type="CONTAINS"),
        NumContentItem(_code("confidence"), float(flag.get("confidence") or 0.0), unit, relationship_type="CONTAINS"),
    ]
    if flag.get("explanation"):
        children.append(TextContentItem(_code("explanation"), str(flag["explanation"])[:10000],
                                        relationship_type="CONTAINS"))
    region = flag.get("region")
    if isinstance(region, dict):
        image = _image_of(region, images)
        if image is not None:
            x1, y1, x2, y2 = (float(region[k]) for k in ("x1", "y1", "x2", "y2"))
            data = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]], dtype=float)
            children.append(ImageRegion("POLYLINE", data, SourceImageForRegion(str(image.SOPClassUID),
                                                                                  str(image.SOPInstanceUID))))
    item.ContentSequence = children
    return item


def build_sr(evidence: Sequence[Any], result: dict[str, Any], *, version: int = 1,
             previous: Sequence[Any] = (), manufacturer: str = "medmm") -> Any:
    """The Comprehensive SR of one audited study. ``evidence``: the study's image instances (headers are
    enough); ``result``: ``{"config_key", "checker", "has_error", "score", "flags": [{"type", "text",
    "confidence", "explanation", "region"?}]}``; ``previous``: earlier SR versions (datasets with the four UIDs)."""
    from highdicom.sr import CodeContentItem, CodedConcept, ComprehensiveSR, ContainerContentItem, NumContentItem
    from highdicom.sr import TextContentItem

    if not evidence:
        raise InputError("an SR needs at least one instance of the study as evidence")
    study_uid = str(evidence[0].StudyInstanceUID)
    sha = content_sha256(result)
    unit = CodedConcept("1", "UCUM", "no units")
    yes = CodedConcept("373066001", "SCT", "Yes")
    no = CodedConcept("373067005", "SCT", "No")
    root = ContainerContentItem(_code("root"))
    root.ContentSequence = [
        TextContentItem(_code("checker"), f"{result.get('checker') or 'rules'} ({result.get('config_key') or '-'})",
                        relationship_type="CONTAINS"),
        CodeContentItem(_code("suspected"), yes if result.get("has_error") else no, relationship_type="CONTAINS"),
        NumContentItem(_code("score"), float(result.get("score") or 0.0), unit, relationship_type="CONTAINS"),
        *[_flag_item(f, evidence) for f in result.get("flags") or []],
    ]
    sr = ComprehensiveSR(evidence=list(evidence), content=root, series_instance_uid=sr_series_uid(study_uid),
                         series_number=9901, sop_instance_uid=sr_uid(study_uid, sha), instance_number=version,
                         manufacturer=manufacturer, is_complete=True, previous_versions=list(previous) or None,
                         series_description=SERIES_DESCRIPTION)
    return sr

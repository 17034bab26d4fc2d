"""Audit results as a FHIR R5 Bundle (fhir.resources): what an EHR's quality dashboard reads.

Per audited study, one ``Observation`` (code "report error check", ``valueBoolean`` = an error is
suspected, a component with the score) and one ``DetectedIssue`` per flag (``code`` = the flag type in
the medmm flag-type code system, ``detail`` = the explanation with the quoted sentence, ``severity``
from the confidence). Both point at the report they are about: ``Observation.derivedFrom`` and
``DetectedIssue.implicated`` are references to the DiagnosticReport **by identifier** (the accession
number, identifier type ``ACSN``), since medmm does not know the EHR's resource ids; the study is
referenced the same way through its Study Instance UID (``urn:oid:``). Resource ids are derived from the
study and the content, so writing the same results twice gives the same Bundle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

__all__ = ["FLAG_SYSTEM", "results_bundle"]

FLAG_SYSTEM = "https://github.com/medmm/medmm/flag-type"  # the code system of medmm's flag types
CHECK_SYSTEM = "https://github.com/medmm/medmm/observation"
_ACSN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}


def _id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _report_ref(res: dict[str, Any]) -> dict[str, Any]:
    if res.get("accession_number"):
        return {"type": "DiagnosticReport", "identifier": {"type": _ACSN, "value": res["accession_number"]}}
    return {"type": "ImagingStudy", "identifier": {"system": "urn:dicom:uid",
                                                   "value": "urn:oid:" + str(res["study_instance_uid"])}}


def results_bundle(results: list[dict[str, Any]], when: str | None = None) -> dict[str, Any]:
    """A collection Bundle (validated by fhir.resources) of the results ``Store.results_to_publish`` gives."""
    from fhir.resources.bundle import Bundle
    from fhir.resources.detectedissue import DetectedIssue
    from fhir.resources.observation import Observation

    when = when or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = []
    for res in results:
        ref = _report_ref(res)
        oid = _id(res["study_instance_uid"], res["config_key"], "observation")
        obs = Observation.model_validate({
            "resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": CHECK_SYSTEM, "code": "report-error-check",
                                 "display": "Radiology report error check"}]},
            "valueBoolean": bool(res["has_error"]), "effectiveDateTime": when, "derivedFrom": [ref],
            "component": [{"code": {"coding": [{"system": CHECK_SYSTEM, "code": "score", "display": "Report error score"}]},
                           "valueQuantity": {"value": round(float(res.get("score") or 0.0), 4), "unit": "1",
                                             "system": "http://unitsofmeasure.org", "code": "1"}}],
            "note": [{"text": f"checker {res.get('checker') or 'rules'}, configuration {res['config_key']}"}]})
        entries.append({"fullUrl": f"urn:uuid:{_uuid(oid)}", "resource": obs})
        for n, flag in enumerate(res.get("flags") or []):
            conf = float(flag.get("confidence") or 0.0)
            did = _id(res["study_instance_uid"], res["config_key"], n, flag.get("type"), flag.get("start"))
            issue = DetectedIssue.model_validate({
                "resourceType": "DetectedIssue", "id": did, "status": "final",
                "severity": "high" if conf >= 0.8 else ("moderate" if conf >= 0.5 else "low"),
                "code": {"coding": [{"system": FLAG_SYSTEM, "code": str(flag["type"]),
                                     "display": str(flag["type"]).replace("_", " ")}]},
                "identifiedDateTime": when, "implicated": [ref],
                "detail": f"{flag.get('explanation') or ''} Quoted: \u201c{flag.get('text') or ''}\u201d "
                          f"(confidence {conf:.2f})".strip(),
                "evidence": [{"detail": [{"reference": f"urn:uuid:{_uuid(oid)}"}]}]})
            entries.append({"fullUrl": f"urn:uuid:{_uuid(did)}", "resource": issue})
    bundle = Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "timestamp": when,
                                    "entry": entries})
    return json.loads(bundle.model_dump_json(exclude_none=True))


def _uuid(hex32: str) -> str:
    h = hex32[:32]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

"""Report feeds from the RIS: HL7 v2 ORU^R01 (files, folders, MLLP) and FHIR DiagnosticReport bundles.

Every feed gives :class:`ReportMessage` records — the report text as received, the accession
number and/or Study Instance UID it is for, its status (F final, C corrected, P preliminary) and
when it was written — which :mod:`medmm.hospital.match` pairs with the PACS's studies.

**HL7 v2** (python-hl7): ``OBR-3`` (filler order number) is the accession number, ``OBR-2``
(placer order number) the fall-back; a Study Instance UID is read from an ``OBX`` of value type
``RP``/``ST`` whose observation identifier says ``Study Instance UID`` (IHE RAD "113014"), or from
``ZDS-1`` (the IHE extension segment); the report is the ``TX``/``FT``/``ST`` OBX values in order,
one line per OBX repetition (``~``), joined by newlines; ``OBR-25`` (or ``OBX-11``) is the status;
``OBR-22`` (else ``MSH-7``) its date. A file is read as **bytes** and split into messages on
``MSH`` (segments end in ``\\r``; a file edited on Windows or Unix with ``\\n`` or ``\\r\\n`` is
normalised first: python-hl7 would otherwise read a message as one segment). HL7 escapes
(``\\.br\\``, ``\\F\\``...) are decoded by python-hl7's ``unescape``.

**FHIR** (fhir.resources): a Bundle of DiagnosticReport resources, R5 (the package default) or R4
(``imagingStudy`` in R4 is ``study`` in R5; both read). The accession number is an ``identifier``
of type ``ACSN`` (else the first identifier) or a ``basedOn`` ServiceRequest identifier; the text is
``presentedForm`` (``text/plain`` data, base64) else ``conclusion``; ``status`` ``final`` / ``amended``
/ ``corrected`` map to F / C.

A message that cannot be read is a :class:`ReportMessage` with its ``problem`` set: the audit
records it as a failure with that reason and goes on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator

from medmm.errors import InputError

__all__ = ["ReportMessage", "iter_feed", "read_fhir_bundle", "read_hl7", "parse_hl7_message", "split_hl7"]

HL7_MAX_BYTES = 64 << 20  # one feed file
STATUS_FHIR = {"final": "F", "amended": "C", "corrected": "C", "appended": "C", "preliminary": "P", "partial": "P",
               "registered": "P", "entered-in-error": "X", "cancelled": "X"}


@dataclass(frozen=True)
class ReportMessage:
    """One report as the RIS sent it."""

    feed: str  # "hl7" | "fhir" | "sr"
    report_id: str  # the message control id / resource id (unique within a feed)
    text: str | None
    accession_number: str | None = None
    study_instance_uid: str | None = None
    status: str = "F"  # F final, C corrected, P preliminary, X cancelled
    written_at: str | None = None  # ISO 8601 (YYYY-MM-DDTHH:MM:SS), when the report was written
    problem: str | None = None  # why it cannot be used (recorded as a failure)

    @property
    def digest(self) -> str:
        """A short hash of the text: two versions of a report differ here."""
        return hashlib.sha256((self.text or "").encode("utf-8")).hexdigest()[:16]


# ------------------------------------------------------------------ HL7 v2
def split_hl7(data: bytes) -> list[bytes]:
    """The messages of an HL7 file (bytes): line ends normalised to ``\\r``, split on ``MSH``; MLLP framing bytes
    (VT, FS) dropped."""
    data = data.replace(b"\x0b", b"").replace(b"\x1c", b"")
    data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    out: list[bytes] = []
    for seg in data.split(b"\r"):
        if not seg.strip():
            continue
        if seg.startswith(b"MSH") or not out:
            out.append(seg)
        else:
            out[-1] += b"\r" + seg
    return out


def _hl7_datetime(value: str) -> str | None:
    digits = re.sub(r"[^0-9]", "", value.split("+")[0].split("-")[0])
    if len(digits) < 8:
        return None
    d, t = digits[:8], (digits[8:14] + "000000")[:6]
    return f"{d[:4]}-{d[4:6]}-{d[6:]}T{t[:2]}:{t[2:4]}:{t[4:]}"


def _field(seg: Any, n: int) -> str:
    try:
        return str(seg(n)) if len(seg) > n else ""
    except (IndexError, KeyError):
        return ""


def parse_hl7_message(raw: bytes, where: str) -> ReportMessage:
    """One ORU^R01 message (bytes, ``\\r`` segments) as a ReportMessage; a problem instead of an exception."""
    import hl7

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        msg = hl7.parse(text)
        msh = msg.segment("MSH")
    except Exception as exc:  # noqa: BLE001 - python-hl7 raises several types on bad input: recorded
        return ReportMessage("hl7", where, None, problem=f"not an HL7 v2 message ({type(exc).__name__})")
    control_id = str(msh(10)) if len(msh) > 10 else ""
    rid = control_id or where
    mtype = str(msh(9)) if len(msh) > 9 else ""
    if not mtype.startswith("ORU"):
        return ReportMessage("hl7", rid, None, problem=f"message type {mtype or 'missing'}: expected ORU^R01")
    try:
        obr = msg.segment("OBR")
    except KeyError:
        return ReportMessage("hl7", rid, None, problem="ORU message without an OBR segment")
    accession = _field(obr, 3).split("^")[0] or _field(obr, 2).split("^")[0] or None
    status = _field(obr, 25)[:1].upper()
    written = _hl7_datetime(_field(obr, 22)) or _hl7_datetime(_field(msh, 7))
    lines: list[str] = []
    uid = None
    for seg in (s for s in msg if str(s[0]) == "OBX"):
        vtype, ident = _field(seg, 2).upper(), _field(seg, 3)
        if "113014" in ident or "study instance uid" in ident.lower():
            uid = _field(seg, 5).split("^")[0] or None
            continue
        if vtype in ("TX", "FT", "ST"):
            value = seg[5] if len(seg) > 5 else ""
            reps = list(value) if any(isinstance(v, hl7.Repetition) for v in value or ()) else [value]
            for rep in reps:
                lines.append(msg.unescape(str(rep)))
            status = status or _field(seg, 11)[:1].upper()
    status = status or "F"
    if uid is None:
        for seg in (s for s in msg if str(s[0]) == "ZDS"):
            uid = _field(seg, 1).split("^")[0] or None
    if not lines:
        return ReportMessage("hl7", rid, None, accession, uid, status, written, "no report text (no TX/FT/ST OBX)")
    if not accession and not uid:
        return ReportMessage("hl7", rid, None, None, None, status, written,
                             "no accession number (OBR-3 / OBR-2) and no Study Instance UID")
    return ReportMessage("hl7", rid, "\n".join(lines), accession, uid, status, written)


def read_hl7(path: str) -> Iterator[ReportMessage]:
    """The ORU^R01 messages of a file, or of every ``.hl7``/``.txt`` file in a folder (sorted by name)."""
    from medmm.imaging.files import read_limited, walk

    if os.path.isdir(path):
        files = [f for f, reason in walk(path, suffixes=(".hl7", ".txt", ".msg")) if reason is None]
    elif os.path.isfile(path):
        files = [path]
    else:
        raise InputError(f"--reports hl7:{path}: no such file or folder")
    for f in files:
        data = read_limited(f, HL7_MAX_BYTES)
        for n, raw in enumerate(split_hl7(data), start=1):
            yield parse_hl7_message(raw, f"{os.path.basename(f)}#{n}")


# ------------------------------------------------------------------ FHIR
def _fhir_text(report: Any) -> str | None:
    for form in getattr(report, "presentedForm", None) or []:
        ctype = (getattr(form, "contentType", None) or "").lower()
        data = getattr(form, "data", None)
        if data and (ctype.startswith("text/plain") or not ctype):
            raw = data if isinstance(data, (bytes, bytearray)) else base64.b64decode(data)
            return bytes(raw).decode("utf-8", errors="replace")
    return getattr(report, "conclusion", None)


def _identifier_value(ids: list[Any] | None, accession_first: bool = True) -> str | None:
    ids = list(ids or [])
    if accession_first:
        for i in ids:
            codes = [c.code for c in (getattr(getattr(i, "type", None), "coding", None) or [])]
            if "ACSN" in codes:
                return i.value
    return ids[0].value if ids and getattr(ids[0], "value", None) else None


def _bundle_module(data: dict[str, Any]) -> Any:
    """fhir.resources' R5 module, or R4B for a bundle whose reports use R4's ``imagingStudy``."""
    entries = [e.get("resource") or {} for e in data.get("entry") or []]
    r4 = any("imagingStudy" in r for r in entries if r.get("resourceType") == "DiagnosticReport")
    if r4 or str(data.get("meta", {}).get("fhirVersion", "")).startswith("4"):
        from fhir.resources.R4B import bundle
    else:
        from fhir.resources import bundle
    return bundle


def read_fhir_bundle(path: str, data: dict[str, Any] | None = None) -> Iterator[ReportMessage]:
    """The DiagnosticReports of a Bundle (a file, or an already loaded JSON object), R4 or R5."""
    from medmm.imaging.files import read_limited

    if data is None:
        if not os.path.isfile(path):
            raise InputError(f"--reports fhir:{path}: no such file")
        try:
            data = json.loads(read_limited(path, HL7_MAX_BYTES))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise InputError(f"{path}: expected a FHIR Bundle (resourceType Bundle)")
    module = _bundle_module(data)
    for n, entry in enumerate(data.get("entry") or [], start=1):
        res = (entry or {}).get("resource") or {}
        if res.get("resourceType") != "DiagnosticReport":
            continue
        rid = str(res.get("id") or f"entry{n}")
        try:
            bundle = module.Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": [entry]})
            report = bundle.entry[0].resource
        except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError and friends: recorded, not raised
            yield ReportMessage("fhir", rid, None, problem=f"not a valid DiagnosticReport ({type(exc).__name__})")
            continue
        accession = _identifier_value(getattr(report, "identifier", None))
        if not accession:
            for ref in getattr(report, "basedOn", None) or []:
                ident = getattr(ref, "identifier", None)
                if ident is not None and getattr(ident, "value", None):
                    accession = ident.value
                    break
        uid = None
        for ref in (getattr(report, "study", None) or getattr(report, "imagingStudy", None) or []):
            ident = getattr(ref, "identifier", None)
            value = getattr(ident, "value", None) if ident is not None else None
            if value:
                uid = value.removeprefix("urn:oid:")
                break
        text = _fhir_text(report)
        status = STATUS_FHIR.get(str(report.status), "F")
        issued = getattr(report, "issued", None)
        written = issued.strftime("%Y-%m-%dT%H:%M:%S") if issued is not None else None
        problem = None if text else "no report text (presentedForm or conclusion)"
        if text and not accession and not uid:
            problem = "no accession number (identifier / basedOn) and no ImagingStudy identifier"
        yield ReportMessage("fhir", rid, text if not problem else None, accession, uid, status, written, problem)


# ------------------------------------------------------------------ dispatch
def iter_feed(spec: str) -> Iterator[ReportMessage]:
    """``hl7:FILE_OR_DIR`` or ``fhir:BUNDLE.json`` (a FHIR server URL is read by :mod:`medmm.hospital.fhir_server`)."""
    kind, _, where = spec.partition(":")
    if kind == "hl7" and where:
        return read_hl7(where)
    if kind == "fhir" and where and not where.startswith(("http://", "https://")):
        return read_fhir_bundle(where)
    raise InputError(f"--reports {spec}: use hl7:FILE_OR_DIR or fhir:BUNDLE.json")


# ------------------------------------------------------------------ writing (demos, tests, exports to a RIS)
def oru_message(report: str, accession_number: str, control_id: str, *, study_instance_uid: str | None = None,
                 status: str = "F", written_at: str = "20250101120000", patient_id: str = "") -> bytes:
    """An ORU^R01 message (HL7 v2.5.1, ``\\r`` segments) carrying ``report`` as one TX OBX per line, built with
    python-hl7's containers (its ``escape`` encodes ``|``, ``^``, ``&``, ``~`` and ``\\`` in the text)."""
    import hl7

    lines = report.split("\n")
    skeleton = ("MSH|^~\\&|RIS|MEDMM|MEDMM|MEDMM|||ORU^R01|x|P|2.5.1\rPID|1\rOBR|1\r"
                + "".join(f"OBX|{i + 1}\r" for i in range(len(lines) + (1 if study_instance_uid else 0))))
    msg = hl7.parse(skeleton)
    msg.assign_field(written_at, "MSH", 1, 7)
    msg.assign_field(control_id, "MSH", 1, 10)
    msg.assign_field(msg.escape(patient_id), "PID", 1, 3)
    msg.assign_field(msg.escape(accession_number), "OBR", 1, 2)
    msg.assign_field(msg.escape(accession_number), "OBR", 1, 3)
    msg.assign_field(written_at, "OBR", 1, 22)
    msg.assign_field(status, "OBR", 1, 25)
    for i, line in enumerate(lines, start=1):
        msg.assign_field("TX", "OBX", i, 2)
        msg.assign_field("18782-3^Radiology Study observation^LN", "OBX", i, 3)
        msg.assign_field(msg.escape(line), "OBX", i, 5)
        msg.assign_field(status, "OBX", i, 11)
    if study_instance_uid:
        n = len(lines) + 1
        msg.assign_field("UI", "OBX", n, 2)
        msg.assign_field("113014^Study Instance UID^DCM", "OBX", n, 3)
        msg.assign_field(study_instance_uid, "OBX", n, 5)
    return str(msg).encode("utf-8")


def fhir_bundle(reports: list[dict[str, Any]], version: str = "R5") -> dict[str, Any]:
    """A collection Bundle of DiagnosticReports (fhir.resources models, validated), one per ``{"id", "text",
    "accession_number", "study_instance_uid", "status"}``; ``version`` ``R5`` or ``R4`` (R4B models)."""
    if version == "R4":
        from fhir.resources.R4B import bundle as bundle_mod
        from fhir.resources.R4B import diagnosticreport as dr_mod
    elif version == "R5":
        from fhir.resources import bundle as bundle_mod
        from fhir.resources import diagnosticreport as dr_mod
    else:
        raise InputError(f"FHIR version {version!r}: use R4 or R5")
    entries = []
    for r in reports:
        status = {"F": "final", "C": "corrected", "P": "preliminary"}.get(r.get("status", "F"), "final")
        res: dict[str, Any] = {
            "resourceType": "DiagnosticReport", "id": r["id"], "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}]},
            "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                 "code": "ACSN"}]}, "value": r["accession_number"]}],
            "presentedForm": [{"contentType": "text/plain",
                               "data": base64.b64encode(r["text"].encode("utf-8")).decode("ascii")}]}
        if r.get("issued"):
            res["issued"] = r["issued"]
        if r.get("study_instance_uid"):
            ref = {"identifier": {"system": "urn:dicom:uid", "value": "urn:oid:" + r["study_instance_uid"]}}
            res["imagingStudy" if version == "R4" else "study"] = [ref]
        entries.append({"fullUrl": f"urn:uuid:{r['id']}", "resource": dr_mod.DiagnosticReport.model_validate(res)})
    bundle = bundle_mod.Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries})
    return json.loads(bundle.model_dump_json(exclude_none=True))

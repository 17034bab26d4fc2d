"""A PACS over DIMSE (C-ECHO, C-FIND, C-GET, C-STORE) through pynetdicom.

``dimse:ORTHANC@pacs.example.org:104`` — the called AE title, host and port; medmm's own AE title is
``--ae-title`` (default ``MEDMM``; the PACS must know it for C-GET and C-STORE). The same interface
as :class:`~medmm.hospital.dicomweb.DicomwebPacs`: studies are found with C-FIND at STUDY level, their
series with C-FIND at SERIES level, header facts read from one instance per series fetched with C-GET
(the instance is kept in memory, not written), series fetched with C-GET only when a checker needs
images, and SRs stored with C-STORE.

A ``--pacs-user`` is sent as DICOM User Identity Negotiation (username and passcode, PS3.7 D.3.3.7);
a rejected association is an :class:`~medmm.hospital.net.AuthenticationError` (the PACS refused
medmm's AE title or user), an association that cannot be made (refused, timed out) is an outage and
retried with backoff. Timeouts: ``RetryPolicy.timeout`` for the ACSE, DIMSE and network.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

from medmm.errors import InputError
from medmm.hospital.dicomweb import SR_MODALITIES, StudyHit
from medmm.hospital.net import AuthenticationError, Credentials, RetryPolicy, with_retries
from medmm.imaging.volume import HeaderFacts

__all__ = ["DimsePacs"]

_FACT_KEYWORDS = ("Modality", "BodyPartExamined", "ViewPosition", "PatientSex", "ImageLaterality", "Laterality",
                  "Manufacturer")


class DimsePacs:
    """One DIMSE peer (called AE title, host, port)."""

    kind = "dimse"

    def __init__(self, called_ae: str, host: str, port: int, credentials: Credentials | None = None, *,
                 policy: RetryPolicy = RetryPolicy(), ae_title: str = "MEDMM") -> None:
        if not called_ae or len(called_ae) > 16 or not ae_title or len(ae_title) > 16:
            raise InputError("AE titles are 1 to 16 characters")
        self.called_ae, self.host, self.port = called_ae, host, int(port)
        self.ae_title, self.credentials, self.policy = ae_title, credentials, policy
        self.name = f"dimse:{called_ae}@{host}:{port}"

    @classmethod
    def from_spec(cls, where: str, credentials: Credentials | None = None, *, policy: RetryPolicy = RetryPolicy(),
                  ae_title: str = "MEDMM") -> "DimsePacs":
        called, at, hostport = where.partition("@")
        host, _, port = hostport.rpartition(":")
        if not at or not host or not port.isdigit():
            raise InputError(f"--pacs dimse:{where}: use dimse:AET@HOST:PORT (e.g. dimse:ORTHANC@127.0.0.1:4242)")
        return cls(called, host, int(port), credentials, policy=policy, ae_title=ae_title)

    # ------------------------------------------------------------------ associations
    def _ae(self, storage: bool) -> Any:
        from pynetdicom import AE, StoragePresentationContexts
        from pynetdicom.sop_class import (ComprehensiveSRStorage, StudyRootQueryRetrieveInformationModelFind,
                                          StudyRootQueryRetrieveInformationModelGet, Verification)

        ae = AE(ae_title=self.ae_title)
        for t in ("acse_timeout", "dimse_timeout", "network_timeout"):
            setattr(ae, t, self.policy.timeout)
        ae.add_requested_context(Verification)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        ae.add_requested_context(ComprehensiveSRStorage)
        if storage:  # C-GET: the PACS sends instances back over this association (we are their SCP)
            for cx in StoragePresentationContexts[:120 - 4]:
                if cx.abstract_syntax != ComprehensiveSRStorage:
                    ae.add_requested_context(cx.abstract_syntax)
        return ae

    def _with_assoc(self, what: str, op: Callable[[Any], Any], storage: bool = False,
                    handlers: list[Any] | None = None) -> Any:
        from pynetdicom import build_role
        from pynetdicom.pdu_primitives import UserIdentityNegotiation

        def run() -> Any:
            ae = self._ae(storage)
            ext: list[Any] = []
            if storage:
                ext += [build_role(cx.abstract_syntax, scp_role=True) for cx in ae.requested_contexts
                        if "1.2.840.10008.5.1.4.1.1" in cx.abstract_syntax]
            if self.credentials is not None:
                uid = UserIdentityNegotiation()
                uid.user_identity_type = 2
                uid.primary_field = self.credentials.user.encode("utf-8")
                uid.secondary_field = self.credentials.password.encode("utf-8")
                ext.append(uid)
            assoc = ae.associate(self.host, self.port, ae_title=self.called_ae, ext_neg=ext or None,
                                 evt_handlers=handlers)
            if assoc.is_rejected:
                who = f" user {self.credentials.user!r}" if self.credentials else f" AE title {self.ae_title!r}"
                raise AuthenticationError(f"{self.name}: the PACS rejected the association for{who}: check "
                                          "--ae-title / --pacs-user and that the PACS knows medmm")
            if not assoc.is_established:
                raise ConnectionError(f"{self.name}: no association")
            try:
                return op(assoc)
            finally:
                assoc.release()

        return with_retries(run, f"{self.name} {what}", self.policy)

    def check_access(self) -> None:
        from pynetdicom.sop_class import Verification  # noqa: F401 - the context is requested in _ae

        def echo(assoc: Any) -> None:
            status = assoc.send_c_echo()
            if not status or status.Status != 0:
                raise ConnectionError("C-ECHO failed")

        self._with_assoc("echo", echo)

    # ------------------------------------------------------------------ C-FIND
    def _find(self, level: str, keys: dict[str, Any]) -> list[Any]:
        from pydicom import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        query = Dataset()
        query.QueryRetrieveLevel = level
        for k, v in keys.items():
            setattr(query, k, v)

        def run(assoc: Any) -> list[Any]:
            out = []
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                if status and status.Status in (0xFF00, 0xFF01) and identifier is not None:
                    out.append(identifier)
                elif status and status.Status not in (0x0000, 0xFF00, 0xFF01):
                    raise InputError(f"{self.name}: C-FIND failed with status 0x{status.Status:04X}")
            return out

        return self._with_assoc("C-FIND", run)

    def find_studies(self, *, date_from: str | None = None, date_to: str | None = None, modality: str | None = None,
                     accession_number: str | None = None, study_instance_uid: str | None = None) -> list[StudyHit]:
        keys = {"StudyInstanceUID": study_instance_uid or "", "AccessionNumber": accession_number or "",
                "StudyDate": f"{date_from or ''}-{date_to or ''}" if (date_from or date_to) else "",
                "StudyTime": "", "StudyDescription": "", "PatientID": "", "ModalitiesInStudy": modality or ""}
        out = []
        for ds in self._find("STUDY", keys):
            uid = str(ds.get("StudyInstanceUID") or "")
            if not uid:
                continue
            mods = ds.get("ModalitiesInStudy") or []
            mods = [mods] if isinstance(mods, str) else list(mods)
            out.append(StudyHit(uid, str(ds.get("AccessionNumber") or "") or None, str(ds.get("StudyDate") or "") or None,
                                str(ds.get("StudyTime") or "") or None, str(ds.get("StudyDescription") or "") or None,
                                str(ds.get("PatientID") or "") or None, tuple(str(m) for m in mods)))
        return out

    def series(self, study_uid: str) -> list[dict[str, Any]]:
        rows = self._find("SERIES", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": "", "Modality": "",
                                     "SeriesDescription": "", "SeriesNumber": ""})
        out = [{"uid": str(r.get("SeriesInstanceUID") or ""), "modality": str(r.get("Modality") or "") or None,
                "description": str(r.get("SeriesDescription") or "") or None,
                "number": int(r.SeriesNumber) if r.get("SeriesNumber") not in (None, "") else None} for r in rows]
        return sorted((s for s in out if s["uid"]), key=lambda s: (s["number"] is None, s["number"] or 0, s["uid"]))

    def _instances(self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None) -> list[Any]:
        keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid or "", "SOPInstanceUID": sop_uid or "",
                "InstanceNumber": ""}
        return self._find("IMAGE", keys)

    def has_instance(self, study_uid: str, sop_uid: str) -> bool:
        return any(str(r.get("SOPInstanceUID")) == sop_uid for r in self._instances(study_uid, sop_uid=sop_uid))

    def instances_of_series(self, study_uid: str, series_uid: str) -> Iterator[str]:
        for r in self._instances(study_uid, series_uid):
            yield str(r.SOPInstanceUID)

    # ------------------------------------------------------------------ C-GET
    def _get(self, keys: dict[str, Any], level: str) -> list[Any]:
        """Instances matching ``keys`` at ``level``, received over the association (kept in memory)."""
        from pydicom import Dataset
        from pynetdicom import evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

        received: list[Any] = []

        def on_store(event: Any) -> int:
            ds = event.dataset
            ds.file_meta = event.file_meta
            received.append(ds)
            return 0x0000

        query = Dataset()
        query.QueryRetrieveLevel = level
        for k, v in keys.items():
            setattr(query, k, v)

        def run(assoc: Any) -> list[Any]:
            for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                if status and status.Status not in (0x0000, 0xFF00, 0xFF01, 0xB000):
                    raise InputError(f"{self.name}: C-GET failed with status 0x{status.Status:04X}")
            return list(received)

        received.clear()
        return self._with_assoc("C-GET", run, storage=True, handlers=[(evt.EVT_C_STORE, on_store)])

    def instance_metadata(self, study_uid: str, series_uid: str | None = None, limit: int | None = None) -> list[Any]:
        if limit is not None and series_uid is not None:
            sops = [str(r.SOPInstanceUID) for r in self._instances(study_uid, series_uid)][:limit]
            out = []
            for sop in sops:
                out += self._get({"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
                                  "SOPInstanceUID": sop}, "IMAGE")
            return out
        if series_uid is not None:
            return self._get({"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid}, "SERIES")
        return self._study_evidence(study_uid)

    def _study_evidence(self, study_uid: str) -> list[Any]:
        """Every instance of a study as the SR's evidence needs it: the four UIDs from C-FIND, and the first image
        fetched whole (patient and study modules: highdicom copies them from it). Pixels of the rest are not moved."""
        from pydicom import Dataset

        out: list[Any] = []
        for s in self.series(study_uid):
            keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": s["uid"], "SOPInstanceUID": "",
                    "SOPClassUID": "", "InstanceNumber": ""}
            for r in self._find("IMAGE", keys):
                d = Dataset()
                d.StudyInstanceUID, d.SeriesInstanceUID = study_uid, s["uid"]
                d.SOPInstanceUID, d.SOPClassUID = str(r.SOPInstanceUID), str(r.get("SOPClassUID") or "")
                d.Modality = s["modality"] or ""
                d.SeriesNumber = s["number"] or 0
                d.InstanceNumber = r.get("InstanceNumber") or 0
                out.append(d)
        for i, d in enumerate(out):
            if d.Modality not in SR_MODALITIES:
                full = self._get({"StudyInstanceUID": study_uid, "SeriesInstanceUID": d.SeriesInstanceUID,
                                  "SOPInstanceUID": d.SOPInstanceUID}, "IMAGE")
                if full:
                    out[i] = full[0]
                    out.insert(0, out.pop(i))  # highdicom reads the patient and study from the first
                break
        return out

    def series_datasets(self, study_uid: str, series_uid: str) -> list[Any]:
        """The instances of a series, whole (C-GET; SR report documents: small)."""
        return self._get({"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid}, "SERIES")

    def header(self, study_uid: str) -> tuple[HeaderFacts | None, list[dict[str, Any]]]:
        series = [s for s in self.series(study_uid) if (s["modality"] or "") not in SR_MODALITIES]
        facts = None
        for s in series:
            for ds in self.instance_metadata(study_uid, s["uid"], limit=1):
                found = HeaderFacts.from_mapping({k: ds.get(k) for k in _FACT_KEYWORDS if ds.get(k) not in (None, "")})
                facts = facts or found
                s["view"] = str(ds.get("ViewPosition") or "") or None
        return facts, series

    def fetch_series(self, study_uid: str, series_uid: str, dest: str) -> list[str]:
        os.makedirs(dest, exist_ok=True)
        paths = []
        for ds in self.instance_metadata(study_uid, series_uid):
            p = os.path.join(dest, f"{ds.SOPInstanceUID}.dcm")
            ds.save_as(p, enforce_file_format=True)
            paths.append(p)
        return paths

    # ------------------------------------------------------------------ C-STORE
    def store(self, datasets: list[Any]) -> None:
        def run(assoc: Any) -> None:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                if not status or status.Status not in (0x0000, 0xB000, 0xB007, 0xB006):
                    code = f"0x{status.Status:04X}" if status else "no answer"
                    raise InputError(f"{self.name}: C-STORE refused ({code})")

        self._with_assoc("C-STORE", run)

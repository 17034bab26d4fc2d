"""A PACS over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) through dicomweb-client.

``dicomweb:https://pacs.example.org/dicom-web`` — studies are found with QIDO-RS (by date range,
modality, accession number or Study Instance UID, paged), their header facts read from the
WADO-RS metadata of one instance per series (no pixels), instances fetched only when a checker
needs images, and results stored back with STOW-RS.

Transport: a ``requests`` session with HTTP basic credentials (:class:`~medmm.hospital.net.Credentials`),
TLS certificates **verified** (the system store, or ``ca_bundle`` for a hospital CA; never switched
off), a timeout on every request, and :func:`~medmm.hospital.net.with_retries` around every call. HTTP
401/403 is an :class:`~medmm.hospital.net.AuthenticationError` naming the server and user, never the
password. Nothing here logs a URL's query (which carries accession numbers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

from medmm.errors import InputError
from medmm.hospital.net import AuthenticationError, Credentials, RetryPolicy, redact_url, with_retries
from medmm.imaging.volume import HeaderFacts

__all__ = ["DicomwebPacs", "StudyHit", "study_hits"]

PAGE = 500  # QIDO results per request
_STUDY_FIELDS = ("StudyInstanceUID", "AccessionNumber", "StudyDate", "StudyTime", "StudyDescription", "PatientID",
                 "ModalitiesInStudy", "PatientSex", "StudyID")
_FACT_KEYWORDS = ("Modality", "BodyPartExamined", "ViewPosition", "PatientSex", "ImageLaterality", "Laterality",
                  "Manufacturer")
SR_MODALITIES = ("SR", "KO", "PR", "DOC")  # not images: never header facts or checker input


@dataclass(frozen=True)
class StudyHit:
    """A study as QIDO-RS (or C-FIND) describes it."""

    study_instance_uid: str
    accession_number: str | None = None
    study_date: str | None = None  # YYYYMMDD
    study_time: str | None = None
    study_description: str | None = None
    patient_id: str | None = None
    modalities: tuple[str, ...] = ()

    @property
    def exam_date(self) -> str | None:
        d = self.study_date or ""
        return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) >= 8 else None

    @property
    def exam_time(self) -> str | None:
        t = (self.study_time or "").split(".")[0]
        return f"{t[:2]}:{t[2:4]}:{t[4:6]}" if len(t) >= 6 else None


def _value(item: dict[str, Any], keyword: str) -> Any:
    from pydicom.datadict import tag_for_keyword

    tag = f"{tag_for_keyword(keyword):08X}"
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return None
    v = values[0]
    if isinstance(v, dict):  # a person name
        return v.get("Alphabetic")
    return v


def study_hits(items: list[dict[str, Any]]) -> list[StudyHit]:
    """QIDO-RS study results (DICOM JSON) as StudyHits."""
    from pydicom.datadict import tag_for_keyword

    out = []
    for it in items:
        uid = _value(it, "StudyInstanceUID")
        if not uid:
            continue
        mods = (it.get(f"{tag_for_keyword('ModalitiesInStudy'):08X}") or {}).get("Value") or []
        out.append(StudyHit(str(uid), _str(_value(it, "AccessionNumber")), _str(_value(it, "StudyDate")),
                            _str(_value(it, "StudyTime")), _str(_value(it, "StudyDescription")),
                            _str(_value(it, "PatientID")), tuple(str(m) for m in mods)))
    return out


def _str(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


class DicomwebPacs:
    """One DICOMweb PACS. ``url`` is the service root (``.../dicom-web``)."""

    kind = "dicomweb"

    def __init__(self, url: str, credentials: Credentials | None = None, *, policy: RetryPolicy = RetryPolicy(),
                 ca_bundle: str | None = None) -> None:
        import requests
        from dicomweb_client.api import DICOMwebClient

        if not url.startswith(("http://", "https://")):
            raise InputError(f"dicomweb:{redact_url(url)}: give the service URL, e.g. dicomweb:https://pacs/dicom-web")
        if "@" in url.split("//", 1)[1].split("/", 1)[0]:
            raise InputError("the PACS URL carries a user or password: give them as --pacs-user and "
                             "--pacs-password-env VAR instead (a command line is visible to other users)")
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise InputError(f"--pacs-ca-bundle {ca_bundle}: no such file")
        self.url = url.rstrip("/")
        self.name = f"dicomweb:{redact_url(self.url)}"
        self.credentials = credentials
        self.policy = policy
        session = requests.Session()
        session.verify = ca_bundle if ca_bundle else True  # TLS verified, always
        session.trust_env = False  # no proxy or netrc credentials picked up behind the user's back
        if credentials is not None:
            session.auth = (credentials.user, credentials.password)
        self.session = session
        self.client = DICOMwebClient(self.url, session=session, timeout=policy.timeout)
        self.client.set_http_retry_params(retry=False)  # our own retries (connection errors too, with backoff)

    # ------------------------------------------------------------------ plumbing
    def _call(self, what: str, op: Any) -> Any:
        import requests

        def run() -> Any:
            try:
                return op()
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else None
                if code in (401, 403):
                    user = f" user {self.credentials.user!r}" if self.credentials else " (no --pacs-user given)"
                    raise AuthenticationError(f"{self.name}: authentication failed for{user} (HTTP {code}): check "
                                              "--pacs-user and the password in --pacs-password-env / "
                                              "--pacs-password-file") from None
                raise

        return with_retries(run, f"{self.name} {what}", self.policy)

    def check_access(self) -> None:
        """One QIDO request: raises AuthenticationError on a refused password, PacsUnavailable when down."""
        self._call("search", lambda: self.client.search_for_studies(limit=1, fields=["StudyInstanceUID"]))

    # ------------------------------------------------------------------ finding studies
    def find_studies(self, *, date_from: str | None = None, date_to: str | None = None, modality: str | None = None,
                     accession_number: str | None = None, study_instance_uid: str | None = None) -> list[StudyHit]:
        """Studies matching the filters (dates ``YYYYMMDD``), all pages."""
        filters: dict[str, Any] = {}
        if date_from or date_to:
            filters["StudyDate"] = f"{date_from or ''}-{date_to or ''}"
        if modality:
            filters["ModalitiesInStudy"] = modality
        if accession_number:
            filters["AccessionNumber"] = accession_number
        if study_instance_uid:
            filters["StudyInstanceUID"] = study_instance_uid
        out: list[StudyHit] = []
        offset = 0
        while True:
            page = self._call("search", lambda: self.client.search_for_studies(
                limit=PAGE, offset=offset, fields=list(_STUDY_FIELDS), search_filters=dict(filters)))
            out.extend(study_hits(page))
            if len(page) < PAGE:
                return out
            offset += len(page)

    def series(self, study_uid: str) -> list[dict[str, Any]]:
        """The series of a study: ``{"uid", "modality", "description", "number"}``."""
        items = self._call("series search", lambda: self.client.search_for_series(
            study_uid, fields=["SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber"]))
        out = [{"uid": _str(_value(i, "SeriesInstanceUID")), "modality": _str(_value(i, "Modality")),
                "description": _str(_value(i, "SeriesDescription")), "number": _value(i, "SeriesNumber")}
               for i in items]
        return sorted((s for s in out if s["uid"]), key=lambda s: (s["number"] is None, s["number"] or 0, s["uid"]))

    def instance_metadata(self, study_uid: str, series_uid: str | None = None, limit: int | None = None) -> list[Any]:
        """pydicom Datasets (headers only) of a study's instances, or one series' (``limit`` per series)."""
        from pydicom import Dataset

        if limit is None:  # the whole study or series: one WADO-RS metadata request
            if series_uid is None:
                metas = self._call("metadata", lambda: self.client.retrieve_study_metadata(study_uid))
            else:
                metas = self._call("metadata", lambda: self.client.retrieve_series_metadata(study_uid, series_uid))
            for meta in metas:
                meta.pop("7FE00010", None)  # pixel data comes as a bulk-data URI: headers only here
            return [Dataset.from_json(m) for m in metas]

        def inst() -> list[dict[str, Any]]:
            return self.client.search_for_instances(study_uid, series_uid, limit=limit,
                                                    fields=["SOPInstanceUID", "SeriesInstanceUID", "InstanceNumber"])

        out = []
        for it in self._call("instance search", inst):
            sop, ser = _value(it, "SOPInstanceUID"), _value(it, "SeriesInstanceUID") or series_uid
            if not sop or not ser:
                continue
            meta = self._call("metadata", lambda s=ser, o=sop: self.client.retrieve_instance_metadata(study_uid, s, o))
            meta.pop("7FE00010", None)  # pixel data comes as a bulk-data URI: headers only here
            out.append(Dataset.from_json(meta))
        return out

    def header(self, study_uid: str) -> tuple[HeaderFacts | None, list[dict[str, Any]]]:
        """The study's header facts (first image series' first instance) and its image series (SR/KO/PR left out)."""
        series = [s for s in self.series(study_uid) if (s["modality"] or "") not in SR_MODALITIES]
        facts = None
        for s in series:
            for ds in self.instance_metadata(study_uid, s["uid"], limit=1):
                found = HeaderFacts.from_mapping({k: ds.get(k) for k in _FACT_KEYWORDS if ds.get(k) not in (None, "")})
                if facts is None:
                    facts = found
                s["view"] = str(ds.get("ViewPosition") or "") or None
        return facts, series

    # ------------------------------------------------------------------ pixels and publishing
    def fetch_series(self, study_uid: str, series_uid: str, dest: str) -> list[str]:
        """Write a series' instances under ``dest`` (only when a checker needs images); returns the paths."""
        os.makedirs(dest, exist_ok=True)
        datasets = self._call("retrieve", lambda: self.client.retrieve_series(study_uid, series_uid))
        paths = []
        for ds in datasets:
            p = os.path.join(dest, f"{ds.SOPInstanceUID}.dcm")
            ds.save_as(p, enforce_file_format=True)
            paths.append(p)
        return paths

    def series_datasets(self, study_uid: str, series_uid: str) -> list[Any]:
        """The instances of a series, whole (SR report documents: small)."""
        return list(self._call("retrieve", lambda: self.client.retrieve_series(study_uid, series_uid)))

    def has_instance(self, study_uid: str, sop_uid: str) -> bool:
        found = self._call("instance search", lambda: self.client.search_for_instances(
            study_uid, search_filters={"SOPInstanceUID": sop_uid}, fields=["SOPInstanceUID"]))
        return bool(found)

    def store(self, datasets: list[Any]) -> None:
        """STOW-RS: store instances (the SR of an audit result)."""
        self._call("store", lambda: self.client.store_instances(datasets))

    def instances_of_series(self, study_uid: str, series_uid: str) -> Iterator[str]:
        items = self._call("instance search", lambda: self.client.search_for_instances(
            study_uid, series_uid, fields=["SOPInstanceUID"]))
        for it in items:
            sop = _value(it, "SOPInstanceUID")
            if sop:
                yield str(sop)

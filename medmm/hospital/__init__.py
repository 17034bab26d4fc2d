"""medmm.hospital (layer L5.5): a hospital's systems as audit sources and result targets.

- PACS sources (:func:`open_pacs`): ``dicomweb:URL`` (:mod:`medmm.hospital.dicomweb`, QIDO/WADO/STOW-RS
  through dicomweb-client) and ``dimse:AET@HOST:PORT`` (:mod:`medmm.hospital.dimse`, C-FIND / C-GET /
  C-STORE through pynetdicom). Both answer ``check_access()``, ``find_studies(...)``, ``header(uid)``,
  ``fetch_series(...)``, ``store(datasets)``, ``has_instance(...)``, ``instance_metadata(...)``.
- Report feeds (:mod:`medmm.hospital.reports`): HL7 v2 ORU^R01 files/folders, FHIR Bundles of
  DiagnosticReport (R4 and R5); the MLLP listener (:mod:`medmm.hospital.mllp`) writes received
  messages to a spool folder that ``--reports hl7:FOLDER`` reads.
- Matching (:mod:`medmm.hospital.match`): a report to its study by accession number, then Study
  Instance UID; what matches nothing is said with the reason.
- Results back (:mod:`medmm.hospital.sr`, :mod:`medmm.hospital.fhir_out`): a DICOM Comprehensive SR per
  audited study (highdicom) and a FHIR Bundle of DetectedIssue resources.
- Credentials, retries, errors (:mod:`medmm.hospital.net`): passwords from the environment or a file,
  never printed; retries with backoff on outages; :class:`AuthenticationError`, :class:`PacsUnavailable`.

This package never opens the review store: the audit (``medmm.audit.hospital``) and ``medmm publish``
read and write it and call these.
"""

from __future__ import annotations

from typing import Any

from medmm.errors import InputError
from medmm.hospital.net import AuthenticationError, Credentials, PacsUnavailable, RetryPolicy

__all__ = ["AuthenticationError", "Credentials", "PacsUnavailable", "RetryPolicy", "open_pacs"]


def open_pacs(spec: str, credentials: Credentials | None = None, *, policy: RetryPolicy = RetryPolicy(),
              ca_bundle: str | None = None, ae_title: str = "MEDMM") -> Any:
    """A PACS client from ``dicomweb:URL`` or ``dimse:AET@HOST:PORT``."""
    kind, _, where = spec.partition(":")
    if kind == "dicomweb" and where:
        from medmm.hospital.dicomweb import DicomwebPacs

        return DicomwebPacs(where, credentials, policy=policy, ca_bundle=ca_bundle)
    if kind == "dimse" and where:
        from medmm.hospital.dimse import DimsePacs

        return DimsePacs.from_spec(where, credentials, policy=policy, ae_title=ae_title)
    raise InputError(f"--pacs {spec.split('@')[-1] if kind == 'dimse' else kind}: use dicomweb:URL or "
                     "dimse:AET@HOST:PORT")

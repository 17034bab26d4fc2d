"""Reports for the synthetic studies as a RIS would send them (HL7 v2 ORU^R01 or a FHIR Bundle)."""

from __future__ import annotations

import json
from pathlib import Path

from medmm.hospital.reports import fhir_bundle, oru_message
from medmm.reports.inject import inject_dataset
from medmm.studies import iter_studies

# error types the rules checker reads in the text: the acceptance run is about the pipeline, not recall
TEXT_TYPES = ("contradiction", "transcription", "measurement", "severity")


def reports_for(synth: Path, seed: int = 0) -> list[dict]:
    """One report per study; every other study (6 of 12) with one injected error (medmm.reports.inject)."""
    studies = list(iter_studies(str(synth)))
    out = []
    for i, s in enumerate(studies):
        row = {"id": s.study_id, "report": s.report, "header": s.header.to_dict(report_facts_only=True)}
        rec = inject_dataset([row], rate=1.0 if i % 2 == 0 else 0.0, types=TEXT_TYPES, seed=seed + i)[0]
        out.append({"id": f"R{i + 1:03d}", "text": rec["report"], "injected": rec["has_error"], "study": s,
                    "accession_number": s.accession_number, "study_instance_uid": s.study_instance_uid,
                    "written": s.exam_date.replace("-", "") + "180000", "status": "F"})
    return out


def write_hl7(path: Path, reports: list[dict], extra: list[bytes] = ()) -> Path:
    with open(path, "wb") as fh:
        for r in reports:
            fh.write(oru_message(r["text"], r["accession_number"], r["id"], status=r.get("status", "F"),
                                 written_at=r["written"]) + b"\r")
        for raw in extra:
            fh.write(raw + b"\r")
    return path


def write_fhir(path: Path, reports: list[dict], version: str = "R5") -> Path:
    rows = [{"id": r["id"], "text": r["text"], "accession_number": r["accession_number"], "status": r.get("status", "F"),
             "issued": f"{r['written'][:4]}-{r['written'][4:6]}-{r['written'][6:8]}T18:00:00Z"} for r in reports]
    path.write_text(json.dumps(fhir_bundle(rows, version)))
    return path

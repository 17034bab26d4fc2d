"""medmm.studies (layer L2.5, between regions and synth): ONE typed study record for every source.

Every source produces :class:`Study` — a study folder, an audit manifest, ``medmm synth``'s
manifest, a PACS (``medmm.hospital``: DICOMweb, DIMSE) with its RIS reports (HL7 v2, FHIR) — and
every consumer reads it: audits, the review app, the VLM checker's data builder, region-task
builders, probes. Nothing else reads a manifest by hand.

The record (all frozen dataclasses, ``to_dict`` / ``from_dict`` JSON round trip)::

    Study(study_id, source, source_path,
          images=(ImageRef(path, role="image"|"label_map"|"derived", view, format, label_map,
                           series_instance_uid, description), ...),
          report, report_path, report_status ("F" / "C" / "P"), report_id,
          header=HeaderFacts(...),                # medmm.imaging, the one header type
          accession_number, study_instance_uid, patient_key, exam_date ("YYYY-MM-DD"),
          exam_time ("HH:MM:SS"), exam_description,
          regions=(Box, ...),                     # medmm.regions.Box, frame explicit
          truth=StudyTruth(findings=(TruthFinding(type, organ, side, ..., boxes=(Box, ...)), ...),
                           errors=(InjectedError(type, complex, original_sentence, ...), ...),
                           has_error, original_report, comparison, indication, attributes),
          problem)                                # why it cannot be checked (recorded, never raised)

    study.image_paths      # the images to read (not label maps, not the NIfTI copy of a series)

Readers::

    from medmm.studies import iter_studies, iter_manifest, iter_folder, study_from_record
    for study in iter_studies("exported/"):          # folder, manifest.jsonl/.csv, synthetic manifest
        if study.problem: ...                         # record it as the study's failure and go on
        text = study.report                           # or read study.report_path (confined, below)
        truth = study.truth                           # synthetic findings + boxes, injected errors

Public corpora (:mod:`medmm.studies.public`): ``iter_mimic_cxr(root, reports=, metadata=)`` reads MIMIC-CXR's
``files/pXX/pXXXXXXXX/sXXXXXXXX/`` layout with its ``sXXXXXXXX.txt`` reports (patient from the ``p`` folder),
``iter_iu_xray(root)`` IU-Xray's ``indiana_reports.csv`` + ``indiana_projections.csv`` + PNG images.

Paths named by a manifest are **confined** to the audited folder (the manifest's folder unless
``root=`` says otherwise): an absolute path elsewhere, a ``..`` escape or a symlink pointing out
is the study's ``problem`` and the file is never opened (security finding N3 of issue 20).
"""

from __future__ import annotations

from medmm.studies.public import detect_corpus, iter_iu_xray, iter_mimic_cxr
from medmm.studies.readers import confined, iter_folder, iter_manifest, iter_studies, manifest_header, study_from_record
from medmm.studies.record import ImageRef, InjectedError, Study, StudyTruth, TruthFinding, image_role

__all__ = ["ImageRef", "InjectedError", "Study", "StudyTruth", "TruthFinding", "confined", "detect_corpus",
           "image_role", "iter_folder", "iter_iu_xray", "iter_manifest", "iter_mimic_cxr", "iter_studies",
           "manifest_header", "study_from_record"]

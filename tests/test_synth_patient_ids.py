"""Synthetic studies are unrelated patients: PatientID (DICOM) and the manifest's patient_key never repeat
(issue 19: they were the first 16 characters of ``medmm-synth-SEED-I``, so with a two-digit seed study 2 and
study 11 shared a patient, and patient-level splits grouped unrelated studies)."""

from __future__ import annotations

import glob
import json
import os

import pydicom

from medmm.synth import SMALL, synthesize


def test_no_two_synthetic_studies_share_a_patient(tmp_path):
    synthesize(str(tmp_path), 12, seed=42, config=SMALL, workers=1)  # "medmm-synth-42-1" and "-11" collided
    with open(tmp_path / "manifest.jsonl", encoding="utf-8") as fh:
        recs = [json.loads(line) for line in fh]
    keys = [r["patient_key"] for r in recs]
    assert len(set(keys)) == len(keys) == 12
    for r in recs:
        files = glob.glob(os.path.join(tmp_path, "studies", r["study_id"], "**", "*.dcm"), recursive=True)
        assert files
        ids = {str(pydicom.dcmread(f, stop_before_pixels=True).PatientID) for f in files}
        assert ids == {r["patient_key"]}  # the manifest names the patient the DICOM headers name

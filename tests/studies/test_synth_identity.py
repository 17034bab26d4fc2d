"""``medmm synth`` names its studies as a hospital does (issue 19 item 8): accession number, study ID, exam
date/time, birth date, referring physician (Type 2, empty) in every DICOM file and in the manifest."""

from __future__ import annotations

import glob
import os

import pydicom

from medmm.studies import iter_studies
from medmm.synth.generate import SMALL, synthesize


def test_synth_writes_the_study_identity(tmp_path):
    synthesize(str(tmp_path), 3, seed=5, workers=1, config=SMALL)
    studies = list(iter_studies(str(tmp_path)))
    assert len(studies) == 3 and all(s.problem is None for s in studies)
    accessions = [s.accession_number for s in studies]
    assert len(set(accessions)) == 3 and all(0 < len(a) <= 16 for a in accessions)
    for s in studies:
        files = [f for p in s.image_paths for f in (sorted(glob.glob(os.path.join(p, "*.dcm"))) or [p])]
        assert files
        for f in files:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            assert ds.AccessionNumber == s.accession_number and ds.StudyInstanceUID == s.study_instance_uid
            assert ds.StudyID == s.study_id and len(ds.StudyID) <= 16
            assert f"{ds.StudyDate[:4]}-{ds.StudyDate[4:6]}-{ds.StudyDate[6:]}" == s.exam_date
            assert len(ds.StudyTime) == 6 and ds.PatientBirthDate < ds.StudyDate
            assert "ReferringPhysicianName" in ds and ds.ReferringPhysicianName == ""
            assert ds.StudyDescription == s.exam_description


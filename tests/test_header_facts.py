"""The one header type: HeaderFacts.from_mapping / to_dict and imaging.header_facts(paths)."""

from __future__ import annotations

import os

from medmm.imaging import REPORT_FACTS, HeaderFacts, header_facts


def test_from_mapping_reads_field_names_aliases_and_dicom_keywords():
    notes: list[str] = []
    f = HeaderFacts.from_mapping({"modality": " CT ", "sex": "F", "ViewPosition": "PA", "body_part": "",
                                  "NumberOfFrames": "3", "PatientName": "DOE^JANE"}, notes)
    assert f == HeaderFacts(modality="CT", patient_sex="F", view_position="PA", n_frames=3)
    assert len(notes) == 1 and "PatientName" in notes[0] and "DOE" not in notes[0].replace("PatientName", "")


def test_from_mapping_round_trips_and_rejects_non_mappings():
    f = HeaderFacts(modality="DX", body_part="CHEST", laterality="L", view_position="AP", patient_sex="M")
    assert HeaderFacts.from_mapping(f.to_dict()) == f
    assert HeaderFacts.from_mapping(f) is f
    assert list(f.to_dict(report_facts_only=True)) == list(REPORT_FACTS)
    notes: list[str] = []
    assert HeaderFacts.from_mapping(["CT"], notes) is None and "expected a JSON object" in notes[0]
    assert HeaderFacts.from_mapping(None) is None
    assert HeaderFacts.from_mapping({}).is_empty()
    bad: list[str] = []
    assert HeaderFacts.from_mapping({"n_frames": "many"}, bad).n_frames == 1 and "n_frames" in bad[0]


def test_header_facts_reads_the_first_readable_dicom_of_a_study(make_series, tmp_path):
    folder, _, paths = make_series(n=3, rows=4, cols=4, name="ct")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 64)
    facts = header_facts([str(junk), str(tmp_path / "report.txt"), folder])
    assert isinstance(facts, HeaderFacts) and facts.modality == "CT"
    assert header_facts(paths[0]) == facts
    assert header_facts([str(junk)]) is None
    assert header_facts([]) is None


def test_there_is_one_header_type():
    """No second header class or key list in the layers above imaging."""
    import medmm

    root = os.path.dirname(medmm.__file__)
    offenders = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(dirpath, name), encoding="utf-8").read()
                if "class Header(" in text or "HEADER_KEYS" in text or "_header_from_images" in text:
                    offenders.append(os.path.relpath(os.path.join(dirpath, name), root))
    assert offenders == [], f"header facts must go through medmm.imaging.HeaderFacts: {offenders}"

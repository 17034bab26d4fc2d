"""Mutation fuzzing of medmm.imaging (short run; the long run is `python -m bench.fuzz_dicom`, figures in
SECURITY.md): pydicom's and pydicom-data's files, mutated, through describe + load and scan, each in a
worker with a timeout — no crash, no hang, every rejection a MedmmError naming the file. Plus the
regressions the fuzzer found."""

from __future__ import annotations

import pydicom
import pytest

from bench.fuzz_dicom import run
from medmm.errors import DecodeError
from medmm.imaging import load
from tests.conftest import shipped_file


def test_short_mutation_run_has_no_crash_hang_or_unclear_error():
    r = run(cases=400, seed=0, workers=2, scan_every=25)
    assert not r.failures, r.failures[:5]
    assert sum(r.outcomes.values()) == 400 + r.scans and r.scans == 16
    assert r.outcomes["rejected"] > 100 and r.outcomes["ok"] > 50  # the mutations bite, and not always
    assert {"bit-flip", "truncate", "length-field", "tag-delete", "insert", "declared-size", "scan"} <= set(r.by_kind)


def test_gdcm_abort_on_a_corrupt_stream_is_contained(tmp_path):
    """gdcm aborts the whole process (uncaught C++ exception) on this JPEG-LS file declaring 3 samples;
    medmm decodes with gdcm only in a child process, so the caller gets a DecodeError and lives on."""
    ds = pydicom.dcmread(shipped_file("MR_small_jpeg_ls_lossless.dcm"))
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    with pytest.raises(DecodeError, match="gdcm decoder crashed"):
        load(str(bad))
    assert load(shipped_file("MR_small_jpeg_ls_lossless.dcm"))[0].shape == (64, 64, 1)  # gdcm still decodes


@pytest.mark.parametrize("name, change", [("SC_rgb_32bit.dcm", {"Columns": 1}), ("image_dfl.dcm", {"Columns": 1}),
                                          ("SC_rgb_32bit_2frame.dcm", {"NumberOfFrames": "1"})])
def test_decoded_shape_must_match_the_header(tmp_path, name, change):
    ds = pydicom.dcmread(shipped_file(name))
    for k, v in change.items():
        setattr(ds, k, v)
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    with pytest.raises(DecodeError, match="but the header declares"):
        load(str(bad))


def test_nul_in_specific_character_set_is_not_a_crash(tmp_path):
    """Found by the long run (seed 42): the header fast path raised ValueError('embedded null character')."""
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.SpecificCharacterSet = "ISO\x00IR 100"
    bad = tmp_path / "nul_charset.dcm"
    ds.save_as(bad)
    from medmm.imaging.fastheader import scan

    assert scan(str(bad)) is not None  # the fast path reads it (falls back to the default character set)
    assert load(str(bad))[0].shape == (128, 128, 1)


def test_modality_lut_sequence_without_its_data_is_a_clear_error(tmp_path):
    """Found by the long run (seed 43): a Modality LUT item without LUT Data raised KeyError."""
    ds = pydicom.dcmread(shipped_file("mlut_18.dcm"))
    del ds.ModalityLUTSequence[0].LUTData
    bad = tmp_path / "mlut_no_data.dcm"
    ds.save_as(bad)
    with pytest.raises(DecodeError, match="Modality LUT Sequence"):
        load(str(bad))

"""Synthetic studies: geometry read back three ways, boxes vs label maps, reports vs truth, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import re

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medmm.errors import InputError
from medmm.imaging import load_nifti, load_volume
from medmm.synth import SMALL, make_study, synthesize
from medmm.synth.reports import FINDING_TERMS, NEGATION_CUES
from medmm.synth.truth import DEVICE_TYPES, LESION_TYPES

N = 12  # 4 of each kind


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesize(str(out), N, seed=7, workers=2, config=SMALL)
    return out


@pytest.fixture(scope="module")
def records(synth_dir):
    with open(synth_dir / "manifest.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_manifest_schema(records):
    assert len(records) == N
    assert {r["modality"] for r in records} >= {"CT", "MR"} and {r["modality"] for r in records} & {"DX", "CR"}
    for r in records:
        assert set(r) >= {"study_id", "modality", "body_part", "sex", "images", "report", "findings"}
        assert r["modality"] in ("CT", "DX", "CR", "MR") and r["sex"] in ("M", "F")
        for img in r["images"]:
            assert img["format"] in ("dicom-series", "dicom-file", "nifti")
            assert not os.path.isabs(img["path"])
        for f in r["findings"]:
            assert f["type"] in LESION_TYPES + DEVICE_TYPES
            assert f["side"] in ("left", "right", "bilateral", "midline", None)
            assert f["boxes"], f
            for b in f["boxes"]:
                assert set(b) == {"image", "slice", "x1", "y1", "x2", "y2", "frame"}
                assert b["frame"] == "acquisition"  # the frame is explicit: regions.Box.to_dict
                assert b["x1"] < b["x2"] and b["y1"] < b["y2"]
        assert r["attributes"]["modality"] == r["modality"]
    assert any(not r["findings"] for r in records) or any(r["attributes"]["normal"] for r in records)


def test_geometry_reads_back_three_ways(synth_dir, records):
    """medmm, nibabel and pydicom agree on what the generator meant."""
    for r in records:
        first = r["images"][0]
        path = str(synth_dir / first["path"])
        vol = load_volume(path)
        assert vol.modality == r["modality"]
        assert vol.facts.patient_sex == r["sex"]
        if first["format"] == "dicom-series":
            assert all(p.code not in ("gap", "uneven_spacing", "duplicate_position") for p in vol.problems)
            nii = next(i for i in r["images"] if i["format"] == "nifti")
            img = nib.load(synth_dir / nii["path"])
            assert np.allclose(img.affine, vol.affine, atol=1e-4)
            assert np.array_equal(np.asarray(img.dataobj), vol.data.astype(np.int16))
            # pydicom: slice k's ImagePositionPatient is where medmm puts voxel (0, 0, k)
            files = sorted(os.listdir(path))
            for k in (0, len(files) - 1):
                ds = pydicom.dcmread(os.path.join(path, files[k]), stop_before_pixels=True)
                lps = np.array([float(v) for v in ds.ImagePositionPatient])
                assert np.allclose(vol.world(np.array([0, 0, k])), [-lps[0], -lps[1], lps[2]], atol=1e-3)
            labels = load_nifti(str(synth_dir / first["label_map"]))
            assert labels.shape == vol.shape and np.allclose(labels.affine, vol.affine)
        else:
            ds = pydicom.dcmread(path)
            assert ds.ViewPosition in ("PA", "AP", "LATERAL")
            assert ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
            assert vol.display_inverted == (ds.PhotometricInterpretation == "MONOCHROME1")


def test_localizer_written_in_some_ct_studies(tmp_path):
    from medmm.synth.generate import SynthConfig

    cfg = SynthConfig(ct_slices=(20, 24), ct_sizes=(64,), localizer_fraction=1.0)
    rec = make_study(str(tmp_path), 3, 0, "ct", cfg)
    loc = [i for i in rec["images"] if i["path"].endswith("localizer")]
    assert len(loc) == 1
    ds = pydicom.dcmread(os.path.join(tmp_path, loc[0]["path"], "IM00001.dcm"))
    assert "LOCALIZER" in ds.ImageType
    ct = pydicom.dcmread(os.path.join(tmp_path, rec["images"][0]["path"], "IM00001.dcm"))
    assert ds.StudyInstanceUID == ct.StudyInstanceUID and ds.SeriesInstanceUID != ct.SeriesInstanceUID


def _label_slice(labels_vol, box):
    data = labels_vol.data  # [i = x, j = y, k]
    k = box["slice"] if box["slice"] is not None else 0
    return data[:, :, k].T  # rows = y, cols = x


def test_boxes_contain_their_findings(synth_dir, records):
    n_boxes = 0
    for r in records:
        maps = {}
        for f in r["findings"]:
            inside = 0
            total = 0
            for b in f["boxes"]:
                img = r["images"][b["image"]]
                if img["label_map"] not in maps:
                    maps[img["label_map"]] = load_nifti(str(synth_dir / img["label_map"]))
                plane = _label_slice(maps[img["label_map"]], b)
                crop = plane[b["y1"]: b["y2"], b["x1"]: b["x2"]]
                assert (crop == f["label"]).any(), (r["study_id"], f["type"], b)
                inside += int((crop == f["label"]).sum())
                n_boxes += 1
            for i, img in enumerate(r["images"]):
                if img["label_map"] and any(b["image"] == i for b in f["boxes"]):
                    total += int((maps[img["label_map"]].data == f["label"]).sum())
            assert inside >= 0.9 * total, (r["study_id"], f["type"], inside, total)
    assert n_boxes > 10


def test_feet_first_ct_and_coronal_mr_keep_acquisition_boxes(tmp_path):
    """A feet-first CT (columns run to the patient's right, position order superior to inferior)
    and a coronal MR: the manifest boxes are acquisition pixels of the series as a reader loads it."""
    from dataclasses import replace

    from medmm.regions import Box

    cfg = replace(SMALL, ct_feet_first_fraction=1.0, mr_coronal_fraction=1.0, normal_fraction=0.0)
    for i, kind in enumerate(("ct", "mr")):
        rec = make_study(str(tmp_path), 5, i, kind, cfg)
        series = tmp_path / rec["images"][0]["path"]
        ds = pydicom.dcmread(series / "IM00001.dcm", stop_before_pixels=True)
        iop = [round(float(v)) for v in ds.ImageOrientationPatient]
        assert iop == ([-1, 0, 0, 0, 1, 0] if kind == "ct" else [1, 0, 0, 0, 0, -1])
        vol = load_volume(str(series))
        world0, world1 = vol.world(np.array([0, 0, 0])), vol.world(np.array([0, 0, 1]))
        if kind == "ct":  # RAS: k = 0 is the most superior slice, i runs toward the patient's right
            assert world1[2] < world0[2] and vol.world(np.array([1, 0, 0]))[0] > world0[0]
        labels = load_nifti(str(tmp_path / rec["images"][0]["label_map"]))
        assert rec["findings"]
        for f in rec["findings"]:
            for d in f["boxes"]:
                b = Box.from_dict(d)
                crop = labels.data[b.x1:b.x2, b.y1:b.y2, b.slice]
                assert (crop == f["label"]).any(), (kind, f["type"], d)


def _sentences(report: str) -> list[str]:
    body = re.sub(r"^(INDICATION|COMPARISON):.*$", "", report, flags=re.M)
    body = re.sub(r"\b(FINDINGS|IMPRESSION):", " ", body)
    body = re.sub(r"\b\d+\. ", " ", body)
    return [s.strip().lower() for s in re.split(r"(?<=[.;])\s+", body) if s.strip()]


def _mentions(sentence: str, ftype: str) -> bool:
    return any(re.search(rf"\b{re.escape(t)}\b", sentence) for t in FINDING_TERMS[ftype])


def _negated(sentence: str) -> bool:
    return any(cue in f" {sentence}" for cue in NEGATION_CUES)


def test_reports_match_truth(records):
    for r in records:
        sentences = _sentences(r["report"])
        present = {f["type"] for f in r["findings"]}
        for f in r["findings"]:
            positive = [s for s in sentences if _mentions(s, f["type"]) and not _negated(s)]
            assert positive, (r["study_id"], f["type"], r["report"])
            if f["side"] in ("left", "right", "bilateral"):
                assert any(f["side"] in s for s in positive), (r["study_id"], f, r["report"])
            if f["size_mm"] and f["type"] in ("nodule", "mass", "cyst"):
                mm = f["size_mm"]
                assert f"{mm:.0f} mm" in r["report"] or f"{mm / 10:.1f} cm" in r["report"]
        for ftype in FINDING_TERMS:
            if ftype in present:
                continue
            for s in sentences:
                if _mentions(s, ftype):
                    assert _negated(s), (r["study_id"], ftype, s)
        if not any(f["category"] == "lesion" for f in r["findings"]):
            impression = r["report"].split("IMPRESSION:")[1].lower()
            assert "normal" in impression or "no acute" in impression
        if not r["comparison"]:
            assert not re.search(r"\b(prior|unchanged|new since|increased since)\b", r["report"].split("FINDINGS:")[1].lower())


def test_report_checks_would_catch_a_wrong_report(records):
    """The report checks above are not vacuous: a swapped side or a dropped finding fails them."""
    r = next(r for r in records if any(f["side"] in ("left", "right") for f in r["findings"]))
    f = next(f for f in r["findings"] if f["side"] in ("left", "right"))
    other = "right" if f["side"] == "left" else "left"
    swapped = r["report"].replace(f["side"], "SIDE").replace(other, f["side"]).replace("SIDE", other)
    bad = dict(r, report=swapped)
    with pytest.raises(AssertionError):
        test_reports_match_truth([bad])


def test_same_seed_identical_different_seed_different(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    synthesize(str(a), 3, seed=11, workers=1, config=SMALL)
    synthesize(str(b), 3, seed=11, workers=2, config=SMALL)
    synthesize(str(c), 3, seed=12, workers=1, config=SMALL)
    ma, mb, mc = ((p / "manifest.jsonl").read_bytes() for p in (a, b, c))
    assert ma == mb
    assert ma != mc

    def digest(root):
        h = hashlib.sha256()
        for d, _, files in sorted(os.walk(root)):
            for f in sorted(files):
                if f.endswith(".dcm"):
                    h.update((Path := os.path.join(d, f)).encode()[len(str(root)):])
                    h.update(open(Path, "rb").read())
        return h.hexdigest()

    assert digest(a) == digest(b)


def test_bad_arguments():
    with pytest.raises(InputError, match="unknown study kind"):
        synthesize("/tmp/never", 1, kinds=("xray",))
    with pytest.raises(InputError, match="at least 1"):
        synthesize("/tmp/never", 0)

"""MIMIC-CXR and IU-Xray as medmm.studies readers and as `medmm checker-data` inputs (issue 18 item 1).

The fixtures are built here in each corpus's distributed layout (tiny images, made-up report text): no real data."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from medmm.cli import main
from medmm.errors import InputError
from medmm.studies import detect_corpus, iter_iu_xray, iter_mimic_cxr

MIMIC_REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___ year old with cough.

 FINDINGS:

 There is a {size} {side} pleural effusion.  The heart size is normal.  No pneumothorax.

 IMPRESSION:

 {Size} {side} pleural effusion.
"""
SIDES = ("right", "left")


def _png(path: str, seed: int, suffix: str = ".png") -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(path, "JPEG" if suffix == ".jpg" else "PNG")


def _mimic(root: str, n_patients: int = 6, reports_root: str | None = None) -> dict[str, list[str]]:
    """files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg (a PA and a lateral) + sXXXXXXXX.txt, metadata CSV."""
    meta, by_patient = [], {}
    for p in range(n_patients):
        subject = f"p1{p:07d}"
        group = subject[:3]
        by_patient[subject] = []
        for k in range(2 if p % 2 == 0 else 1):
            study = f"s5{p:04d}{k:03d}"
            by_patient[subject].append(study)
            folder = os.path.join(root, "files", group, subject, study)
            for view, tag in (("LATERAL", "b"), ("PA", "a")):  # the lateral sorts first by name
                dicom_id = f"{tag}{p:03d}{k}-0000"
                _png(os.path.join(folder, dicom_id + ".jpg"), p * 10 + k, ".jpg")
                meta.append({"dicom_id": dicom_id, "subject_id": subject[1:], "study_id": study[1:],
                             "PerformedProcedureStepDescription": "CHEST (PA AND LAT)", "ViewPosition": view,
                             "Rows": 24, "Columns": 24, "StudyDate": f"2180{(k % 9) + 1:02d}15", "StudyTime": "101500"})
            rep_dir = os.path.join(reports_root or os.path.join(root, "files"), group, subject)
            os.makedirs(rep_dir, exist_ok=True)
            side = SIDES[(p + k) % 2]
            with open(os.path.join(rep_dir, study + ".txt"), "w", encoding="utf-8") as fh:
                fh.write(MIMIC_REPORT.format(size="small", Size="Small", side=side))
    with open(os.path.join(root, "mimic-cxr-2.0.0-metadata.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(meta[0]))
        w.writeheader()
        w.writerows(meta)
    return by_patient


def _iu(root: str, n: int = 8) -> None:
    """indiana_reports.csv + indiana_projections.csv + images/images_normalized/<uid>_IM-....dcm.png."""
    img_dir = os.path.join(root, "images", "images_normalized")
    os.makedirs(img_dir, exist_ok=True)
    with open(os.path.join(root, "indiana_reports.csv"), "w", newline="", encoding="utf-8") as fr, \
            open(os.path.join(root, "indiana_projections.csv"), "w", newline="", encoding="utf-8") as fp:
        rep = csv.writer(fr)
        rep.writerow(["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"])
        proj = csv.writer(fp)
        proj.writerow(["uid", "filename", "projection"])
        for uid in range(1, n + 1):
            side = SIDES[uid % 2]
            findings = (f"Small {side} pleural effusion. The heart is normal in size. No pneumothorax."
                        if uid != 3 else "")
            impression = f"Small {side} pleural effusion." if uid != 3 else ""
            rep.writerow([uid, "Pleural Effusion", "Pleural Effusion", "Xray Chest PA and Lateral",
                          "XXXX-year-old with cough.", "None.", findings, impression])
            for k, projection in ((2, "Lateral"), (1, "Frontal")):
                name = f"{uid}_IM-{uid:04d}-{k}001.dcm.png"
                proj.writerow([uid, name, projection])
                if not (uid == 5 and projection == "Lateral"):  # one listed image is missing
                    _png(os.path.join(img_dir, name), uid * 7 + k)
        proj.writerow([n, "../../escape.png", "Frontal"])  # a filename leaving the image folder


# ------------------------------------------------------------------ readers
def test_mimic_reader_studies_patients_views_and_problems(tmp_path):
    root = str(tmp_path / "mimic")
    by_patient = _mimic(root)
    # a report without images and a study folder without a report
    os.makedirs(os.path.join(root, "files", "p10", "p19999999"))
    with open(os.path.join(root, "files", "p10", "p19999999", "s59999999.txt"), "w") as fh:
        fh.write("FINDINGS: none.")
    os.makedirs(os.path.join(root, "files", "p10", "p10000000", "s58888888"))
    _png(os.path.join(root, "files", "p10", "p10000000", "s58888888", "x.jpg"), 1, ".jpg")
    assert detect_corpus(root) == "mimic-cxr" and detect_corpus(os.path.join(root, "files")) == "mimic-cxr"
    studies = list(iter_mimic_cxr(root))
    ok = [s for s in studies if not s.problem]
    assert sorted(s.study_id for s in ok) == sorted(s for v in by_patient.values() for s in v)
    problems = {s.study_id: s.problem for s in studies if s.problem}
    assert "no image" in problems["s59999999"] and "no report" in problems["s58888888"]
    s = next(x for x in ok if x.study_id == "s50000000")
    assert s.patient_key == "p10000000" and s.source == "mimic-cxr" and s.exam_date == "2180-01-15"
    assert [i.view for i in s.images] == ["PA", "LATERAL"]  # frontal first (the checker's view), from the metadata
    assert "right pleural effusion" in s.report and s.exam_description == "CHEST (PA AND LAT)"
    assert list(iter_mimic_cxr(os.path.join(root, "files"), metadata=os.path.join(root, "mimic-cxr-2.0.0-metadata.csv"))
                )[0].images[0].view == "PA"  # root given as 'files' itself


def test_mimic_reports_in_their_own_tree_and_refused_files(tmp_path):
    root, reports = str(tmp_path / "jpg"), str(tmp_path / "mimic-cxr-reports")
    _mimic(root, n_patients=2, reports_root=os.path.join(reports, "files"))
    assert all(s.problem and "no report" in s.problem for s in iter_mimic_cxr(root))
    studies = list(iter_mimic_cxr(root, reports=reports))
    assert studies and all(not s.problem and s.report for s in studies)
    # a report symlinked to a file outside the reports tree is not read
    outside = tmp_path / "secret.txt"
    outside.write_text("FINDINGS: someone else's report.")
    target = os.path.join(reports, "files", "p10", "p10000000", "s50000000.txt")
    os.remove(target)
    os.symlink(outside, target)
    bad = next(s for s in iter_mimic_cxr(root, reports=reports) if s.study_id == "s50000000")
    assert bad.report is None and "outside" in bad.problem
    with pytest.raises(InputError, match="patient groups"):
        list(iter_mimic_cxr(str(tmp_path)))


def test_iu_xray_reader(tmp_path):
    root = str(tmp_path / "iu")
    _iu(root)
    assert detect_corpus(root) == "iu-xray"
    studies = {s.study_id: s for s in iter_iu_xray(root)}
    assert len(studies) == 8
    s1 = studies["1"]
    assert not s1.problem and s1.source == "iu-xray" and s1.patient_key is None
    assert s1.report == "FINDINGS: Small left pleural effusion. The heart is normal in size. No pneumothorax.\n\n" \
                        "IMPRESSION: Small left pleural effusion."
    assert [i.view for i in s1.images] == ["FRONTAL", "LATERAL"] and all(os.path.isfile(i.path) for i in s1.images)
    assert s1.extra["indication"] == "XXXX-year-old with cough."
    assert "empty report" in studies["3"].problem
    assert "not found" in studies["5"].problem  # a listed image missing
    assert "outside the audited folder" in studies["8"].problem  # ../ in a filename
    os.remove(os.path.join(root, "indiana_projections.csv"))
    with pytest.raises(InputError, match="indiana_projections.csv"):
        list(iter_iu_xray(root))


# ------------------------------------------------------------------ checker-data
def _summary(out: str) -> dict:
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _samples(out: str) -> list[dict]:
    rows = []
    for split in ("train", "calib", "eval"):
        with open(os.path.join(out, f"{split}.jsonl"), encoding="utf-8") as fh:
            rows += [json.loads(ln) for ln in fh if ln.strip()]
    return rows


def test_checker_data_from_mimic_splits_by_patient(tmp_path, capsys):
    root, out = str(tmp_path / "mimic"), str(tmp_path / "out")
    by_patient = _mimic(root, n_patients=12)
    assert main(["checker-data", "--input", root, "--out", out]) == 0
    summary = _summary(out)
    assert summary["studies"] == sum(len(v) for v in by_patient.values()) and summary["left_out"]["studies"] == 0
    samples = _samples(out)
    patient_of = {s: p for p, ss in by_patient.items() for s in ss}
    splits: dict[str, set[str]] = {}
    for s in samples:
        splits.setdefault(patient_of[s["study_id"]], set()).add(s["split"])
        assert all(os.path.isfile(os.path.join(out, p)) for p in s["images"])  # relative to the output folder
        assert [os.path.basename(p)[0] for p in s["images"]] == ["a"]  # the PA view; its lateral left out
    assert all(len(v) == 1 for v in splits.values())  # a patient's studies never in two splits
    assert len({next(iter(v)) for v in splits.values()}) >= 2
    simple = [s for s in samples if s["task"] == "simple"]
    assert sum(s["has_error"] for s in simple) == sum(not s["has_error"] for s in simple)  # 1:1 by default
    assert any(s["task"] == "complex" for s in samples)


def test_checker_data_paper_protocol_from_iu_xray(tmp_path):
    root, out = str(tmp_path / "iu"), str(tmp_path / "out")
    _iu(root, n=30)
    assert main(["checker-data", "--input", root, "--out", out, "--paper-protocol", "--seed", "1"]) == 0
    summary = _summary(out)
    assert summary["config"]["paper_protocol"] and summary["format"] == "auto"
    assert summary["studies"] == 27 and summary["left_out"]["studies"] == 3  # empty report, missing image, escape
    samples = _samples(out)
    assert {s["task"] for s in samples} == {"simple", "complex"}
    assert all(len(s["images"]) == 1 and "-1001" in s["images"][0] for s in samples)  # the frontal view only
    assert any(s["error"] and not s["error"]["text_detectable"] for s in samples)  # image-only error models too
    again = str(tmp_path / "again")
    assert main(["checker-data", "--input", root, "--out", again, "--paper-protocol", "--seed", "1",
                 "--format", "iu-xray", "--n-reports", "10"]) == 0
    assert _summary(again)["studies"] == 10  # a fixed hash sample of the corpus


def test_checker_data_synth_manifest_and_rows_through_medmm_studies(tmp_path):
    from medmm.reports.checker_data import studies_from_rows, studies_from_synth_manifest
    from medmm.synth import SMALL, synthesize

    syn = tmp_path / "syn"
    synthesize(str(syn), 3, seed=2, kinds=("cxr",), config=SMALL, workers=1)
    studies = studies_from_synth_manifest(str(syn / "manifest.jsonl"))
    raw = [json.loads(ln) for ln in open(syn / "manifest.jsonl", encoding="utf-8")]
    assert [s["study_id"] for s in studies] == [r["study_id"] for r in raw]
    assert [s["images"] for s in studies] == [[i["path"] for i in r["images"] if i.get("format") != "nifti"]
                                               for r in raw]  # relative to the manifest, as before
    assert [s["findings"] for s in studies] == [r["findings"] for r in raw]
    assert all("patient_id" not in s for s in studies)  # synthetic patient keys repeat: split by study
    rows = tmp_path / "syn" / "rows.jsonl"
    with open(rows, "w", encoding="utf-8") as fh:
        for r in raw:
            fh.write(json.dumps({"id": r["study_id"], "report": r["report"], "patient_id": "P1",
                                 "images": [r["images"][0]["path"]]}) + "\n")
        fh.write(json.dumps({"id": "escape", "report": "x", "images": ["../../etc/hostname"]}) + "\n")
    left_out: list[str] = []
    got = studies_from_rows(str(rows), left_out)
    assert [s["study_id"] for s in got] == [r["study_id"] for r in raw]  # the escaping row is left out
    assert len(left_out) == 1 and left_out[0].startswith("escape: image 1:") and "outside" in left_out[0]
    assert all(s["patient_id"] == "P1" for s in got)


@pytest.mark.slow  # ~20 s wall on a busy 2-core machine (9 s CPU)
def test_paper_protocol_data_from_both_corpora_trains_with_checker_lora(tmp_path):
    """The documented protocol end to end on the fixtures: checker-data --paper-protocol on a MIMIC-CXR and an
    IU-Xray folder, then a few LoRA steps of configs/finetune/checker-lora.yaml (a tiny model in place of the
    local checkpoint) on the MIMIC samples."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _mimic(str(tmp_path / "mimic"), n_patients=10)
    _iu(str(tmp_path / "iu"), n=12)
    for corpus in ("mimic", "iu"):
        assert main(["checker-data", "--input", str(tmp_path / corpus), "--out", str(tmp_path / f"data-{corpus}"),
                     "--paper-protocol"]) == 0
        assert _summary(str(tmp_path / f"data-{corpus}"))["config"]["paper_protocol"]
    data = tmp_path / "data-mimic"
    cmd = [sys.executable, "-m", "medmm.cli", "finetune", "--config", os.path.join(repo, "configs/finetune/checker-lora.yaml"),
           "--set", "model.spec=tiny:llava", "--set", "model.options={}", "--set", f"data.train={data / 'train.jsonl'}",
           "--set", f"data.eval={data / 'eval.jsonl'}", "--set", f"data.checker_calib={data / 'calib.jsonl'}",
           "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "train.grad_accum=1",
           "--set", "train.gradient_checkpointing=false", "--set", "eval.checker=false", "--set", "eval.every=0",
           "--set", "checkpoint.every=0", "--set", "optim.warmup_steps=0", "--set", f"output_dir={tmp_path / 'run'}"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "final_loss" in res.stdout


@pytest.mark.parametrize("corpus", ["mimic-cxr", "iu-xray"])
def test_a_sample_reads_only_what_it_keeps_and_is_the_same_sample(tmp_path, corpus, monkeypatch):
    """--n-reports / --paper-protocol on a corpus: the studies are read in hash order and reading stops at the
    limit; the sample is the one taking every usable study and then the first N by the hash would give."""
    from medmm.reports import checker_data
    from medmm.studies import public

    root = str(tmp_path / "c")
    _mimic(root, n_patients=12) if corpus == "mimic-cxr" else _iu(root, n=30)
    everything = checker_data.studies_from_corpus(root, corpus)
    want = sorted(s["study_id"] for s in sorted(everything, key=lambda s: checker_data.sample_key(s["study_id"]))[:5])
    read = []
    original = public._read_text if corpus == "mimic-cxr" else public.iu_report_text

    def counting(arg):  # noqa: ANN001, ANN202
        read.append(arg)
        return original(arg)

    monkeypatch.setattr(public, "_read_text" if corpus == "mimic-cxr" else "iu_report_text", counting)
    got = checker_data.studies_from_corpus(root, corpus, limit=5)
    assert sorted(s["study_id"] for s in got) == want
    assert len(read) < len(everything)  # stopped early


def test_checker_data_error_models_option_reads_key_values(tmp_path, capsys):
    # --error-models goes through the one KEY=VALUE reader (medmm.runs.parse_key_values); a bare name weighs 1
    root = str(tmp_path / "mimic")
    _mimic(root, n_patients=4)
    out = str(tmp_path / "out")
    assert main(["checker-data", "--input", root, "--out", out,
                 "--error-models", "side swap (every mention)=3, medmm inject"]) == 0
    assert _summary(out)["config"]["error_models"] == {"side swap (every mention)": 3.0, "medmm inject": 1.0}
    assert main(["checker-data", "--input", root, "--out", str(tmp_path / "bad"),
                 "--error-models", "side swap (every mention)=lots"]) == 2
    assert "must be a number" in capsys.readouterr().err

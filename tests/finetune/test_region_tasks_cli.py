"""`medmm region-tasks`: a VinDr-CXR file over real DICOM radiographs to samples, ShareGPT and InternVL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pydicom
from PIL import Image


def test_vindr_over_dicom_to_exports(tmp_path):
    synth = tmp_path / "synth"
    subprocess.run([sys.executable, "-m", "medmm.cli", "synth", "--out", str(synth), "--n", "1", "--seed", "2", "--small",
                    "--kinds", "cxr", "--workers", "1"], check=True, capture_output=True)
    (dcm,) = [p for p in (synth / "studies").rglob("cxr_*.dcm") if "lateral" not in p.name]
    images = tmp_path / "train"
    images.mkdir()
    shutil.copy(dcm, images / "abc123.dicom")
    ds = pydicom.dcmread(str(dcm), stop_before_pixels=True)
    csv = tmp_path / "annotations_train.csv"
    csv.write_text("image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"
                   "abc123,R1,Nodule/Mass,10,12,30,40\nabc123,R1,Nodule/Mass,50,12,70,40\n"
                   "missing,R1,Nodule/Mass,1,1,5,5\nabc123,R2,No finding,,,,\n")
    out = tmp_path / "out" / "samples.jsonl"
    p = subprocess.run([sys.executable, "-m", "medmm.cli", "region-tasks", "--format", "vindr-cxr", "--input", str(csv),
                        "--images", str(images), "--out", str(out), "--sharegpt", str(tmp_path / "out" / "sg.json"),
                        "--internvl", str(tmp_path / "out" / "ivl.jsonl")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "missing: " in p.stderr  # the image that does not exist is named, the rest goes on
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["task"] for r in rows} == {"text_to_region", "region_to_text", "grounded_report"}
    assert all((r["width"], r["height"]) == (ds.Columns, ds.Rows) for r in rows)
    t2r = [r for r in rows if r["task"] == "text_to_region"][0]
    assert len(t2r["objects"][0]["boxes"]) == 2
    sg = json.loads((tmp_path / "out" / "sg.json").read_text())
    assert len(sg) == len(rows)
    assert Image.open(sg[0]["images"][0]).size == (ds.Columns, ds.Rows)  # the DICOM rendered to PNG, same pixels
    ivl = [json.loads(x) for x in (tmp_path / "out" / "ivl.jsonl").read_text().splitlines()]
    w, h = ds.Columns, ds.Rows
    want = [round(10 / w * 999), round(12 / h * 999), round(30 / w * 999), round(40 / h * 999)]
    assert f"[{', '.join(map(str, want))}]" in [x for x in ivl if "t2r" in x["id"]][0]["conversations"][1]["value"]

"""Region tasks: the three MedRegA tasks from annotations, synthetic manifests and label maps; exports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from medmm.errors import InputError
from medmm.regions.box import Box
from medmm.regions.codecs import get_codec
from medmm.regions.frames import InputTransform
from medmm.regions.labelmaps import LabelMapOptions
from medmm.regions.readers import AnnotatedImage, LabeledRegion
from medmm.studies import iter_manifest
from medmm.regions.tasks import (Sample, SplitSpec, conversation, export_internvl, export_sharegpt, read_jsonl,
                                 samples_from_annotations, synthetic_samples, with_split, write_jsonl)


@pytest.fixture
def annotated(tmp_path):
    Image.fromarray(np.zeros((200, 100, 3), dtype=np.uint8)).save(tmp_path / "cxr.png")  # width 100, height 200
    lungs = LabeledRegion("lung", (Box(10, 20, 40, 180, label="lung"), Box(60, 20, 90, 180, label="lung")))
    heart = LabeledRegion("heart", (Box(40, 100, 70, 160, label="heart"),), phrase="enlarged heart")
    return AnnotatedImage("img1", "test", (lungs, heart), image_path=str(tmp_path / "cxr.png"), width=100, height=200,
                          modality="DX")


def test_the_three_tasks_in_medrega_format(annotated):
    samples = samples_from_annotations([annotated])
    assert [s.task for s in samples] == ["text_to_region", "region_to_text", "region_to_text", "text_to_region",
                                         "region_to_text", "grounded_report"]
    codec = get_codec("medrega")
    t2r = conversation(samples[0], codec)
    assert t2r.user == "Please locate <ref>lung</ref> in this chest X-ray."
    # x: v = round(x / 100 * 999), y: round(y / 200 * 999)
    assert t2r.assistant == "<ref>lung</ref><box>[[100, 100, 400, 899], [599, 100, 899, 899]]</box>"
    assert "object detection" in t2r.system
    r2t = conversation(samples[4], codec)
    assert r2t.user == "What is <ref>this</ref><box>[[400, 500, 699, 799]]</box> in this chest X-ray?"
    assert r2t.assistant == "enlarged heart"
    rep = conversation(samples[5], codec)
    assert rep.user == "Please locate the region and describe the condition of <ref>lung</ref>, <ref>heart</ref>"
    assert rep.assistant.startswith("<ref>lung</ref><box>[[100, 100, 400, 899], [599, 100, 899, 899]]</box>, <ref>heart</ref>")
    assert rep.assistant.endswith(": enlarged heart")


def test_conversation_uses_the_model_input_frame(annotated):
    s = samples_from_annotations([annotated], tasks=["text_to_region"])[1]  # heart
    t = InputTransform.identity(100, 200).smart_resize(factor=28)  # 100x200 -> 112x196
    assert t.size == (112, 196)
    text = conversation(s, get_codec("qwen2.5-vl"), t).assistant
    # x * 1.12, y * 0.98 -> [44.8, 98, 78.4, 156.8] rounded
    assert json.loads(text) == [{"bbox_2d": [45, 98, 78, 157], "label": "enlarged heart"}]
    with pytest.raises(InputError):
        conversation(s, get_codec("qwen2.5-vl"), InputTransform.identity(50, 50))


def test_jsonl_round_trip_and_bad_lines(annotated, tmp_path):
    samples = samples_from_annotations([annotated])
    path = tmp_path / "s.jsonl"
    assert write_jsonl(samples, path) == 6
    with open(path, "a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"id": "x", "task": "nope", "image": "a", "width": 1, "height": 1,
                             "objects": [{"label": "a", "boxes": [{"x1": 0, "y1": 0, "x2": 1, "y2": 1}]}]}) + "\n")
    back, problems = read_jsonl(path)
    assert back == samples
    assert len(problems) == 2 and problems[0].startswith("line 7") and problems[1].startswith("line 8")


def test_exports(annotated, tmp_path):
    samples = samples_from_annotations([annotated])
    n = export_sharegpt(samples, tmp_path / "sg.json", codec="qwen2-vl")
    data = json.loads((tmp_path / "sg.json").read_text())
    assert n == len(data) == 6
    for rec in data:
        assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant"]
        assert sum(m["content"].count("<image>") for m in rec["messages"]) == len(rec["images"]) == 1
    assert data[0]["messages"][2]["content"] == (
        "<|object_ref_start|>lung<|object_ref_end|><|box_start|>(100,100),(400,900)<|box_end|>"
        "<|box_start|>(600,100),(900,900)<|box_end|>")
    export_internvl(samples, tmp_path / "ivl.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "ivl.jsonl").read_text().splitlines()]
    assert set(lines[0]) == {"id", "image", "width", "height", "conversations"}
    assert lines[0]["width"] == 100 and lines[0]["height"] == 200
    assert lines[0]["conversations"][0]["from"] == "human" and lines[0]["conversations"][0]["value"].startswith("<image>\n")
    assert lines[0]["conversations"][1] == {"from": "gpt", "value": "<ref>lung</ref><box>[[100, 100, 400, 899], [599, 100, 899, 899]]</box>"}


def test_split_is_by_study(annotated):
    samples = samples_from_annotations([annotated, AnnotatedImage("img2", "t", annotated.regions, image_path="b.png",
                                                                  width=100, height=200)])
    split = with_split(samples, SplitSpec(fraction=0.5, seed=1))
    by_study = {}
    for s in split:
        by_study.setdefault(s.study_id, set()).add(s.split)
    assert all(len(v) == 1 for v in by_study.values())


def test_synthetic_samples_match_the_label_maps(tmp_path):
    out = tmp_path / "synth"
    subprocess.run([sys.executable, "-m", "medmm.cli", "synth", "--out", str(out), "--n", "3", "--seed", "5", "--small",
                    "--kinds", "ct"], check=True, capture_output=True)
    studies = list(iter_manifest(str(out / "manifest.jsonl")))  # the one study record (medmm.studies)
    with pytest.raises(InputError, match="iter_manifest"):  # a manifest path is not read by hand here
        synthetic_samples(out / "manifest.jsonl", tmp_path / "ds", {"heart": 4})
    samples = synthetic_samples(studies, tmp_path / "ds", {"lung_right": 2, "lung_left": 3, "heart": 4},
                                tasks=["text_to_region"], options=LabelMapOptions(max_slices=3))
    assert samples and all(s.task == "text_to_region" for s in samples)
    import nibabel as nib

    for s in samples[:6]:
        img = Image.open(tmp_path / "ds" / s.image)
        assert img.size == (s.width, s.height)
        box = s.objects[0].boxes[0]
        study = json.loads([x for x in (out / "manifest.jsonl").read_text().splitlines() if s.study_id in x][0])
        lm = np.asanyarray(nib.load(str(out / study["images"][box.image]["label_map"])).dataobj)
        value = {"right lung": 2, "left lung": 3, "heart": 4}.get(s.objects[0].label)
        if value is None:  # a finding: its label value from the manifest
            value = [f["label"] for f in study["findings"] if f["type"].replace("_", " ") == s.objects[0].label][0]
        plane = lm[:, :, box.slice].T == value
        rows, cols = np.flatnonzero(plane.any(1)), np.flatnonzero(plane.any(0))
        union = (min(b.x1 for b in s.objects[0].boxes), min(b.y1 for b in s.objects[0].boxes),
                 max(b.x2 for b in s.objects[0].boxes), max(b.y2 for b in s.objects[0].boxes))
        assert union == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)


def test_sample_needs_objects():
    with pytest.raises(InputError):
        Sample("a", "text_to_region", "x.png", 10, 10, ())

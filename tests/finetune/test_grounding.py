"""Grounding metrics with hand-computed values, acquisition-pixel scoring, and a killed evaluation resuming."""

from __future__ import annotations

import json
import os

import pytest

from medmm.finetune.grounding import GroundingSettings, box_stats, evaluate, predicted_boxes, score, token_scores
from medmm.finetune.inputs import input_transform
from medmm.regions.box import Box, iou
from medmm.regions.codecs import RefBoxes, get_codec
from medmm.regions.frames import InputTransform
from medmm.regions.readers import LabeledRegion
from medmm.regions.tasks import Sample


def _t2r(sid, boxes, label="heart", w=100, h=100):
    return Sample(sid, "text_to_region", "x.png", w, h,
                  (LabeledRegion(label, tuple(Box(*b, image=0, slice=3, label=label) for b in boxes)),))


def _r2t(sid, target):
    return Sample(sid, "region_to_text", "x.png", 100, 100, (LabeledRegion(target, (Box(0, 0, 10, 10, slice=3),)),))


def test_hand_computed_metrics():
    codec = get_codec("medrega", scale=100)  # grid value = pixel on a 100 x 100 image
    samples = [_t2r("a", [(10, 10, 50, 50)]), _t2r("b", [(10, 10, 50, 50)]), _t2r("c", [(10, 10, 50, 50)]),
               _t2r("d", [(0, 0, 20, 20), (60, 60, 100, 100)], label="lung"), _r2t("e", "left lung"), _r2t("f", "left lung")]
    answers = {"a": "<ref>heart</ref><box>[[10, 10, 50, 50]]</box>",
               "b": "<ref>heart</ref><box>[[30, 10, 70, 50]]</box>",  # IoU 800 / 2400
               "c": "<box>[[10, 10, 50",  # malformed: no box
               "d": "<ref>lung</ref><box>[[0, 0, 20, 20], [30, 30, 40, 40], [45, 45, 50, 50]]</box>",
               "e": "left lung", "f": "the lung"}
    stats = box_stats([_t2r("s1", [(0, 0, 50, 50)]), _t2r("s2", [(50, 50, 100, 100)])])
    assert stats["mean_box"] == pytest.approx([0.25, 0.25, 0.75, 0.75])
    m = score(samples, answers, codec, lambda s: InputTransform.identity(s.width, s.height), stats)
    assert m["n"] == 4
    assert m["parse_rate"] == pytest.approx(3 / 4)
    assert m["miou"] == pytest.approx((1 + 1 / 3 + 0 + 1) / 4)
    assert m["acc@0.25"] == pytest.approx(3 / 4) and m["acc@0.5"] == pytest.approx(2 / 4)
    base_heart = 625 / (1600 + 2500 - 625)  # mean box (25, 25, 75, 75) vs (10, 10, 50, 50)
    base_lung = 225 / (1600 + 2500 - 225)  # vs (60, 60, 100, 100): 15 x 15 of 40 x 40
    assert m["baseline_miou"] == pytest.approx((3 * base_heart + base_lung) / 4)
    # multi-box: matched a(1) + b(0, IoU 1/3 < 0.5) + d(1 of 3 predicted, 1 of 2 true)
    assert m["multi_box"]["precision"] == pytest.approx(2 / 5)  # matched / predicted
    assert m["multi_box"]["recall"] == pytest.approx(2 / 5)  # matched / true (1+1+1+2 = 5)
    assert m["region_to_text"]["accuracy"] == pytest.approx(1 / 2)
    assert m["region_to_text"]["token_f1"] == pytest.approx((1 + 2 * (1 / 2) * (1 / 2) / 1) / 2)
    assert m["per_class"]["heart"]["n"] == 3 and m["per_class"]["lung"]["miou"] == pytest.approx(1.0)


def test_precision_and_recall_are_not_swapped():
    codec = get_codec("medrega", scale=100)
    s = _t2r("a", [(0, 0, 20, 20), (60, 60, 100, 100)])
    m = score([s], {"a": "<box>[[0, 0, 20, 20]]</box>"}, codec, lambda x: InputTransform.identity(100, 100), None)
    assert m["multi_box"]["precision"] == 1.0 and m["multi_box"]["recall"] == 0.5


def test_token_scores():
    assert token_scores("left lung", "Left lung") == (1.0, 1.0)
    assert token_scores("", "left lung") == (0.0, 0.0)


def test_predictions_are_scored_in_acquisition_pixels():
    from medmm.models.tiny import build_tiny

    vlm = build_tiny("llava")
    s = _t2r("a", [(20, 10, 60, 50)], w=200, h=100)  # LLaVA pads 200 x 100 to 200 x 200, then resizes to 64
    t = input_transform(vlm, 200, 100)
    assert t.size == (64, 64)
    assert t.forward(20, 10) == pytest.approx((20 * 0.32, (10 + 50) * 0.32))
    codec = get_codec("medrega")
    text = codec.encode([RefBoxes("heart", (s.objects[0].boxes[0].to_model(t).as_tuple(),))], t.size)
    (pred,) = predicted_boxes(text, s, codec, t)
    assert pred.frame.to_dict() == {"frame": "acquisition"} and pred.slice == 3
    assert iou(pred, s.objects[0].boxes[0]) > 0.9


def test_killed_evaluation_resumes_from_the_cache(region_data, tmp_path):
    from medmm.models.tiny import build_tiny

    vlm = build_tiny("llava")
    samples = [s for s in region_data["eval_samples"] if s.task == "text_to_region"][:3] + \
              [s for s in region_data["eval_samples"] if s.task == "region_to_text"][:3]
    root = os.path.dirname(region_data["eval"])
    codec = get_codec("medrega", scale=99)
    settings = GroundingSettings(max_new_tokens=6, batch_size=2, system_prompt=False)
    calls = []
    real = vlm.generate

    def dying(reqs, **kw):
        calls.append(len(reqs))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(reqs, **kw)

    vlm.generate = dying
    cache = str(tmp_path / "cache.sqlite")
    with pytest.raises(KeyboardInterrupt):
        evaluate(vlm, samples, codec, root, cache, settings)
    calls.clear()
    vlm.generate = lambda reqs, **kw: (calls.append(len(reqs)), real(reqs, **kw))[1]
    resumed = evaluate(vlm, samples, codec, root, cache, settings)
    assert sum(calls) == 4  # the first batch of 2 was kept
    vlm.generate = real
    fresh = evaluate(vlm, samples, codec, root, str(tmp_path / "fresh.sqlite"), settings)
    assert {k: v for k, v in resumed.items()} == fresh
    assert resumed["n"] == 3 and resumed["region_to_text"]["n"] == 3


def test_grounding_eval_cli(region_data, tmp_path):
    import subprocess
    import sys

    from medmm.models.tiny import build_tiny

    build_tiny("llava").save(str(tmp_path / "m"))
    out = tmp_path / "metrics.json"
    proc = subprocess.run([sys.executable, "-m", "medmm.cli", "grounding-eval", "--model", f"hf:{tmp_path / 'm'}",
                           "--data", region_data["eval"], "--train-data", region_data["train"], "--out", str(out),
                           "--max-samples", "4", "--max-new-tokens", "4", "--codec", "medrega", "--codec-option",
                           "scale=99", "--system-prompt", "off"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(out.read_text())
    for key in ("n", "miou", "acc@0.25", "acc@0.5", "acc@0.75", "parse_rate", "baseline_miou", "per_class"):
        assert key in m
    assert set(m["multi_box"]) >= {"precision", "recall", "f1"} and set(m["region_to_text"]) >= {"accuracy", "token_f1"}
    assert m["n"] == 4 and m["baseline_miou"] > 0


def test_an_unreadable_image_is_recorded_not_fatal(region_data, tmp_path):
    from dataclasses import replace

    from medmm.models.tiny import build_tiny

    vlm = build_tiny("llava")
    good = [s for s in region_data["eval_samples"] if s.task == "text_to_region"][:2]
    bad = replace(good[0], id="broken", image="images/does-not-exist.png")
    m = evaluate(vlm, good + [bad], get_codec("medrega", scale=99), os.path.dirname(region_data["eval"]),
                 str(tmp_path / "c.sqlite"), GroundingSettings(max_new_tokens=4, system_prompt=False))
    assert m["n"] == 2 and m["failed"]["n"] == 1 and "broken" in m["failed"]["first"][0]


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl"])
@pytest.mark.parametrize("size", [(100, 120), (300, 90), (57, 57)])
def test_qwen_model_frame_is_the_processors_own_resize(family, size):
    """The box frame of Qwen models is the size the processor really resizes to (its patch grid)."""
    from PIL import Image

    from medmm.models.tiny import build_tiny

    vlm = build_tiny(family)
    ip = vlm.processor.image_processor
    enc = ip(images=[Image.new("RGB", size)], return_tensors="pt")
    _, gh, gw = enc["image_grid_thw"][0].tolist()
    assert input_transform(vlm, *size).size == (gw * ip.patch_size, gh * ip.patch_size)

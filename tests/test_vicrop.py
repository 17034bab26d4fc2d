"""ViCrop: exact crop coordinates, the crop handed to the model, answer changes recorded; the attention
crop; visual prompts through `medmm ask --box`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from medmm.errors import InputError
from medmm.models.base import Generation, UnsupportedError
from medmm.models.vicrop import attention_box, best_window, crop_with_margin, vicrop, visual_prompt


def test_crop_with_margin_is_exact():
    assert crop_with_margin((40, 30, 60, 50), (200, 100), margin=0.5, min_side=1) == (30, 20, 70, 60)
    assert crop_with_margin((40.2, 30.5, 59.7, 49.1), (200, 100), margin=0.0, min_side=1) == (40, 30, 60, 50)
    # clipped at the border
    assert crop_with_margin((0, 0, 20, 10), (200, 100), margin=1.0, min_side=1) == (0, 0, 40, 20)
    # a tiny box grows to min_side around its centre, shifted inside the image at the border
    assert crop_with_margin((100, 50, 102, 52), (200, 100), margin=0.0, min_side=16) == (93, 43, 109, 59)
    assert crop_with_margin((198, 98, 200, 100), (200, 100), margin=0.0, min_side=16) == (184, 84, 200, 100)
    with pytest.raises(InputError):
        crop_with_margin((10, 10, 5, 20), (200, 100))


class _Scripted:
    """A model that records its requests and answers by the number of images."""

    name = "scripted"
    model_type = "other"

    def __init__(self):
        self.requests = []

    def generate(self, requests, max_new_tokens=64, **kw):
        self.requests.extend(requests)
        return [Generation("no nodule" if len(r.images) == 1 else "small nodule", 1, 1, 0.0) for r in requests]


def test_vicrop_with_a_box_records_the_change():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (100, 200, 3), dtype=np.uint8)
    image = Image.fromarray(arr)
    model = _Scripted()
    res = vicrop(model, image, "Is there a nodule?", box=(40, 30, 60, 50), margin=0.5, min_side=1)
    assert res.crop == (30, 20, 70, 60) and res.method == "box"
    assert res.answer_full == "no nodule" and res.answer == "small nodule" and res.changed
    first, second = model.requests
    assert len(first.images) == 1 and len(second.images) == 2
    full, crop = second.pil_images()
    assert np.array_equal(np.asarray(full), arr)
    assert np.array_equal(np.asarray(crop), arr[20:60, 30:70])  # rows y1..y2-1, columns x1..x2-1
    assert json.loads(json.dumps(res.to_dict()))["changed"] is True


def test_best_window_finds_the_peak():
    ratio = np.ones((4, 4))
    ratio[2, 3] = 20.0
    r, c, k, score = best_window(ratio, [1, 2])
    assert (r, c, k) == (2, 3, 1)
    assert score == pytest.approx(20 / 35 - 1 / 16)


def test_attention_crop_maps_the_token_grid_back_to_the_image():
    from medmm.models.tiny import build_tiny

    vlm = build_tiny("llava")  # 64 x 64 input, 16 px patches: a 4 x 4 token grid
    image = Image.new("RGB", (128, 128), (30, 30, 30))
    peak = np.ones(16)
    peak[2 * 4 + 1] = 50.0  # row 2, column 1
    calls = []

    def fake_attention(request):
        calls.append(request.prompt)
        return [peak if len(calls) == 1 else np.ones(16)]

    vlm.image_attention = fake_attention
    assert attention_box(vlm, image, "Is there a nodule?", window_fractions=(0.25,)) == (32, 64, 64, 96)
    del vlm.image_attention
    real = attention_box(vlm, image, "Is there a nodule?")  # the real attention: a window inside the image
    x1, y1, x2, y2 = real
    assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
    res = vicrop(vlm, image, "Is there a nodule?", max_new_tokens=4)
    assert res.method == "attention" and res.crop == real


def test_attention_crop_needs_a_llava_model():
    from medmm.models.tiny import build_tiny

    with pytest.raises(UnsupportedError):
        attention_box(build_tiny("qwen2-vl"), Image.new("RGB", (64, 64)), "q")


def test_visual_prompt_phrase():
    assert visual_prompt("Is this a nodule?", "ellipse") == "Is this a nodule? Look at the region marked by the red ellipse."
    assert visual_prompt("What is in the red box?") == "What is in the red box?"


def test_ask_cli_box_and_vicrop(tmp_path):
    from medmm.models.tiny import build_tiny

    build_tiny("llava").save(str(tmp_path / "m"))
    Image.new("RGB", (96, 64), (120, 60, 60)).save(tmp_path / "x.png")
    base = [sys.executable, "-m", "medmm.cli", "ask", "--model", f"hf:{tmp_path / 'm'}", "--image", str(tmp_path / "x.png"),
            "--prompt", "Is there a nodule?", "--max-new-tokens", "3", "--json"]
    p = subprocess.run(base + ["--box", "10,10,40,30", "--box-shape", "ellipse"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["prompt"].endswith("marked by the red ellipse.")
    p = subprocess.run(base + ["--box", "10,10,40,30", "--vicrop", "--margin", "0"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["crop"] == [10, 10, 40, 30] and out["method"] == "box" and "changed" in out
    p = subprocess.run(base + ["--box", "10,10,5,30"], capture_output=True, text=True)
    assert p.returncode != 0 and "x2 must exceed x1" in p.stderr

"""Box codecs: exact formats of each family, robust decoding, and round trips through the Box frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medmm.errors import ConfigError
from medmm.regions.box import Box
from medmm.regions.codecs import CODECS, RefBoxes, clip_box, get_codec
from medmm.regions.frames import InputTransform, Model
from medmm.regions.geometry import Geometry

SIZE = (1000.0, 500.0)


def test_medrega_format_matches_the_paper():
    c = get_codec("medrega")
    # MedRegA: pixel = v / 999 * W; on a 999 x 1998 image x = v and y = 2 v
    size = (999.0, 1998.0)
    text = c.encode([RefBoxes("carotid vessel wall", ((365.0, 586.0, 416.0, 1196.0), (596.0, 632.0, 635.0, 928.0)))], size)
    assert text == "<ref>carotid vessel wall</ref><box>[[365, 293, 416, 598], [596, 316, 635, 464]]</box>"
    assert c.decode("Sure. " + text, size).objects[0].boxes == ((365.0, 586.0, 416.0, 1196.0), (596.0, 632.0, 635.0, 928.0))
    assert get_codec("internvl").encode([RefBoxes("a", ((0.0, 0.0, 1000.0, 500.0),))], SIZE) == \
        "<ref>a</ref><box>[[0, 0, 999, 999]]</box>"


def test_qwen2vl_format():
    c = get_codec("qwen2-vl")
    text = c.encode([RefBoxes("nodule", ((100.0, 50.0, 200.0, 100.0),))], SIZE)
    assert text == "<|object_ref_start|>nodule<|object_ref_end|><|box_start|>(100,100),(200,200)<|box_end|>"
    dec = c.decode(text, SIZE)
    assert dec.objects[0].label == "nodule"
    assert dec.boxes == [(100.0, 50.0, 200.0, 100.0)]


def test_qwen25vl_is_json_in_pixels_of_the_resized_input():
    c = get_codec("qwen2.5-vl")
    text = c.encode([RefBoxes("mass", ((10.2, 20.7, 30.0, 40.0), (50.0, 60.0, 70.0, 80.0)))], (448, 336))
    assert json.loads(text) == [{"bbox_2d": [10, 21, 30, 40], "label": "mass"},
                                {"bbox_2d": [50, 60, 70, 80], "label": "mass"}]
    fenced = "Here:\n```json\n" + text + "\n```"
    dec = c.decode(fenced, (448, 336))
    assert [o.label for o in dec.objects] == ["mass"]
    assert dec.objects[0].boxes == ((10.0, 21.0, 30.0, 40.0), (50.0, 60.0, 70.0, 80.0))


def test_qwen3vl_is_json_on_a_relative_grid():
    c = get_codec("qwen3-vl")
    text = c.encode([RefBoxes("mass", ((100.0, 50.0, 200.0, 100.0),))], (400, 200))
    assert json.loads(text) == [{"bbox_2d": [250, 250, 500, 500], "label": "mass"}]  # 0-1000 of the image, any size
    dec = c.decode("```json\n" + text + "\n```", (400, 200))
    assert dec.objects[0].label == "mass" and dec.boxes == [(100.0, 50.0, 200.0, 100.0)]
    assert c.decode('[{"bbox_2d": [0, 0, 2000, 500]}]', (400, 200)).boxes == [(0.0, 0.0, 400.0, 100.0)]  # clipped


def test_llava_fixed_decimals():
    c = get_codec("llava", decimals=2)
    text = c.encode([RefBoxes("heart", ((250.0, 125.0, 500.0, 375.0),)), RefBoxes("liver", ((0.0, 0.0, 10.0, 5.0),))], SIZE)
    assert text == "heart: [0.25, 0.25, 0.50, 0.75]; liver: [0.00, 0.00, 0.01, 0.01]"
    dec = c.decode(text, SIZE)
    assert [o.label for o in dec.objects] == ["heart", "liver"]
    assert dec.objects[0].boxes == ((250.0, 125.0, 500.0, 375.0),)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_several_boxes_per_object_round_trip(name):
    c = get_codec(name)
    size = (448.0, 448.0)
    objs = [RefBoxes("left lung", ((40.0, 48.0, 200.0, 400.0), (220.0, 40.0, 420.0, 380.0))),
            RefBoxes("heart", ((150.0, 200.0, 300.0, 330.0),))]
    dec = c.decode(c.encode(objs, size), size)
    assert [o.label for o in dec.objects] == ["left lung", "heart"]
    assert [len(o.boxes) for o in dec.objects] == [2, 1]
    step = 448.0 / getattr(c, "scale", 448.0) if not name == "llava" else 448.0 / 10 ** c.decimals
    for want, got in zip([b for o in objs for b in o.boxes], dec.boxes):
        assert max(abs(a - b) for a, b in zip(want, got)) <= step / 2 + 1e-9


MALFORMED = [
    "", "no box here", "<box>", "<box>[[1, 2, 3]]</box>", "<box>[[a, b, c, d]]</box>", "[[", "{\"bbox_2d\": [1, 2]}",
    "<|box_start|>(1,2)<|box_end|>", "<ref>x</ref><box>[[5, 5, 5, 5]]</box>", "[0.5, 0.5, 0.5, 0.9]",
    "<|box_start|>(nan,2),(3,4)<|box_end|>", "\x00\xff" * 10, "[" * 5000, "<box>" * 1000,
]


@pytest.mark.parametrize("name", sorted(CODECS))
@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_output_gives_no_box(name, text):
    dec = get_codec(name).decode(text, SIZE)
    assert dec.boxes == []
    assert not dec.parsed


@pytest.mark.parametrize("name", sorted(CODECS))
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_decode_never_raises(name, text):
    dec = get_codec(name).decode(text, SIZE)
    for x1, y1, x2, y2 in dec.boxes:
        assert 0 <= x1 < x2 <= SIZE[0] and 0 <= y1 < y2 <= SIZE[1]


def test_decode_clips_and_orders_corners():
    dec = get_codec("medrega").decode("<box>[[999, 999, 500, 1200]]</box>", (999, 999))
    assert dec.boxes == [] and dec.rejected == 1  # y 999..1200 clipped to 999..999: empty, dropped
    dec = get_codec("medrega").decode("<box>[[900, 950, 100, 1500]]</box>", (999, 999))
    assert dec.boxes == [(100.0, 950.0, 900.0, 999.0)]
    assert get_codec("qwen2.5-vl").decode('[{"bbox_2d": [-20, 10, 500, 90]}]', (100, 100)).boxes == [(0.0, 10.0, 100.0, 90.0)]
    assert clip_box((5, 5, 5, 9), (10, 10)) is None


def test_bad_codec_options_are_config_errors():
    with pytest.raises(ConfigError):
        get_codec("nope")
    with pytest.raises(ConfigError):
        get_codec("medrega", scale=0)
    with pytest.raises(ConfigError):
        get_codec("llava", decimals=9)
    with pytest.raises(ConfigError):
        get_codec("qwen2-vl", decimals=2)


def test_coarse_grid_is_a_config_choice():
    c = get_codec("medrega", scale=99)
    assert c.encode([RefBoxes("x", ((0.0, 0.0, 64.0, 32.0),))], (64, 64)) == "<ref>x</ref><box>[[0, 0, 99, 50]]</box>"


# --- the whole chain: acquisition -> display -> model input -> text -> back, within one pixel -------------

def _geometry(w: int, h: int, n: int, flip: int) -> Geometry:
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    if flip & 1:
        affine[0, 0] = -0.7
    if flip & 2:
        affine[1, 1] = -0.7
    return Geometry((w, h, n), affine)


def _transform(kind: str, w: int, h: int) -> InputTransform:
    base = InputTransform.identity(w, h)
    if kind == "smart":
        return base.smart_resize(factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    if kind == "letterbox":
        return base.letterbox(336)
    return base


@st.composite
def _case(draw):
    w = draw(st.integers(8, 512))
    h = draw(st.integers(8, 512))
    n = draw(st.integers(1, 6))
    x1 = draw(st.integers(0, w - 1))
    y1 = draw(st.integers(0, h - 1))
    x2 = draw(st.integers(x1 + 1, w))
    y2 = draw(st.integers(y1 + 1, h))
    return w, h, n, (x1, y1, x2, y2), draw(st.integers(0, n - 1)), draw(st.integers(0, 3))


@pytest.mark.parametrize("name,kind", [("medrega", "identity"), ("internvl", "identity"), ("qwen2-vl", "smart"),
                                       ("qwen2.5-vl", "smart"), ("llava", "letterbox"), ("medrega", "letterbox")])
@settings(max_examples=80, deadline=None)
@given(case=_case())
def test_round_trip_through_the_frames_within_one_pixel(name, kind, case):
    w, h, n, (x1, y1, x2, y2), k, flip = case
    geom = _geometry(w, h, n, flip)
    acq = Box(x1, y1, x2, y2, slice=k if n > 1 else None)
    disp = acq.to_display(geom)
    dw, dh, _ = geom.view_size(disp.frame.axis)
    t = _transform(kind, dw, dh)
    model = disp.to_model(t)
    codec = get_codec(name)
    text = codec.encode([RefBoxes("finding", (model.as_tuple(),))], t.size)
    dec = codec.decode(text, t.size)
    assert len(dec.boxes) == 1
    back = Box(*dec.boxes[0], frame=Model(t, disp.frame), slice=disp.slice).from_model().to_acquisition(geom)
    assert back.slice == acq.slice
    err = max(abs(a - b) for a, b in zip(back.as_tuple(), acq.as_tuple()))
    assert err <= 1, (text, back, acq)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_a_box_smaller_than_a_grid_step_stays_a_box(name):
    c = get_codec(name)
    size = (5000.0, 5000.0)
    dec = c.decode(c.encode([RefBoxes("dot", ((100.0, 4999.2, 100.5, 4999.9),))], size), size)
    assert len(dec.boxes) == 1
    x1, y1, x2, y2 = dec.boxes[0]
    assert x1 <= 100.0 + 5000 / 999 and x2 >= 100.5 - 5000 / 999 and y2 == 5000.0
